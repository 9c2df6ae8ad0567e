package dq

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// latenessOf builds the histogram of the given starts' lateness, as a
// consumer's registry entry carries it.
func latenessOf(from time.Time, ds ...time.Duration) Lateness {
	var l Lateness
	l.From, l.To = from, from.Add(3*time.Second)
	for _, d := range ds {
		l.add(d)
	}
	return l
}

func TestLatenessCountsEachStartInTheBucketOfItsUpperBound(t *testing.T) {
	t.Parallel()
	l := latenessOf(time.Time{}, -time.Millisecond, 0, time.Millisecond, 1500*time.Microsecond,
		time.Second, 2*time.Minute)
	require.Len(t, l.Buckets, len(LatenessBounds)+1)
	require.Equal(t, int64(6), l.Count)
	require.Equal(t, -time.Millisecond, l.Min)
	require.Equal(t, 2*time.Minute, l.Max)
	require.Equal(t, int64(3), l.Buckets[0], "early, on time and 1ms count in the first bucket")
	require.Equal(t, int64(1), l.Buckets[1], "1.5ms is in (1ms, 2ms]")
	require.Equal(t, int64(1), l.Buckets[9], "1s is in (500ms, 1s]")
	require.Equal(t, int64(1), l.Buckets[len(LatenessBounds)], "past every bound")
}

func TestLatenessQuantileInterpolatesWithinABucketAndStaysWithinMinAndMax(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		l    Lateness
		q    float64
		want time.Duration
	}{
		{"empty", Lateness{}, 0.5, 0},
		{"one start", latenessOf(time.Time{}, 3*time.Millisecond), 0.99, 3 * time.Millisecond},
		{"median of one bucket spans min to max", latenessOf(time.Time{}, 25*time.Millisecond,
			45*time.Millisecond), 0.5, 35 * time.Millisecond},
		{"p100 is the max", latenessOf(time.Time{}, time.Millisecond, 7*time.Second), 1, 7 * time.Second},
		// Ten starts: 5 at 1ms (first bucket), 5 in (5ms, 10ms]. The
		// 0.8-quantile is the 8th start: 3/5 of the way through (5ms, 10ms].
		{"across buckets", latenessOf(time.Time{}, time.Millisecond, time.Millisecond, time.Millisecond,
			time.Millisecond, time.Millisecond, 6*time.Millisecond, 7*time.Millisecond, 8*time.Millisecond,
			9*time.Millisecond, 10*time.Millisecond), 0.8, 8 * time.Millisecond},
		{"the last bucket ends at the max", latenessOf(time.Time{}, 2*time.Minute, 4*time.Minute), 0.5,
			3 * time.Minute},
		{"q past 1 is the max", latenessOf(time.Time{}, time.Millisecond, 3*time.Millisecond), 2,
			3 * time.Millisecond},
		{"q of 0 is the min", latenessOf(time.Time{}, time.Millisecond, 3*time.Millisecond), 0,
			time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.l.Quantile(tc.q)
			require.Equal(t, tc.want, got)
			if tc.l.Count > 0 {
				require.GreaterOrEqual(t, got, tc.l.Min)
				require.LessOrEqual(t, got, tc.l.Max)
			}
		})
	}
}

func TestLatenessMergeAddsCountsAndWidensTheInterval(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := latenessOf(t0, 2*time.Millisecond, 30*time.Millisecond)
	b := latenessOf(t0.Add(-time.Second), time.Millisecond, 2*time.Second)

	var sum Lateness
	sum.Merge(a)
	require.Equal(t, a, sum, "merging into an empty histogram copies it")
	sum.Merge(b)
	require.Equal(t, int64(4), sum.Count)
	require.Equal(t, time.Millisecond, sum.Min)
	require.Equal(t, 2*time.Second, sum.Max)
	require.Equal(t, t0.Add(-time.Second), sum.From)
	require.Equal(t, t0.Add(3*time.Second), sum.To)
	require.Equal(t, int64(1), sum.Buckets[0])
	require.Equal(t, int64(1), sum.Buckets[1])
	require.Equal(t, int64(1), sum.Buckets[5])
	require.Equal(t, int64(1), sum.Buckets[10])
	require.Equal(t, 2*time.Millisecond, a.Min, "the merged-in histogram is left alone")
	require.Equal(t, int64(2), a.Count)
	require.Zero(t, a.Buckets[0], "merging does not share the buckets")

	// An empty interval widens the span but leaves Min and Max alone.
	sum.Merge(Lateness{From: t0.Add(-time.Minute), To: t0.Add(time.Minute)})
	require.Equal(t, int64(4), sum.Count)
	require.Equal(t, time.Millisecond, sum.Min)
	require.Equal(t, t0.Add(-time.Minute), sum.From)
	require.Equal(t, t0.Add(time.Minute), sum.To)
}
