package dq

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func newTestInspector(t *testing.T, c DqConf, opts ...InspectorOption) *Inspector {
	t.Helper()
	in, err := NewInspector(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	return in
}

func TestConsumersShowsALiveConsumerWithItsCountersUntilItStops(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 7
	c.SigningKeys = []string{"secret"}
	in := newTestInspector(t, c)
	l := newLedger()
	cs, err := NewConsumer(c, l.handler(nil))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() { cs.Stop(); <-done })

	p := newTestProducer(t, c)
	var ids []string
	for range 3 {
		id, err := p.Delay([]byte("x"), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.allDone(ids) }, "the jobs ran")

	ctx := context.Background()
	var got ConsumerInfo
	dqtest.Eventually(t, 10*time.Second, func() bool {
		list, err := in.Consumers(ctx)
		require.NoError(t, err)
		if len(list) != 1 {
			return false
		}
		got = list[0]
		return got.Outcomes["ok"] == 3
	}, "the registry shows the consumer with its three runs")
	host, _ := os.Hostname()
	require.Equal(t, host, got.Host)
	require.Equal(t, os.Getpid(), got.Pid)
	require.Equal(t, Version(), got.Version)
	require.Equal(t, c.claimTube(), got.Queue)
	require.Equal(t, 7, got.Workers)
	require.Regexp(t, `^.+/\d+/[0-9a-f]{6}$`, got.ID)
	require.WithinDuration(t, time.Now(), got.Seen, 10*time.Second)
	require.WithinDuration(t, time.Now(), got.Started, time.Minute)
	require.Less(t, got.ClockOffset.Abs(), time.Second)
	require.False(t, got.Paused)
	require.Zero(t, got.InFlight)
	require.Regexp(t, `^[0-9a-f]{8}$`, got.Config["Workers"])
	require.Contains(t, got.Config, "Redis")
	require.NotContains(t, got.Config, "SigningKeys", "secrets are left out")
	require.Len(t, got.Outcomes, 6)

	cs.Stop()
	<-done
	list, err := in.Consumers(ctx)
	require.NoError(t, err)
	require.Empty(t, list, "a stopped consumer leaves the registry at once")
}

func TestConfigDriftNamesTheFieldTwoConsumersDifferIn(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	in := newTestInspector(t, c)
	startConsumer(t, c, WithHandle(func(context.Context, []byte) error { return nil }))
	c2 := c
	c2.Workers = c.Workers + 1
	c2.Redis.Pass = "" // the same: a password is never digested
	startConsumer(t, c2, WithHandle(func(context.Context, []byte) error { return nil }))

	ctx := context.Background()
	var list []ConsumerInfo
	dqtest.Eventually(t, 10*time.Second, func() bool {
		var err error
		list, err = in.Consumers(ctx)
		require.NoError(t, err)
		return len(list) == 2
	}, "both consumers registered")
	require.Equal(t, []string{"Workers"}, ConfigDrift(list))
	require.Empty(t, ConfigDrift(list[:1]))
}

func TestConfigDriftComparesEveryFieldAnyConsumerHas(t *testing.T) {
	t.Parallel()
	a := ConsumerInfo{Config: map[string]string{"TTR": "aa", "Workers": "01"}}
	b := ConsumerInfo{Config: map[string]string{"TTR": "aa", "Workers": "02", "History": "03"}}
	require.Equal(t, []string{"History", "Workers"}, ConfigDrift([]ConsumerInfo{a, b}))
	require.Empty(t, ConfigDrift([]ConsumerInfo{a, a}))
	require.Empty(t, ConfigDrift(nil))
}

func TestConfigDigestsDifferOnlyForTheFieldThatDiffersAndLeaveSecretsOut(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c2 := c
	c2.TTR += time.Second
	c2.SigningKeys = []string{"other"}
	c2.Redis.Pass = "other"
	a, b := configDigests(c), configDigests(c2)
	require.NotContains(t, a, "SigningKeys")
	for f := range a {
		if f == "TTR" {
			require.NotEqual(t, a[f], b[f])
		} else {
			require.Equal(t, a[f], b[f], f)
		}
	}
}

// A pause holds due jobs on their nodes, also across a beanstalkd restart;
// resume runs each once.
func TestPauseStopsAConsumerRunningDueJobsAcrossANodeRestartAndResumeRunsEachOnce(t *testing.T) {
	env := dqtest.NewEnv(t, dqtest.EnvOptions{NodeOpts: []dqtest.Option{dqtest.WithBinlog()}})
	c := testConf(t, env)
	in := newTestInspector(t, c, WithActor("ann@ops"))
	l := newLedger()
	var ran atomic.Int32
	startConsumer(t, c, l.handler(func(context.Context, Job) error {
		ran.Add(1)
		return nil
	}))
	p := newTestProducer(t, c)
	ctx := context.Background()

	first, err := p.Delay([]byte("before"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(first) == 1 }, "runs before the pause")

	require.NoError(t, in.Pause(ctx))
	pi, err := in.Paused(ctx)
	require.NoError(t, err)
	require.True(t, pi.Paused)
	require.Equal(t, "ann@ops", pi.By)
	require.WithinDuration(t, time.Now(), pi.Since, 10*time.Second)
	dqtest.Eventually(t, 10*time.Second, func() bool {
		list, err := in.Consumers(ctx)
		require.NoError(t, err)
		return len(list) == 1 && list[0].Paused && !list[0].Seen.Before(pi.Since)
	}, "the consumer reports itself paused")

	var ids []string
	for range 5 {
		id, err := p.Delay([]byte("during"), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.False(t, dqtest.Await(2*time.Second, func() bool { return ran.Load() > 1 }),
		"a paused queue runs no job")
	require.NoError(t, env.Nodes[0].Restart())
	require.False(t, dqtest.Await(2*time.Second, func() bool { return ran.Load() > 1 }),
		"a node restart does not lift the pause")
	r, _, rs, _ := countJobs(t, c)
	require.Zero(t, rs, "a paused consumer holds no copy")
	require.Equal(t, 5*c.Replicas, r, "every copy waits ready on its node")

	require.NoError(t, in.Resume(ctx))
	dqtest.Eventually(t, 15*time.Second, func() bool { return l.allDone(ids) }, "resume runs the held jobs")
	awaitNoCopies(t, c, 10*time.Second, "every copy deleted")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range append(ids, first) {
		require.Equal(t, 1, l.starts[id], "job %s ran once", id)
	}
	pi, err = in.Paused(ctx)
	require.NoError(t, err)
	require.Equal(t, PauseInfo{}, pi)
}

func TestAConsumerStartedWhileTheQueueIsPausedRunsNothingUntilResumed(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	in := newTestInspector(t, c)
	ctx := context.Background()
	require.NoError(t, in.Pause(ctx))
	p := newTestProducer(t, c)
	id, err := p.Delay([]byte("x"), 0)
	require.NoError(t, err)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	dqtest.Eventually(t, 10*time.Second, func() bool {
		list, err := in.Consumers(ctx)
		require.NoError(t, err)
		return len(list) == 1 && list[0].Paused
	}, "the consumer reports itself paused")
	require.False(t, dqtest.Await(time.Second, func() bool { return l.doneCount(id) > 0 }), "nothing runs while paused")
	require.NoError(t, in.Resume(ctx))
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(id) == 1 }, "runs once resumed")
}

func TestAuditLogListsEveryActionWithWhoAndWhatNewestFirst(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	in := newTestInspector(t, c, WithActor("ann@ops"))
	ctx := context.Background()
	require.NoError(t, in.Pause(ctx))
	require.NoError(t, in.Resume(ctx))
	_, err := in.RetryDead(ctx, DeadSelect{IDs: []string{"x"}, DryRun: true}, nil)
	require.NoError(t, err)
	_, err = in.RetryDead(ctx, DeadSelect{IDs: []string{"nope"}}, nil)
	require.NoError(t, err)
	require.NoError(t, newTestInspector(t, c, WithActor("bob@ops")).Audit(ctx, "job revoke abc"))

	log, err := in.AuditLog(ctx, 10)
	require.NoError(t, err)
	require.Len(t, log, 4, "a dry run is not written")
	want := []struct{ who, what string }{
		{"bob@ops", "job revoke abc"},
		{"ann@ops", "dead retry 1 entries, ids nope"},
		{"ann@ops", "resume"},
		{"ann@ops", "pause"},
	}
	for i, w := range want {
		require.Equal(t, w.who, log[i].Who, i)
		require.Equal(t, w.what, log[i].What, i)
		require.WithinDuration(t, time.Now(), log[i].At, time.Minute)
		require.NotEmpty(t, log[i].ID)
	}
	last, err := in.AuditLog(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, log[:1], last)
}

func TestTheEndOfARedisOutageDoesNotLiftAQueuePauseNorTheReverse(t *testing.T) {
	t.Parallel()
	g := newGate(1, 10)
	g.setPaused(pauseQueue, true)
	g.setPaused(pauseRedis, true)
	g.setPaused(pauseRedis, false)
	require.True(t, g.isPaused(pauseQueue))
	require.False(t, g.isPaused(pauseRedis))
	g.mu.Lock()
	require.False(t, g.mayEnter(), "still paused for the queue")
	g.mu.Unlock()
	g.setPaused(pauseRedis, true)
	g.setPaused(pauseQueue, false)
	g.mu.Lock()
	require.False(t, g.mayEnter(), "still paused for Redis")
	g.mu.Unlock()
	g.setPaused(pauseRedis, false)
	g.mu.Lock()
	require.True(t, g.mayEnter())
	g.mu.Unlock()
}
