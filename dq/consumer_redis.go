package dq

import (
	"context"
	"sync"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/internal/claim"
)

// lostClaim is a claim Redis could not be told about: one whose reply did
// not arrive (it may hold the job; outcome zero: given back as unrun), or a
// run whose finish Redis did not take (outcome and backoff: what to report).
type lostClaim struct {
	id      string
	cid     string
	slot    int
	dueMs   int64
	outcome claim.Outcome
	backoff time.Duration
}

// redisHealth pauses the consumer while Redis is away: nothing is reserved,
// run or deleted then. A prober checks every redisProbeInterval; when Redis
// answers again, it first reports what Redis could not take (claims whose
// replies were lost are given back; runs that ended keep their outcome), and
// only then does reserving resume: an owner's finish is accepted while no
// other consumer has claimed the job, even past its lease.
type redisHealth struct {
	c    *consumer
	mu   sync.Mutex
	down bool
	lost []lostClaim
	quit chan struct{}
	wg   sync.WaitGroup
}

func (h *redisHealth) init(c *consumer) {
	h.c = c
	h.quit = make(chan struct{})
}

// failed records a Redis error; the first one of an outage pauses reserving
// and starts the prober.
func (h *redisHealth) failed(err error, lc lostClaim) {
	metricErrors.Inc("redis", "claim")
	h.mu.Lock()
	defer h.mu.Unlock()
	if lc.cid != "" && len(h.lost) < 100000 {
		h.lost = append(h.lost, lc)
	}
	if h.down {
		return
	}
	select {
	case <-h.quit:
		return
	default:
	}
	logx.Errorf("dq: redis unreachable, pausing consumption: %v", err)
	h.pauseLocked()
}

// awaitFirst pauses the consumer until Redis has answered once: the prober
// takes the clock's first offset too.
func (h *redisHealth) awaitFirst() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		h.pauseLocked()
	}
}

// pauseLocked pauses reserving and starts the prober; h.mu is held.
func (h *redisHealth) pauseLocked() {
	h.down = true
	h.c.gate.setPaused(true)
	h.wg.Add(1)
	go h.probe()
}

func (h *redisHealth) probe() {
	defer h.wg.Done()
	t := time.NewTicker(redisProbeInterval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-h.quit:
				return
			case <-t.C:
			}
		}
		ctx, cancel := context.WithTimeout(h.c.ctx, redisProbeInterval)
		_, err := h.c.store.Now(ctx)
		cancel()
		if err != nil {
			continue
		}
		if !h.c.clock.Synced() {
			ctx, cancel := context.WithTimeout(h.c.ctx, redisCallTimeout)
			err := h.c.clock.Sync(ctx)
			cancel()
			if err != nil {
				continue
			}
		}
		if !h.reportLost() {
			continue
		}
		h.mu.Lock()
		h.down = false
		h.mu.Unlock()
		h.c.gate.setPaused(false)
		logx.Info("dq: redis answers, consuming")
		return
	}
}

// reportLost finishes the claims Redis could not be told about: a lost
// claim as unrun, an ended run with its outcome. The copies were released
// already; the job's other copies follow the record. False if Redis failed
// again meanwhile.
func (h *redisHealth) reportLost() bool {
	h.mu.Lock()
	lost := h.lost
	h.lost = nil
	h.mu.Unlock()
	for i, lc := range lost {
		o := lc.outcome
		if o == 0 {
			o = claim.OutcomeUnrun
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(h.c.ctx, redisCallTimeout)
		rep, err := h.c.store.Finish(ctx, h.c.tube, lc.id, lc.cid, lc.slot, o, lc.backoff.Milliseconds(), h.c.maxFail)
		cancel()
		if err != nil {
			h.mu.Lock()
			h.lost = append(lost[i:], h.lost...)
			h.mu.Unlock()
			return false
		}
		if o == claim.OutcomeOK && rep.Kind == claim.Delete {
			metricConsumed.Inc(h.c.tube, outcomeOK)
			h.c.finished.add(lc.id, lc.dueMs, sent)
		}
	}
	return true
}

func (h *redisHealth) stop() {
	h.mu.Lock()
	select {
	case <-h.quit:
	default:
		close(h.quit)
	}
	h.mu.Unlock()
	h.wg.Wait()
}
