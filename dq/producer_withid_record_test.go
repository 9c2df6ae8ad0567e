package dq

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// One WithID enqueue, no retry: its two fast copies run at once and the job
// finishes; its third put, to a frozen node, answers only after IOTimeout.
// By then the record (lease + DedupeTTL past the claim) has expired, so
// confirm finds no record and answers OTHER: the call removes its copies,
// reserves the ID afresh and writes the job again, which runs a second time.
// All settings are accepted by Validate; the call's own record must not
// expire under it.
func TestAWithIDEnqueueRunsOnceWhenItsPutsOutlastTheRecord(t *testing.T) {
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.TTR = 3 * time.Second
	c.DedupeTTL = time.Second
	c.IOTimeout = 6 * time.Second

	var mu sync.Mutex
	runs := 0
	startConsumer(t, c, WithHandle(func(_ context.Context, body []byte) error {
		if string(body) == "once" {
			mu.Lock()
			runs++
			mu.Unlock()
		}
		return nil
	}))
	p := openProducer(t, c)
	_, err := p.Delay([]byte("warm"), time.Hour) // connections to every node
	require.NoError(t, err)

	frozen := e.Nodes[2]
	require.NoError(t, frozen.Pause())
	t.Cleanup(func() { _ = frozen.Resume() })
	_, err = p.DelayCtx(context.Background(), []byte("once"), 0, WithID("order-1"))
	require.NoError(t, err)
	require.NoError(t, frozen.Resume())

	// Only the three warm copies are left once every copy of the job is
	// handled, the late one from the frozen node included.
	dqtest.Eventually(t, 10*time.Second, func() bool { return countCopies(t, c) == 3 }, "every copy handled")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, runs, "runs of the job one enqueue wrote")
}
