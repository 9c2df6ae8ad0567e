package dq

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// registryIntervals polls the queue's one consumer entry and keeps the
// lateness interval of every entry written, by its start, until cond holds
// on them (sorted by start).
func registryIntervals(t *testing.T, in *Inspector, timeout time.Duration,
	cond func(seen []Lateness, last ConsumerInfo) bool) ([]Lateness, ConsumerInfo) {
	t.Helper()
	byFrom := map[time.Time]Lateness{}
	var seen []Lateness
	var last ConsumerInfo
	dqtest.Eventually(t, timeout, func() bool {
		list, err := in.Consumers(context.Background())
		require.NoError(t, err)
		if len(list) != 1 {
			return false
		}
		last = list[0]
		byFrom[last.Lateness.From] = last.Lateness
		seen = seen[:0]
		for _, l := range byFrom {
			seen = append(seen, l)
		}
		slices.SortFunc(seen, func(a, b Lateness) int { return a.From.Compare(b.From) })
		return cond(seen, last)
	}, "registry entries")
	return seen, last
}

func TestConsumerEntryCarriesTheLatenessOfTheJobsStartedSinceItsLastEntry(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	in := newTestInspector(t, c)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)

	const jobs = 6
	var ids []string
	due := time.Now().Add(300 * time.Millisecond)
	for range jobs {
		id, err := p.At([]byte("x"), due)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.allDone(ids) }, "the jobs ran")

	total := func(seen []Lateness) int64 {
		var n int64
		for _, s := range seen {
			n += s.Count
		}
		return n
	}
	seen, last := registryIntervals(t, in, 15*time.Second, func(seen []Lateness, last ConsumerInfo) bool {
		return total(seen) == jobs && last.Outcomes[outcomeOK] == jobs
	})
	for i, s := range seen {
		require.Len(t, s.Buckets, len(LatenessBounds)+1)
		var inBuckets int64
		for _, n := range s.Buckets {
			inBuckets += n
		}
		require.Equal(t, s.Count, inBuckets, "interval %d: the buckets hold every start", i)
		require.True(t, s.To.After(s.From), "interval %d runs from %v to %v", i, s.From, s.To)
		if i > 0 {
			require.Equal(t, seen[i-1].To, s.From, "each interval starts where the last one ended")
		}
		if s.Count == 0 {
			continue
		}
		require.GreaterOrEqual(t, s.Min, time.Duration(0), "no job started early")
		require.GreaterOrEqual(t, s.Max, s.Min)
		require.Less(t, s.Max, 5*time.Second)
		p50 := s.Quantile(0.5)
		require.GreaterOrEqual(t, p50, s.Min)
		require.LessOrEqual(t, p50, s.Max)
	}
	require.WithinDuration(t, last.Seen, last.Lateness.To, time.Millisecond,
		"an entry's interval ends when it is written")
}

func TestConsumerEntryCountsReserveErrorsOfAKilledNode(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	in := newTestInspector(t, c)
	startConsumer(t, c, WithHandle(func(context.Context, []byte) error { return nil }))

	_, first := registryIntervals(t, in, 10*time.Second, func(_ []Lateness, last ConsumerInfo) bool {
		return !last.Seen.IsZero()
	})
	require.Len(t, first.ReserveErrors, len(c.Beanstalks), "a counter per node from the start")
	for ep, n := range first.ReserveErrors {
		require.Zero(t, n, "no reserve failed on %s yet", ep)
	}

	env.Nodes[0].Kill()
	dead := env.Nodes[0].Addr()
	_, last := registryIntervals(t, in, 15*time.Second, func(_ []Lateness, last ConsumerInfo) bool {
		return last.ReserveErrors[dead] > 0
	})
	for _, n := range env.Nodes[1:] {
		require.Zero(t, last.ReserveErrors[n.Addr()], "the live node %s had no reserve error", n.Addr())
	}
}
