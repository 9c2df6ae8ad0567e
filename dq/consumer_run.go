package dq

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
)

// activeRun is one handler run holding a claim (cid) on a job.
type activeRun struct {
	c      *consumer
	id     string
	cid    string
	loop   *nodeLoop
	cp     *node.Copy
	cancel context.CancelCauseFunc

	state     atomic.Int32 // runRunning, then runReturned or runStopped, whichever came first
	abandoned chan struct{}
	abandonMu sync.Once
	hbStop    chan struct{}
	hbDone    chan struct{}
	hbCtx     context.Context // the heartbeat's Redis calls; cancelled when it stops
	hbCancel  context.CancelFunc
	every     time.Duration // heartbeat period: touchEvery of the copy
}

// touchEvery is how often a reserved copy is touched: every third of the
// lease, or of the copy's own TTR when that is shorter (a go-queue copy's is
// 5 s), so that neither lapses between heartbeats.
func (c *consumer) touchEvery(h *heldCopy) time.Duration {
	ttr := time.Duration(max(h.env.TTR, 1)) * time.Second
	return min(c.heartbeat, ttr/3)
}

// The states of a run's handler. A result that came before Stop cancelled
// the handler (runReturned) stands as it is; after the cancel (runStopped) an
// error other than ErrSkipRetry hands the job back with no failure counted.
const (
	runRunning int32 = iota
	runReturned
	runStopped
)

// stop cancels the handler for Stop, unless it returned already.
func (r *activeRun) stop() {
	if r.state.CompareAndSwap(runRunning, runStopped) {
		r.cancel(errShutdown)
	}
}

// leaseMargin is how long before its lease runs out a handler's ctx is
// cancelled, so that it ends before another consumer may claim the job: 2 s,
// or a third of a short lease (renewals come every third of it).
func leaseMargin(lease time.Duration) time.Duration { return min(2*time.Second, lease/3) }

// run runs the handler of a job claimed at claimed, keeps its lease and
// reservation alive, and finishes the claim with the outcome; true means
// claim the copy again now (a retry due within the second).
func (c *consumer) run(h *heldCopy, cid string, attempt int, claimed time.Time) bool {
	// The worker is the handler's: it is free again as soon as the handler
	// returns, not after the acknowledgement, which may wait behind a
	// blocking reserve on the copy's connection.
	var once sync.Once
	freeWorker := func() { once.Do(c.gate.release) }
	defer freeWorker()
	env := &h.env
	if env.Legacy {
		// A mixed fleet: go-queue consumers take this lock for the same body;
		// if one already did, it ran the job. zerodq's own mark there is an
		// earlier attempt of ours.
		ctx, cancel := context.WithTimeout(c.ctx, c.conf.RedisTimeout)
		mine, err := c.store.LegacyLock(ctx, envelope.LegacyLockKey(h.cp.Body), claim.LegacyLockMark(env.ID))
		cancel()
		if err != nil {
			c.redis.failed(err, lostClaim{id: env.ID, cid: cid, slot: h.slot})
			c.release(h, 0)
			return false
		}
		if !mine {
			return c.finish(h, cid, claim.OutcomeOK, 0, claim.Failure{})
		}
	}

	job := &Job{
		ID:       env.ID,
		Attempt:  attempt,
		DueAt:    time.UnixMilli(env.DueMs),
		Tube:     h.loop.tube,
		Endpoint: h.loop.endpoint,
		Priority: h.pri,
		Legacy:   env.Legacy,
	}
	if len(env.Headers) > 0 {
		job.Headers = make(map[string]string, len(env.Headers))
		for _, hd := range env.Headers {
			job.Headers[hd.Key] = hd.Value
		}
	}
	started := time.Now()
	lateness := started.Sub(job.DueAt).Milliseconds()
	base, cancel := context.WithCancelCause(context.Background())
	spanCtx, span := startConsumeSpan(base, job, lateness)
	defer span.End()
	hctx, cancelTimeout := context.WithTimeout(withJob(spanCtx, job), c.conf.Timeout)
	defer cancelTimeout()
	r := &activeRun{
		c: c, id: env.ID, cid: cid, loop: h.loop, cp: h.cp, cancel: cancel,
		abandoned: make(chan struct{}), every: c.touchEvery(h),
		hbStop: make(chan struct{}), hbDone: make(chan struct{}),
	}
	r.hbCtx, r.hbCancel = context.WithCancel(c.ctx)
	defer r.hbCancel()
	if !c.addRun(r) {
		// Stop began since the claim: no handler starts after that.
		cancel(nil)
		return c.finish(h, cid, claim.OutcomeUnrun, 0, claim.Failure{})
	}
	metricLateness.Observe(lateness, c.tube)
	c.ops.late.observe(started.Sub(job.DueAt))
	metricInFlight.Inc(c.tube)
	defer metricInFlight.Dec(c.tube)
	go r.heartbeat(claimed)

	result := make(chan error, 1)
	go func() {
		// The result is sent from a defer: a handler that ends its goroutine
		// with runtime.Goexit (t.FailNow, or code that calls it) neither
		// returns nor panics, and its worker must not wait for it forever.
		err, returned := errHandlerExited, false
		defer func() {
			if !returned {
				logx.WithContext(hctx).WithFields(logx.Field("job", env.ID), logx.Field("attempt", attempt)).
					Errorf("dq: handler exited its goroutine without returning (runtime.Goexit); counted as a failure")
			}
			r.state.CompareAndSwap(runRunning, runReturned)
			result <- err
		}()
		err = c.call(hctx, env.Body)
		returned = true
	}()
	var herr error
	select {
	case herr = <-result:
	case <-r.abandoned:
		// A result already there wins over the abandonment.
		select {
		case herr = <-result:
		default:
			// Stop gave up on a handler that ignores its ctx; the job is
			// taken over elsewhere once its cut lease lapses.
			c.removeRun(r)
			return false
		}
	}
	freeWorker()
	metricHandlerDuration.Observe(time.Since(started).Milliseconds(), c.tube)
	cancel(nil)
	// A heartbeat that ended before the handler returned (a hung handler
	// past Timeout + 1 s) stopped touching the copy: its reservation may
	// have lapsed, and the job may since be reserved, or buried, elsewhere.
	h.lapsed = r.heartbeatEnded()
	// An extend in flight is not waited for: the handler's result is in.
	r.hbCancel()
	close(r.hbStop)
	<-r.hbDone
	c.removeRun(r)

	outcome, backoff, why := claim.OutcomeOK, time.Duration(0), claim.Failure{}
	h.att = attempt
	if herr != nil {
		h.errCls, h.errMsg = deadCause(herr, hctx)
		why = claim.Failure{Class: h.errCls, Message: h.errMsg}
	}
	switch {
	case herr == nil:
	case errors.Is(herr, ErrSkipRetry):
		outcome = claim.OutcomeDead
	case r.state.Load() == runStopped:
		// Interrupted by Stop: another consumer starts it at once.
		outcome = claim.OutcomeYield
	default:
		span.RecordError(herr)
		outcome = claim.OutcomeFail
		backoff = retryBackoff(attempt, c.conf.RetryBackoff, c.conf.MaxRetryBackoff)
		logx.WithContext(hctx).WithFields(logx.Field("job", env.ID), logx.Field("attempt", attempt),
			logx.Field("node", h.loop.endpoint), logx.Field("tube", h.loop.tube)).
			Debugf("dq: handler failed, retrying in %v: %v", backoff, herr)
	}
	return c.finish(h, cid, outcome, backoff, why)
}

// call runs the handler, turning a panic into an error.
func (c *consumer) call(ctx context.Context, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{v: p}
			logx.WithContext(ctx).Errorf("%v\n%s", err, debug.Stack())
		}
	}()
	return c.handler.Consume(ctx, body)
}

// finish records the outcome of a run and acts on the answer; true means
// claim the copy again now. If Redis does not answer, it keeps trying (the
// copy stays reserved and touched) for up to a lease, then releases the copy
// and leaves the outcome to the Redis prober, which reports it when Redis
// answers again.
func (c *consumer) finish(h *heldCopy, cid string, o claim.Outcome, backoff time.Duration, why claim.Failure) bool {
	deadline := time.Now().Add(time.Duration(c.leaseMs) * time.Millisecond)
	lastTouch := time.Now()
	for attempt := 0; ; attempt++ {
		sent := time.Now()
		ctx, cancel := context.WithTimeout(c.ctx, c.conf.RedisTimeout)
		rep, err := c.store.Finish(ctx, c.tube, h.env.ID, cid, h.slot, o, backoff.Milliseconds(), c.maxFail, why)
		cancel()
		if err == nil {
			// A Delete for a run whose lease was taken over (not Own) says
			// only that this copy goes: the job may be another run's dead
			// letter, which an operator may kick to run again.
			done := o == claim.OutcomeOK && rep.Kind == claim.Delete && rep.Own
			switch {
			case done:
				c.consumed(outcomeOK)
			case o == claim.OutcomeFail && rep.Kind == claim.Release:
				c.consumed(outcomeRetry)
			}
			switch {
			case rep.Kind == claim.Release && rep.Ms == 0:
				c.release(h, 0) // a yield: another consumer starts it at once
				return false
			case rep.Kind == claim.Delete:
				if done {
					c.finished.add(h.env.ID, h.env.DueMs, sent)
				}
				if h.lapsed && !rep.Own {
					// beanstalkd deletes a buried or ready job for any
					// connection: this copy, released when its
					// reservation lapsed, may be another run's dead letter
					// now. It is left alone; if it is still ours it comes
					// back and is routed then.
					return false
				}
				c.deleteCopy(h)
				return false
			}
			// Due again within the second (a short retry back-off): the
			// caller claims it again.
			return c.route(h, rep)
		}
		if time.Now().After(deadline) || c.ctx.Err() != nil {
			// The outcome is kept and reported as soon as Redis answers,
			// before this consumer reserves again: Redis accepts it while
			// no other consumer has claimed the job.
			logx.Errorf("dq: finish job %s: %v; giving the copy back, reporting %v when Redis is back",
				h.env.ID, err, o)
			c.redis.failed(err, lostClaim{id: h.env.ID, cid: cid, slot: h.slot, dueMs: h.env.DueMs,
				outcome: o, backoff: backoff, why: why})
			c.release(h, 0)
			return false
		}
		// Redis is away: pause reserving, and try again when the prober
		// finds it back.
		c.redis.failed(err, lostClaim{})
		lastTouch = c.awaitRedis(h, deadline, lastTouch)
	}
}

// awaitRedis holds a copy whose finish Redis did not take until the prober
// finds Redis back, deadline passes or the consumer's calls end, touching the
// copy meanwhile (last touched at lastTouch; it returns the latest touch).
// Stopping, with no prober, it waits one probe interval.
func (c *consumer) awaitRedis(h *heldCopy, deadline, lastTouch time.Time) time.Time {
	back := c.redis.backCh()
	wait := time.Until(deadline)
	if !c.redis.isDown() {
		back, wait = nil, redisProbeInterval
	}
	end := time.NewTimer(wait)
	defer end.Stop()
	for {
		touch := time.NewTimer(time.Until(lastTouch.Add(c.touchEvery(h))))
		select {
		case <-back:
		case <-end.C:
		case <-c.ctx.Done():
		case <-touch.C:
			_ = h.cp.Touch()
			lastTouch = time.Now()
			continue
		}
		touch.Stop()
		return lastTouch
	}
}

// heartbeat renews the lease granted at start (Redis) and the reservation
// (touch) every TTR/3, or a third of the copy's own shorter TTR, until the
// handler returns or Timeout + 1 s has passed;
// the handler's ctx is cancelled leaseMargin before the last renewal sent
// would lapse, and at once when the claim turns out to be someone else's.
func (r *activeRun) heartbeat(start time.Time) {
	defer close(r.hbDone)
	c := r.c
	lease := time.Duration(c.leaseMs) * time.Millisecond
	margin := leaseMargin(lease)
	guard := time.AfterFunc(time.Until(start.Add(lease-margin)), func() { r.cancel(errLeaseLost) })
	defer guard.Stop()
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	stopAt := start.Add(c.conf.Timeout + time.Second)
	for {
		select {
		case <-r.hbStop:
			return
		case <-r.abandoned:
			return
		case now := <-tick.C:
			if now.After(stopAt) {
				return // a hung handler loses its lease and is retried elsewhere
			}
			if c.redis.isDown() {
				// No call through the breaker while Redis is away: the
				// guard cancels the handler before the lease lapses.
				_ = r.cp.Touch()
				continue
			}
			sent := time.Now()
			ctx, cancel := context.WithTimeout(r.hbCtx, min(c.conf.RedisTimeout, r.every))
			rep, err := c.store.Extend(ctx, c.tube, r.id, r.cid, c.leaseMs)
			cancel()
			switch {
			case r.hbCtx.Err() != nil:
				return // the handler returned, or Stop abandoned it
			case err != nil:
			case rep.Kind == claim.Lost:
				r.cancel(errLeaseLost)
			default:
				guard.Reset(time.Until(sent.Add(lease - margin)))
			}
			_ = r.cp.Touch()
		}
	}
}

// heartbeatEnded reports whether the run's heartbeat has stopped renewing
// its lease and touching its copy.
func (r *activeRun) heartbeatEnded() bool {
	select {
	case <-r.hbDone:
		return true
	default:
		return false
	}
}

// abandon cuts the lease of a run that outlived Stop's grace to 1.5 s and
// stops renewing it.
func (r *activeRun) abandon() {
	r.abandonMu.Do(func() {
		r.hbCancel()
		close(r.abandoned)
		<-r.hbDone
		ctx, cancel := context.WithTimeout(r.c.ctx, time.Second)
		_, _ = r.c.store.Extend(ctx, r.c.tube, r.id, r.cid, 1500)
		cancel()
	})
}
