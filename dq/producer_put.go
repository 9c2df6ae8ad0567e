package dq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
)

// putJob is the state of one replicated enqueue. It is pooled: every put it
// launched has settled before it goes back.
type putJob struct {
	env     envelope.Envelope // Slot and Flags are set per copy
	delay   time.Duration
	spillBy time.Time // no spill is started after it; zero = no limit
	order   []int     // node indexes in random order; the first n hold the slots
	results chan putResult
	written []writtenCopy
	failed  []NodeError
}

// putResult is the outcome of one put of a copy.
type putResult struct {
	slot uint8
	node int
	put  node.Put
	err  error
}

// writtenCopy is a copy a node acknowledged, deletable on the connection
// that put it.
type writtenCopy struct {
	node *node.Node
	put  node.Put
}

// bufPool holds envelope buffers: a job's copies are encoded on every
// enqueue, and go-beanstalk is done with a body once Put returns.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// enqueue traces and counts one enqueue.
func (p *producer) enqueue(ctx context.Context, body []byte, due int64, opts []JobOption) (string, error) {
	ctx, span := startEnqueueSpan(ctx, p.tube)
	defer span.End()
	id, err := p.enqueueJob(ctx, span, body, due, opts)
	result := "ok"
	switch {
	case err == nil:
		span.SetAttributes(attrJobID.String(id))
	case errors.Is(err, ErrQuorum):
		result = "quorum"
	case errors.Is(err, ErrJobTooBig), errors.Is(err, ErrBadID):
		result = "invalid"
	default:
		result = "error"
	}
	if err != nil {
		span.RecordError(err)
	}
	metricProduced.Inc(p.tube, result)
	return id, err
}

// enqueueJob validates a job due at due (Unix ms, Redis time) and writes it.
func (p *producer) enqueueJob(ctx context.Context, span oteltrace.Span, body []byte, due int64,
	opts []JobOption) (string, error) {
	o := jobSettings(opts)
	if span.SpanContext().IsValid() {
		// Only a traced enqueue pays for the trace context in its envelope.
		o.headers = traceHeaders(ctx, o.headers)
	}
	var wid string
	if o.id != "" {
		if err := envelope.ValidID(o.id); err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadID, o.id, err)
		}
		// Each call writes under its own writer id, so that two calls of
		// this instance racing with one ID do not both count as the owner.
		wid = p.wid + "-" + strconv.FormatUint(p.widSeq.Add(1), 36)
	}

	j := p.getJob()
	defer p.releaseJob(j)
	j.env = envelope.Envelope{
		ID:       o.id,
		DueMs:    due,
		Count:    uint8(p.conf.Replicas),
		Priority: o.priority,
		TTR:      p.ttrSec,
		Body:     body,
	}
	if len(o.headers) > 0 || wid != "" {
		j.env.Headers = make([]envelope.Header, 0, len(o.headers)+1)
		if wid != "" {
			// First, so that a user's header of the same name does not
			// stand in for it: consumers delete the copies of a writer
			// whose reservation another writer took over.
			j.env.Headers = append(j.env.Headers, envelope.Header{Key: envelope.WriterHeader, Value: wid})
		}
		for _, h := range o.headers {
			j.env.Headers = append(j.env.Headers, envelope.Header{Key: h.key, Value: h.value})
		}
	}
	if j.env.ID == "" {
		// A generated ID has the same length whatever it holds: size the
		// envelope with a placeholder and draw the random bits only for a
		// job that fits.
		j.env.ID = idPlaceholder
	}
	if size := len(body) + envelope.Overhead(&j.env, p.keys); size > p.conf.MaxJobSize {
		return "", fmt.Errorf("%w: %d bytes with the envelope, MaxJobSize is %d",
			ErrJobTooBig, size, p.conf.MaxJobSize)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}

	if o.id == "" {
		j.env.ID = envelope.NewID(due)
		return p.write(ctx, j, "")
	}
	return p.writeOnce(ctx, j, wid)
}

// busyPoll is how often an enqueue whose ID another writer is putting asks
// again whether that writer confirmed it.
const busyPoll = 50 * time.Millisecond

// idPlaceholder has the length of every generated ID.
var idPlaceholder = envelope.NewID(0)

// writeOnce writes a WithID job as writer wid unless its ID is already
// enqueued: the ID is reserved in Redis before any put and confirmed after
// the quorum. A writer whose put window passed before it confirmed may find
// that another writer took the ID over: its copies are then removed, and it
// answers what that writer's enqueue implies.
func (p *producer) writeOnce(ctx context.Context, j *putJob, wid string) (string, error) {
	id := j.env.ID
	for {
		start := time.Now()
		rctx, cancel := redisCtx(ctx, false)
		rep, err := p.store.Reserve(rctx, p.tube, id, wid, j.env.DueMs, p.window.Milliseconds())
		cancel()
		if err != nil {
			return "", fmt.Errorf("dq: reserving job id %s in Redis: %w", id, err)
		}
		switch rep.Kind {
		case claim.Fresh:
		case claim.Dup:
			return id, nil
		case claim.Revoked:
			return "", fmt.Errorf("%w: %s", ErrRevoked, id)
		case claim.Busy:
			// Another writer is putting this ID: once it confirms, this
			// call answers Dup; if it died, its window runs out. Asking
			// again soon spares a retried request most of the window.
			wait := min(time.Duration(max(rep.Ms, 1))*time.Millisecond, busyPoll)
			if err := sleepCtx(ctx, wait); err != nil {
				return "", err
			}
			continue
		default:
			return "", fmt.Errorf("dq: reserving job id %s: unexpected reply %v", id, rep.Kind)
		}

		j.spillBy = start.Add(p.window - p.conf.DialTimeout - p.conf.IOTimeout)
		if _, err := p.write(ctx, j, wid); err != nil {
			return "", err
		}
		rctx, cancel = redisCtx(ctx, true)
		rep, err = p.store.Confirm(rctx, p.tube, id, wid)
		cancel()
		if err != nil {
			// The copies are written and the job will run. An error would
			// invite a retry, and a retry after the put window would write
			// the job a second time.
			logx.WithContext(ctx).Errorf("dq: job %s enqueued, but confirming its id failed: %v", id, err)
			return id, nil
		}
		switch rep.Kind {
		case claim.Taken:
			// Another writer took the ID over after this call's put window,
			// and its enqueue stands: these copies, perhaps with another
			// body or due time, must not run in its place. Those that
			// cannot be deleted now are deleted when a consumer sees them.
			p.unput(ctx, j)
			return id, nil
		case claim.Other:
			// No enqueue stands yet: another writer holds the ID, or an
			// abort freed it. Remove these copies and reserve again: wait
			// for that writer's outcome, or take the ID.
			p.unput(ctx, j)
			j.forget()
			continue
		case claim.Revoked:
			p.unput(ctx, j)
			return "", fmt.Errorf("%w: %s", ErrRevoked, id)
		case claim.MaybeDone:
			// No record: it expired after the job ran from these copies
			// (or Redis lost it). The enqueue stands; writing the job again
			// could run it twice. A copy outliving its record is the
			// documented DedupeTTL limit.
			return id, nil
		}
		return id, nil
	}
}

// write puts the job's copies on Replicas distinct nodes as writer wid ("" for
// a generated ID) and settles the outcome: the ID once MinWrites copies are
// acknowledged, else the job is aborted and its copies removed.
func (p *producer) write(ctx context.Context, j *putJob, wid string) (string, error) {
	n := p.conf.Replicas
	p.shuffle(j.order)
	j.delay = p.delayOf(j.env.DueMs)

	next := 1 // order[0] holds slot 0
	launch := func(slot uint8, flags uint8) {
		k := j.order[next]
		next++
		go p.putCopy(ctx, j, k, slot, flags)
	}
	for i := 1; i < n; i++ {
		launch(uint8(i), 0)
	}
	// Slot 0 is put on this goroutine, beside the others: one goroutine
	// fewer per job. Its result waits in the channel like theirs.
	p.putCopy(ctx, j, j.order[0], 0, 0)

	// Every put launched is awaited, so that the copies written are known
	// when the result is given, whatever it is.
	var flags uint8
	var noteErr error
	for inflight := n; inflight > 0; inflight-- {
		r := <-j.results
		if r.err == nil {
			j.written = append(j.written, writtenCopy{node: p.nodes[r.node], put: r.put})
			continue
		}
		j.failed = append(j.failed, NodeError{Endpoint: p.nodes[r.node].Endpoint(), Err: r.err})
		if next == len(j.order) || ctx.Err() != nil || (!j.spillBy.IsZero() && time.Now().After(j.spillBy)) {
			continue
		}
		if node.IsUncertain(r.err) && flags&envelope.FlagUnc == 0 {
			// The copy may still land under this slot, beside the spill
			// copy: the record must then never be collected by counting
			// deleted slots.
			rctx, cancel := redisCtx(ctx, false)
			err := p.store.Note(rctx, p.tube, j.env.ID, j.env.DueMs, n)
			cancel()
			if err != nil {
				noteErr = err
				continue
			}
			flags |= envelope.FlagUnc
		}
		launch(r.slot, flags)
		inflight++
	}

	if len(j.written) >= p.conf.MinWrites {
		p.recent.add(j.env.ID, j.written)
		return j.env.ID, nil
	}
	return p.missed(ctx, j, wid, noteErr)
}

// missed handles a job of writer wid below quorum: its record is aborted
// first, so that a copy landing later is deleted when seen, then the copies
// written are removed. A consumer that already started the job wins: the ID
// stands. So does another writer's confirmed enqueue of a WithID job that
// took the ID over after wid's put window; one still putting it is left to
// settle it.
func (p *producer) missed(ctx context.Context, j *putJob, wid string, noteErr error) (string, error) {
	qerr := &QuorumError{
		ID:     j.env.ID,
		Acked:  len(j.written),
		Needed: p.conf.MinWrites,
		Nodes:  append([]NodeError(nil), j.failed...),
	}
	var err error = qerr

	rctx, cancel := redisCtx(ctx, true)
	rep, aerr := p.store.Abort(rctx, p.tube, j.env.ID, wid, j.env.DueMs, p.conf.Replicas)
	cancel()
	switch {
	case aerr != nil:
		err = fmt.Errorf("%w; recording the abort in Redis failed, a copy that lands late may run: %v", err, aerr)
	case rep.Kind == claim.Started:
		p.recent.add(j.env.ID, j.written)
		return j.env.ID, nil
	case rep.Kind == claim.Taken:
		p.unput(ctx, j)
		return j.env.ID, nil
	case rep.Kind == claim.Other:
		err = fmt.Errorf("%w; another writer took the id over and is enqueueing it", err)
	}

	if derr := p.unput(ctx, j); derr != nil {
		err = fmt.Errorf("%w; removing written copies failed: %v", err, derr)
	}
	if noteErr != nil {
		err = fmt.Errorf("%w; no spill past an uncertain put: noting it in Redis failed: %v", err, noteErr)
	}
	return "", err
}

// unput deletes the copies written, on the connections that put them, even
// when the caller gave up.
func (p *producer) unput(ctx context.Context, j *putJob) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.conf.DialTimeout+p.conf.IOTimeout)
	defer cancel()
	var errs []error
	for _, w := range j.written {
		if err := w.node.Delete(dctx, w.put); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// putCopy encodes and puts one copy, and reports on j.results.
func (p *producer) putCopy(ctx context.Context, j *putJob, k int, slot, flags uint8) {
	r := putResult{slot: slot, node: k}
	defer func() {
		// The enqueue waits for this result: a panic below must become one.
		if v := recover(); v != nil {
			r.put, r.err = node.Put{}, fmt.Errorf("put panicked: %v", v)
		}
		j.results <- r
	}()
	env := j.env
	env.Slot = slot
	env.Flags = flags
	bp := bufPool.Get().(*[]byte)
	buf, err := envelope.AppendEncode((*bp)[:0], &env, p.keys)
	if err == nil {
		r.put, r.err = p.nodes[k].Put(ctx, buf, env.Priority, j.delay, p.ttr)
		switch {
		case r.err == nil:
			metricCopies.Inc(p.nodes[k].Endpoint(), "ok")
		case node.IsUncertain(r.err):
			metricCopies.Inc(p.nodes[k].Endpoint(), "uncertain")
			metricErrors.Inc(p.nodes[k].Endpoint(), "put")
		default:
			metricCopies.Inc(p.nodes[k].Endpoint(), "failed")
			metricErrors.Inc(p.nodes[k].Endpoint(), "put")
		}
	} else {
		r.err = fmt.Errorf("encoding the envelope: %w", err)
	}
	*bp = buf[:0]
	bufPool.Put(bp)
}

// delayOf is the beanstalkd delay of a job due at due: whole seconds,
// counted from the latest the Redis clock can read now and rounded down, so
// that a copy is never ready late; consumers hold a copy that comes ready
// early until the exact due time.
func (p *producer) delayOf(due int64) time.Duration {
	d := time.UnixMilli(due).Sub(p.clock.Latest())
	if d < time.Second {
		return 0
	}
	return d.Truncate(time.Second)
}

// shuffle puts the node indexes in order in random order, so that jobs spread
// over all nodes when there are more than Replicas.
func (p *producer) shuffle(order []int) {
	if len(order) <= 1 {
		return
	}
	for i := len(order) - 1; i > 0; i-- {
		k := rand.IntN(i + 1)
		order[i], order[k] = order[k], order[i]
	}
}

func (p *producer) getJob() *putJob {
	if j, ok := p.jobs.Get().(*putJob); ok {
		return j
	}
	j := &putJob{
		order:   make([]int, len(p.nodes)),
		results: make(chan putResult, len(p.nodes)),
	}
	for i := range j.order {
		j.order[i] = i
	}
	return j
}

func (p *producer) releaseJob(j *putJob) {
	j.env = envelope.Envelope{}
	j.forget()
	p.jobs.Put(j)
}

// forget clears what a round of puts left, for the next round or the pool.
func (j *putJob) forget() {
	j.spillBy = time.Time{}
	clear(j.written)
	j.written = j.written[:0]
	clear(j.failed)
	j.failed = j.failed[:0]
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
