package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// jobs reads job get --json for ids.
func (b *bundle) jobs(t *testing.T, ids ...string) map[string]dq.JobInfo {
	t.Helper()
	var got []dq.JobInfo
	b.zerodq(t, append([]string{"job", "get", "--json"}, ids...)...).ok(t).decode(t, &got)
	out := make(map[string]dq.JobInfo, len(got))
	for _, j := range got {
		out[j.ID] = j
	}
	require.Len(t, out, len(ids))
	return out
}

func TestJobGetShowsAJobInEveryState(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	s := b.seed(t)
	tube := b.conf.Beanstalks[0].Tube
	var js map[string]dq.JobInfo
	dqtest.Eventually(t, 10*time.Second, func() bool {
		js = b.jobs(t, s.waiting, s.done, s.dead, s.retrying, s.revoked, s.running)
		return js[s.done].State == dq.StateDone && js[s.dead].State == dq.StateDead &&
			js[s.retrying].State == dq.StateRetrying
	}, "the jobs that ran have finished")

	w := js[s.waiting]
	require.Equal(t, tube, w.Queue)
	require.Equal(t, dq.StateWaiting, w.State)
	require.False(t, w.Seen, "no consumer met the waiting job yet")
	require.WithinDuration(t, time.Now().Add(time.Hour), w.DueAt, time.Minute)
	require.Zero(t, w.Attempts)

	d := js[s.done]
	require.True(t, d.Seen)
	require.Equal(t, 1, d.Attempts)
	require.Zero(t, d.Failures)
	require.NotEmpty(t, d.Owner)
	require.Len(t, d.Runs, 1)
	require.Equal(t, "ok", d.Runs[0].Outcome)
	require.Equal(t, d.Owner, d.Runs[0].Consumer)
	require.True(t, slices.ContainsFunc(d.Copies, func(c dq.CopyInfo) bool { return c.Fate == "ran" }),
		"a copy it ran from: %+v", d.Copies)
	require.NotEmpty(t, d.Verdict)
	require.False(t, d.WithID)
	// Once its copies are gone, a finished job stays a summary for History
	// (default 1h), instead of vanishing or living DedupeTTL (24h).
	dqtest.Eventually(t, 10*time.Second, func() bool {
		d = b.jobs(t, s.done)[s.done]
		return d.Expires.Before(time.Now().Add(b.conf.History + time.Minute))
	}, "the done job kept for History")
	require.Equal(t, time.Hour, b.conf.History)
	require.Equal(t, dq.StateDone, d.State)
	require.Equal(t, 1, d.Attempts)

	x := js[s.dead]
	require.NotNil(t, x.LastError)
	require.Equal(t, "skip", x.LastError.Class)
	require.Contains(t, x.LastError.Message, "bad input")

	r := js[s.retrying]
	require.Equal(t, 1, r.Failures)
	require.NotNil(t, r.LastError)
	require.Equal(t, "error", r.LastError.Class)
	require.Contains(t, r.LastError.Message, "upstream said 503")
	require.True(t, r.NextAttempt.After(time.Now().Add(30*time.Minute)), "next attempt in about an hour")

	require.Equal(t, dq.StateRevoked, js[s.revoked].State)
	run := js[s.running]
	require.Equal(t, dq.StateRunning, run.State)
	require.True(t, run.LeaseUntil.After(time.Now()))
	require.NotEmpty(t, run.Owner)

	text := b.zerodq(t, "job", "get", s.done, s.retrying).ok(t).stdout
	for _, want := range []string{"state", "done", "retrying", "attempts", "owner", "verdict", "copies:", "FATE",
		"last error", "upstream said 503", "next attempt"} {
		require.Contains(t, text, want)
	}
}

func TestJobGetNamesAnUnknownIDAndShowsTheOthers(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	p := b.producer(t)
	id, err := p.DelayCtx(context.Background(), []byte("x"), time.Hour)
	require.NoError(t, err)

	r := b.zerodq(t, "job", "get", "no-such-job", id, "--json")
	r.failed(t, exitFail, "no-such-job")
	var got []dq.JobInfo
	r.decode(t, &got)
	require.Len(t, got, 1)
	require.Equal(t, id, got[0].ID)
	b.zerodq(t, "job", "timeline", "no-such-job").failed(t, exitFail, "no-such-job")
}

func TestJobTimelineTellsTheAttemptsInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	s := b.seed(t)
	dqtest.Eventually(t, 10*time.Second, func() bool {
		return b.jobs(t, s.done)[s.done].State == dq.StateDone
	}, "done")
	r := b.zerodq(t, "job", "timeline", s.done).ok(t)
	require.Contains(t, r.stdout, "job "+s.done+" (done)")
	require.Contains(t, r.stdout, "due")
	require.Contains(t, r.stdout, "attempt 1 started on ")
	require.Contains(t, r.stdout, "attempt 1 ended: ok")
	require.Contains(t, r.stdout, "verdict: ")

	var j dq.JobInfo
	b.zerodq(t, "job", "timeline", s.done, "--json").ok(t).decode(t, &j)
	require.Equal(t, s.done, j.ID)
	require.Equal(t, dq.StateDone, j.State)
}

func TestJobRevokeWithYesRevokesAndNamesWhatItCouldNot(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	s := b.seed(t)

	var res []revokeResult
	b.zerodq(t, "job", "revoke", s.waiting, "--yes", "--json", "--actor", "ops@test").ok(t).decode(t, &res)
	require.Equal(t, []revokeResult{{ID: s.waiting, Revoked: true}}, res)
	require.Equal(t, dq.StateRevoked, b.jobs(t, s.waiting)[s.waiting].State)

	r := b.zerodq(t, "job", "revoke", s.running, "--yes")
	r.failed(t, exitFail, s.running)
	require.Equal(t, dq.StateRunning, b.jobs(t, s.running)[s.running].State, "a running job stays running")

	var log []dq.AuditEntry
	b.zerodq(t, "audit", "-n", "10", "--json").ok(t).decode(t, &log)
	require.True(t, slices.ContainsFunc(log, func(e dq.AuditEntry) bool {
		return e.Who == "ops@test" && containsAll(e.What, "revoke", s.waiting)
	}), "the revoke is audited: %+v", log)
}

func TestJobEnqueueWritesAJobThatRunsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var bodies []string
	done := make(chan string, 4)
	ran := b.startConsumer(t, func(_ context.Context, body string) error {
		done <- body
		return nil
	})
	file := filepath.Join(t.TempDir(), "body.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"order":42}`), 0o600))

	var res enqueueResult
	b.zerodq(t, "job", "enqueue", "--delay", "0s", "--body", "@"+file, "--json").ok(t).decode(t, &res)
	require.NotEmpty(t, res.ID)
	require.WithinDuration(t, time.Now(), res.Due, 5*time.Second)
	dqtest.Eventually(t, 10*time.Second, func() bool { return ran.of(res.ID) == 1 }, "the enqueued job ran")
	bodies = append(bodies, <-done)
	require.Equal(t, []string{`{"order":42}`}, bodies)

	// RFC3339 drops the fraction of a second: 2 s ahead stays at least 1 s
	// ahead, where 1 s ahead could be a millisecond, past by the time the
	// command parses it.
	at := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	for range 2 {
		r := b.zerodq(t, "job", "enqueue", "--at", at, "--id", "report-1", "--body", "text body").ok(t)
		require.Contains(t, r.stdout, "enqueued report-1")
	}
	dqtest.Eventually(t, 10*time.Second, func() bool { return ran.of("report-1") == 1 }, "the job with an ID ran")
	require.Equal(t, "text body", <-done)
	j := b.jobs(t, "report-1")["report-1"]
	require.True(t, j.WithID)
	require.Equal(t, 1, j.Attempts, "enqueued twice with one ID, it ran once")
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// `--delay 0s` means due now, as Producer.Delay(body, 0) does, not a second
// later.
func TestJobEnqueueWithAZeroDelayIsDueNow(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	before := time.Now()
	var res enqueueResult
	b.zerodq(t, "job", "enqueue", "--delay", "0s", "--body", "now", "--json").ok(t).decode(t, &res)
	j := b.jobs(t, res.ID)[res.ID]
	require.WithinDuration(t, before, j.DueAt, 500*time.Millisecond, "due %v, enqueued at %v", j.DueAt, before)
	require.WithinDuration(t, j.DueAt, res.Due, 500*time.Millisecond, "the due time printed")
}
