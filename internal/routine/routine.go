// Package routine is the one way zerodq's background goroutines start and
// stop: a Group runs goroutines that share one stop signal, a Loop is a
// Group of one goroutine started once, and Sleep waits for a duration unless
// told to stop first. GrowStack readies a goroutine's stack for a deep call
// path before the moment that counts.
package routine

import (
	"sync"
	"time"
)

// Group runs goroutines that share one stop signal. Stop signals them and
// waits until every one has returned; Go after Stop starts nothing. It is
// safe for concurrent use.
type Group struct {
	stop    chan struct{}
	mu      sync.Mutex // Go's check and Add against Stop's close
	stopped bool
	wg      sync.WaitGroup
}

// NewGroup returns a Group with no goroutine yet.
func NewGroup() *Group { return &Group{stop: make(chan struct{})} }

// Go runs fn in a new goroutine unless the Group is stopped; it reports
// whether it did. fn should return soon after stop is closed.
func (g *Group) Go(fn func(stop <-chan struct{})) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.stop)
	}()
	return true
}

// Stopping is closed once Stop is called.
func (g *Group) Stopping() <-chan struct{} { return g.stop }

// Stop signals every goroutine to return and waits until they have. It is
// idempotent.
func (g *Group) Stop() {
	g.mu.Lock()
	if !g.stopped {
		g.stopped = true
		close(g.stop)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// Loop is one goroutine with a stop signal: Start runs its function once,
// Stop signals it and waits for it to return. Both are idempotent, safe for
// concurrent use, and Stop works on a Loop that never started.
type Loop struct {
	g    *Group
	once sync.Once
}

// NewLoop returns a Loop that has not started.
func NewLoop() *Loop { return &Loop{g: NewGroup()} }

// Start runs fn in a new goroutine, the first time it is called; fn should
// return soon after stop is closed. A Loop stopped before it started never
// runs fn.
func (l *Loop) Start(fn func(stop <-chan struct{})) {
	l.once.Do(func() { l.g.Go(fn) })
}

// Stopping is closed once Stop is called.
func (l *Loop) Stopping() <-chan struct{} { return l.g.Stopping() }

// Stop signals the function to return and waits until it has.
func (l *Loop) Stop() { l.g.Stop() }

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

// growPad is how much stack GrowStack takes: with what the goroutine already
// uses, its stack becomes 32 KiB, enough for a claim through go-zero's and
// go-redis's hooks.
const growPad = 16 << 10

// GrowStack grows the calling goroutine's stack while the goroutine is
// shallow, where growing copies a frame or two. A new goroutine starts with
// a small stack, and one that first grows it on a deep call path (a claim at
// a job's due time goes through a dozen hook and breaker frames) grows it
// there, in steps, each copying and adjusting every frame: tens of
// microseconds at the moment that counts.
//
//go:noinline
func GrowStack() {
	var pad [growPad]byte
	touch(pad[:])
}

// touch keeps GrowStack's pad from being optimized away.
//
//go:noinline
func touch(b []byte) { b[len(b)-1] = 1 }
