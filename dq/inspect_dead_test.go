package dq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
)

// deadQueue is a queue whose consumer sends the jobs named in kill to the
// dead letters with an error naming their body, and runs the others.
type deadQueue struct {
	c    DqConf
	in   *Inspector
	l    *ledger
	mu   sync.Mutex
	kill map[string]bool // bodies that die
}

func newDeadQueue(t *testing.T) *deadQueue {
	t.Helper()
	q := &deadQueue{c: sharedConf(t), l: newLedger(), kill: map[string]bool{}}
	in, err := NewInspector(q.c, WithActor("tester@ops"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	q.in = in
	startConsumer(t, q.c, WithHandle(func(ctx context.Context, body []byte) error {
		j := q.l.start(ctx)
		q.mu.Lock()
		dies := q.kill[string(body)]
		q.mu.Unlock()
		if dies {
			return fmt.Errorf("bad input %s: %w", body, ErrSkipRetry)
		}
		q.l.finish(j.ID)
		return nil
	}))
	return q
}

func (q *deadQueue) setDies(body string, dies bool) {
	q.mu.Lock()
	q.kill[body] = dies
	q.mu.Unlock()
}

// bury enqueues a job per body, each dying, and waits until every one is a
// dead letter in the index with its copy buried and its other copies gone.
func (q *deadQueue) bury(t *testing.T, bodies ...string) []string {
	t.Helper()
	ctx := context.Background()
	_, _, _, buried0 := countJobs(t, q.c)
	n0, err := q.in.CountDead(ctx, DeadFilter{})
	require.NoError(t, err)
	p := newTestProducer(t, q.c)
	ids := make([]string, len(bodies))
	for i, b := range bodies {
		q.setDies(b, true)
		id, err := p.Delay([]byte(b), 0)
		require.NoError(t, err)
		ids[i] = id
	}
	var n, r, d, rs, b int
	if !dqtest.Await(20*time.Second, func() bool {
		var err error
		n, err = q.in.CountDead(ctx, DeadFilter{})
		require.NoError(t, err)
		r, d, rs, b = countJobs(t, q.c)
		return n-n0 == len(ids) && b-buried0 == len(ids) && r+d+rs == 0
	}) {
		t.Fatalf("not every job a dead letter, indexed and buried: index %d, ready %d delayed %d reserved %d "+
			"buried %d (before: index %d, buried %d)", n, r, d, rs, b, n0, buried0)
	}
	return ids
}

func TestRetryDeadRunsTheJobExactlyOnceMoreWithAHigherAttemptAndLeavesTheIndex(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	ids := q.bury(t, "retry-me")
	ctx := context.Background()

	dead, err := q.in.DeadLetters(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Len(t, dead, 1)
	d := dead[0]
	require.Equal(t, ids[0], d.ID)
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, "skip", d.Error.Class)
	require.Contains(t, d.Error.Message, "bad input retry-me")
	require.WithinDuration(t, time.Now(), d.At, time.Minute)
	require.NotEmpty(t, d.Node)
	require.NotZero(t, d.JobNum)

	dry, err := q.in.RetryDead(ctx, DeadSelect{IDs: ids, DryRun: true}, nil)
	require.NoError(t, err)
	require.Equal(t, BulkResult{Matched: 1}, dry)
	require.Equal(t, 1, q.l.doneCount(ids[0])+1, "a dry run changes nothing")

	q.setDies("retry-me", false)
	var progress [][2]int
	res, err := q.in.RetryDead(ctx, DeadSelect{IDs: ids}, func(done, total int) {
		progress = append(progress, [2]int{done, total})
	})
	require.NoError(t, err)
	require.Equal(t, BulkResult{Matched: 1, Done: 1}, res)
	require.Equal(t, [][2]int{{1, 1}}, progress)
	dqtest.Eventually(t, 15*time.Second, func() bool { return q.l.doneCount(ids[0]) == 1 }, "the retried job ran")
	awaitNoCopies(t, q.c, 10*time.Second, "the retried copy deleted")
	_, _, _, buried := countJobs(t, q.c)
	require.Zero(t, buried)
	n, err := q.in.CountDead(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Zero(t, n, "a retried dead letter leaves the index")
	q.l.mu.Lock()
	require.Equal(t, []int{1, 2}, q.l.attempts[ids[0]], "ran once more, with a higher attempt")
	q.l.mu.Unlock()

	again, err := q.in.RetryDead(ctx, DeadSelect{IDs: ids}, nil)
	require.NoError(t, err)
	require.Equal(t, 0, again.Done, "a job retried already is not kicked twice")
	require.Len(t, again.Skipped, 1)
}

func TestDeleteDeadRemovesTheBuriedCopyAndItsEntryAndLeavesTheOthers(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	ids := q.bury(t, "delete-me", "keep-me")
	ctx := context.Background()

	res, err := q.in.DeleteDead(ctx, DeadSelect{IDs: []string{ids[0], "no-such-job"}}, nil)
	require.NoError(t, err)
	require.Equal(t, 2, res.Matched)
	require.Equal(t, 1, res.Done)
	require.Equal(t, []BulkSkip{{ID: "no-such-job", Reason: "not a dead letter"}}, res.Skipped)

	_, _, _, buried := countJobs(t, q.c)
	require.Equal(t, 1, buried, "the deleted dead letter's copy is gone, the other stays")
	dead, err := q.in.DeadLetters(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, ids[1], dead[0].ID)
	q.l.mu.Lock()
	require.Equal(t, 1, q.l.starts[ids[0]], "a deleted dead letter never runs again")
	q.l.mu.Unlock()
}

func TestReconcileDeadDropsAnEntryWhoseCopyWasKickedByHand(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	ids := q.bury(t, "kicked", "still-dead")
	ctx := context.Background()

	dead, err := q.in.DeadLetters(ctx, DeadFilter{Match: "kicked"})
	require.NoError(t, err)
	require.Len(t, dead, 1)
	q.setDies("kicked", false)
	for _, b := range q.c.Beanstalks {
		if key, _ := endpointKey(b.Endpoint); key == dead[0].Node {
			require.NoError(t, dialNode(t, b.Endpoint).KickJob(dead[0].JobNum))
		}
	}
	dqtest.Eventually(t, 15*time.Second, func() bool { return q.l.doneCount(ids[0]) == 1 }, "the kicked job ran")

	dry, err := q.in.ReconcileDead(ctx, true, nil)
	require.NoError(t, err)
	require.Equal(t, BulkResult{Matched: 2, Done: 1}, dry)
	n, err := q.in.CountDead(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Equal(t, 2, n, "a dry run drops nothing")

	res, err := q.in.ReconcileDead(ctx, false, nil)
	require.NoError(t, err)
	require.Equal(t, BulkResult{Matched: 2, Done: 1}, res)
	left, err := q.in.DeadLetters(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, ids[1], left[0].ID, "the job still dead keeps its entry")
}

func TestDeadLettersFilterBySinceMatchAndLimitAndExportAsJSONLines(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	q.bury(t, "alpha-1")
	q.bury(t, "beta-1")
	q.bury(t, "alpha-2")
	ctx := context.Background()

	all, err := q.in.DeadLetters(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Len(t, all, 3)
	msgs := func(ds []DeadLetter) []string {
		var out []string
		for _, d := range ds {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(d.Error.Message, "bad input "), ": dq: skip retry"))
		}
		return out
	}
	require.Equal(t, []string{"alpha-1", "beta-1", "alpha-2"}, msgs(all), "burial order")

	got, err := q.in.DeadLetters(ctx, DeadFilter{Match: "alpha"})
	require.NoError(t, err)
	require.Equal(t, []string{"alpha-1", "alpha-2"}, msgs(got))
	got, err = q.in.DeadLetters(ctx, DeadFilter{Since: all[1].At})
	require.NoError(t, err)
	require.Equal(t, []string{"beta-1", "alpha-2"}, msgs(got))
	got, err = q.in.DeadLetters(ctx, DeadFilter{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"alpha-1", "beta-1"}, msgs(got))
	got, err = q.in.DeadLetters(ctx, DeadFilter{Match: all[2].ID})
	require.NoError(t, err)
	require.Equal(t, []string{"alpha-2"}, msgs(got), "match takes the ID too")

	n, err := q.in.CountDead(ctx, DeadFilter{Match: "alpha", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, 2, n, "a count ignores the limit")
	n, err = q.in.CountDead(ctx, DeadFilter{Since: all[1].At})
	require.NoError(t, err)
	require.Equal(t, 2, n)

	var buf bytes.Buffer
	n, err = q.in.ExportDead(ctx, &buf, DeadFilter{Match: "alpha"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 2)
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Equal(t, all[0].ID, first["id"])
	require.Equal(t, float64(1), first["attempts"])
	require.Equal(t, all[0].Node, first["node"])
	require.Equal(t, float64(all[0].JobNum), first["job_num"])
	require.Equal(t, "skip", first["error"].(map[string]any)["class"])
}

// A kick by number must never hit another job: the Inspector checks the
// copy's tube, state and body first.
func TestRetryDeadSkipsAnEntryWhoseCopyIsNotBuriedAnyMore(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	ids := q.bury(t, "gone-by-hand")
	ctx := context.Background()
	dead, err := q.in.DeadLetters(ctx, DeadFilter{})
	require.NoError(t, err)
	for _, b := range q.c.Beanstalks {
		if key, _ := endpointKey(b.Endpoint); key == dead[0].Node {
			require.NoError(t, dialNode(t, b.Endpoint).Delete(dead[0].JobNum))
		}
	}
	res, err := q.in.RetryDead(ctx, DeadSelect{Filter: DeadFilter{Match: "gone"}}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, res.Matched)
	require.Zero(t, res.Done)
	require.Equal(t, []BulkSkip{{ID: ids[0], Reason: "copy not on its node any more"}}, res.Skipped)
	n, err := q.in.CountDead(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Equal(t, 1, n, "a skipped entry stays for reconcile")
}

// Two copies of a job may be buried at once (claim answered Bury to both
// before either bury was recorded): the first whose bury is recorded becomes
// the dead letter and the other is deleted as extra. Until a bury is
// recorded the index entry may name the copy that will be deleted, so the
// Inspector must not act on a dead job whose record names no dead letter
// yet: deleting the copy the entry names left the real dead letter buried
// with no entry.
func TestDeadLetterActionsWaitUntilTheBuryIsRecorded(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	ctx := context.Background()
	in, err := NewInspector(c, WithActor("tester@ops"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	id, env, refs := buryByHand(t, c, "buried twice")
	// The job dies (maxFail -1: its first claim buries it), no bury recorded
	// yet; the entry names the last copy, which will turn out extra.
	rep, err := in.store.Claim(ctx, in.tube, id, claim.NewClaimID(), env.DueMs,
		claim.Copy{N: int(env.Count), Slot: 0, Ref: refs[0]}, 30000, -1)
	require.NoError(t, err)
	require.Equal(t, claim.Bury, rep.Kind)
	last := refs[len(refs)-1]
	require.NoError(t, in.store.Index().DeadAdd(ctx, in.tube, claim.DeadEntry{ID: id, Ref: last, At: env.DueMs}, true))

	res, err := in.DeleteDead(ctx, DeadSelect{IDs: []string{id}}, nil)
	require.NoError(t, err)
	require.Equal(t, 0, res.Done, "a dead letter acted on before its bury was recorded")
	require.Len(t, res.Skipped, 1)
	_, _, _, buried := countJobs(t, c)
	require.Equal(t, len(refs), buried, "no copy deleted")

	// The first copy's bury is recorded: it is the dead letter, and delete
	// takes it, whatever the entry said.
	rep, err = in.store.Buried(ctx, in.tube, id, 0, refs[0])
	require.NoError(t, err)
	require.Equal(t, claim.Keep, rep.Kind)
	res, err = in.DeleteDead(ctx, DeadSelect{IDs: []string{id}}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, res.Done)
	_, _, _, buried = countJobs(t, c)
	require.Equal(t, len(refs)-1, buried, "the recorded dead letter deleted, the extra copies left to their consumers")
	nd, num, _ := claim.SplitRef(refs[0])
	_, err = in.nodesByKey()[nd].JobStat(ctx, num)
	require.ErrorIs(t, err, node.ErrNotFound, "the copy deleted is the recorded dead letter")
}

// buryByHand enqueues a job and buries every copy of it by hand, as
// consumers told Bury would, with no bury recorded; it returns the job's ID,
// its envelope and its copies' references.
func buryByHand(t *testing.T, c DqConf, body string) (string, envelope.Envelope, []string) {
	t.Helper()
	id, err := newTestProducer(t, c).Delay([]byte(body), 0)
	require.NoError(t, err)
	var refs []string
	var env envelope.Envelope
	for _, b := range c.Beanstalks {
		conn := dialNode(t, b.Endpoint)
		ts := beanstalk.NewTubeSet(conn, b.Tube)
		num, body, err := ts.Reserve(5 * time.Second)
		require.NoError(t, err)
		require.NoError(t, conn.Bury(num, 0))
		env, err = envelope.Decode(body, nil, envelope.Accept{})
		require.NoError(t, err)
		key, _ := endpointKey(b.Endpoint)
		refs = append(refs, claim.CopyRef(key, num))
	}
	return id, env, refs
}

// An entry written by a copy that knew nothing of the job's runs (a claim
// that buried the job after its leases lapsed) carries no attempts and no
// error; the listing takes them from the job's record.
func TestDeadLettersTakeAttemptsAndErrorFromTheRecordWhenTheEntryHasNone(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	ctx := context.Background()
	in, err := NewInspector(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	id, env, refs := buryByHand(t, c, "lapsed")
	cid := claim.NewClaimID()
	rep, err := in.store.Claim(ctx, in.tube, id, cid, env.DueMs, claim.Copy{N: int(env.Count), Ref: refs[0]}, 30000, 5)
	require.NoError(t, err)
	require.Equal(t, claim.Run, rep.Kind)
	rep, err = in.store.Finish(ctx, in.tube, id, cid, 0, claim.OutcomeDead, 0, 5,
		claim.Failure{Class: "timeout", Message: "handler took too long"})
	require.NoError(t, err)
	require.Equal(t, claim.Bury, rep.Kind)
	require.NoError(t, in.store.Index().DeadAdd(ctx, in.tube, claim.DeadEntry{ID: id, Ref: refs[1], At: env.DueMs}, true))

	dead, err := in.DeadLetters(ctx, DeadFilter{})
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, 1, dead[0].Attempts)
	require.Equal(t, "timeout", dead[0].Error.Class)
	require.Equal(t, "handler took too long", dead[0].Error.Message)
}
