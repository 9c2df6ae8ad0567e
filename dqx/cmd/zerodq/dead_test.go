package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// deadLetters reads dead ls --json with extra flags.
func (b *bundle) deadLetters(t *testing.T, flags ...string) []dq.DeadLetter {
	t.Helper()
	var dead []dq.DeadLetter
	b.zerodq(t, append([]string{"dead", "ls", "--json"}, flags...)...).ok(t).decode(t, &dead)
	return dead
}

// awaitDead waits for n dead letters in the index and as many copies
// buried (the index entry is written before the bury).
func (b *bundle) awaitDead(t *testing.T, n int) []dq.DeadLetter {
	t.Helper()
	var dead []dq.DeadLetter
	dqtest.Eventually(t, 10*time.Second, func() bool {
		var st dq.Stats
		b.zerodq(t, "stats", "--json").ok(t).decode(t, &st)
		dead = b.deadLetters(t)
		return len(dead) == n && st.Total.Buried == int64(n)
	}, "%d dead letters", n)
	return dead
}

func TestDeadLsListsTheDeadLetterWithItsError(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	s := b.seed(t)
	dead := b.awaitDead(t, 1)
	d := dead[0]
	require.Equal(t, s.dead, d.ID)
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, "skip", d.Error.Class)
	require.Contains(t, d.Error.Message, "bad input")
	require.WithinDuration(t, time.Now(), d.At, time.Minute)
	require.True(t, slices.ContainsFunc(b.conf.Beanstalks, func(n dq.Beanstalk) bool { return n.Endpoint == d.Node }),
		"the copy's node %s is a node of the queue", d.Node)
	require.Positive(t, d.JobNum)

	require.Len(t, b.deadLetters(t, "--grep", "bad input"), 1)
	require.Empty(t, b.deadLetters(t, "--grep", "no such text"))
	require.Empty(t, b.deadLetters(t, "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	require.Len(t, b.deadLetters(t, "--since", "1h", "--limit", "1"), 1)

	r := b.zerodq(t, "dead", "ls").ok(t)
	for _, col := range []string{"ID", "BURIED", "ATTEMPTS", "CLASS", "COPY", "ERROR", s.dead, "1 dead letter(s)"} {
		require.Contains(t, r.stdout, col)
	}

	r = b.zerodq(t, "dead", "export", "--grep", "bad input").ok(t)
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	var lines []dq.DeadLetter
	for sc.Scan() {
		var dl dq.DeadLetter
		require.NoError(t, json.Unmarshal(sc.Bytes(), &dl))
		lines = append(lines, dl)
	}
	require.Len(t, lines, 1)
	require.Equal(t, s.dead, lines[0].ID)
	require.Contains(t, r.stderr, "exported 1 dead letter(s)")
}

func TestDeadRetryRunsTheJobOnceMoreWithAHigherAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	s := b.seed(t)
	b.awaitDead(t, 1)

	var res dq.BulkResult
	b.zerodq(t, "dead", "retry", "--all", "--dry-run", "--json").ok(t).decode(t, &res)
	require.Equal(t, 1, res.Matched)
	require.Len(t, b.deadLetters(t), 1, "a dry run changes nothing")
	require.Equal(t, 1, s.runs.of(s.dead))

	s.heal.Store(true)
	res = dq.BulkResult{}
	r := b.zerodq(t, "dead", "retry", s.dead, "--yes", "--json", "--progress")
	r.ok(t).decode(t, &res)
	require.Equal(t, dq.BulkResult{Matched: 1, Done: 1}, res)
	dqtest.Eventually(t, 10*time.Second, func() bool {
		return b.jobs(t, s.dead)[s.dead].State == dq.StateDone
	}, "the retried job is done")
	require.Equal(t, 2, s.runs.of(s.dead), "a retried dead letter runs once more")
	j := b.jobs(t, s.dead)[s.dead]
	require.Equal(t, 2, j.Attempts, "with a higher attempt")
	require.Empty(t, b.deadLetters(t))
	require.Contains(t, r.stderr, "retry: 1/1", "--progress")
}

func TestDeadDeleteAndReconcileEmptyTheIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.startConsumer(t, func(context.Context, string) error {
		return fmt.Errorf("poison: %w", dq.ErrSkipRetry)
	})
	p := b.producer(t)
	for i := range 3 {
		_, err := p.DelayCtx(context.Background(), []byte(fmt.Sprint("poison ", i)), 0)
		require.NoError(t, err)
	}
	b.awaitDead(t, 3)
	// Let the jobs' other copies go first: an extra copy may be buried for a
	// moment before it is told to go.
	dqtest.Eventually(t, 10*time.Second, func() bool {
		var st dq.Stats
		b.zerodq(t, "stats", "--json").ok(t).decode(t, &st)
		return st.Total.Buried == 3 && st.Total.Ready+st.Total.Delayed+st.Total.Reserved == 0
	}, "three dead letters and no other copy")

	r := b.zerodq(t, "dead", "delete", "--all")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "would delete 3 dead letter(s)")
	require.Len(t, b.deadLetters(t), 3)

	var res dq.BulkResult
	b.zerodq(t, "dead", "delete", "--grep", "poison", "--yes", "--json").ok(t).decode(t, &res)
	require.Equal(t, 3, res.Matched)
	require.Equal(t, 3, res.Done)
	require.Empty(t, b.deadLetters(t))
	var st dq.Stats
	b.zerodq(t, "stats", "--json").ok(t).decode(t, &st)
	require.Zero(t, st.Total.Buried, "the buried copies are gone")

	res = dq.BulkResult{}
	b.zerodq(t, "dead", "reconcile", "--dry-run", "--json").ok(t).decode(t, &res)
	require.Zero(t, res.Done, "nothing to drop")
	r = b.zerodq(t, "dead", "reconcile")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "would drop 0 of")
	b.zerodq(t, "dead", "reconcile", "--yes").ok(t)
}

func TestConsumersShowTheRegistryAndDrift(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.startConsumer(t, func(context.Context, string) error { return nil })
	var v consumersView
	dqtest.Eventually(t, 10*time.Second, func() bool {
		v = consumersView{}
		b.zerodq(t, "consumers", "--json").ok(t).decode(t, &v)
		return len(v.Consumers) == 1
	}, "one consumer registered")
	c := v.Consumers[0]
	require.Equal(t, os.Getpid(), c.Pid)
	require.NotEmpty(t, c.Host)
	require.Equal(t, b.conf.Beanstalks[0].Tube, c.Queue)
	require.Equal(t, 16, c.Workers)
	require.NotEmpty(t, c.Config)
	require.Empty(t, v.Drift)
	r := b.zerodq(t, "consumers").ok(t)
	require.Contains(t, r.stdout, "config: all agree")
	for _, col := range []string{"ID", "HOST", "PID", "WORKERS", "IN-FLIGHT", "HELD", "CLOCK"} {
		require.Contains(t, r.stdout, col)
	}

	other := *b
	other.conf.Workers = 4
	other.startConsumer(t, func(context.Context, string) error { return nil })
	dqtest.Eventually(t, 10*time.Second, func() bool {
		v = consumersView{}
		b.zerodq(t, "consumers", "--json").ok(t).decode(t, &v)
		return len(v.Consumers) == 2
	}, "two consumers registered")
	require.Equal(t, []string{"Workers"}, v.Drift)
	require.Contains(t, b.zerodq(t, "consumers").ok(t).stdout, "config drift: Workers")
}

func TestTubePauseHoldsConsumersUntilResumeAndIsAudited(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var pi dq.PauseInfo
	b.zerodq(t, "tube", "pause", "--yes", "--json", "--actor", "ops@test").ok(t).decode(t, &pi)
	require.True(t, pi.Paused)
	require.Equal(t, "ops@test", pi.By)
	require.WithinDuration(t, time.Now(), pi.Since, time.Minute)

	// A consumer started while the queue is paused reads the pause before
	// it reserves anything.
	var ran atomic.Int32
	b.startConsumer(t, func(context.Context, string) error {
		ran.Add(1)
		return nil
	})
	dqtest.Eventually(t, 10*time.Second, func() bool {
		var v consumersView
		b.zerodq(t, "consumers", "--json").ok(t).decode(t, &v)
		return len(v.Consumers) == 1 && v.Consumers[0].Paused
	}, "the consumer registered, paused")
	id, err := b.producer(t).DelayCtx(context.Background(), []byte("held"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool {
		var st dq.Stats
		b.zerodq(t, "stats", "--json").ok(t).decode(t, &st)
		// A paused consumer may reserve a copy; it hands it back unclaimed.
		return st.Paused && st.Total.Ready+st.Total.Reserved >= 2
	}, "the job's copies wait in the tube")
	require.Zero(t, ran.Load(), "nothing runs while paused")
	require.Contains(t, b.zerodq(t, "stats").ok(t).stdout, "paused yes")

	r := b.zerodq(t, "tube", "resume", "--actor", "ops@test").ok(t)
	require.Contains(t, r.stdout, "running (not paused)")
	dqtest.Eventually(t, 10*time.Second, func() bool { return ran.Load() == 1 }, "the job %s runs after resume", id)

	var log []dq.AuditEntry
	b.zerodq(t, "audit", "--json").ok(t).decode(t, &log)
	require.GreaterOrEqual(t, len(log), 2)
	require.Equal(t, "ops@test", log[0].Who)
	require.Contains(t, log[0].What, "resume", "newest first")
	require.Contains(t, log[1].What, "pause")
	require.WithinDuration(t, time.Now(), log[0].At, time.Minute)
	text := b.zerodq(t, "audit", "-n", "1").ok(t).stdout
	require.Contains(t, text, "WHO")
	require.Contains(t, text, "ops@test")
	require.Len(t, strings.Split(strings.TrimSpace(text), "\n"), 2, "-n 1: a header and the newest entry")
}
