package dq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// A WithID job whose record expired is a new job: the process that ran the
// earlier one must run it again, not take it for a copy of the done one.
func TestConsumerRunsAWithIDJobAgainOnceItsRecordExpired(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.TTR = 3 * time.Second
	c.DedupeTTL = 500 * time.Millisecond
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)
	const id = "nightly-report"
	_, err := p.DelayCtx(context.Background(), []byte("run 1"), 0, WithID(id))
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(id) == 1 }, "first run done")
	awaitNoCopies(t, c, 10*time.Second, "the first run's copies deleted")
	dqtest.Eventually(t, 10*time.Second, func() bool { return len(recordOf(t, c, id)) == 0 },
		"the record expired (lease + DedupeTTL)")

	_, err = p.DelayCtx(context.Background(), []byte("run 2"), 0, WithID(id))
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(id) == 2 },
		"the same ID enqueued after its record expired runs again")
}

func TestRecentDoneRepeatsTheRecordForNoLongerThanItLives(t *testing.T) {
	t.Parallel()
	r := newRecentDone(2, 200*time.Millisecond)
	sent := time.Now()
	r.add("a", 1000, sent)
	require.True(t, r.has("a", 1000))
	require.False(t, r.has("a", 2000), "another enqueue of the ID (another due time) is not known")
	require.False(t, r.has("b", 1000))
	dqtest.Eventually(t, 2*time.Second, func() bool { return !r.has("a", 1000) }, "the entry lapses")
	require.GreaterOrEqual(t, time.Since(sent), 200*time.Millisecond, "not before DedupeTTL")
	r.add("b", 1, time.Now())
	r.add("c", 1, time.Now())
	r.add("d", 1, time.Now())
	require.False(t, r.has("b", 1), "the oldest goes when full")
	require.True(t, r.has("c", 1))
	require.True(t, r.has("d", 1))
}
