package node

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestTubeStatsCountTheTubesJobsByState(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t)
	n := New(addr, tube, Options{})
	defer n.Close()
	ctx := context.Background()

	// Another tube's jobs do not count.
	other := New(addr, tube+"-other", Options{})
	defer other.Close()
	_, err := other.Put(ctx, []byte("x"), 1, 0, time.Minute)
	require.NoError(t, err)

	for range 3 {
		_, err := n.Put(ctx, []byte("ready"), 2000, 0, time.Minute)
		require.NoError(t, err)
	}
	_, err = n.Put(ctx, []byte("urgent"), 5, 0, time.Minute)
	require.NoError(t, err)
	for range 2 {
		_, err := n.Put(ctx, []byte("delayed"), 2000, time.Hour, time.Minute)
		require.NoError(t, err)
	}
	c := raw(t, addr)
	ts := beanstalk.NewTubeSet(c, tube)
	reserved, _, err := ts.Reserve(time.Second) // the urgent job comes first
	require.NoError(t, err)
	buried, _, err := ts.Reserve(time.Second)
	require.NoError(t, err)
	require.NoError(t, c.Bury(buried, 1))
	require.NoError(t, beanstalk.NewTube(c, tube).Pause(time.Hour))

	st, err := n.TubeStats(ctx)
	require.NoError(t, err)
	require.Equal(t, TubeStats{
		Urgent: 0, Ready: 2, Reserved: 1, Delayed: 2, Buried: 1,
		Pause: time.Hour, PauseLeft: st.PauseLeft,
	}, st, "reserved job %d", reserved)
	require.Greater(t, st.PauseLeft, time.Hour-time.Minute)
	require.LessOrEqual(t, st.PauseLeft, time.Hour)

	require.NoError(t, c.Release(reserved, 5, 0))
	st, err = n.TubeStats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), st.Urgent, "the urgent job is ready again")
	require.Equal(t, int64(3), st.Ready)
	require.Equal(t, int64(0), st.Reserved)
}

func TestTubeStatsCountConnectionsWaitingInAReserve(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t)
	n := New(addr, tube, Options{})
	defer n.Close()
	ctx := context.Background()

	got := make(chan error, 1)
	ts := beanstalk.NewTubeSet(raw(t, addr), tube)
	go func() {
		_, _, err := ts.Reserve(10 * time.Second)
		got <- err
	}()
	dqtest.Eventually(t, 5*time.Second, func() bool {
		st, err := n.TubeStats(ctx)
		return err == nil && st.Waiting == 1
	}, "one connection waiting in a reserve on the tube")
	_, err := n.Put(ctx, []byte("wake"), 1, 0, time.Minute)
	require.NoError(t, err)
	require.NoError(t, <-got)
	st, err := n.TubeStats(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Waiting)
	require.Equal(t, int64(1), st.Reserved)
}

func TestTubeStatsOfATubeTheNodeDoesNotKnowAreZero(t *testing.T) {
	t.Parallel()
	n := New(dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{})
	defer n.Close()
	st, err := n.TubeStats(context.Background())
	require.NoError(t, err)
	require.Equal(t, TubeStats{}, st)
}

func TestServerStatsOfADefaultNode(t *testing.T) {
	t.Parallel()
	n := New(dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{})
	defer n.Close()
	st, err := n.ServerStats(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, st.Version)
	require.NotContains(t, st.Version, `"`)
	require.Equal(t, 65535, st.MaxJobSize, "beanstalkd's default -z")
	require.False(t, st.Binlog, "no -b")
	require.False(t, st.Draining)
	require.GreaterOrEqual(t, st.Connections, int64(1), "this one")
	require.Positive(t, st.Pid)
	require.NotEqual(t, os.Getpid(), st.Pid)
}

func TestServerStatsTellABinlogAndAMaxJobSize(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t, dqtest.WithBinlog(), dqtest.WithArgs("-z", strconv.Itoa(4096)))
	n := New(s.Addr(), dqtest.Name(t), Options{})
	defer n.Close()
	st, err := n.ServerStats(context.Background())
	require.NoError(t, err)
	require.True(t, st.Binlog, "started with -b")
	require.Equal(t, 4096, st.MaxJobSize)
}

func TestStatsOfAnUnreachableNodeFailDefinitely(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t)
	s.Kill()
	n := New(s.Addr(), dqtest.Name(t), Options{DialTimeout: 300 * time.Millisecond})
	defer n.Close()
	ctx := context.Background()

	_, err := n.ServerStats(ctx)
	require.Error(t, err)
	require.True(t, IsDefinite(err), "%v", err)
	require.Contains(t, err.Error(), s.Addr())
	_, err = n.TubeStats(ctx)
	require.Error(t, err, "a node down is not a tube without jobs")
	require.True(t, IsDefinite(err), "%v", err)
}
