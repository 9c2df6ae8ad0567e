package dq

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
)

// deadLetterRunsOnlyWhenKicked starts a consumer whose handler sends every
// job to the dead letters, lets put write one job's copies, and checks that
// the job ran once and left one buried copy, its other copies deleted
// although they share the dead letter's slot; then it kicks the dead letter,
// which runs once more and succeeds.
func deadLetterRunsOnlyWhenKicked(t *testing.T, put func(c DqConf) string) {
	t.Helper()
	c := sharedConf(t)
	l := newLedger()
	var dead atomic.Bool
	dead.Store(true)
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		if dead.Load() {
			return fmt.Errorf("bad input: %w", ErrSkipRetry)
		}
		return nil
	}))
	id := put(c)
	// Copies of a dead job may be buried before the extra ones are told
	// to go: wait for one dead letter and nothing else.
	dqtest.Eventually(t, 15*time.Second, func() bool {
		r, d, rs, b := countJobs(t, c)
		return b == 1 && r+d+rs == 0
	}, "one dead letter, the job's other copies gone")
	l.mu.Lock()
	starts := l.starts[id]
	l.mu.Unlock()
	require.Equal(t, 1, starts, "a dead job runs again only when its dead letter is kicked")

	dead.Store(false)
	kicked := 0
	for _, b := range c.Beanstalks {
		if countTube(t, b.Endpoint, b.Tube).Buried == 0 {
			continue
		}
		n, err := (&beanstalk.Tube{Conn: dialNode(t, b.Endpoint), Name: b.Tube}).Kick(1)
		require.NoError(t, err)
		kicked += n
	}
	require.Equal(t, 1, kicked)
	dqtest.Eventually(t, 15*time.Second, func() bool { return l.doneCount(id) == 1 }, "the kicked dead letter ran")
	awaitNoCopies(t, c, 10*time.Second, "the kicked dead letter deleted")
	_, _, _, buried := countJobs(t, c)
	require.Zero(t, buried)
	l.mu.Lock()
	require.Equal(t, 2, l.starts[id], "the kicked dead letter ran once")
	l.mu.Unlock()
}

func TestDeadLegacyJobRunsAgainOnlyFromItsKickedDeadLetter(t *testing.T) {
	t.Parallel()
	deadLetterRunsOnlyWhenKicked(t, func(c DqConf) string {
		// Every legacy copy decodes as slot 0.
		return envelope.LegacyID(putLegacy(t, c, 2, "dies"))
	})
}

func TestDeadJobRunsAgainOnlyFromItsKickedDeadLetterNotFromASpillCopyOfItsSlot(t *testing.T) {
	t.Parallel()
	deadLetterRunsOnlyWhenKicked(t, func(c DqConf) string {
		due := time.Now().UnixMilli()
		id := envelope.NewID(due)
		// Slot 0's put was uncertain and landed after all, beside the copy
		// spilled to another node under the same slot.
		for k, e := range []envelope.Envelope{
			{ID: id, DueMs: due, Slot: 0, Count: 2, TTR: 60},
			{ID: id, DueMs: due, Slot: 0, Count: 2, TTR: 60, Flags: envelope.FlagUnc},
			{ID: id, DueMs: due, Slot: 1, Count: 2, TTR: 60, Flags: envelope.FlagUnc},
		} {
			body, err := envelope.Encode(&e, nil)
			require.NoError(t, err)
			putRaw(t, c.Beanstalks[k], body)
		}
		return id
	})
}
