package dq

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// producerEntry awaits the queue's one producer entry satisfying cond.
func producerEntry(t *testing.T, in *Inspector, cond func(ProducerInfo) bool, what string) ProducerInfo {
	t.Helper()
	var got ProducerInfo
	dqtest.Eventually(t, 15*time.Second, func() bool {
		list, err := in.Producers(context.Background())
		require.NoError(t, err)
		if len(list) != 1 {
			return false
		}
		got = list[0]
		return cond(got)
	}, "%s", what)
	return got
}

func TestProducerRegistersOnItsFirstEnqueueWithItsPutsPerNodeAndLeavesOnClose(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	in := newTestInspector(t, c)
	ctx := context.Background()
	p, err := NewProducer(c)
	require.NoError(t, err)
	defer p.Close()

	list, err := in.Producers(ctx)
	require.NoError(t, err)
	require.Empty(t, list, "a producer that never enqueued writes no entry")

	const jobs = 4
	for range jobs {
		_, err := p.Delay([]byte("x"), time.Hour)
		require.NoError(t, err)
	}
	_, err = p.Delay(make([]byte, c.MaxJobSize+1), time.Hour)
	require.ErrorIs(t, err, ErrJobTooBig)

	got := producerEntry(t, in, func(pi ProducerInfo) bool {
		var puts int64
		for _, n := range pi.Nodes {
			puts += n.Puts
		}
		return pi.Enqueued == jobs && puts == jobs*int64(c.Replicas)
	}, "the entry shows every put")
	host, _ := os.Hostname()
	require.Equal(t, host, got.Host)
	require.Equal(t, os.Getpid(), got.Pid)
	require.Equal(t, Version(), got.Version)
	require.Equal(t, c.claimTube(), got.Queue)
	require.Regexp(t, `^.+/\d+/[0-9a-f]{6}$`, got.ID)
	require.WithinDuration(t, time.Now(), got.Seen, 10*time.Second)
	require.WithinDuration(t, time.Now(), got.Started, time.Minute)
	require.Equal(t, int64(1), got.Failed, "the enqueue of a job too big failed")
	require.Len(t, got.Nodes, len(c.Beanstalks))
	for _, b := range c.Beanstalks {
		require.Equal(t, PutCounts{Puts: jobs}, got.Nodes[b.Endpoint], "node %s stored a copy of each job", b.Endpoint)
	}

	require.NoError(t, p.Close())
	list, err = in.Producers(ctx)
	require.NoError(t, err)
	require.Empty(t, list, "a closed producer leaves the registry at once")
}

func TestProducerEntryCountsFailedAndUncertainPutsPerNode(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	in := newTestInspector(t, c)
	p := newTestProducer(t, c)
	down, frozen, up := env.Nodes[0].Addr(), env.Nodes[1].Addr(), env.Nodes[2].Addr()

	// One put on each node first: the connections exist when a node
	// freezes, so a put to it is written and never answered.
	_, err := p.Delay([]byte("x"), time.Hour)
	require.NoError(t, err)

	env.Nodes[0].Kill()
	for range 2 {
		_, err := p.Delay([]byte("x"), time.Hour)
		require.NoError(t, err, "two nodes still take copies")
	}
	got := producerEntry(t, in, func(pi ProducerInfo) bool {
		return pi.Enqueued == 3 && pi.Nodes[down].Failed >= 2
	}, "the entry shows the puts the killed node refused")
	require.Equal(t, int64(1), got.Nodes[down].Puts)
	require.Zero(t, got.Nodes[down].Uncertain, "a refused connection is a definite failure")
	require.Equal(t, PutCounts{Puts: 3}, got.Nodes[frozen])
	require.Equal(t, PutCounts{Puts: 3}, got.Nodes[up])

	require.NoError(t, env.Nodes[1].Pause())
	t.Cleanup(func() { _ = env.Nodes[1].Resume() })
	_, err = p.Delay([]byte("x"), time.Hour)
	require.Error(t, err, "one node of three is short of the quorum")
	got = producerEntry(t, in, func(pi ProducerInfo) bool {
		return pi.Failed == 1 && pi.Nodes[frozen].Uncertain == 1
	}, "the entry shows the put the frozen node never answered")
	require.Equal(t, int64(3), got.Nodes[frozen].Puts)
	require.Zero(t, got.Nodes[frozen].Failed)
	require.Equal(t, int64(4), got.Nodes[up].Puts)
	require.Equal(t, int64(3), got.Enqueued)
}
