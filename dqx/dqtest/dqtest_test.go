package dqtest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/dqtest"
)

func TestMain(m *testing.M) {
	logx.Disable()
	dqtest.Main(m)
}

func TestSharedServersServeEveryTestOfTheProcess(t *testing.T) {
	t.Parallel()
	var addrs [2][]string
	for i := range addrs {
		t.Run("uses", func(t *testing.T) {
			s := dqtest.Shared(t)
			require.Len(t, s.Nodes, 3)
			addrs[i] = append(s.Endpoints(), s.Redis.Addr())
			a, b := s.Conf(dqtest.TestName(t)), s.Conf(dqtest.TestName(t))
			require.NotEqual(t, a.KeyPrefix, b.KeyPrefix, "a name of its own for each config")
			require.NotEqual(t, a.Beanstalks[0].Tube, b.Beanstalks[0].Tube)
		})
	}
	require.Equal(t, addrs[0], addrs[1], "the same servers, still running after the first test ended")
	dqtest.Eventually(t, time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", addrs[0][0], time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, "the shared node answers")
}

func TestStartHandsBackAConfigAJobRunsOn(t *testing.T) {
	t.Parallel()
	c := dqtest.Start(t, dqtest.Options{Nodes: 2})
	require.NoError(t, c.Validate())
	require.Len(t, c.Beanstalks, 2)
	require.Equal(t, c.KeyPrefix, c.Beanstalks[0].Tube)
	require.Contains(t, c.KeyPrefix, "TestStartHandsBackAConfigAJobRunsOn")
	require.Equal(t, 5, c.MaxRetries, "defaults as go-zero's conf fills them")

	ran := make(chan string, 10)
	cons, err := dq.NewConsumer(c, dq.WithHandle(func(ctx context.Context, body []byte) error {
		ran <- string(body)
		return nil
	}))
	require.NoError(t, err)
	go cons.Start()
	defer cons.Stop()
	p, err := dq.NewProducer(c)
	require.NoError(t, err)
	defer p.Close()
	_, err = p.DelayCtx(context.Background(), []byte("hello"), 0)
	require.NoError(t, err)
	select {
	case body := <-ran:
		require.Equal(t, "hello", body)
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not run")
	}
}

func TestStartStopsTheServersWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	var c dq.DqConf
	t.Run("uses", func(t *testing.T) { c = dqtest.Start(t, dqtest.Options{Nodes: 1}) })
	for _, addr := range []string{c.Beanstalks[0].Endpoint, c.Redis.Host} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		require.Error(t, err, "%s still answers", addr)
	}
}

func TestServersTakeTheirOptions(t *testing.T) {
	t.Parallel()
	s, err := dqtest.StartServers(dqtest.Options{Nodes: 2, Binlog: true, AOF: true, MaxJobSize: 4096})
	require.NoError(t, err)
	defer s.Close()
	c := s.Conf("options")
	require.Equal(t, 4096, c.MaxJobSize)
	require.Equal(t, []dq.Beanstalk{{Endpoint: s.Nodes[0].Addr(), Tube: "options"}, {Endpoint: s.Nodes[1].Addr(), Tube: "options"}},
		c.Beanstalks)

	in, err := dq.NewInspector(c)
	require.NoError(t, err)
	defer in.Close()
	nodes, err := in.Nodes(context.Background())
	require.NoError(t, err)
	for _, n := range nodes {
		require.True(t, n.Binlog, n.Endpoint)
		require.Equal(t, 4096, n.MaxJobSize, n.Endpoint)
	}
	checks, err := in.Doctor(context.Background())
	require.NoError(t, err)
	for _, ch := range checks {
		if ch.Name == "redis aof" {
			require.True(t, ch.OK, ch.Detail)
		}
	}
}

func TestAKilledNodeComesBackWithItsJobs(t *testing.T) {
	t.Parallel()
	n, err := dqtest.StartBeanstalkd(dqtest.Options{Binlog: true})
	require.NoError(t, err)
	defer n.Close()
	r, err := dqtest.StartRedis(dqtest.Options{})
	require.NoError(t, err)
	defer r.Close()
	c := (&dqtest.Servers{Nodes: []*dqtest.Server{n}, Redis: r}).Conf(dqtest.TestName(t))

	p, err := dq.NewProducer(c)
	require.NoError(t, err)
	defer p.Close()
	_, err = p.DelayCtx(context.Background(), []byte("kept"), time.Hour)
	require.NoError(t, err)
	in, err := dq.NewInspector(c)
	require.NoError(t, err)
	defer in.Close()

	n.Kill()
	s, err := in.Stats(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, s.Tubes[0].Err, "node down")
	require.NoError(t, n.Restart())
	require.Eventually(t, func() bool {
		s, err := in.Stats(context.Background())
		return err == nil && s.Total.Delayed == 1
	}, 5*time.Second, 10*time.Millisecond, "the delayed job back from the binlog")
}
