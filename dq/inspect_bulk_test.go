package dq

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// awaitBulk follows a bulk operation through in until it finishes.
func awaitBulk(t *testing.T, in *Inspector, id string) BulkOp {
	t.Helper()
	var op BulkOp
	dqtest.Eventually(t, 20*time.Second, func() bool {
		var err error
		op, err = in.Bulk(context.Background(), id)
		require.NoError(t, err)
		require.LessOrEqual(t, op.Done, op.Matched, "progress never passes the count")
		return op.Finished
	}, "bulk operation %s finished", id)
	return op
}

func TestBulkRetryStartedOnOneInspectorIsFollowedToItsEndFromAnother(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	ids := q.bury(t, "bulk-1", "bulk-2", "bulk-3")
	q.bury(t, "other")
	for _, b := range []string{"bulk-1", "bulk-2", "bulk-3"} {
		q.setDies(b, false)
	}
	ctx := context.Background()
	replica := newTestInspector(t, q.c)

	sel := DeadSelect{Filter: DeadFilter{Match: "bulk-"}}
	op, err := q.in.StartBulk(ctx, "retry", sel)
	require.NoError(t, err)
	require.Regexp(t, `^[0-9a-f]{16}$`, op.ID)
	require.Equal(t, "retry", op.Verb)
	require.Equal(t, sel, op.Select)
	require.Equal(t, "tester@ops", op.By)
	require.Equal(t, 3, op.Matched, "counted before it starts")
	require.Zero(t, op.Done)
	require.False(t, op.Finished)
	require.WithinDuration(t, time.Now(), op.Started, 10*time.Second)

	got := awaitBulk(t, replica, op.ID)
	require.Equal(t, op.ID, got.ID)
	require.Equal(t, "retry", got.Verb)
	require.Equal(t, sel, got.Select)
	require.Equal(t, "tester@ops", got.By)
	require.True(t, got.Started.Equal(op.Started), "started %v, recorded %v", got.Started, op.Started)
	require.False(t, got.Updated.Before(got.Started))
	require.Equal(t, 3, got.Matched)
	require.Equal(t, got.Matched, got.Done)
	require.Zero(t, got.Skipped)
	require.Empty(t, got.Err)

	for _, id := range ids {
		dqtest.Eventually(t, 15*time.Second, func() bool { return q.l.doneCount(id) == 1 }, "retried job %s ran", id)
	}
	left, err := replica.DeadLetters(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Len(t, left, 1, "only the job outside the selection is still dead")
	log, err := replica.AuditLog(ctx, 5)
	require.NoError(t, err)
	audited := false
	for _, e := range log {
		audited = audited || (e.Who == "tester@ops" && strings.HasPrefix(e.What, "dead retry 3 entries"))
	}
	require.True(t, audited, "the audit stream names the bulk retry: %+v", log)
}

func TestBulkDeleteCountsTheEntriesItSkipped(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	ids := q.bury(t, "gone-1", "gone-2")
	ctx := context.Background()

	op, err := q.in.StartBulk(ctx, "delete", DeadSelect{IDs: []string{ids[0], ids[1], "no-such-job", ids[0]}})
	require.NoError(t, err)
	require.Equal(t, 3, op.Matched, "each ID once")
	got := awaitBulk(t, newTestInspector(t, q.c), op.ID)
	require.Equal(t, 3, got.Done, "every entry worked through")
	require.Equal(t, 1, got.Skipped)
	require.Equal(t, []BulkSkip{{ID: "no-such-job", Reason: "not a dead letter"}}, got.Skips)
	require.Empty(t, got.Err)
	n, err := q.in.CountDead(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestBulkOfAnUnknownIDOrVerbIsAnError(t *testing.T) {
	t.Parallel()
	in := newTestInspector(t, sharedConf(t))
	ctx := context.Background()
	for _, id := range []string{"0123456789abcdef", "", "x}y", "../op"} {
		_, err := in.Bulk(ctx, id)
		require.ErrorIs(t, err, ErrNoSuchOp, "id %q", id)
	}
	_, err := in.StartBulk(ctx, "kick", DeadSelect{})
	require.ErrorIs(t, err, ErrBadVerb)
}

func TestClosingTheInspectorEndsItsBulkOperationsAndRecordsTheirEnd(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	q.bury(t, "close-1", "close-2")
	ctx := context.Background()
	in, err := NewInspector(q.c)
	require.NoError(t, err)
	op, err := in.StartBulk(ctx, "delete", DeadSelect{})
	require.NoError(t, err)
	require.NoError(t, in.Close())

	// Close waited for the work: its end is recorded by now, complete or
	// stopped early.
	got, err := q.in.Bulk(ctx, op.ID)
	require.NoError(t, err)
	require.True(t, got.Finished)
	if got.Err != "" {
		require.Contains(t, got.Err, "closed")
	} else {
		require.Equal(t, got.Matched, got.Done)
	}
	_, err = in.StartBulk(ctx, "delete", DeadSelect{})
	require.ErrorIs(t, err, ErrClosed, "a closed Inspector starts nothing")
}
