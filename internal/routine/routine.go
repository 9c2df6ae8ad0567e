// Package routine is the one way zerodq's background goroutines start and
// stop: a Loop runs one function in a goroutine of its own until told to
// stop, and Sleep waits for a duration unless told to stop first.
package routine

import (
	"sync"
	"time"
)

// Loop is a goroutine with a stop signal. Start runs its function once;
// Stop signals it and waits for it to return. Both are idempotent, safe for
// concurrent use, and Stop works on a Loop that never started.
type Loop struct {
	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// NewLoop returns a Loop that has not started.
func NewLoop() *Loop {
	return &Loop{stop: make(chan struct{}), done: make(chan struct{})}
}

// Start runs fn in a new goroutine, the first time it is called; fn should
// return soon after stop is closed. A Loop stopped before it started never
// runs fn.
func (l *Loop) Start(fn func(stop <-chan struct{})) {
	l.startOnce.Do(func() {
		go func() {
			defer close(l.done)
			select {
			case <-l.stop:
				return
			default:
			}
			fn(l.stop)
		}()
	})
}

// Stopping is closed once Stop is called.
func (l *Loop) Stopping() <-chan struct{} { return l.stop }

// Stop signals the function to return and waits until it has; for a Loop
// that never started it only marks it stopped.
func (l *Loop) Stop() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.startOnce.Do(func() { close(l.done) })
	<-l.done
}

// Sleep waits for d, or until stop is closed; it reports whether all of d
// passed. A d of zero or less returns at once, true unless stop is closed.
func Sleep(stop <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}
