package dq

import (
	"container/heap"
	"sync"
	"time"

	"github.com/zerodq/zerodq/internal/routine"
)

// holder keeps the copies reserved before their due time until then. A
// beanstalkd delay is whole seconds, rounded down, so every copy is ready up
// to a second early, and under a backlog a consumer holds a second's worth of
// copies: thousands. They wait in one heap under one timer and cost their
// memory only; a copy gets a goroutine when it comes due and goes through the
// claim protocol.
//
// How many copies a consumer holds is bounded by the gate (WithMaxHeld):
// copies beyond it stay ready in beanstalkd until there is room.
type holder struct {
	c    *consumer
	loop *routine.Loop
	wake chan struct{} // the earliest wake time changed

	mu      sync.Mutex
	copies  holdHeap
	stopped bool // Stop released every held copy; none is taken any more
}

func newHolder(c *consumer) *holder {
	return &holder{c: c, loop: routine.NewLoop(), wake: make(chan struct{}, 1)}
}

// start runs the holder's timer until Stop.
func (hd *holder) start() { hd.loop.Start(hd.run) }

// stop waits for the holder's goroutine, which ends once the consumer stops
// (releasing what it held) or stop is called.
func (hd *holder) stop() { hd.loop.Stop() }

// hold keeps h until d from now has passed, then claims it. It reports
// false once the consumer is stopping; the caller then handles h itself.
func (hd *holder) hold(h *heldCopy, d time.Duration) bool {
	h.wakeAt = time.Now().Add(d)
	hd.mu.Lock()
	if hd.stopped {
		hd.mu.Unlock()
		return false
	}
	heap.Push(&hd.copies, h)
	first := hd.copies[0] == h
	hd.c.gate.holdN(1) // under mu: counted before run can count it out
	hd.mu.Unlock()
	metricHeld.Inc(hd.c.tube)
	if first {
		select {
		case hd.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// held counts the copies waiting for their due time.
func (hd *holder) held() int {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	return len(hd.copies)
}

// run sends each held copy on to be claimed when its time comes, until the
// consumer stops; then it releases every copy still held.
func (hd *holder) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		var due []*heldCopy
		next := time.Duration(-1)
		hd.mu.Lock()
		for len(hd.copies) > 0 && !hd.copies[0].wakeAt.After(now) {
			due = append(due, heap.Pop(&hd.copies).(*heldCopy))
		}
		if len(hd.copies) > 0 {
			next = hd.copies[0].wakeAt.Sub(now)
		}
		if len(due) > 0 {
			hd.c.gate.holdN(-len(due))
		}
		hd.mu.Unlock()
		for _, h := range due {
			metricHeld.Dec(hd.c.tube)
			go hd.c.claimCopy(h)
		}
		if next >= 0 {
			t.Reset(next)
		} else {
			t.Stop()
		}
		select {
		case <-t.C:
		case <-hd.wake:
		case <-hd.c.stopping:
			hd.releaseAll()
			return
		case <-stop:
			hd.releaseAll()
			return
		}
	}
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
			defer hd.c.copyDone()
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
