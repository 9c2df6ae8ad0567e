package dq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/routine"
)

// consumerOps keeps a consumer visible to operators and obeys them: it
// writes the consumer's registry entry every registryEvery and reads the
// queue's pause flag every pauseEvery, both on the Redis prober's own client
// (apart from the breaker the claims go through), and counts outcomes.
type consumerOps struct {
	c        *consumer
	idx      *claim.Index
	config   map[string]string        // a digest per DqConf field, secrets left out
	outcomes map[string]*atomic.Int64 // fixed keys: read and added to without a lock
	// reserveErrs counts failed reserve round trips per node endpoint
	// (fixed keys, as outcomes).
	reserveErrs map[string]*atomic.Int64
	late        latenessRecorder
	started     time.Time
	loop        *routine.Loop
	ran         atomic.Bool // started: Stop removes the entry
	read        atomic.Bool // the pause flag was read once
	paused      atomic.Bool // the queue is paused (or the flag not read yet)
}

// How often a consumer rewrites its registry entry and reads the pause flag.
const (
	registryEvery = 3 * time.Second
	pauseEvery    = time.Second
)

func (o *consumerOps) init(c *consumer) {
	o.c = c
	o.idx = c.store.IndexOn(c.redis.side)
	o.config = configDigests(c.conf)
	o.outcomes = make(map[string]*atomic.Int64, 6)
	for _, k := range []string{outcomeOK, outcomeRetry, outcomeDead, outcomeDuplicate, outcomeRevoked,
		outcomeMalformed} {
		o.outcomes[k] = new(atomic.Int64)
	}
	o.reserveErrs = make(map[string]*atomic.Int64, len(c.conf.Beanstalks))
	for _, b := range c.conf.Beanstalks {
		o.reserveErrs[b.Endpoint] = new(atomic.Int64)
	}
	o.loop = routine.NewLoop()
}

// reserveFailed counts a failed reserve round trip on endpoint.
func (o *consumerOps) reserveFailed(endpoint string) {
	if n := o.reserveErrs[endpoint]; n != nil {
		n.Add(1)
	}
}

// latenessRecorder keeps the lateness histogram of the current registry
// interval: each handler start adds to it under a mutex held for a few
// additions, and each registry write cuts it.
type latenessRecorder struct {
	mu  sync.Mutex
	cur Lateness
}

// begin starts the first interval at from.
func (r *latenessRecorder) begin(from time.Time) {
	r.mu.Lock()
	r.cur = Lateness{From: from, Buckets: make([]int64, len(LatenessBounds)+1)}
	r.mu.Unlock()
}

// observe counts a handler start d late.
func (r *latenessRecorder) observe(d time.Duration) {
	r.mu.Lock()
	r.cur.add(d)
	r.mu.Unlock()
}

// cut ends the current interval at to, returns it and starts the next.
func (r *latenessRecorder) cut(to time.Time) Lateness {
	next := Lateness{From: to, Buckets: make([]int64, len(LatenessBounds)+1)}
	r.mu.Lock()
	l := r.cur
	r.cur = next
	r.mu.Unlock()
	l.To = to
	return l
}

// undo puts back an interval whose entry was not written: the next entry
// covers it too.
func (r *latenessRecorder) undo(l Lateness) {
	r.mu.Lock()
	r.cur.Merge(l)
	r.mu.Unlock()
}

// consumed counts a copy's outcome, in the metrics and for the registry.
func (c *consumer) consumed(outcome string) {
	metricConsumed.Inc(c.tube, outcome)
	if n := c.ops.outcomes[outcome]; n != nil {
		n.Add(1)
	}
}

// start begins the loop. Reserving starts paused for the queue until the
// flag has been read once, so that a consumer started while the queue is
// paused runs nothing.
func (o *consumerOps) start() {
	o.started = time.Now()
	o.late.begin(o.c.clock.Now())
	o.ran.Store(true)
	o.paused.Store(true)
	o.c.gate.setPaused(pauseQueue, true)
	o.loop.Start(o.run)
}

func (o *consumerOps) run(stop <-chan struct{}) {
	o.readPause()
	o.writeEntry()
	lastWrite := time.Now()
	for routine.Sleep(stop, pauseEvery) {
		if o.readPause() || time.Since(lastWrite) >= registryEvery-pauseEvery/2 {
			o.writeEntry()
			lastWrite = time.Now()
		}
	}
}

// readPause reads the queue's pause flag and says whether it changed (the
// registry entry then tells at once); when Redis does not answer, the last
// known state stands.
func (o *consumerOps) readPause() bool {
	ctx, cancel := context.WithTimeout(o.c.ctx, pauseEvery)
	v, err := o.idx.Paused(ctx, o.c.tube)
	cancel()
	if err != nil {
		return false
	}
	paused := v != nil
	was := o.paused.Swap(paused)
	o.c.gate.setPaused(pauseQueue, paused)
	// Reserving starts paused until this first read: no change to tell.
	if first := !o.read.Swap(true); first || paused == was {
		return false
	}
	if paused {
		logx.Infof("dq: queue %s paused by an operator: reserving stops", o.c.tube)
	} else {
		logx.Infof("dq: queue %s resumed", o.c.tube)
	}
	return true
}

// writeEntry writes the consumer's registry entry.
func (o *consumerOps) writeEntry() {
	info := o.info()
	b, err := json.Marshal(info)
	if err != nil {
		o.late.undo(info.Lateness)
		return
	}
	ctx, cancel := context.WithTimeout(o.c.ctx, registryEvery)
	err = o.idx.PutConsumer(ctx, o.c.tube, o.c.id, b, info.Seen.UnixMilli())
	cancel()
	if err != nil {
		o.late.undo(info.Lateness)
	}
}

// info is the consumer's registry entry as of now.
func (o *consumerOps) info() ConsumerInfo {
	c := o.c
	host, _ := os.Hostname()
	c.mu.Lock()
	inFlight := len(c.runs)
	c.mu.Unlock()
	lower, upper := c.clock.Bounds()
	outcomes := make(map[string]int64, len(o.outcomes))
	for k, n := range o.outcomes {
		outcomes[k] = n.Load()
	}
	reserveErrs := make(map[string]int64, len(o.reserveErrs))
	for k, n := range o.reserveErrs {
		reserveErrs[k] = n.Load()
	}
	seen := c.clock.Now()
	return ConsumerInfo{
		ID:               c.id,
		Host:             host,
		Pid:              os.Getpid(),
		Version:          Version(),
		Queue:            c.tube,
		Workers:          c.conf.Workers,
		InFlight:         inFlight,
		Held:             max(0, c.gate.inHand()-inFlight),
		Started:          o.started,
		Seen:             seen,
		ClockOffset:      (lower + upper) / 2,
		ClockUncertainty: (upper - lower) / 2,
		Paused:           c.gate.isPaused(pauseRedis | pauseQueue),
		Config:           o.config,
		Outcomes:         outcomes,
		Lateness:         o.late.cut(seen),
		ReserveErrors:    reserveErrs,
	}
}

// stop ends the loop and removes the registry entry, so that a stopped
// consumer leaves the registry at once rather than when its entry expires.
func (o *consumerOps) stop() {
	o.loop.Stop()
	if !o.ran.CompareAndSwap(true, false) {
		return
	}
	ctx, cancel := context.WithTimeout(o.c.ctx, time.Second)
	defer cancel()
	if err := o.idx.RemoveConsumer(ctx, o.c.tube, o.c.id); err != nil {
		logx.Errorf("dq: removing consumer %s from the registry: %v (its entry expires in %v)",
			o.c.id, err, claim.ConsumerTTL)
	}
}

// configDigests digests every field of c but the secrets (SigningKeys, the
// Redis password): 8 hex digits of the SHA-256 of the value's %v. Two
// consumers whose digests of a field differ run with different values of it.
func configDigests(c DqConf) map[string]string {
	c.SigningKeys = nil
	c.Redis.Pass = ""
	v := reflect.ValueOf(c)
	t := v.Type()
	out := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "SigningKeys" {
			continue
		}
		sum := sha256.Sum256(fmt.Appendf(nil, "%v", v.Field(i).Interface()))
		out[f.Name] = hex.EncodeToString(sum[:4])
	}
	return out
}

// deadCause names how a run failed, as the dead-letter index keeps it: its
// class (error, panic, timeout, lease, skip) and message, cut as the job's
// record cuts it (claim.CutMessage).
func deadCause(herr error, hctx context.Context) (class, msg string) {
	var pe *panicError
	switch {
	case errors.Is(herr, ErrSkipRetry):
		class = "skip"
	case errors.As(herr, &pe):
		class = "panic"
	case errors.Is(context.Cause(hctx), errLeaseLost):
		class = "lease"
	case errors.Is(hctx.Err(), context.DeadlineExceeded):
		class = "timeout"
	default:
		class = "error"
	}
	return class, claim.CutMessage(herr.Error())
}

// panicError is a handler's panic turned into its failure.
type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("dq: handler panic: %v", e.v) }

// deadIntent writes a copy's entry in the dead-letter index before the copy
// is buried, with what its run knew of the job (nothing when the claim
// itself answered Bury). A failure is logged: the copy is buried anyway,
// since keeping it visible is the safe side.
func (c *consumer) deadIntent(h *heldCopy) {
	ctx, cancel := context.WithTimeout(c.ctx, c.conf.RedisTimeout)
	defer cancel()
	err := c.store.Index().DeadAdd(ctx, c.tube, claim.DeadEntry{
		ID: h.env.ID, Ref: h.ref(), At: c.clock.NowMs(), Att: h.att, Cls: h.errCls, Msg: h.errMsg,
	}, h.att > 0)
	if err != nil {
		logx.Errorf("dq: dead-letter index entry of job %s: %v", h.env.ID, err)
	}
}
