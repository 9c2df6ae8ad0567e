// Package ptimer is a timer that fires with the kernel's precision. A Go
// timer a process sleeps on fires up to a millisecond late: the runtime
// waits in epoll with a timeout in whole milliseconds, rounded up. Where the
// kernel has timerfd, this timer is one, read through the runtime's poller,
// which wakes as it fires; elsewhere it is a Go timer.
package ptimer

import (
	"sync"
	"time"
)

// Timer calls its function each time it fires, in a goroutine that is the
// function's to keep: the timer goes on in another. It holds one deadline at
// a time: Reset replaces it.
type Timer struct {
	fn func()
	k  kernelTimer // nil: t
	t  *time.Timer

	mu     sync.Mutex
	closed bool
}

// New returns a stopped timer calling fn. Close releases it.
func New(fn func()) *Timer {
	t := &Timer{fn: fn}
	if !goTimerOnly {
		if k, err := newKernelTimer(t.fire); err == nil {
			t.k = k
			k.start()
			return t
		}
	}
	t.t = time.AfterFunc(time.Hour, t.fire)
	t.t.Stop()
	return t
}

func (t *Timer) fire() {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if !closed {
		t.fn()
	}
}

// Reset makes the timer fire d from now, and at once when d <= 0. What the
// caller did before Reset happens before the call of the function it causes.
func (t *Timer) Reset(d time.Duration) {
	d = max(d, time.Nanosecond) // 0 would disarm a timerfd
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return // a closed timerfd's number may be another file's now
	}
	if t.k != nil {
		t.k.set(d)
		return
	}
	t.t.Reset(d)
}

// Stop disarms the timer; a call of its function already started goes on.
func (t *Timer) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if t.k != nil {
		t.k.set(0)
		return
	}
	t.t.Stop()
}

// Close stops the timer for good: its function is not called again once
// Close returns, except by a call already started.
func (t *Timer) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	if t.k != nil {
		t.k.close()
		return
	}
	t.t.Stop()
}

// goTimerOnly makes New use a Go timer, for the tests of that fallback.
var goTimerOnly = false

// kernelTimer is a timer of the kernel's that calls back when it fires.
type kernelTimer interface {
	start()
	set(d time.Duration) // 0 disarms
	close()
}
