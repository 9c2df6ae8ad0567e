package dq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/clock"
)

// A copy's beanstalkd delay counts from the latest the Redis clock can read
// now: counted from the earliest, a slow reading of Redis TIME (wide bounds)
// makes the copy ready after its due time, which no hold can make up for.
func TestCopiesAreNeverReadyAfterTheirDueTime(t *testing.T) {
	t.Parallel()
	// A reference 1 h ahead of the local clock, read over a 200 ms round
	// trip: its offset is known to within 200 ms.
	slow := func(ctx context.Context) (int64, error) {
		t0 := time.Now()
		for time.Since(t0) < 200*time.Millisecond {
			time.Sleep(10 * time.Millisecond)
		}
		return t0.Add(time.Hour).Add(100 * time.Millisecond).UnixMicro(), nil
	}
	p := &producer{clock: clock.New(slow, 0)}
	require.NoError(t, p.clock.Sync(context.Background()))
	lower, upper := p.clock.Bounds()
	require.Greater(t, upper-lower, 150*time.Millisecond, "a slow reading leaves wide bounds")

	for _, ahead := range []time.Duration{0, 500 * time.Millisecond, 900 * time.Millisecond,
		time.Second + 50*time.Millisecond, 2*time.Second + 900*time.Millisecond} {
		latest := p.clock.Latest()
		due := latest.Add(ahead).UnixMilli()
		delay := p.delayOf(due)
		// Ready at latest + delay at the latest (the reference reads at most
		// latest now): never after due.
		require.LessOrEqual(t, latest.Add(delay).UnixMilli(), due,
			"due %v ahead of the latest reading: delay %v", ahead, delay)
		require.Equal(t, delay.Truncate(time.Second), delay, "whole seconds")
	}
}
