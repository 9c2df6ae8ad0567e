package dq

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// checkByName finds the check called name, failing t if Doctor gave none.
func checkByName(t testing.TB, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, checks)
	return Check{}
}

// enqueueAll enqueues a job per delay and waits until every copy of each
// has landed (an enqueue returns once MinWrites copies are in).
func enqueueAll(t testing.TB, c DqConf, delays ...time.Duration) {
	t.Helper()
	p, err := NewProducer(c)
	require.NoError(t, err)
	defer p.Close()
	for i, d := range delays {
		_, err := p.DelayCtx(context.Background(), []byte("job "+strconv.Itoa(i)), d)
		require.NoError(t, err)
	}
	want := len(delays) * min(c.Replicas, len(c.Beanstalks))
	dqtest.Eventually(t, 5*time.Second, func() bool { return countCopies(t, c) == want },
		"%d copies in the tube", want)
}

func TestInspectorStatsCountEachNodesCopiesByState(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	enqueueAll(t, c, 0, 0, time.Hour)

	// A held reservation on the first node, a buried copy on the second.
	held := dialNode(t, c.Beanstalks[0].Endpoint)
	_, _, err := beanstalk.NewTubeSet(held, c.Beanstalks[0].Tube).Reserve(time.Second)
	require.NoError(t, err)
	bc := dialNode(t, c.Beanstalks[1].Endpoint)
	id, _, err := beanstalk.NewTubeSet(bc, c.Beanstalks[1].Tube).Reserve(time.Second)
	require.NoError(t, err)
	require.NoError(t, bc.Bury(id, 1))

	in := newTestInspector(t, c)
	s, err := in.Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, c.Beanstalks[0].Tube, s.Queue)
	require.Len(t, s.Tubes, 3)
	want := []struct{ ready, delayed, reserved, buried int64 }{{1, 1, 1, 0}, {1, 1, 0, 1}, {2, 1, 0, 0}}
	for i, w := range want {
		ts := s.Tubes[i]
		require.Empty(t, ts.Err)
		require.Equal(t, c.Beanstalks[i].Endpoint, ts.Node, "config order")
		require.Equal(t, c.Beanstalks[i].Tube, ts.Tube)
		require.Equal(t, w.ready, ts.Ready, "node %d ready", i)
		require.Equal(t, w.delayed, ts.Delayed, "node %d delayed", i)
		require.Equal(t, w.reserved, ts.Reserved, "node %d reserved", i)
		require.Equal(t, w.buried, ts.Buried, "node %d buried", i)
	}
	require.Equal(t, TubeStats{Tube: s.Queue, Ready: 4, Delayed: 3, Reserved: 1, Buried: 1}, s.Total)
}

func TestInspectorReportsAKilledNodeAndCountsTheOthers(t *testing.T) {
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	enqueueAll(t, c, time.Hour)
	env.Nodes[2].Kill()
	dead := c.Beanstalks[2].Endpoint
	in := newTestInspector(t, c)
	ctx := context.Background()

	s, err := in.Stats(ctx)
	require.NoError(t, err, "a node down is part of the answer")
	require.Contains(t, s.Tubes[2].Err, dead)
	require.Zero(t, s.Tubes[2].Delayed)
	require.Empty(t, s.Tubes[0].Err)
	require.Equal(t, int64(2), s.Total.Delayed, "the nodes that answered")

	nodes, err := in.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 3)
	require.True(t, nodes[0].Up)
	require.False(t, nodes[2].Up)
	require.Contains(t, nodes[2].Err, dead)

	checks, err := in.Doctor(ctx)
	require.NoError(t, err)
	require.False(t, checkByName(t, checks, "node "+dead+" reachable").OK)
	require.True(t, checkByName(t, checks, "node "+c.Beanstalks[0].Endpoint+" reachable").OK)
	require.True(t, checkByName(t, checks, "min-writes").OK, "MinWrites 2 with 2 nodes up")

	env.Nodes[1].Kill()
	checks, err = in.Doctor(ctx)
	require.NoError(t, err)
	mw := checkByName(t, checks, "min-writes")
	require.False(t, mw.OK, "MinWrites 2 with 1 node up")
	require.Equal(t, "MinWrites 2, 1 of 3 nodes up", mw.Detail)
}

func TestInspectorStatsKeepTheNodeCountsWhenRedisIsDown(t *testing.T) {
	env := dqtest.NewEnv(t, dqtest.EnvOptions{Nodes: 1})
	c := testConf(t, env)
	enqueueAll(t, c, time.Hour)
	env.Redis.Kill()
	in := newTestInspector(t, c)
	ctx := context.Background()

	s, err := in.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), s.Total.Delayed)
	require.Len(t, s.Errors, 3, "%q", s.Errors)
	require.Contains(t, s.Errors[0], "pause: ")
	require.Contains(t, s.Errors[1], "consumers: ")
	require.Contains(t, s.Errors[2], "dead letters: ")

	checks, err := in.Doctor(ctx)
	require.NoError(t, err)
	r := checkByName(t, checks, "redis reachable")
	require.False(t, r.OK, "%+v", checks)
	require.Contains(t, r.Detail, env.Redis.Addr())
	require.True(t, checkByName(t, checks, "node "+c.Beanstalks[0].Endpoint+" reachable").OK)
}

func TestInspectorNodesTellEachNodesSettings(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	logged := dqtest.NewBeanstalkd(t, dqtest.WithBinlog(), dqtest.WithArgs("-z", "4096"))
	c.Beanstalks = append(c.Beanstalks[:1], Beanstalk{Endpoint: logged.Addr(), Tube: c.Beanstalks[0].Tube})
	lc := dialNode(t, logged.Addr())
	_, err := beanstalk.NewTube(lc, c.Beanstalks[1].Tube).Put([]byte("x"), 1, time.Hour, time.Minute)
	require.NoError(t, err, "a tube exists while it holds a job")
	require.NoError(t, beanstalk.NewTube(lc, c.Beanstalks[1].Tube).Pause(time.Hour))
	in := newTestInspector(t, c)

	nodes, err := in.Nodes(context.Background())
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	plain, lg := nodes[0], nodes[1]
	require.Equal(t, c.Beanstalks[0].Endpoint, plain.Endpoint)
	require.True(t, plain.Up)
	require.Empty(t, plain.Err)
	require.NotEmpty(t, plain.Version)
	require.False(t, plain.Binlog)
	require.Equal(t, 65535, plain.MaxJobSize)
	require.False(t, plain.TubePaused)
	require.Positive(t, plain.Pid)
	require.GreaterOrEqual(t, plain.Connections, int64(1))

	require.Equal(t, logged.Addr(), lg.Endpoint)
	require.True(t, lg.Up)
	require.True(t, lg.Binlog)
	require.Equal(t, 4096, lg.MaxJobSize)
	require.True(t, lg.TubePaused, "beanstalkd's pause-tube")
	require.NotEqual(t, plain.Pid, lg.Pid)
}

func TestDoctorFailsOnARedisWithoutAOFAndPassesWithIt(t *testing.T) {
	t.Parallel()
	nodes := []*dqtest.Server{
		dqtest.NewBeanstalkd(t, dqtest.WithBinlog()),
		dqtest.NewBeanstalkd(t, dqtest.WithBinlog()),
	}
	for _, tc := range []struct {
		name  string
		redis []dqtest.Option
		aof   bool
	}{
		{"without", nil, false},
		{"with", []dqtest.Option{dqtest.WithArgs("--appendonly", "yes")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConf(t, &dqtest.Env{Nodes: nodes, Redis: dqtest.NewRedis(t, tc.redis...)})
			c.Replicas = len(nodes)
			checks, err := newTestInspector(t, c).Doctor(context.Background())
			require.NoError(t, err)
			aof := checkByName(t, checks, "redis aof")
			require.Equal(t, tc.aof, aof.OK, "%+v", aof)
			for _, name := range []string{"redis reachable", "redis maxmemory-policy", "redis version", "replicas", "min-writes"} {
				require.True(t, checkByName(t, checks, name).OK, "%s: %+v", name, checkByName(t, checks, name))
			}
			for _, n := range nodes {
				for _, what := range []string{" reachable", " max-job-size", " binlog"} {
					require.True(t, checkByName(t, checks, "node "+n.Addr()+what).OK, "%s%s", n.Addr(), what)
				}
			}
			want := []string{}
			if !tc.aof {
				want = append(want, "redis aof")
			}
			require.ElementsMatch(t, want, failedChecks(checks), "%+v", checks)
		})
	}
}

// failedChecks names the checks that failed.
func failedChecks(checks []Check) []string {
	out := []string{}
	for _, c := range checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

func TestDoctorFailsANodeWhoseMaxJobSizeIsNotMaxJobSize(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	small := dqtest.NewBeanstalkd(t, dqtest.WithArgs("-z", "4096"))
	c.Beanstalks = append(c.Beanstalks[:1], Beanstalk{Endpoint: small.Addr(), Tube: c.Beanstalks[0].Tube})

	checks, err := newTestInspector(t, c).Doctor(context.Background())
	require.NoError(t, err)
	bad := checkByName(t, checks, "node "+small.Addr()+" max-job-size")
	require.False(t, bad.OK)
	require.Equal(t, "-z 4096, MaxJobSize 65535", bad.Detail)
	require.True(t, checkByName(t, checks, "node "+c.Beanstalks[0].Endpoint+" max-job-size").OK)

	c.MaxJobSize = 4096
	checks, err = newTestInspector(t, c).Doctor(context.Background())
	require.NoError(t, err)
	require.True(t, checkByName(t, checks, "node "+small.Addr()+" max-job-size").OK)
	require.False(t, checkByName(t, checks, "node "+c.Beanstalks[0].Endpoint+" max-job-size").OK)
}

func TestDoctorFailsReplicasAboveTheNodeCount(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Replicas = 5
	checks, err := newTestInspector(t, c).Doctor(context.Background())
	require.NoError(t, err)
	r := checkByName(t, checks, "replicas")
	require.False(t, r.OK)
	require.Equal(t, "Replicas 5, 3 nodes", r.Detail)

	c.Replicas = 3
	checks, err = newTestInspector(t, c).Doctor(context.Background())
	require.NoError(t, err)
	require.True(t, checkByName(t, checks, "replicas").OK)
}

func TestDoctorChecksTheConsumersClocksAndConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cs     []ConsumerInfo
		ok     bool
		detail string
	}{
		{"none", nil, true, "no consumer registered"},
		{"close", []ConsumerInfo{{ID: "a", ClockOffset: -900 * time.Millisecond, ClockUncertainty: time.Millisecond}}, true,
			"1 consumer within 1s ± 250ms of Redis"},
		{"offset", []ConsumerInfo{{ID: "a"}, {ID: "b", ClockOffset: 1500 * time.Millisecond}}, false,
			"beyond 1s ± 250ms: b offset 1.5s ± 0s"},
		{"uncertain", []ConsumerInfo{{ID: "a", ClockUncertainty: 300 * time.Millisecond}}, false,
			"beyond 1s ± 250ms: a offset 0s ± 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clocks := consumerChecks(tc.cs, nil)[0]
			require.Equal(t, Check{Name: "consumer clocks", OK: tc.ok, Detail: tc.detail}, clocks)
		})
	}
	agree := []ConsumerInfo{{ID: "a", Config: map[string]string{"TTR": "x", "Workers": "y"}}, {ID: "b", Config: map[string]string{"TTR": "x", "Workers": "y"}}}
	require.Equal(t, Check{Name: "consumer config", OK: true, Detail: "2 consumers agree"}, consumerChecks(agree, nil)[1])
	agree[1].Config["Workers"] = "z"
	require.Equal(t, Check{Name: "consumer config", Detail: "fields differing between consumers: Workers"}, consumerChecks(agree, nil)[1])

	got := consumerChecks(nil, errUnbuilt)
	require.False(t, got[0].OK)
	require.False(t, got[1].OK)
	require.Contains(t, got[1].Detail, errUnbuilt.Error())
}

func TestParseRedisVersion(t *testing.T) {
	t.Parallel()
	for v, want := range map[string][3]int{"7.0.15": {7, 0, 1}, "6.2": {6, 2, 1}, "255.255.255": {255, 255, 1}, "x": {0, 0, 0}, "": {0, 0, 0}} {
		maj, mnr, ok := parseVersion(v)
		require.Equal(t, want, [3]int{maj, mnr, map[bool]int{true: 1}[ok]}, v)
	}
}

func TestDoctorReadsAOFFromInfoWhereConfigIsRenamedAway(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Redis.Host = dqtest.NewRedis(t, dqtest.WithAOF(), dqtest.WithArgs("--rename-command", "CONFIG", "")).Addr()
	checks, err := newTestInspector(t, c).Doctor(context.Background())
	require.NoError(t, err)
	for _, name := range []string{"redis reachable", "redis aof", "redis maxmemory-policy", "redis version"} {
		require.True(t, checkByName(t, checks, name).OK, "%s: %+v", name, checkByName(t, checks, name))
	}
}

func TestDoctorFailsWhatItCannotReadWhereInfoAndConfigAreRenamedAway(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Redis.Host = dqtest.NewRedis(t, dqtest.WithAOF(),
		dqtest.WithArgs("--rename-command", "CONFIG", "", "--rename-command", "INFO", "")).Addr()
	checks, err := newTestInspector(t, c).Doctor(context.Background())
	require.NoError(t, err)
	require.True(t, checkByName(t, checks, "redis reachable").OK, "Redis answered, with errors")
	for _, name := range []string{"redis aof", "redis maxmemory-policy", "redis version"} {
		ch := checkByName(t, checks, name)
		require.False(t, ch.OK, "%s", name)
		require.True(t, strings.HasPrefix(ch.Detail, "unknown: "), "%s: %s", name, ch.Detail)
	}
	require.Contains(t, checkByName(t, checks, "redis aof").Detail, "unknown command")
}

func TestInspectorStatsShowTheConsumersThePauseAndTheDeadLetters(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	in := newTestInspector(t, c)
	ctx := context.Background()
	// Every copy in before the consumer starts: enqueueAll waits for all six,
	// which a running consumer would have buried or deleted some of already.
	enqueueAll(t, c, 0, 0)
	cs, err := NewConsumer(c, WithHandle(func(ctx context.Context, body []byte) error { return ErrSkipRetry }))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() { cs.Stop(); <-done })

	var s Stats
	dqtest.Eventually(t, 10*time.Second, func() bool {
		s, err = in.Stats(ctx)
		require.NoError(t, err)
		return s.DeadLetters == 2 && s.Total.Buried == 2 && s.Consumers == 1 && s.Outcomes["dead"] == 2
	}, "two dead letters, each one buried copy, and the consumer that buried them (last %+v)", &s)
	require.Empty(t, s.Errors)
	require.False(t, s.Paused)
	require.Zero(t, s.InFlight)

	require.NoError(t, in.Pause(ctx))
	s, err = in.Stats(ctx)
	require.NoError(t, err)
	require.True(t, s.Paused)

	checks, err := in.Doctor(ctx)
	require.NoError(t, err)
	clocks := checkByName(t, checks, "consumer clocks")
	require.True(t, clocks.OK, clocks.Detail)
	require.Equal(t, "1 consumer within 1s ± 250ms of Redis", clocks.Detail)
	config := checkByName(t, checks, "consumer config")
	require.True(t, config.OK, config.Detail)
	require.Equal(t, "1 consumer, nothing to compare", config.Detail)
}
