package dq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// openInspector returns an Inspector of c's queue, closed when the test ends.
func openInspector(t *testing.T, c DqConf) *Inspector {
	t.Helper()
	in, err := NewInspector(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	return in
}

// jobOf reads a job through in.
func jobOf(t *testing.T, in *Inspector, id string) JobInfo {
	t.Helper()
	info, err := in.Job(context.Background(), id)
	require.NoError(t, err)
	return info
}

// awaitJob waits until the job as in shows it meets cond, and returns it.
func awaitJob(t *testing.T, in *Inspector, id string, cond func(JobInfo) bool, what string) JobInfo {
	t.Helper()
	var info JobInfo
	dqtest.Eventually(t, 15*time.Second, func() bool {
		var err error
		info, err = in.Job(context.Background(), id)
		return err == nil && cond(info)
	}, "%s: last seen %+v", what, info)
	return info
}

// consumerID is the registry ID a consumer records in the jobs it claims.
func consumerID(cs Consumer) string { return cs.(*consumer).id }

func TestInspectorShowsAJobNoConsumerHasSeenAsWaitingFromItsID(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	in := openInspector(t, c)
	before := time.Now()
	id, err := p.Delay([]byte("later"), time.Hour)
	require.NoError(t, err)

	info := jobOf(t, in, id)
	require.Equal(t, StateWaiting, info.State)
	require.False(t, info.Seen, "no consumer met a copy: no record")
	require.False(t, info.WithID)
	require.WithinRange(t, info.DueAt, before.Add(time.Hour-time.Second), time.Now().Add(time.Hour+time.Second))
	require.Equal(t, "waiting, due at "+info.DueAt.UTC().Format(time.RFC3339)+", not seen by any consumer yet",
		info.Verdict)
	require.Empty(t, info.Copies)
	require.Empty(t, info.Runs)
	require.True(t, info.Expires.IsZero())
	require.Equal(t, c.claimTube(), info.Queue)

	_, err = in.Job(context.Background(), "order-42")
	require.ErrorIs(t, err, ErrJobNotFound, "a caller-chosen ID without a record carries nothing to show")
	_, err = in.Job(context.Background(), "bad id")
	require.ErrorIs(t, err, ErrBadID)
}

func TestInspectorShowsAWithIDJobAsWaitingAndSeen(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	in := openInspector(t, c)
	due := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	id, err := p.AtCtx(context.Background(), []byte("later"), due, WithID("order-7"))
	require.NoError(t, err)

	info := jobOf(t, in, id)
	require.Equal(t, StateWaiting, info.State)
	require.True(t, info.Seen, "a WithID enqueue writes its record")
	require.True(t, info.WithID)
	require.Equal(t, due.UnixMilli(), info.DueAt.UnixMilli())
	require.Zero(t, info.Attempts)
	require.Contains(t, info.Verdict, "not claimed by any consumer yet")
	require.False(t, info.Expires.IsZero())
}

func TestInspectorTellsADoneJobsStoryAfterEveryCopyIsGone(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	in := openInspector(t, c)
	id, err := p.Delay([]byte("now"), 0)
	require.NoError(t, err)
	settle(t, p)
	cs := startConsumer(t, c, WithHandle(func(context.Context, []byte) error { return nil }))

	// Every copy met and deleted: the summary is what is left.
	info := awaitJob(t, in, id, func(j JobInfo) bool { return j.State == StateDone && len(j.Copies) == 3 },
		"done with its 3 copies")
	require.True(t, info.Seen)
	require.Equal(t, 1, info.Attempts)
	require.Zero(t, info.Failures)
	require.Equal(t, consumerID(cs), info.Owner)
	require.Nil(t, info.LastError)
	fates := map[string]int{}
	for _, cp := range info.Copies {
		fates[cp.Fate]++
		require.Contains(t, c.Beanstalks, Beanstalk{Endpoint: cp.Node, Tube: c.Beanstalks[0].Tube})
		require.NotZero(t, cp.JobNum)
	}
	require.Equal(t, map[string]int{"ran": 1, "spare deleted": 2}, fates)
	require.Len(t, info.Runs, 1)
	run := info.Runs[0]
	require.Equal(t, 1, run.Attempt)
	require.Equal(t, "ok", run.Outcome)
	require.Equal(t, consumerID(cs), run.Consumer)
	require.False(t, run.End.Before(run.Start))
	ran := info.Copies[0]
	for _, cp := range info.Copies {
		if cp.Fate == "ran" {
			ran = cp
		}
	}
	require.Equal(t, ran.Node, run.Node)
	require.Equal(t, ran.JobNum, run.JobNum)
	require.Equal(t, "ran once on consumer "+consumerID(cs)+"; 2 spare copies deleted", info.Verdict)
	require.False(t, info.Expires.IsZero())
	require.False(t, info.Expires.After(time.Now().Add(c.History)), "the summary lives History at most")
	require.Zero(t, countCopies(t, c), "every copy is gone")
}

func TestInspectorShowsARunningJobWithItsLease(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	in := openInspector(t, c)
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cs := startConsumer(t, c, WithHandle(func(ctx context.Context, _ []byte) error {
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}))
	defer close(release)
	id, err := p.Delay([]byte("slow"), 0)
	require.NoError(t, err)
	<-started

	info := jobOf(t, in, id)
	require.Equal(t, StateRunning, info.State)
	require.Equal(t, consumerID(cs), info.Owner)
	require.True(t, info.LeaseUntil.After(time.Now()), "lease until %v", info.LeaseUntil)
	require.Len(t, info.Runs, 1)
	require.Empty(t, info.Runs[0].Outcome, "still running")
	require.True(t, info.Runs[0].End.IsZero())
	require.Contains(t, info.Verdict, "running attempt 1 on consumer "+consumerID(cs))
}

func TestInspectorShowsARetryingJobWithItsNextAttemptAndLastError(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.RetryBackoff = time.Hour
	c.MaxRetryBackoff = time.Hour
	p := openProducer(t, c)
	in := openInspector(t, c)
	startConsumer(t, c, WithHandle(func(context.Context, []byte) error { return errors.New("boom: no stock") }))
	id, err := p.Delay([]byte("fails"), 0)
	require.NoError(t, err)

	info := awaitJob(t, in, id, func(j JobInfo) bool { return j.State == StateRetrying }, "retrying")
	require.Equal(t, 1, info.Attempts)
	require.Equal(t, 1, info.Failures)
	require.True(t, info.NextAttempt.After(time.Now().Add(30*time.Minute)), "next attempt %v", info.NextAttempt)
	require.NotNil(t, info.LastError)
	require.Equal(t, "error", info.LastError.Class)
	require.Equal(t, "boom: no stock", info.LastError.Message)
	require.WithinDuration(t, time.Now(), info.LastError.At, 15*time.Second)
	require.Len(t, info.Runs, 1)
	require.Equal(t, "fail", info.Runs[0].Outcome)
	require.Equal(t, "retrying: attempt 1 failed (last error: error: boom: no stock); next attempt at "+
		info.NextAttempt.UTC().Format(time.RFC3339), info.Verdict)
}

// TestInspectorClassesEachFailureOfADeadJob: a handler error, a panic, a
// handler that outlives Timeout and ErrSkipRetry each kill a job with no
// retries left, and the job shows why, with its dead letter.
func TestInspectorClassesEachFailureOfADeadJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		class, message string
		handle         func(ctx context.Context) error
	}{
		{"error", "card declined", func(context.Context) error { return errors.New("card declined") }},
		{"panic", "dq: handler panic: nil map", func(context.Context) error { panic("nil map") }},
		{"timeout", "context deadline exceeded", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		{"skip", "bad input: " + ErrSkipRetry.Error(), func(context.Context) error {
			return fmt.Errorf("bad input: %w", ErrSkipRetry)
		}},
	} {
		t.Run(tc.class, func(t *testing.T) {
			t.Parallel()
			c := sharedConf(t)
			c.MaxRetries = 0
			c.Timeout = 300 * time.Millisecond
			p := openProducer(t, c)
			in := openInspector(t, c)
			startConsumer(t, c, WithHandle(func(ctx context.Context, _ []byte) error { return tc.handle(ctx) }))
			id, err := p.Delay([]byte("doomed"), 0)
			require.NoError(t, err)

			info := awaitJob(t, in, id, func(j JobInfo) bool {
				for _, cp := range j.Copies {
					if cp.Fate == "dead letter" {
						return j.State == StateDead
					}
				}
				return false
			}, "dead with its dead letter")
			require.NotNil(t, info.LastError)
			require.Equal(t, tc.class, info.LastError.Class)
			require.Equal(t, tc.message, info.LastError.Message)
			require.Len(t, info.Runs, 1)
			// The outcome its consumer reported: a failure with no retry
			// left, or dead at once for ErrSkipRetry.
			outcome := "fail"
			if tc.class == "skip" {
				outcome = "dead"
			}
			require.Equal(t, outcome, info.Runs[0].Outcome)
			var dl CopyInfo
			for _, cp := range info.Copies {
				if cp.Fate == "dead letter" {
					dl = cp
				}
			}
			require.True(t, strings.HasPrefix(info.Verdict, "dead after 1 attempt (last error: "+tc.class+": "),
				info.Verdict)
			require.Contains(t, info.Verdict, fmt.Sprintf("; dead letter on %s job %d", dl.Node, dl.JobNum))
		})
	}
}

func TestInspectorShowsARevokedJob(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	in := openInspector(t, c)
	id, err := p.Delay([]byte("never"), time.Hour)
	require.NoError(t, err)
	require.NoError(t, p.Revoke(id))

	info := jobOf(t, in, id)
	require.Equal(t, StateRevoked, info.State)
	require.True(t, info.Seen)
	require.Zero(t, info.Attempts)
	require.Equal(t, "revoked before it ran", info.Verdict)
}

func TestVerdictsSayWhatHappenedInOneSentence(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	copies := func(fates ...string) []CopyInfo {
		out := make([]CopyInfo, len(fates))
		for k, f := range fates {
			out[k] = CopyInfo{Node: "127.0.0.1:1130" + fmt.Sprint(k), JobNum: uint64(17 + k), Fate: f}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		info JobInfo
		rec  claim.Record
		want string
	}{
		{name: "RanAfterALapsedLease", info: JobInfo{State: StateDone, Attempts: 2, Owner: "h/2/cd",
			Runs:   []RunInfo{{Attempt: 1, Consumer: "h/1/ab"}, {Attempt: 2, Consumer: "h/2/cd", Outcome: "ok"}},
			Copies: copies("ran", "ran", "spare deleted")},
			want: "ran 2 times (attempt 1 lease lapsed on consumer h/1/ab), last on consumer h/2/cd; 1 spare copy deleted"},
		{name: "RanAfterAFailure", info: JobInfo{State: StateDone, Attempts: 2, Owner: "h/1/ab",
			Runs:   []RunInfo{{Attempt: 1, Consumer: "h/1/ab", Outcome: "fail"}, {Attempt: 2, Consumer: "h/1/ab", Outcome: "ok"}},
			Copies: copies("ran", "spare deleted", "spare deleted")},
			want: "ran 2 times (attempt 1 failed on consumer h/1/ab), last on consumer h/1/ab; 2 spare copies deleted"},
		{name: "DeadWithItsDeadLetter", info: JobInfo{State: StateDead, Attempts: 6,
			LastError: &JobError{Class: "timeout", Message: "context deadline exceeded"},
			Copies:    copies("dead letter", "extra dead deleted", "extra dead deleted")},
			want: "dead after 6 attempts (last error: timeout: context deadline exceeded); dead letter on " +
				"127.0.0.1:11300 job 17; 2 extra dead copies deleted"},
		{name: "DeadBeforeItsBury", info: JobInfo{State: StateDead, Attempts: 1,
			LastError: &JobError{Class: "skip", Message: strings.Repeat("x", 100)}},
			want: "dead after 1 attempt (last error: skip: " + strings.Repeat("x", 80) + "...); no dead letter recorded yet"},
		{name: "RevokedBeforeItRan", info: JobInfo{State: StateRevoked, Copies: copies("revoked", "revoked")},
			want: "revoked before it ran; 2 revoked copies deleted"},
		{name: "RevokedBetweenRetries", info: JobInfo{State: StateRevoked, Attempts: 2},
			want: "revoked between retries, after 2 attempts"},
		{name: "AbortedEnqueue", info: JobInfo{State: StateRevoked}, rec: claim.Record{Why: "abort"},
			want: "never ran: its enqueue missed the write quorum and was aborted"},
		{name: "HandedBackOnStop", info: JobInfo{State: StateRetrying, Attempts: 1, NextAttempt: at,
			Runs: []RunInfo{{Attempt: 1, Consumer: "h/1/ab", Outcome: "yield"}}},
			want: "retrying: attempt 1 was handed back unfinished by consumer h/1/ab; next attempt at 2026-03-01T10:00:00Z"},
		{name: "RetryingAfterSeveralFailures", info: JobInfo{State: StateRetrying, Attempts: 3, Failures: 3,
			NextAttempt: at, LastError: &JobError{Class: "panic", Message: "dq: handler panic: boom"}},
			want: "retrying: 3 of 3 attempts failed (last error: panic: dq: handler panic: boom); next attempt at " +
				"2026-03-01T10:00:00Z"},
		{name: "WaitingToRunAgainAfterAKick", info: JobInfo{State: StateWaiting, Attempts: 2, DueAt: at},
			want: "waiting, due at 2026-03-01T10:00:00Z, to run again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, verdict(&tc.info, tc.rec))
		})
	}
}

func TestInspectorRevokesAJobAndAuditsIt(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	in, err := NewInspector(c, WithActor("ops@desk"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	ctx := context.Background()
	id, err := p.Delay([]byte("never"), time.Hour)
	require.NoError(t, err)

	require.NoError(t, in.Revoke(ctx, id))
	info := jobOf(t, in, id)
	require.Equal(t, StateRevoked, info.State)
	require.Equal(t, "revoked before it ran", info.Verdict)
	log, err := in.AuditLog(ctx, 10)
	require.NoError(t, err)
	require.Len(t, log, 1)
	require.Equal(t, "ops@desk", log[0].Who)
	require.Equal(t, "revoke "+id, log[0].What)

	require.ErrorIs(t, in.Revoke(ctx, "bad id"), ErrBadID)
	log, err = in.AuditLog(ctx, 10)
	require.NoError(t, err)
	require.Len(t, log, 1, "a refused ID writes nothing")
}

func TestInspectorEnqueuesAJobThatRunsOnceAndAuditsIt(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	in := openInspector(t, c)
	ctx := context.Background()
	var runs sync.Map
	startConsumer(t, c, WithHandle(func(ctx context.Context, body []byte) error {
		j, _ := JobFromContext(ctx)
		n, _ := runs.LoadOrStore(j.ID, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return nil
	}))
	at := time.Now().Add(300 * time.Millisecond)
	id, err := in.Enqueue(ctx, []byte("by hand"), at, WithID("manual-1"))
	require.NoError(t, err)
	require.Equal(t, "manual-1", id)
	again, err := in.Enqueue(ctx, []byte("by hand"), at, WithID("manual-1"))
	require.NoError(t, err)
	require.Equal(t, id, again, "the same ID again is the same job")

	info := awaitJob(t, in, id, func(j JobInfo) bool { return j.State == StateDone }, "done")
	require.True(t, info.WithID)
	require.Equal(t, 1, info.Attempts)
	n, ok := runs.Load(id)
	require.True(t, ok)
	require.Equal(t, int64(1), n.(*atomic.Int64).Load(), "ran once")

	log, err := in.AuditLog(ctx, 10)
	require.NoError(t, err)
	require.Len(t, log, 2)
	for _, e := range log {
		require.Equal(t, "enqueue manual-1 at "+at.UTC().Format(time.RFC3339Nano), e.What)
		require.Equal(t, in.Actor(), e.Who)
	}
	_, err = in.Enqueue(ctx, []byte("x"), at, WithID("bad id"))
	require.ErrorIs(t, err, ErrBadID)
}

// TestInspectorShowsAJobsBodyFromALiveCopy: a dead job's body is read from
// its dead letter (the user's payload, not the envelope); a job with no
// copy met yet, or whose copies are all gone, has none.
func TestInspectorShowsAJobsBodyFromALiveCopy(t *testing.T) {
	t.Parallel()
	q := newDeadQueue(t)
	payload := "order 42 \x00\xff\xfe"
	ids := q.bury(t, payload)
	dead := jobOf(t, q.in, ids[0])
	require.Equal(t, StateDead, dead.State)
	require.Equal(t, []byte(payload), dead.Body)

	p := openProducer(t, q.c)
	later, err := p.Delay([]byte("later"), time.Hour)
	require.NoError(t, err)
	info := jobOf(t, q.in, later)
	require.False(t, info.Seen)
	require.Nil(t, info.Body, "no record names a copy of a job no consumer met")

	done, err := p.Delay([]byte("runs"), 0)
	require.NoError(t, err)
	awaitJob(t, q.in, done, func(j JobInfo) bool { return j.State == StateDone && j.Body == nil },
		"done, its copies gone and with them its body")
}
