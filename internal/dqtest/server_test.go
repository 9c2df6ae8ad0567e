package dqtest

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func dialBeanstalk(t *testing.T, addr string) *beanstalk.Conn {
	t.Helper()
	c, err := beanstalk.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBinlogJobSurvivesKillAndRestart(t *testing.T) {
	t.Parallel()
	s := NewBeanstalkd(t, WithBinlog())
	c := dialBeanstalk(t, s.Addr())
	id, err := c.Put([]byte("keep me"), 1, time.Hour, time.Minute)
	require.NoError(t, err)

	s.Kill()
	require.False(t, s.Running())
	require.NoError(t, s.Restart())

	c2 := dialBeanstalk(t, s.Addr())
	body, err := c2.Peek(id)
	require.NoError(t, err, "job %d lost across SIGKILL + restart", id)
	require.Equal(t, "keep me", string(body))
}

func TestJobWithoutBinlogIsGoneAfterRestart(t *testing.T) {
	t.Parallel()
	s := NewBeanstalkd(t)
	c := dialBeanstalk(t, s.Addr())
	id, err := c.Put([]byte("volatile"), 1, time.Hour, time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Restart())
	c2 := dialBeanstalk(t, s.Addr())
	_, err = c2.Peek(id)
	require.ErrorIs(t, err, beanstalk.ErrNotFound)
}

func TestPausedNodeTimesOutClientAndWorksAfterResume(t *testing.T) {
	t.Parallel()
	s := NewBeanstalkd(t)
	require.NoError(t, s.Pause())

	// The kernel still accepts connections of a stopped process; only a
	// deadline ends the wait for its reply.
	nc, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	require.NoError(t, err, "dialling a frozen node succeeds")
	require.NoError(t, nc.SetDeadline(time.Now().Add(300*time.Millisecond)))
	c := beanstalk.NewConn(nc)
	start := time.Now()
	_, err = c.Put([]byte("x"), 1, 0, time.Minute)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)
	require.Less(t, time.Since(start), 2*time.Second)
	_ = c.Close()

	require.NoError(t, s.Resume())
	c2 := dialBeanstalk(t, s.Addr())
	Eventually(t, 5*time.Second, func() bool {
		_, err := c2.Put([]byte("y"), 1, 0, time.Minute)
		return err == nil
	}, "node answers after SIGCONT")
}

func TestRedisRestartKeepsAOFData(t *testing.T) {
	t.Parallel()
	s := NewRedis(t, WithAOF())
	ctx := context.Background()
	rc := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer rc.Close()
	require.NoError(t, rc.Set(ctx, "k", "v", 0).Err())

	s.Kill()
	require.Error(t, rc.Ping(ctx).Err(), "a killed Redis does not answer")
	require.NoError(t, s.Restart())
	Eventually(t, 5*time.Second, func() bool { return rc.Ping(ctx).Err() == nil }, "client reconnects")
	v, err := rc.Get(ctx, "k").Result()
	require.NoError(t, err)
	require.Equal(t, "v", v)
}

func TestPausedRedisTimesOutAndResumes(t *testing.T) {
	t.Parallel()
	s := NewRedis(t)
	ctx := context.Background()
	rc := goredis.NewClient(&goredis.Options{Addr: s.Addr(), ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rc.Close()
	require.NoError(t, rc.Ping(ctx).Err())
	require.NoError(t, s.Pause())
	require.Error(t, rc.Ping(ctx).Err())
	require.NoError(t, s.Resume())
	Eventually(t, 5*time.Second, func() bool { return rc.Ping(ctx).Err() == nil }, "redis answers after SIGCONT")
}

func TestSharedEnvServesThreeNodesAndRedis(t *testing.T) {
	t.Parallel()
	e := Shared(t)
	require.Len(t, e.Endpoints(), 3)
	for _, n := range e.Nodes {
		require.NoError(t, n.probe())
	}
	require.NoError(t, e.Redis.probe())
	require.Same(t, e, Shared(t))
}

func TestRedisClusterForms(t *testing.T) {
	t.Parallel()
	c := NewRedisCluster(t)
	ctx := context.Background()
	rc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{c.Servers[0].Addr()}})
	defer rc.Close()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		require.NoError(t, rc.Set(ctx, k, k, time.Minute).Err())
	}
}

func TestCloseRemovesDataDir(t *testing.T) {
	t.Parallel()
	s, err := StartBeanstalkd(WithBinlog())
	require.NoError(t, err)
	dir := s.Dir()
	s.Close()
	s.Close()
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err))
}

func TestNameIsUniqueAndTubeSafe(t *testing.T) {
	t.Parallel()
	a, b := Name(t), Name(t)
	require.NotEqual(t, a, b)
	require.Regexp(t, `^[A-Za-z0-9-]+$`, a)
}
