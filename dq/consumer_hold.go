package dq

import (
	"container/heap"
	"sync"
	"time"

	"github.com/zerodq/zerodq/internal/ptimer"
	"github.com/zerodq/zerodq/internal/routine"
)

// holder keeps the copies reserved before their due time until then. A
// beanstalkd delay is whole seconds, rounded down, so every copy is ready up
// to a second early, and under a backlog a consumer holds a second's worth of
// copies: thousands. They wait in one heap under one timer and cost their
// memory only; a copy gets a goroutine when it comes due and goes through the
// claim protocol.
//
// The timer has the kernel's precision (a Go timer fires up to a millisecond
// late when the process sleeps), and its goroutine claims the copies it
// finds due itself, all in one round trip: the claim of a job due now waits
// for no goroutine to be scheduled, nor for the claims of jobs due with it.
//
// How many copies a consumer holds is bounded by the gate (WithMaxHeld):
// copies beyond it stay ready in beanstalkd until there is room.
type holder struct {
	c     *consumer
	loop  *routine.Loop
	timer *ptimer.Timer

	mu      sync.Mutex
	copies  holdHeap
	stopped bool // Stop released every held copy; none is taken any more
}

func newHolder(c *consumer) *holder {
	hd := &holder{c: c, loop: routine.NewLoop()}
	hd.timer = ptimer.New(hd.fire)
	return hd
}

// start waits for Stop in the background, then releases every copy held.
func (hd *holder) start() { hd.loop.Start(hd.run) }

// stop waits for the holder's goroutine, which ends once the consumer stops
// (releasing what it held) or stop is called.
func (hd *holder) stop() { hd.loop.Stop() }

// hold keeps h until its due time by the lower bound of Redis time, then
// claims it: copies of one job wake together. It reports false once the
// consumer is stopping; the caller then handles h itself.
func (hd *holder) hold(h *heldCopy) bool {
	h.wakeAt = time.UnixMilli(h.env.DueMs).Add(-hd.c.clock.Offset())
	hd.mu.Lock()
	if hd.stopped {
		hd.mu.Unlock()
		return false
	}
	heap.Push(&hd.copies, h)
	if hd.copies[0] == h {
		hd.timer.Reset(time.Until(h.wakeAt))
	}
	hd.c.gate.holdN(1) // under mu: counted before fire can count it out
	hd.mu.Unlock()
	metricHeld.Inc(hd.c.tube)
	return true
}

// held counts the copies waiting for their due time.
func (hd *holder) held() int {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	return len(hd.copies)
}

// fire runs when the timer fires: it sets the timer for the next copy and
// claims the copies due (claimDue) in the timer's goroutine.
func (hd *holder) fire() {
	now := time.Now()
	var due []*heldCopy
	hd.mu.Lock()
	if hd.stopped {
		hd.mu.Unlock()
		return
	}
	for len(hd.copies) > 0 && !hd.copies[0].wakeAt.After(now) {
		due = append(due, heap.Pop(&hd.copies).(*heldCopy))
	}
	if len(hd.copies) > 0 {
		hd.timer.Reset(hd.copies[0].wakeAt.Sub(now))
	}
	if len(due) > 0 {
		hd.c.gate.holdN(-len(due))
	}
	hd.mu.Unlock()
	if len(due) == 0 {
		return
	}
	metricHeld.Sub(float64(len(due)), hd.c.tube)
	hd.c.claimDue(due)
}

// run waits for the consumer to stop, then releases every copy still held.
func (hd *holder) run(stop <-chan struct{}) {
	select {
	case <-hd.c.stopping:
	case <-stop:
	}
	hd.timer.Close()
	hd.releaseAll()
}

// releaseAll hands every held copy back to its node at once, for Stop.
func (hd *holder) releaseAll() {
	hd.mu.Lock()
	hd.stopped = true
	copies := hd.copies
	hd.copies = nil
	hd.c.gate.holdN(-len(copies))
	hd.mu.Unlock()
	for _, h := range copies {
		metricHeld.Dec(hd.c.tube)
		go func() {
			defer hd.c.copyDone(h.loop)
			hd.c.release(h, 0)
		}()
	}
}

// holdHeap orders held copies by wake time (container/heap).
type holdHeap []*heldCopy

func (q holdHeap) Len() int           { return len(q) }
func (q holdHeap) Less(i, j int) bool { return q[i].wakeAt.Before(q[j].wakeAt) }
func (q holdHeap) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *holdHeap) Push(x any)        { *q = append(*q, x.(*heldCopy)) }
func (q *holdHeap) Pop() any {
	old := *q
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return h
}
