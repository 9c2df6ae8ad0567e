// Package clock keeps a process on Redis time: every process samples Redis
// TIME now and then and keeps the bounds of its offset from the local clock,
// so a host whose clock is off by seconds still computes due times, and holds
// copies, on the one time base the claim scripts use, and never early.
package clock

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/zerodq/zerodq/internal/routine"
)

// DefaultInterval is how often the offset is sampled again.
const DefaultInterval = 10 * time.Second

// SyncTimeout bounds one background Sync; callers of Sync and Ready bound
// theirs with their own ctx (a producer's first sample uses it too).
const SyncTimeout = 2 * time.Second

// Source reads the reference time in Unix microseconds (Redis TIME).
type Source func(ctx context.Context) (int64, error)

// Clock is the local clock corrected by the last sampled offset, known as a
// range: the reference was read somewhere between sending the request and
// receiving the reply, so the offset lies between a lower bound (reference
// minus the reading's end) and an upper bound (reference minus its start).
// Who must not act early takes the bound that errs late: a consumer waits on
// the lower one (Now, NowMs, Until), a producer dates a job on the upper one
// (Latest). Before the first sample both bounds are zero: the local clock.
type Clock struct {
	src      Source
	interval time.Duration
	lower    atomic.Int64 // ns, reference minus local: never above the truth
	upper    atomic.Int64 // ns, reference minus local: never below the truth
	synced   atomic.Bool
	syncing  chan struct{} // one Ready sample at a time
	loop     *routine.Loop
}

// New returns a clock sampling src every interval (DefaultInterval when 0).
// Call Start to begin background sampling and Close to end it.
func New(src Source, interval time.Duration) *Clock {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Clock{
		src:      src,
		interval: interval,
		syncing:  make(chan struct{}, 1),
		loop:     routine.NewLoop(),
	}
}

// syncSamples is how many readings one Sync takes; the tightest bound of
// each side wins. Each bound errs by half a round trip and the client's
// time around it, late for a consumer's wake-up and for a producer's due
// time: under load a few readings more, every DefaultInterval, bring it down
// from a hundred or so microseconds to a few tens.
const syncSamples = 8

// Sync samples the reference and updates both bounds of the offset. A
// reading of us microseconds taken between local times t0 and t1 says the
// offset is at least us - t1 and below us + 1µs - t0 (Redis truncates its
// TIME to the microsecond). Of a few readings, the largest lower bound and
// the smallest upper bound are kept: the fastest round trip decides each.
func (c *Clock) Sync(ctx context.Context) error {
	var lo, hi int64
	got := 0
	for range syncSamples {
		t0 := time.Now().UnixNano()
		us, err := c.src(ctx)
		t1 := time.Now().UnixNano()
		if err != nil {
			if got > 0 {
				break // keep what the earlier readings gave
			}
			return err
		}
		ref := us * int64(time.Microsecond)
		l, h := ref-t1, ref+int64(time.Microsecond)-1-t0
		if got == 0 || l > lo {
			lo = l
		}
		if got == 0 || h < hi {
			hi = h
		}
		got++
	}
	if lo > hi {
		// Only a local clock stepped between readings gets here: keep
		// the widest pair rather than bounds that cross.
		lo, hi = hi, lo
	}
	c.lower.Store(lo)
	c.upper.Store(hi)
	c.synced.Store(true)
	return nil
}

// Ready returns nil once a sample has succeeded, taking one now if none has;
// concurrent callers share one sampling at a time. It fails with the
// sample's error, or ctx's, when the reference cannot be read.
func (c *Clock) Ready(ctx context.Context) error {
	if c.Synced() {
		return nil
	}
	select {
	case c.syncing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.syncing }()
	if c.Synced() {
		return nil // another caller's sample came in meanwhile
	}
	return c.Sync(ctx)
}

// Synced reports whether at least one sample succeeded.
func (c *Clock) Synced() bool { return c.synced.Load() }

// Offset is the lower bound of the offset (reference minus local).
func (c *Clock) Offset() time.Duration { return time.Duration(c.lower.Load()) }

// Bounds are the lower and upper bounds of the offset (reference minus
// local) from the last sample.
func (c *Clock) Bounds() (lower, upper time.Duration) {
	return time.Duration(c.lower.Load()), time.Duration(c.upper.Load())
}

// Now is the local time corrected by the lower bound of the offset: the
// earliest the reference clock can read now. Waiting until Now reaches a
// time never ends early.
func (c *Clock) Now() time.Time { return time.Now().Add(c.Offset()) }

// Latest is the local time corrected by the upper bound of the offset: the
// latest the reference clock can read now. A due time counted from Latest
// never comes before the caller's own now on the reference clock.
func (c *Clock) Latest() time.Time { return time.Now().Add(time.Duration(c.upper.Load())) }

// NowMs is Now in Unix milliseconds, rounded down.
func (c *Clock) NowMs() int64 { return c.Now().UnixMilli() }

// Until is how long until the reference clock surely reaches dueMs, going
// by the lower bound (negative when past).
func (c *Clock) Until(dueMs int64) time.Duration {
	return time.UnixMilli(dueMs).Sub(c.Now())
}

// CeilMs is t in Unix milliseconds, rounded up: a due time rounded down
// would come up to a millisecond before t.
func CeilMs(t time.Time) int64 {
	ms := t.UnixMilli() // floor: Nanosecond is never negative
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// Start samples in the background until Close. A failed sample keeps the
// previous offset and is retried sooner.
func (c *Clock) Start() { c.loop.Start(c.sample) }

// sample syncs every interval, or every second after a failed sync, until
// stop is closed.
func (c *Clock) sample(stop <-chan struct{}) {
	wait := time.Duration(0)
	if c.Synced() {
		wait = c.interval
	}
	for routine.Sleep(stop, wait) {
		ctx, cancel := context.WithTimeout(context.Background(), SyncTimeout)
		err := c.Sync(ctx)
		cancel()
		wait = c.interval
		if err != nil {
			wait = time.Second
		}
	}
}

// Close stops background sampling and waits for it. It is idempotent and
// safe to call concurrently.
func (c *Clock) Close() { c.loop.Stop() }
