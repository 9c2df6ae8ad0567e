package clock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

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
