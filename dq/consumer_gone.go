package dq

import (
	"context"
	"sync"
	"time"

	"github.com/zerodq/zerodq/internal/claim"
)

// goneBatchMax bounds one pipelined batch of gone calls, and goneLinger is
// how long a batch waits for more: gone is bookkeeping nobody waits for, and
// the copies of one job, deleted moments apart, then share one script call.
const (
	goneBatchMax = 256
	goneLinger   = 20 * time.Millisecond
)

// goneBatcher sends the gone calls of confirmed deletes in pipelined batches:
// every copy of every job ends with one, and one round trip per copy would
// cost more than the rest of the copy's Redis work. Batches form on their
// own: while one is in flight the next one fills, for goneLinger at least.
type goneBatcher struct {
	c      *consumer
	in     chan claim.GoneItem
	wg     sync.WaitGroup
	mu     sync.RWMutex // add holds it to send, stop to close in
	closed bool
}

func newGoneBatcher(c *consumer) *goneBatcher {
	return &goneBatcher{c: c, in: make(chan claim.GoneItem, 4*goneBatchMax)}
}

func (g *goneBatcher) start() {
	g.wg.Add(1)
	go g.loop()
}

// add queues one gone; when the queue is full, or the batcher stopped (a
// copy admitted before Stop sealed the count never comes this late; this is
// the guard that makes a send on the closed channel impossible), it sends it
// at once.
func (g *goneBatcher) add(it claim.GoneItem) {
	g.mu.RLock()
	queued := false
	if !g.closed {
		select {
		case g.in <- it:
			queued = true
		default:
		}
	}
	g.mu.RUnlock()
	if !queued {
		ctx, cancel := context.WithTimeout(g.c.ctx, g.c.conf.RedisTimeout)
		_ = g.c.store.Gone(ctx, it.Tube, it.ID, it.Slot, it.Ref)
		cancel()
	}
}

func (g *goneBatcher) loop() {
	defer g.wg.Done()
	batch := make([]claim.GoneItem, 0, goneBatchMax)
	linger := time.NewTimer(goneLinger)
	defer linger.Stop()
	for it := range g.in {
		batch = append(batch[:0], it)
		linger.Reset(goneLinger)
	fill:
		for len(batch) < goneBatchMax {
			select {
			case it, ok := <-g.in:
				if !ok {
					break fill // stopping: send what there is
				}
				batch = append(batch, it)
			case <-linger.C:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(g.c.ctx, g.c.conf.RedisTimeout)
		_ = g.c.store.GoneMany(ctx, batch)
		cancel()
	}
}

// stop sends what is queued and ends the loop; it is idempotent.
func (g *goneBatcher) stop() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.in)
	}
	g.mu.Unlock()
	g.wg.Wait()
}
