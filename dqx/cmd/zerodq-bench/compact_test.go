package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCompactTrackerAgreesWithTheExactOneWithinOnePercent(t *testing.T) {
	const n = 50000
	exact, compact := newTracker(n, true), newCompactTracker(n)
	rng := rand.New(rand.NewPCG(1, 2))
	for seq := range uint64(n) {
		// Early by up to a second (raw), on time, or late by up to a minute
		// with most near a millisecond, as in the backlog.
		var d time.Duration
		switch r := rng.IntN(100); {
		case r < 10:
			d = -time.Duration(rng.Int64N(int64(time.Second)))
		case r < 12:
		default:
			d = time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
			if r == 99 {
				d = time.Duration(rng.Int64N(int64(time.Minute)))
			}
		}
		for _, tr := range []*tracker{exact, compact} {
			require.True(t, tr.first(seq))
			tr.started(d)
			tr.completed()
		}
	}
	require.False(t, compact.first(7), "a second run is a double")
	require.False(t, compact.first(7))
	require.EqualValues(t, 2, compact.doubles.Load())
	require.False(t, compact.first(n), "out of range")

	e, c := exact.lat.summary(), compact.lat.summary()
	require.Equal(t, e.Count, c.Count)
	require.Equal(t, e.Early, c.Early)
	require.Equal(t, e.Max, c.Max)
	for _, p := range [][2]float64{{e.P50, c.P50}, {e.P90, c.P90}, {e.P99, c.P99}} {
		require.InDelta(t, p[0], p[1], 0.01*abs(p[0])+0.001, "exact %v, compact %v", e, c)
	}
	<-compact.finished
}

func abs(x float64) float64 { return max(x, -x) }
