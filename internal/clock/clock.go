// Package clock keeps a process on Redis time: every process samples Redis
// TIME now and then and keeps its offset, so a host whose clock is off by
// seconds still computes due times, and holds copies, on the one time base the
// claim scripts use.
package clock

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often the offset is sampled again.
const DefaultInterval = 10 * time.Second

// Source reads the reference time in Unix microseconds (Redis TIME).
type Source func(ctx context.Context) (int64, error)

// Clock is the local clock corrected by the last sampled offset. The zero
// offset (before the first sample) is the local clock.
type Clock struct {
	src      Source
	interval time.Duration
	offset   atomic.Int64 // reference minus local, in microseconds
	synced   atomic.Bool

	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// New returns a clock sampling src every interval (DefaultInterval when 0).
// Call Start to begin background sampling and Close to end it.
func New(src Source, interval time.Duration) *Clock {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Clock{src: src, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
}

// syncSamples is how many readings one Sync takes; the tightest wins.
const syncSamples = 3

// Sync samples the reference and updates the offset. A reading taken between
// local times t0 and t1 was made no later than t1, so reference minus t1 is
// an offset that never runs ahead of the reference; of a few readings, the
// largest such offset is the closest to the truth. Running behind by the
// round trip at most (tens of microseconds on a LAN) is what keeps a copy
// from being claimed, and answered Early, a hair too soon.
func (c *Clock) Sync(ctx context.Context) error {
	var best int64
	for i := range syncSamples {
		us, err := c.src(ctx)
		if err != nil {
			if i > 0 {
				break // keep what the earlier readings gave
			}
			return err
		}
		if off := us - time.Now().UnixMicro(); i == 0 || off > best {
			best = off
		}
	}
	c.offset.Store(best)
	c.synced.Store(true)
	return nil
}

// Synced reports whether at least one sample succeeded.
func (c *Clock) Synced() bool { return c.synced.Load() }

// Offset is the last sampled offset (reference minus local).
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) * time.Microsecond }

// Now is the local time corrected by the offset.
func (c *Clock) Now() time.Time { return time.Now().Add(c.Offset()) }

// NowMs is Now in Unix milliseconds.
func (c *Clock) NowMs() int64 { return c.Now().UnixMilli() }

// Until is how long until the reference clock reaches dueMs (negative when past).
func (c *Clock) Until(dueMs int64) time.Duration {
	return time.UnixMilli(dueMs).Sub(c.Now())
}

// Start samples in the background until Close. A failed sample keeps the
// previous offset and is retried sooner.
func (c *Clock) Start() {
	c.once.Do(func() {
		go c.loop()
	})
}

func (c *Clock) loop() {
	defer close(c.done)
	wait := time.Duration(0)
	if c.Synced() {
		wait = c.interval
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Sync(ctx)
		cancel()
		if err != nil {
			t.Reset(time.Second)
		} else {
			t.Reset(c.interval)
		}
	}
}

// Close stops background sampling and waits for it. It is idempotent.
func (c *Clock) Close() {
	c.once.Do(func() { close(c.done) }) // never started: nothing to wait for
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}
