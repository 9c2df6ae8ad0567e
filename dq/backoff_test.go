package dq

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryBackoffDoublesWithJitterAndCaps(t *testing.T) {
	base, max := time.Second, 10*time.Second
	for _, tc := range []struct {
		attempt int
		center  time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}} {
		for i := 0; i < 200; i++ {
			d := retryBackoff(tc.attempt, base, max)
			require.GreaterOrEqual(t, d, tc.center*3/4, "attempt %d", tc.attempt)
			require.LessOrEqual(t, d, min(tc.center*5/4, max), "attempt %d", tc.attempt)
		}
	}
	for _, attempt := range []int{5, 10, 64, 1000} {
		d := retryBackoff(attempt, base, max)
		require.LessOrEqual(t, d, max)
		require.GreaterOrEqual(t, d, max*3/4)
	}
}

func TestRetryBackoffJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[retryBackoff(2, time.Second, time.Minute)] = true
	}
	require.Greater(t, len(seen), 10)
}
