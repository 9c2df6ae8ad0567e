package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestStatsCountsCopiesPerNodeOfASeededQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.seed(t)
	tube := b.conf.Beanstalks[0].Tube

	var st dq.Stats
	dqtest.Eventually(t, 10*time.Second, func() bool {
		st = dq.Stats{}
		b.zerodq(t, "stats", "--json").ok(t).decode(t, &st)
		return st.Total.Buried == 1 && st.DeadLetters == 1 && st.InFlight == 1
	}, "one dead letter and one job running")
	require.Equal(t, tube, st.Queue)
	require.Len(t, st.Tubes, 3)
	for i, ts := range st.Tubes {
		require.Equal(t, b.conf.Beanstalks[i].Endpoint, ts.Node)
		require.Equal(t, tube, ts.Tube)
		require.Empty(t, ts.Err)
	}
	// The waiting and the revoked job have every copy delayed, the retrying
	// one its copies released for an hour.
	require.GreaterOrEqual(t, st.Total.Delayed, int64(6))
	require.GreaterOrEqual(t, st.Total.Reserved, int64(1), "the running job's copy")
	require.Equal(t, 1, st.Consumers)
	require.False(t, st.Paused)
	require.Empty(t, st.Errors)

	r := b.zerodq(t, "stats").ok(t)
	for _, col := range []string{"NODE", "TUBE", "READY", "DELAYED", "RESERVED", "BURIED", "total (copies)",
		"consumers 1", "dead letters 1", "paused no"} {
		require.Contains(t, r.stdout, col)
	}
	r = b.zerodq(t, "stats", "--watch", "--every", "100ms", "--count", "2").ok(t)
	require.Equal(t, 2, strings.Count(r.stdout, "total (copies)"))
}

// deadEndpoint returns a loopback address nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestNodesShowsEachNodeAndNamesAnUnreachableOne(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var nodes []dq.NodeInfo
	b.zerodq(t, "nodes", "--json").ok(t).decode(t, &nodes)
	require.Len(t, nodes, 3)
	for i, n := range nodes {
		require.Equal(t, b.conf.Beanstalks[i].Endpoint, n.Endpoint)
		require.Equal(t, b.conf.Beanstalks[i].Tube, n.Tube)
		require.True(t, n.Up)
		require.Empty(t, n.Err)
		require.NotEmpty(t, n.Version)
		require.Positive(t, n.MaxJobSize)
		require.Positive(t, n.Connections)
	}
	r := b.zerodq(t, "nodes").ok(t)
	for _, col := range []string{"ENDPOINT", "UP", "VERSION", "BINLOG", "MAX-JOB", "UPTIME"} {
		require.Contains(t, r.stdout, col)
	}

	down := deadEndpoint(t)
	env := dqtest.Shared(t)
	bad := setup(t, setupOpts{endpoints: append(env.Endpoints()[:2:2], down)})
	r = bad.zerodq(t, "nodes")
	r.failed(t, exitFail, "node unreachable", down)
	require.Contains(t, r.stdout, env.Endpoints()[0], "the nodes that answer are still shown")
	bad.zerodq(t, "stats").failed(t, exitFail, "node "+down)
}

func TestDoctorFailsOnTheRulesTheTestServersBreak(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var checks []dq.Check
	r := b.zerodq(t, "doctor", "--json")
	require.Equal(t, exitFail, r.code, "the test servers run without AOF and binlog")
	r.decode(t, &checks)
	byName := map[string]dq.Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	require.True(t, byName["redis reachable"].OK)
	require.False(t, byName["redis aof"].OK, "the test Redis runs without AOF")
	require.True(t, byName["replicas"].OK)
	require.True(t, byName["min-writes"].OK)
	ep := b.conf.Beanstalks[0].Endpoint
	require.True(t, byName["node "+ep+" reachable"].OK)
	require.False(t, byName["node "+ep+" binlog"].OK)
	require.Contains(t, r.stderr, "redis aof")

	r = b.zerodq(t, "doctor")
	r.failed(t, exitFail, "checks failed", "redis aof")
	require.Contains(t, r.stdout, "CHECK")
	require.Regexp(t, `redis aof\s+FAIL`, r.stdout)
	require.Regexp(t, `replicas\s+ok`, r.stdout)
}
