package dq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestInspectorAsActsAsAnotherActorOnTheSameConnections: a view's revoke,
// pause, resume and bulk retry are each audited once under the view's actor,
// the pause and the bulk operation name it too, and closing the view leaves
// the Inspector it came from (and its running operation) working.
func TestInspectorAsActsAsAnotherActorOnTheSameConnections(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	ids := q.bury(t, "as-1")
	q.setDies("as-1", false)
	ctx := context.Background()
	p := openProducer(t, q.c)
	waiting, err := p.Delay([]byte("later"), time.Hour)
	require.NoError(t, err)
	other, err := p.Delay([]byte("later too"), time.Hour)
	require.NoError(t, err)
	before, err := q.in.AuditLog(ctx, 100)
	require.NoError(t, err)

	ann := q.in.As("ann@dashboard")
	require.Equal(t, "ann@dashboard", ann.Actor())
	require.Equal(t, "tester@ops", q.in.Actor(), "the Inspector keeps its own actor")
	require.Equal(t, q.in.Queue(), ann.Queue())

	require.NoError(t, ann.Revoke(ctx, waiting))
	require.NoError(t, ann.Pause(ctx))
	pi, err := q.in.Paused(ctx)
	require.NoError(t, err)
	require.Equal(t, "ann@dashboard", pi.By)
	require.NoError(t, ann.Resume(ctx))
	op, err := ann.StartBulk(ctx, "retry", DeadSelect{IDs: ids})
	require.NoError(t, err)
	require.Equal(t, "ann@dashboard", op.By)

	require.NoError(t, ann.Close(), "closing a view releases nothing")
	got := awaitBulk(t, q.in, op.ID)
	require.Equal(t, "ann@dashboard", got.By)
	require.Empty(t, got.Err, "the view's Close did not stop the operation")
	require.Equal(t, 1, got.Done)
	dqtest.Eventually(t, 15*time.Second, func() bool { return q.l.doneCount(ids[0]) == 1 }, "the retried job ran")

	// The Inspector's producer, connections and bulk group are still open.
	require.NoError(t, q.in.Revoke(ctx, other))
	require.Equal(t, StateRevoked, jobOf(t, q.in, other).State)
	op2, err := q.in.StartBulk(ctx, "delete", DeadSelect{IDs: []string{"none"}})
	require.NoError(t, err)
	require.Equal(t, "tester@ops", op2.By)
	awaitBulk(t, q.in, op2.ID)

	log, err := q.in.AuditLog(ctx, 100)
	require.NoError(t, err)
	log = log[:len(log)-len(before)]
	type entry struct{ who, what string }
	var seen []entry
	for _, e := range log {
		seen = append(seen, entry{e.Who, e.What})
	}
	require.Equal(t, []entry{
		{"tester@ops", "dead delete 1 entries, ids none"},
		{"tester@ops", "revoke " + other},
		{"ann@dashboard", "dead retry 1 entries, ids " + ids[0]},
		{"ann@dashboard", "resume"},
		{"ann@dashboard", "pause"},
		{"ann@dashboard", "revoke " + waiting},
	}, seen, "one entry per action, each under its actor")
}
