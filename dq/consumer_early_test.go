package dq

import (
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// Copies made ready long before their due time (an operator's kick on a tube
// without buried jobs kicks the delayed ones) go back with the rest of their
// delay instead of filling the consumer: a job due now still runs at once,
// and the kicked ones run at their due time, never early.
func TestConsumerSendsEarlyCopiesBackAndKeepsRunningJobsDueNow(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 2
	l := newLedger()
	startConsumer(t, c, l.handler(nil), WithMaxHeld(8))
	p := newTestProducer(t, c)
	const early = 30
	ids := make([]string, early)
	var err error
	due := time.Now().Add(8 * time.Second)
	for i := range ids {
		ids[i], err = p.At([]byte("later"), due)
		require.NoError(t, err)
	}
	settle(t, p) // every copy put before the kick, not only a quorum
	for _, b := range c.Beanstalks {
		conn := dialNode(t, b.Endpoint)
		kicked, err := (&beanstalk.Tube{Conn: conn, Name: b.Tube}).Kick(1000)
		require.NoError(t, err)
		require.Equal(t, early, kicked, "kicked every delayed copy on %s", b.Endpoint)
	}
	now, err := p.Delay([]byte("now"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 3*time.Second, func() bool { return l.doneCount(now) == 1 }, "a job due now runs at once")
	dqtest.Eventually(t, 5*time.Second, func() bool {
		r, d, rs, _ := countJobs(t, c)
		return d == 3*early && r+rs == 0
	}, "the kicked copies are delayed again, not held")
	require.Less(t, time.Now(), due, "the early jobs are not due yet")
	l.mu.Lock()
	for _, id := range ids {
		require.Zero(t, l.starts[id], "job %s ran before its due time", id)
	}
	l.mu.Unlock()

	dqtest.Eventually(t, 15*time.Second, func() bool { return l.allDone(ids) }, "the kicked jobs run when due")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.early, "handlers started before their due time")
	for _, id := range ids {
		require.Equal(t, 1, l.starts[id])
	}
}
