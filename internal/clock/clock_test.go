package clock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSyncAppliesOffsetOfASkewedReference(t *testing.T) {
	skew := 7 * time.Second
	c := New(func(context.Context) (int64, error) { return time.Now().Add(skew).UnixMicro(), nil }, 0)
	require.False(t, c.Synced())
	require.NoError(t, c.Sync(context.Background()))
	require.True(t, c.Synced())
	require.InDelta(t, float64(skew), float64(c.Offset()), float64(5*time.Millisecond))
	require.InDelta(t, float64(time.Now().Add(skew).UnixMilli()), float64(c.NowMs()), 10)
	due := time.Now().Add(skew + time.Second).UnixMilli()
	require.InDelta(t, float64(time.Second), float64(c.Until(due)), float64(10*time.Millisecond))
}

func TestFailedSyncKeepsPreviousOffset(t *testing.T) {
	var fail atomic.Bool
	c := New(func(context.Context) (int64, error) {
		if fail.Load() {
			return 0, errors.New("down")
		}
		return time.Now().Add(-3 * time.Second).UnixMicro(), nil
	}, 0)
	require.NoError(t, c.Sync(context.Background()))
	before := c.Offset()
	fail.Store(true)
	require.Error(t, c.Sync(context.Background()))
	require.Equal(t, before, c.Offset())
}

func TestStartSamplesAndCloseStops(t *testing.T) {
	var n atomic.Int32
	c := New(func(context.Context) (int64, error) { n.Add(1); return time.Now().UnixMicro(), nil }, 10*time.Millisecond)
	c.Start()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.GreaterOrEqual(t, n.Load(), int32(3))
	c.Close()
	c.Close()
	after := n.Load()
	time.Sleep(30 * time.Millisecond) // nothing may sample after Close returned
	require.Equal(t, after, n.Load())
}

func TestCloseWithoutStart(t *testing.T) {
	c := New(func(context.Context) (int64, error) { return 0, nil }, 0)
	c.Close()
}

func TestSlowRepliesNeverPutTheClockAhead(t *testing.T) {
	skew := 2 * time.Second
	var calls atomic.Int64
	c := New(func(context.Context) (int64, error) {
		read := time.Now().Add(skew).UnixMicro()
		// The reply takes a while to come back, longer on some readings.
		time.Sleep(time.Duration(5+45*(calls.Add(1)%2)) * time.Millisecond)
		return read, nil
	}, 0)
	require.NoError(t, c.Sync(context.Background()))
	require.EqualValues(t, syncSamples, calls.Load())
	require.LessOrEqual(t, c.Offset(), skew, "a reading is never taken after its reply arrives")
	require.Greater(t, c.Offset(), skew-40*time.Millisecond, "the fastest reading counts")
}

// delayedSource reads a reference skew ahead of the local clock, the
// request taking before and the reply after on their way.
func delayedSource(skew time.Duration, before, after func(i int64) time.Duration) (Source, *atomic.Int64) {
	var calls atomic.Int64
	return func(context.Context) (int64, error) {
		i := calls.Add(1)
		time.Sleep(before(i))
		read := time.Now().Add(skew).UnixMicro()
		time.Sleep(after(i))
		return read, nil
	}, &calls
}

func TestBoundsHoldTheTrueOffset(t *testing.T) {
	for _, skew := range []time.Duration{0, 7 * time.Second, -3*time.Second - 1234567*time.Nanosecond} {
		src, _ := delayedSource(skew,
			func(int64) time.Duration { return 2 * time.Millisecond },
			func(int64) time.Duration { return 3 * time.Millisecond })
		c := New(src, 0)
		require.NoError(t, c.Sync(context.Background()))
		lower, upper := c.Bounds()
		// The reading truncates to the microsecond: the skew itself is
		// known to within that, on either side.
		require.LessOrEqual(t, lower, skew+time.Microsecond, "skew %v", skew)
		require.GreaterOrEqual(t, upper, skew-time.Microsecond, "skew %v", skew)
		require.Greater(t, upper-lower, 5*time.Millisecond, "the round trip, unknown inside")
		require.Less(t, upper-lower, 60*time.Millisecond, "no wider than a round trip")
		require.Equal(t, lower, c.Offset())
		require.False(t, c.Latest().Before(c.Now()))
	}
}

func TestEachBoundIsTheTightestOfTheSamples(t *testing.T) {
	// Reading 1 comes back at once but was slow to be taken; reading 2 the
	// other way round; reading 3 is slow both ways. The lower bound comes
	// from reading 1, the upper one from reading 2, and the range is
	// narrower than any one round trip.
	slow := 30 * time.Millisecond
	src, calls := delayedSource(time.Second,
		func(i int64) time.Duration {
			if i != 2 {
				return slow
			}
			return 0
		},
		func(i int64) time.Duration {
			if i != 1 {
				return slow
			}
			return 0
		})
	c := New(src, 0)
	require.NoError(t, c.Sync(context.Background()))
	require.EqualValues(t, syncSamples, calls.Load())
	lower, upper := c.Bounds()
	require.LessOrEqual(t, lower, time.Second+time.Microsecond)
	require.GreaterOrEqual(t, upper, time.Second-time.Microsecond)
	require.Less(t, upper-lower, slow/2)
}

func TestReadySamplesOnlyUntilTheFirstSampleSucceeds(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var calls atomic.Int64
	c := New(func(context.Context) (int64, error) {
		calls.Add(1)
		if down.Load() {
			return 0, errors.New("down")
		}
		return time.Now().UnixMicro(), nil
	}, 0)
	require.Error(t, c.Ready(context.Background()))
	require.False(t, c.Synced())

	down.Store(false)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, c.Ready(context.Background()))
		}()
	}
	wg.Wait()
	require.True(t, c.Synced())
	require.EqualValues(t, 1+syncSamples, calls.Load(), "one sampling for all the waiting callers")
	down.Store(true)
	require.NoError(t, c.Ready(context.Background()), "a clock once synced is ready")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c2 := New(func(context.Context) (int64, error) { return 0, errors.New("down") }, 0)
	c2.syncing <- struct{}{} // a sampling in progress
	require.ErrorIs(t, c2.Ready(ctx), context.Canceled)
}

func TestCeilMsRoundsUpToTheMillisecond(t *testing.T) {
	for _, tc := range []struct {
		t  time.Time
		ms int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(0, 1), 1},
		{time.Unix(0, 999_999), 1},
		{time.Unix(0, 1_000_000), 1},
		{time.Unix(0, 1_000_001), 2},
		{time.Unix(1_700_000_000, 123_456_789), 1_700_000_000_124},
		{time.Unix(1_700_000_000, 123_000_000), 1_700_000_000_123},
		{time.Unix(0, -1), 0},
		{time.Unix(0, -999_999), 0},
		{time.Unix(0, -1_000_000), -1},
		{time.Unix(0, -1_000_001), -1},
	} {
		require.Equal(t, tc.ms, CeilMs(tc.t), "%v", tc.t.UnixNano())
	}
}
