package dq

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// A go-queue copy carries a 5 s TTR whatever the consumer's TTR (30 s here,
// so its heartbeat comes every 10 s): a handler running longer keeps the copy
// reserved by touching it often enough, also while Redis is away and the
// consumer reserves nothing (no DEADLINE_SOON to prompt a touch). beanstalkd
// counts a lapsed TTR in the job's timeouts.
func TestConsumerKeepsALegacyCopyReservedPastItsTTR(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{Nodes: 1})
	c := testConf(t, env)
	started := make(chan time.Time, 1)
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		if !j.Legacy {
			return nil
		}
		t0 := time.Now()
		started <- t0
		untilAfter(t0, 7*time.Second)
		return nil
	}))
	p := newTestProducer(t, c)
	b := c.Beanstalks[0]
	conn := dialNode(t, b.Endpoint)
	raw := []byte(fmt.Sprintf("%d/%s", time.Now().UnixNano(), "legacy body"))
	id, err := (&beanstalk.Tube{Conn: conn, Name: b.Tube}).Put(raw, 1, 0, 5*time.Second)
	require.NoError(t, err)
	t0 := <-started
	env.Redis.Kill()
	// A job whose claim finds Redis gone pauses the consumer's reserving.
	_, err = p.Delay([]byte("pauses the consumer"), 0)
	require.NoError(t, err)
	untilAfter(t0, 6500*time.Millisecond)
	st, err := conn.StatsJob(id)
	require.NoError(t, err)
	require.Equal(t, "0", st["timeouts"], "the copy's 5 s TTR lapsed while its handler ran")
	require.Equal(t, "reserved", st["state"])
}
