package dq

import (
	"sync"
	"time"
)

// gate bounds the consumer: reserve only while a worker is free (or fewer
// than prefetch copies wait for one), fewer than maxCopies copies are in
// hand, and fewer than maxActive of those are being claimed or run (not held
// for their due time); start a handler only with a worker. It also pauses
// reserving while Redis is away or the queue is paused.
//
// maxActive keeps a backlog of jobs due now from being reserved faster than
// it is claimed: the workers take a copy only once its claim is answered, so
// free workers alone would let thousands of claims queue in the pipeline,
// each waiting longer than RedisTimeout.
//
// The prefetched copies are what a freed worker takes next, so that it waits
// for one claim, not for reserves that mostly bring spare copies of jobs run
// already. A claimed copy waits for a worker at most workerWait, then hands
// its claim and the copy back for other consumers.
type gate struct {
	mu        sync.Mutex
	cond      *sync.Cond    // enter waits here
	sem       chan struct{} // a token per busy worker
	closedCh  chan struct{}
	workers   int
	prefetch  int
	waiting   int // copies waiting in acquire
	copies    int
	maxCopies int
	held      int // of copies, those held for their due time (holder)
	maxActive int
	paused    pauseReason // why reserving is paused; 0 when it is not
	closed    bool
}

// pauseReason is a reason to stop reserving. The reasons combine: reserving
// resumes only once none holds, so the end of a Redis outage does not lift a
// queue pause, nor the reverse.
type pauseReason uint8

const (
	pauseRedis pauseReason = 1 << iota // Redis away (redisHealth)
	pauseQueue                         // the queue paused by an operator
)

// activePerWorker sizes maxActive: copies claimed or run at once per worker.
// A job's copies arrive together, and all but one wait for that one's claim.
const activePerWorker = 4

// workerWait bounds how long a claimed copy waits for a free worker (a
// quarter of the lease, when that is shorter).
const workerWait = time.Second

func newGate(workers, maxCopies int) *gate {
	g := &gate{
		workers: workers, prefetch: max(1, workers/8), maxCopies: maxCopies, maxActive: activePerWorker * workers,
		sem: make(chan struct{}, workers), closedCh: make(chan struct{}),
	}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// mayEnter says whether a copy may be reserved now; g.mu is held.
func (g *gate) mayEnter() bool {
	return g.paused == 0 && g.copies < g.maxCopies && g.copies-g.held < g.maxActive &&
		(len(g.sem) < g.workers || g.waiting < g.prefetch)
}

// enterUpTo waits until a copy may be reserved and counts up to n: as many
// as there are free workers and places for claimed copies to wait for one,
// at least 1. It returns how many it counted, 0 once closed.
func (g *gate) enterUpTo(n int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.closed && !g.mayEnter() {
		g.cond.Wait()
	}
	if g.closed {
		return 0
	}
	room := g.workers - len(g.sem) + max(0, g.prefetch-g.waiting)
	m := max(1, min(n, room, g.maxCopies-g.copies, g.maxActive-(g.copies-g.held)))
	g.copies += m
	return m
}

func (g *gate) leave() { g.leaveN(1) }

// holdN counts n copies in hand as held for their due time (n > 0) or no
// longer (n < 0).
func (g *gate) holdN(n int) {
	g.mu.Lock()
	g.held += n
	g.mu.Unlock()
	if n > 0 {
		g.cond.Broadcast()
	}
}

// leaveN uncounts n copies.
func (g *gate) leaveN(n int) {
	if n <= 0 {
		return
	}
	g.mu.Lock()
	g.copies -= n
	g.mu.Unlock()
	g.cond.Broadcast()
}

// changed wakes the reserve loops after the workers or waiters changed.
func (g *gate) changed() {
	g.mu.Lock()
	g.cond.Broadcast()
	g.mu.Unlock()
}

// acquire waits up to limit for a worker; false when none came or the gate
// closed.
func (g *gate) acquire(limit time.Duration) bool {
	select {
	case <-g.closedCh:
		return false
	case g.sem <- struct{}{}:
		select {
		case <-g.closedCh: // closed meanwhile: no new run
			<-g.sem
			g.changed()
			return false
		default:
			return true
		}
	default:
	}
	g.mu.Lock()
	g.waiting++
	g.mu.Unlock()
	t := time.NewTimer(limit)
	ok := false
	select {
	case g.sem <- struct{}{}:
		ok = true
	case <-t.C:
	case <-g.closedCh:
	}
	t.Stop()
	g.mu.Lock()
	g.waiting--
	if ok && g.closed {
		<-g.sem
		ok = false
	}
	g.cond.Broadcast()
	g.mu.Unlock()
	return ok
}

func (g *gate) release() {
	<-g.sem
	g.changed()
}

// isPaused says whether reserving is paused for any of the reasons why.
func (g *gate) isPaused(why pauseReason) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused&why != 0
}

// inHand counts the copies reserved and not yet done with, running or not.
func (g *gate) inHand() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.copies
}

// setPaused sets or lifts one reason to pause reserving.
func (g *gate) setPaused(why pauseReason, on bool) {
	g.mu.Lock()
	if on {
		g.paused |= why
	} else {
		g.paused &^= why
	}
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gate) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.closedCh)
	}
	g.mu.Unlock()
	g.cond.Broadcast()
}
