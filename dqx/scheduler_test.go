package dqx

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// everySecond is a fast-moving config: the window holds about three fires
// and is topped up four times a second.
func everySecond(entries ...CronEntry) CronConf {
	return CronConf{Entries: entries, Lookahead: time.Second, Refresh: 250 * time.Millisecond}
}

func TestThreeSchedulerReplicasRunEachFireOnce(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(CronEntry{Name: "tick", Spec: "@every 1s"})
	started := time.Now()
	for range 3 {
		startScheduler(t, c, cc)
	}

	from := awaitFirstFire(t, &log, "tick", started)
	to := from.Add(10 * time.Second)
	dqtest.Eventually(t, 15*time.Second, func() bool { return log.ran("tick", to) }, "fire at %v", to)
	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	requireEverySecondOnce(t, runs, "tick", from, to)
	for _, r := range runs {
		require.Equal(t, r.at, r.due, "a fire in the window is due at its fire time")
		require.False(t, r.started.Before(r.at), "fire %v started early", r.at)
	}
}

func TestKilledSchedulerReplicaCostsNoFire(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(CronEntry{Name: "tick", Spec: "@every 1s"})
	started := time.Now()
	var children []*exec.Cmd
	for range 3 {
		children = append(children, startChild(t, c, cc))
	}

	from := awaitFirstFire(t, &log, "tick", started)
	to := from.Add(10 * time.Second)
	halfway := from.Add(5 * time.Second)
	dqtest.Eventually(t, 10*time.Second, func() bool { return log.ran("tick", halfway) }, "fire at %v", halfway)
	require.NoError(t, children[0].Process.Kill())

	dqtest.Eventually(t, 10*time.Second, func() bool { return log.ran("tick", to) }, "fire at %v", to)
	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	requireEverySecondOnce(t, runs, "tick", from, to)
}

func TestMissedFiresWhileEveryReplicaWasDownFollowThePolicy(t *testing.T) {
	t.Parallel()
	for _, policy := range []MissedPolicy{MissedSkip, MissedRunOnce} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			c := sharedConf(t)
			var log fireLog
			startConsumer(t, c, log.handler())
			cc := everySecond(CronEntry{Name: "tick", Spec: "@every 1s", Missed: policy})
			started := time.Now()
			a, b := startScheduler(t, c, cc), startScheduler(t, c, cc)
			first := awaitFirstFire(t, &log, "tick", started)
			dqtest.Eventually(t, 5*time.Second, func() bool { return log.ran("tick", first.Add(time.Second)) },
				"two fires before the stop")
			a.stop()
			b.stop()
			stopped := time.Now()
			last := stateLast(t, c, a.Scheduler, "tick")

			// The outage itself: every replica down for 5s, which also
			// reaches well past the last fire the window had written.
			resume := stopped.Add(5 * time.Second)
			require.True(t, resume.After(last.Add(2*time.Second)), "last written fire %v", last)
			<-time.After(time.Until(resume))

			startScheduler(t, c, cc)
			startScheduler(t, c, cc)
			dqtest.Eventually(t, 5*time.Second, func() bool { return log.ran("tick", resume.Add(2*time.Second)) },
				"fires after the restart")
			runs := log.snapshot()
			requireNoFireTwice(t, runs)
			requireEverySecondOnce(t, runs, "tick", first, last.Add(time.Second))

			var inGap []fireRun // fires after the last written one and before the restart
			var firstAfter time.Time
			for _, r := range runs {
				switch {
				case !r.at.After(last):
				case r.at.Before(resume):
					inGap = append(inGap, r)
				case firstAfter.IsZero():
					firstAfter = r.at
				}
			}
			require.False(t, firstAfter.IsZero())
			if policy == MissedSkip {
				require.Empty(t, inGap, "skipped fires must not run")
				return
			}
			require.Len(t, inGap, 1, "one run for all the missed fires")
			require.Equal(t, firstAfter.Add(-time.Second), inGap[0].at, "the latest missed fire runs")
			require.True(t, inGap[0].at.After(last.Add(time.Second)), "more than one fire was missed")
			require.False(t, inGap[0].due.Before(resume), "the missed fire runs once a scheduler is back")
		})
	}
}

func TestChangedAndRemovedEntriesHaveTheirWrittenFiresRevokedAtRestart(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	v1 := CronConf{Lookahead: 30 * time.Second, Refresh: 5 * time.Second, Entries: []CronEntry{
		{Name: "a", Spec: "@every 1s", Body: "v1"},
		{Name: "b", Spec: "@every 1s", Body: "b"},
	}}
	started := time.Now()
	old := startScheduler(t, c, v1)
	dqtest.Eventually(t, 5*time.Second, func() bool { return log.ran("a", started) && log.ran("b", started) },
		"runs of the first config")
	old.stop()
	oldTags := []string{old.entries[0].tag, old.entries[1].tag}
	require.NotEmpty(t, stateFires(t, c, old.Scheduler), "the window was written ahead")

	v2 := v1
	v2.Entries = []CronEntry{{Name: "a", Spec: "@every 1s", Body: "v2"}}
	s := startScheduler(t, c, v2)
	dqtest.Eventually(t, 5*time.Second, func() bool {
		for _, id := range stateFires(t, c, s.Scheduler) {
			if strings.HasPrefix(id, oldTags[0]+"-") || strings.HasPrefix(id, oldTags[1]+"-") {
				return false
			}
		}
		return true
	}, "old fires revoked and forgotten")
	revokedAt := time.Now()

	until := revokedAt.Add(3 * time.Second)
	dqtest.Eventually(t, 6*time.Second, func() bool { return log.ran("a", until) }, "fire at %v", until)
	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	requireEverySecondOnce(t, runs, "a", revokedAt.Truncate(time.Second).Add(time.Second), until)
	for _, r := range runs {
		if r.at.After(revokedAt) {
			require.Equal(t, "a", r.entry, "removed entry ran after the restart: %+v", r)
			require.Equal(t, "v2", r.body, "old version ran after the restart: %+v", r)
		}
	}
}

func TestOlderConfigStopsWritingWhenANewerStartsAndTakesOverWhenItStops(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	v1 := everySecond(CronEntry{Name: "a", Spec: "@every 1s", Body: "v1"})
	v2 := everySecond(CronEntry{Name: "a", Spec: "@every 1s", Body: "v2"})

	started := time.Now()
	startScheduler(t, c, v1) // an old replica, still running during a rolling deploy
	dqtest.Eventually(t, 5*time.Second, func() bool { return log.ran("a", started) }, "v1 runs")
	newer := startScheduler(t, c, v2)
	switched := time.Now()
	dqtest.Eventually(t, 5*time.Second, func() bool { return log.ran("a", switched.Add(3*time.Second)) },
		"v2 runs")
	newer.stop()
	stopped := time.Now()
	dqtest.Eventually(t, 6*time.Second, func() bool { return log.ran("a", stopped.Add(3*time.Second)) },
		"runs after the newer config stopped")

	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	// The newer config owns the schedule from its first fire (how soon after
	// its start that is depends on the machine's load) until it stops.
	var owned time.Time
	for _, r := range runs {
		if r.body == "v2" {
			owned = r.at
			break
		}
	}
	require.False(t, owned.IsZero(), "v2 never ran")
	require.WithinDuration(t, switched, owned, 5*time.Second, "v2 takes over soon after it starts")
	var bodies []string
	for _, r := range runs {
		if len(bodies) == 0 || bodies[len(bodies)-1] != r.body {
			bodies = append(bodies, r.body)
		}
		if !r.at.Before(owned) && r.at.Before(stopped) {
			require.Equal(t, "v2", r.body, "the newer config owns the schedule: %+v", r)
		}
	}
	require.Equal(t, []string{"v1", "v2", "v1"}, bodies, "v1 takes over once v2 is gone")
	requireEverySecondOnce(t, runs, "a", runs[0].at, stopped.Add(3*time.Second))
}

func TestSchedulerWritesFiresAtTheWallClockInstantsOfTheirSpecs(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	clock := &fixedClock{now: utc(t, "2026-03-13T17:59:58Z")} // 01:59:58 in Shanghai
	p := &fakeProducer{}
	cc := CronConf{Entries: []CronEntry{
		{Name: "shanghai", Spec: "0 0 2 * * *", TimeZone: "Asia/Shanghai", Body: "sh"},
		{Name: "seconds", Spec: "*/15 * * * * *", Body: "sec"},
		{Name: "newyork", Spec: "CRON_TZ=America/New_York 30 9 * * *", Body: "ny"},
	}}
	s, err := NewScheduler(c, cc, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s.Stop()
	require.NoError(t, s.topUp(context.Background()))

	calls := p.take()
	require.Equal(t, []time.Time{utc(t, "2026-03-13T18:00:00Z"), utc(t, "2026-03-14T18:00:00Z"),
		utc(t, "2026-03-15T18:00:00Z")}, ats(calls, "sh"))
	require.Equal(t, []time.Time{utc(t, "2026-03-13T18:00:00Z"), utc(t, "2026-03-13T18:00:15Z"),
		utc(t, "2026-03-13T18:00:30Z"), utc(t, "2026-03-13T18:00:45Z")}, ats(calls, "sec"))
	require.Equal(t, []time.Time{utc(t, "2026-03-14T13:30:00Z"), utc(t, "2026-03-15T13:30:00Z"),
		utc(t, "2026-03-16T13:30:00Z")}, ats(calls, "ny"), "09:30 EDT")

	// The fire IDs recorded are those every replica derives.
	ids := stateFires(t, c, s)
	require.NotEmpty(t, fireIDAt(ids, s.entries[0].tag, utc(t, "2026-03-13T18:00:00Z")))
	require.NotEmpty(t, fireIDAt(ids, s.entries[1].tag, utc(t, "2026-03-13T18:00:45Z")))
}

func TestMissedFirePolicyOnAFixedClock(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	t0 := utc(t, "2026-03-14T02:00:00Z")
	cc := CronConf{Entries: []CronEntry{
		{Name: "skip", Spec: "@every 10s", Body: "skip"},
		{Name: "once", Spec: "@every 10s", Body: "once", Missed: MissedRunOnce},
	}}
	clock := &fixedClock{now: t0}
	p := &fakeProducer{}
	s, err := NewScheduler(c, cc, WithClock(ClockFunc(clock.Now)), WithProducer(p))
	require.NoError(t, err)
	defer s.Stop()
	require.NoError(t, s.topUp(context.Background()))
	calls := p.take()
	for _, c := range calls {
		require.True(t, c.isAt, "a new entry has no missed fire: %+v", c)
	}
	require.Len(t, ats(calls, "once"), 6, "a minute of fires")

	// Every replica down for an hour.
	clock.set(t0.Add(time.Hour + 5*time.Second))
	s2, err := NewScheduler(c, cc, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s2.Stop()
	require.NoError(t, s2.topUp(context.Background()))
	calls = p.take()
	var missed []call
	for _, c := range calls {
		if !c.isAt {
			missed = append(missed, c)
		}
	}
	require.Equal(t, []call{{body: "once"}}, missed, "one run, at once, for the missed hour")
	require.Equal(t, t0.Add(time.Hour+10*time.Second), ats(calls, "skip")[0], "skip resumes with the next fire")
	require.NotEmpty(t, fireIDAt(stateFires(t, c, s2), s2.entries[1].tag, t0.Add(time.Hour)), "the latest missed fire")

	// A second replica restarting right after finds nothing missed.
	s3, err := NewScheduler(c, cc, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s3.Stop()
	require.NoError(t, s3.topUp(context.Background()))
	for _, c := range p.take() {
		require.True(t, c.isAt, "missed fire written twice: %+v", c)
	}
}

func TestSchedulerStopEndsItsGoroutinesAndIsIdempotent(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	c := sharedConf(t)
	s := startScheduler(t, c, everySecond(CronEntry{Name: "tick", Spec: "@every 1s"}))
	dqtest.Eventually(t, 5*time.Second, func() bool { return len(stateFires(t, c, s.Scheduler)) > 0 },
		"first top-up")
	s.stop()
	s.Stop()
	s.Start() // after Stop: returns at once
}

func TestNewSchedulerRejectsBadConfigs(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	_, err := NewScheduler(c, CronConf{Entries: []CronEntry{{Name: "x", Spec: "@every 1ms"}}})
	require.ErrorIs(t, err, ErrBadCron)
	bad := c
	bad.Beanstalks = nil
	_, err = NewScheduler(bad, CronConf{})
	require.ErrorIs(t, err, dq.ErrBadConfig)
	var ce *dq.ConfigError
	require.True(t, errors.As(err, &ce))
}

func TestTakeoverRevokesOnlyTheStaleFiresNotYetDue(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	t0 := utc(t, "2026-03-14T02:00:00Z")
	clock := &fixedClock{now: t0}
	p := &fakeProducer{}
	v1 := CronConf{Entries: []CronEntry{{Name: "a", Spec: "@every 10s", Body: "v1"}, {Name: "gone", Spec: "@every 10s"}}}
	s1, err := NewScheduler(c, v1, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s1.Stop()
	require.NoError(t, s1.topUp(context.Background()))
	require.Len(t, ats(p.take(), "v1"), 6)
	written := stateFires(t, c, s1)

	v2 := CronConf{Entries: []CronEntry{{Name: "a", Spec: "@every 10s", Body: "v2"}}}
	clock.set(t0.Add(25 * time.Second))
	s2, err := NewScheduler(c, v2, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s2.Stop()
	require.NoError(t, s2.topUp(context.Background()))

	var want []string
	for at := t0.Add(30 * time.Second); at.Before(t0.Add(time.Minute)); at = at.Add(10 * time.Second) {
		want = append(want, fireIDAt(written, s1.entries[0].tag, at), fireIDAt(written, s1.entries[1].tag, at))
	}
	p.mu.Lock()
	revoked := p.revokes
	p.mu.Unlock()
	require.ElementsMatch(t, want, revoked, "fires due before the takeover are left to run")
	require.Equal(t, t0.Add(30*time.Second), ats(p.take(), "v2")[0])
	for _, id := range stateFires(t, c, s2) {
		require.Equal(t, s2.entries[0].tag, fireTag(id), "stale fire %s still tracked", id)
	}
}

// TestFiresThatCouldNotBeWrittenRunOnceTheNodesAreBack freezes every node for
// longer than the window reaches: the fires recorded meanwhile could not be
// written and came due unwritten. They run, late and once, when the nodes are
// back.
func TestFiresThatCouldNotBeWrittenRunOnceTheNodesAreBack(t *testing.T) {
	t.Parallel() // the servers it freezes are its own
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(CronEntry{Name: "tick", Spec: "@every 1s"})
	started := time.Now()
	startScheduler(t, c, cc)
	from := awaitFirstFire(t, &log, "tick", started)

	for _, n := range env.Nodes {
		require.NoError(t, n.Pause())
	}
	paused := time.Now()
	// Well past the fires written before the freeze (the window holds
	// three), so that some were recorded while no write could succeed.
	<-time.After(6 * time.Second)
	for _, n := range env.Nodes {
		require.NoError(t, n.Resume())
	}
	resumed := time.Now()

	to := resumed.Add(3 * time.Second)
	dqtest.Eventually(t, 15*time.Second, func() bool { return log.ran("tick", to) }, "fire at %v", to)
	// The fires that came due while the nodes were frozen were written
	// late, by a later round: wait for those that may still be on their way.
	dqtest.Eventually(t, 5*time.Second, func() bool {
		runs := log.snapshot()
		for at := from; at.Before(to); at = at.Add(time.Second) {
			if count(runs, "tick", at) == 0 {
				return false
			}
		}
		return true
	}, "every fire from %v to %v ran", from, to)
	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	requireEverySecondOnce(t, runs, "tick", from, to)
	require.True(t, paused.Add(4*time.Second).Before(resumed), "the freeze outlasted the window")
}

// failingProducer refuses every enqueue, as when no node can be reached.
type failingProducer struct{ fakeProducer }

func (p *failingProducer) AtCtx(context.Context, []byte, time.Time, ...dq.JobOption) (string, error) {
	return "", dq.ErrQuorum
}

func (p *failingProducer) DelayCtx(context.Context, []byte, time.Duration, ...dq.JobOption) (string, error) {
	return "", dq.ErrQuorum
}

func TestFiresAnOutgoingConfigNeverWroteRunUnderTheNewOne(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	t0 := utc(t, "2026-03-14T02:00:00Z")
	clock := &fixedClock{now: t0}
	v1 := CronConf{Entries: []CronEntry{{Name: "a", Spec: "@every 10s", Body: "v1"}}}
	s1, err := NewScheduler(c, v1, WithClock(clock), WithProducer(&failingProducer{}))
	require.NoError(t, err)
	defer s1.Stop()
	require.ErrorIs(t, s1.topUp(context.Background()), dq.ErrQuorum)
	recorded := stateFires(t, c, s1)
	require.Len(t, recorded, 6, "a minute of fires recorded, none written")

	// The replicas of v1 die; v2 takes over after two of the fires came due.
	clock.set(t0.Add(15 * time.Second))
	p := &fakeProducer{}
	s2, err := NewScheduler(c, CronConf{Entries: []CronEntry{{Name: "a", Spec: "@every 10s", Body: "v2"}}},
		WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s2.Stop()
	require.NoError(t, s2.topUp(context.Background()))

	p.mu.Lock()
	revoked := p.revokes
	p.mu.Unlock()
	require.ElementsMatch(t, recorded, revoked, "every unwritten fire of v1 is revoked, due or not")
	calls := p.take()
	var late []call
	for _, c := range calls {
		if !c.isAt {
			late = append(late, c)
		}
	}
	require.Equal(t, []call{{body: "v2"}, {body: "v2"}}, late, "the two due ticks run at once, under v2")
	require.Equal(t, t0.Add(20*time.Second), ats(calls, "v2")[0])
	require.NotEmpty(t, fireIDAt(stateFires(t, c, s2), s2.entries[0].tag, t0), "the tick at t0 has an ID of v2")
}
