package dq

import (
	"context"
	"errors"
	"time"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
)

// heldCopy is a reserved copy on its way through the claim protocol.
type heldCopy struct {
	loop   *nodeLoop
	cp     *node.Copy
	env    envelope.Envelope
	pri    uint32
	slot   int
	refStr string // ref, once spelt
	// What the run of this copy knew of the job, for its dead-letter entry:
	// the attempt (0 when it did not run) and its failure.
	att            int
	errCls, errMsg string
	wakeAt         time.Time // when the holder lets it go on
	lapsed         bool      // its run stopped touching it before the handler returned
	own            *localJob // the job's local mark while this copy claims it
	afterClaim     func()    // what waits for this copy's claim to be answered
}

// ref is the copy's own reference in the claim store, which tells a job's
// dead letter from other copies of its slot: its node, spelt as the config
// check normalizes it, and its beanstalkd job number. A claim, a gone and a
// bury each send it: it is spelt once.
func (h *heldCopy) ref() string {
	if h.refStr == "" {
		key, _ := endpointKey(h.loop.endpoint)
		h.refStr = claim.CopyRef(key, h.cp.ID)
	}
	return h.refStr
}

// take starts one reserved copy through the claim protocol: a copy due
// within the second waits in the holder, without a goroutine of its own;
// any other gets one now. A body that is not an envelope is buried.
func (c *consumer) take(l *nodeLoop, cp *node.Copy) {
	env, err := envelope.Decode(cp.Body, c.keys, c.accept)
	if err == nil {
		err = claim.CheckSlots(int(env.Count), int(env.Slot)) // the codec takes more slots than the claim store
	}
	if err != nil {
		go func() {
			defer c.copyDone(l)
			l.buryMalformed(cp, err)
		}()
		return
	}
	h := &heldCopy{loop: l, cp: cp, env: env, pri: env.Priority, slot: int(env.Slot)}
	if env.Legacy {
		h.pri = DefaultPriority
	}
	if d := c.clock.Until(env.DueMs); d > 0 && d < time.Second && c.hold.hold(h) {
		return
	}
	go c.claimCopy(h)
}

// claimCopy takes a copy through the claim protocol in the caller's
// goroutine, from its due time on.
func (c *consumer) claimCopy(h *heldCopy) {
	defer c.copyDone(h.loop)
	c.claimLoop(h)
}

// copyDone counts a copy reserved by l out once nothing more is done with
// it.
func (c *consumer) copyDone(l *nodeLoop) {
	l.inHand.Add(-1)
	c.gate.leave()
	c.copies.Done()
}

// claimLoop claims a copy until it is run, held back, released, deleted or
// buried. A copy due within the second is held; one due later goes back.
// Copies of one job that reach this process together are held and
// claimed once: the first waits for the due time and claims, the others wait
// for its outcome, so a due job wakes one goroutine, not one per copy.
func (c *consumer) claimLoop(h *heldCopy) {
	env := &h.env
	for {
		if d := c.clock.Until(env.DueMs); d >= time.Second {
			// Ready long before its due time (an operator's kick, a node's
			// clock): back with the rest of its delay, in whole seconds so
			// never late, rather than held without bound or touch.
			c.release(h, d.Truncate(time.Second))
			return
		}
		lj, mine := c.ownLocal(env.ID)
		if !mine {
			// Wait for that copy: its due time, then its run, within a
			// second; a longer run is Redis's to tell about.
			ended, ok := c.park(h, lj, max(c.clock.Until(env.DueMs), 0)+time.Second)
			if !ok {
				return
			}
			if ended {
				continue // that copy is done: look again
			}
			if !c.claimOnce(h) {
				return
			}
			continue
		}
		if !c.claimOwned(h, lj) {
			return
		}
	}
}

// claimOwned claims a copy, from its due time on, while it holds its job's
// local mark lj, which it gives up after; true means claim it again.
func (c *consumer) claimOwned(h *heldCopy, lj *localJob) bool {
	env := &h.env
	if d := c.clock.Until(env.DueMs); d > 0 && !c.wait(h, d) {
		c.endLocal(env.ID, lj)
		return false
	}
	h.own = lj
	again := c.claimOnce(h)
	h.own = nil
	c.endLocal(env.ID, lj)
	return again
}

// claimDue claims the copies the holder let go at their due time, in the
// caller's goroutine: one copy of each job claims (its siblings wait for its
// answer), and the claims of all these jobs go to Redis together, in one
// round trip (up to c.chunk of them), so that none waits for the replies to
// the others. The first job claimed runs in the caller's goroutine, each
// other in one of its own.
// A copy that must wait (for its due time by a clock sampled since, or for
// another copy of its job) or must not be claimed now takes the usual way,
// in a goroutine of its own.
func (c *consumer) claimDue(due []*heldCopy) {
	var leads []*heldCopy
	siblings := make(map[string][]*heldCopy, len(due))
	for _, h := range due {
		if s, ok := siblings[h.env.ID]; ok {
			siblings[h.env.ID] = append(s, h)
			continue
		}
		siblings[h.env.ID] = nil
		leads = append(leads, h)
	}
	var batch []*heldCopy
	var marks []*localJob
	var others []func()
	for _, h := range leads {
		sib := siblings[h.env.ID]
		lj, mine := c.ownLocal(h.env.ID)
		if !mine {
			// Another copy of the job claims or runs it here: these wait for it.
			others = append(others, func() {
				go c.claimCopy(h)
				for _, x := range sib {
					go c.claimCopy(x)
				}
			})
			continue
		}
		h.afterClaim = func() {
			for _, x := range sib {
				go c.claimCopy(x)
			}
		}
		if c.clock.Until(h.env.DueMs) > 0 || c.holdsClaimBack(h) {
			others = append(others, func() { go c.claimLead(h, lj) })
			continue
		}
		batch = append(batch, h)
		marks = append(marks, lj)
	}
	if len(batch) == 0 {
		for _, f := range others {
			f()
		}
		return
	}
	// A burst (thousands due at 09:00) goes in chunks, each run starting
	// once its chunk's replies are in, not the last chunk's. The first chunk
	// goes from here; the rest from a goroutine, started first so that the
	// next chunk can be on the wire while Redis runs this one.
	n := min(len(batch), c.chunk)
	if n < len(batch) {
		go func() {
			rest, lj := batch[n:], marks[n:]
			for len(rest) > 0 {
				k := min(len(rest), c.chunk)
				for _, f := range c.claimTogether(rest[:k], lj[:k]) {
					go f()
				}
				rest, lj = rest[k:], lj[k:]
			}
		}()
	}
	answered := c.claimTogether(batch[:n], marks[:n])
	for _, f := range others {
		f()
	}
	for _, f := range answered[1:] {
		go f()
	}
	answered[0]()
}

// claimTogether sends the claims of copies that hold their jobs' local marks
// in one batch and returns, for each, what acts on its answer.
func (c *consumer) claimTogether(batch []*heldCopy, marks []*localJob) []func() {
	reqs := make([]claim.ClaimReq, len(batch))
	for i, h := range batch {
		reqs[i] = c.claimReq(h, claim.NewClaimID())
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.conf.RedisTimeout)
	at := time.Now()
	res := c.store.ClaimAll(ctx, reqs)
	cancel()
	answered := make([]func(), len(batch))
	for i, h := range batch {
		answered[i] = func() { c.leadClaimed(h, marks[i], reqs[i].Cid, at, res[i]) }
	}
	return answered
}

// claimLead claims, the usual way, a copy that holds its job's local mark
// lj and whose siblings wait for its claim's answer.
func (c *consumer) claimLead(h *heldCopy, lj *localJob) {
	defer c.copyDone(h.loop)
	defer h.claimAnswered() // the siblings start, even when it made no claim
	if !c.claimOwned(h, lj) {
		return
	}
	c.claimLoop(h)
}

// leadClaimed acts on the answer r to the claim cid that a copy holding its
// job's local mark lj sent at at, as claimOwned would, then goes on as
// claimLoop.
func (c *consumer) leadClaimed(h *heldCopy, lj *localJob, cid string, at time.Time, r claim.ClaimResult) {
	defer c.copyDone(h.loop)
	h.own = lj
	again := c.claimed(h, cid, at, r.Reply, r.Err)
	h.own = nil
	c.endLocal(h.env.ID, lj)
	if again {
		c.claimLoop(h)
	}
}

// claimAnswered runs, once, what waited for the copy's claim to be
// answered.
func (h *heldCopy) claimAnswered() {
	if f := h.afterClaim; f != nil {
		h.afterClaim = nil
		f()
	}
}

// claimOnce claims a copy and acts on the answer; true means claim it again.
func (c *consumer) claimOnce(h *heldCopy) bool {
	env := &h.env
	if c.finished.has(env.ID, env.DueMs) {
		c.consumed(outcomeDuplicate)
		c.deleteCopy(h)
		return false
	}
	if c.isStopping() || c.redis.isDown() || c.ops.paused.Load() {
		// Redis away: no call through go-zero's breaker (see redisHealth);
		// the copy is claimed when it comes back. The queue paused: the copy
		// waits on its node for the resume, unclaimed.
		c.release(h, 0)
		return false
	}
	req := c.claimReq(h, claim.NewClaimID())
	ctx, cancel := context.WithTimeout(c.ctx, c.conf.RedisTimeout)
	at := time.Now()
	rep, err := c.store.Claim(ctx, req.Tube, req.ID, req.Cid, req.DueMs, req.Copy, req.LeaseMs, req.MaxFail)
	cancel()
	return c.claimed(h, req.Cid, at, rep, err)
}

// holdsClaimBack says whether claimOnce would not claim the copy now: its
// job ran here, the consumer stops, Redis is away or the queue paused.
func (c *consumer) holdsClaimBack(h *heldCopy) bool {
	return c.finished.has(h.env.ID, h.env.DueMs) || c.isStopping() || c.redis.isDown() || c.ops.paused.Load()
}

// claimReq is the claim of copy h by claim id cid.
func (c *consumer) claimReq(h *heldCopy, cid string) claim.ClaimReq {
	env := &h.env
	writer, _ := env.Header(envelope.WriterHeader)
	return claim.ClaimReq{
		Tube: c.tube, ID: env.ID, Cid: cid, DueMs: env.DueMs,
		Copy:    claim.Copy{N: int(env.Count), Slot: h.slot, Ref: h.ref(), Unc: env.Unc(), Writer: writer, By: c.id},
		LeaseMs: c.leaseMs, MaxFail: c.maxFail,
	}
}

// claimed acts on the answer to claim cid of a copy, sent at at; true means
// claim the copy again.
func (c *consumer) claimed(h *heldCopy, cid string, at time.Time, rep claim.Reply, err error) bool {
	env := &h.env
	h.claimAnswered()
	if h.own != nil {
		h.own.claimed.Store(time.Now().UnixNano())
	}
	if errors.Is(err, claim.ErrBadArg) {
		// Refused before reaching Redis: a copy no claim can take, not an
		// outage.
		h.loop.buryMalformed(h.cp, err)
		return false
	}
	if err != nil {
		// The claim may have run without its reply reaching us: once Redis
		// is back, give it up with a yield so it is not left to lapse.
		c.redis.failed(err, lostClaim{id: env.ID, cid: cid, slot: h.slot})
		c.release(h, 0)
		return false
	}
	if rep.Kind != claim.Run {
		return c.route(h, rep)
	}
	// A worker is taken after the claim, so that it runs handlers, not
	// round trips; a claim that finds none soon enough is handed back.
	lease := time.Duration(c.leaseMs) * time.Millisecond
	if !c.gate.acquire(min(workerWait, lease/4)) {
		return c.finish(h, cid, claim.OutcomeUnrun, 0, claim.Failure{})
	}
	return c.run(h, cid, rep.Attempt, at) // releases the worker
}

// route acts on a claim or finish reply other than Run; true means claim the
// copy again now.
func (c *consumer) route(h *heldCopy, rep claim.Reply) bool {
	switch rep.Kind {
	case claim.Early, claim.Release, claim.Spare:
		// Not due yet, due again after a retry's back-off, or run elsewhere.
		return c.waitOrRelease(h, time.Duration(rep.Ms)*time.Millisecond)
	case claim.Delete:
		if rep.Revoked() {
			c.consumed(outcomeRevoked)
		} else {
			c.consumed(outcomeDuplicate)
		}
		c.deleteCopy(h)
	case claim.Bury:
		c.buryCopy(h)
	default:
		// An answer this version does not know: hand the copy back.
		c.release(h, 0)
	}
	return false
}

// waitOrRelease holds a copy that is due again within a second, and releases
// one due later with the whole seconds of its wait (never late).
func (c *consumer) waitOrRelease(h *heldCopy, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	if d < time.Second {
		return c.wait(h, d)
	}
	c.release(h, d.Truncate(time.Second))
	return false
}

// wait holds a copy for d; on Stop it releases it at once and says false.
func (c *consumer) wait(h *heldCopy, d time.Duration) bool {
	metricHeld.Inc(c.tube)
	defer metricHeld.Dec(c.tube)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stopping:
		c.release(h, 0)
		return false
	}
}

// park holds a copy while another copy of its job is claimed or run here,
// until that ends or d passes, and for as long as that copy's claim waits
// for Redis: a Redis slow to answer it would answer this copy's claim no
// sooner, and only that the job runs. A second after that claim's answer
// (a longer run is Redis's to tell about), or once a third of the copy's TTR
// has passed, it stops waiting. ended says which; ok is false on Stop (the
// copy is then released).
func (c *consumer) park(h *heldCopy, lj *localJob, d time.Duration) (ended, ok bool) {
	metricHeld.Inc(c.tube)
	defer metricHeld.Dec(c.tube)
	limit := time.Now().Add(max(time.Duration(h.env.TTR)*time.Second/3, time.Second))
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-lj.ended:
			return true, true
		case now := <-t.C:
			more := parkPoll // that claim is still waiting for Redis
			if at := lj.claimed.Load(); at != 0 {
				more = time.Unix(0, at).Add(time.Second).Sub(now)
			}
			if more <= 0 || now.Add(more).After(limit) {
				return false, true
			}
			t.Reset(more)
		case <-c.stopping:
			c.release(h, 0)
			return false, false
		}
	}
}

// parkPoll is how often a parked copy looks whether the claim it waits for
// has been answered.
const parkPoll = 100 * time.Millisecond

func (c *consumer) release(h *heldCopy, delay time.Duration) {
	_ = h.cp.Release(h.pri, delay)
}

// deleteCopy deletes a copy whose job is done, revoked or has its dead
// letter elsewhere, and records the confirmed delete so that the job's
// record goes once every copy is gone.
func (c *consumer) deleteCopy(h *heldCopy) {
	if err := h.cp.Delete(); err != nil {
		return // the copy comes back and is routed again
	}
	if h.env.Count == 0 {
		return // slots unknown (legacy): the record expires instead
	}
	c.gones.add(claim.GoneItem{Tube: c.tube, ID: h.env.ID, Slot: h.slot, Ref: h.ref()})
}

// buryCopy makes a copy the job's dead letter, or deletes it when another
// copy already is.
// The dead-letter index entry is written first (an intent): a copy buried
// with no entry would be a dead letter no operator lists. An EXTRA copy's
// entry stays: the job's record names its real dead letter (bid), which the
// Inspector resolves.
func (c *consumer) buryCopy(h *heldCopy) {
	c.deadIntent(h)
	if err := h.cp.Bury(h.pri); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.conf.RedisTimeout)
	rep, err := c.store.Buried(ctx, c.tube, h.env.ID, h.slot, h.ref())
	cancel()
	switch {
	case err != nil:
	case rep.Kind == claim.Extra:
		c.consumed(outcomeDuplicate)
		c.deleteCopy(h) // its fate: an extra dead copy
	default:
		c.consumed(outcomeDead)
	}
}
