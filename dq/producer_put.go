package dq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
	"github.com/zerodq/zerodq/internal/routine"
)

// putJob is the state of one round of replicated puts. It is pooled: every
// put it launched has settled, and its caller let go of it, before it goes
// back.
//
// Until write returns, the caller takes every put's result from results and
// decides on spills. Then the job is detached: the puts still in flight
// settle in the background, each handling its own result under mu (a copy
// written is recorded, or deleted when the enqueue was undone; a definite
// failure may still spill), and the last one to settle after the caller let
// go finishes the job.
type putJob struct {
	env     envelope.Envelope // Slot and Flags are set per copy
	delay   time.Duration
	spillBy time.Time // no spill is started after it; zero = no limit
	order   []int     // node indexes in random order; the first n hold the slots
	results chan putResult
	taken   int // results the caller took from results

	mu       sync.Mutex
	next     int   // the next index of order to put on
	flags    uint8 // the flags of spill copies: FlagUnc once an uncertain put was noted
	launched int   // puts launched
	settled  int   // puts that gave their result
	stored   int   // of them, those that stored their copy
	detached bool  // write returned: puts settle on their own
	held     bool  // the caller still uses the job
	armed    bool  // counted in the producer's background work until finished
	undo     bool  // the enqueue was undone: every copy written is deleted
	undone   int   // written[:undone] are deleted or being deleted
	recorded int   // written[:recorded] are in the producer's recent puts
	written  []writtenCopy
	failed   []NodeError

	// launches[i] is the put launch made on order[i]; its done is made once
	// per pooled job, so that a launch allocates no callback.
	launches []launchState
}

type launchState struct {
	slot uint8
	node int
	buf  *[]byte
	done func(node.Put, error)
}

// putResult is the outcome of one put of a copy, with the encoded copy.
type putResult struct {
	slot uint8
	node int
	put  node.Put
	err  error
	buf  *[]byte
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
	ctx, span := p.spans.start(ctx)
	defer span.End()
	id, err := p.enqueueJob(ctx, span, body, due, opts)
	result := "ok"
	switch {
	case err == nil:
		if span.IsRecording() {
			span.SetAttributes(attrJobID.String(id))
		}
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
	metricProduced.Inc(p.labels.produced[result]...)
	p.ops.enqueuedOne(err)
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
	// writeOnce may trade j for another job for its next round of puts.
	defer func() { p.letGo(j) }()
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
	return p.writeOnce(ctx, &j, wid)
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
// answers what that writer's enqueue implies. A new round of puts takes a
// new job in *jp, since the last round's puts may still be in flight.
func (p *producer) writeOnce(ctx context.Context, jp **putJob, wid string) (string, error) {
	j := *jp
	id := j.env.ID
	for {
		start := time.Now()
		rctx, cancel := p.redisCtx(ctx, false)
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
		// Confirmed after the quorum, not after every put settled: a put
		// still in flight lands under this writer's id, and is deleted
		// when it lands if the enqueue is undone below, or by a consumer
		// (the writer check) if it lands after that.
		rctx, cancel = p.redisCtx(ctx, true)
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
			_ = p.unput(ctx, j)
			return id, nil
		case claim.Other:
			// No enqueue stands yet: another writer holds the ID, or an
			// abort freed it. Remove these copies and reserve again: wait
			// for that writer's outcome, or take the ID.
			_ = p.unput(ctx, j)
			next := p.getJob()
			next.env = j.env
			p.letGo(j)
			j, *jp = next, next
			continue
		case claim.Revoked:
			_ = p.unput(ctx, j)
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
// a generated ID) and returns as soon as the outcome is known: the ID once
// MinWrites copies are acknowledged, else, when every put failed or ctx
// ended first, the job is aborted and its copies removed. Puts still in
// flight then settle in the background (see putJob).
func (p *producer) write(ctx context.Context, j *putJob, wid string) (string, error) {
	n := p.conf.Replicas
	p.shuffle(j.order)
	j.delay = p.delayOf(j.env.DueMs)
	j.armed = true
	p.bg.add()
	// Enqueues running side by side queue their puts and let each other
	// run before they await them (which flushes): the puts of several jobs
	// go out in one write per node.
	crowded := p.writing.Add(1) > 1
	defer p.writing.Add(-1)
	var replies [maxFirstRound]node.Reply
	for i := range n {
		r := p.launch(j, uint8(i), 0, crowded)
		if i < len(replies) {
			replies[i] = r
		} else {
			r.Await()
		}
	}
	if crowded {
		runtime.Gosched()
	}
	// The replies are read once every put is out (a queued put goes out as
	// its reply is awaited), so that reading does not hold up the writes. A
	// lone enqueue reads them itself, when nobody else reads a node's
	// connection, sparing the hand-off from the node's reader
	// goroutine; a node slower than inlineWait is left to that goroutine, so
	// that it cannot hold up a quorum of the others. Once it has its quorum
	// it leaves the other replies to the next enqueue on their connections,
	// which reads them on its way to its own (or to the goroutine, if none
	// comes soon): it does not wait for the slowest node, and a stream of
	// enqueues wakes no goroutine. Concurrent enqueues leave every reply to
	// the goroutines, which read many in one wake-up.
	lone := !crowded && p.writing.Load() == 1
	for _, r := range replies[:min(n, len(replies))] {
		switch {
		case !lone:
			r.Await()
		case p.hasQuorum(j):
			r.Leave()
		default:
			r.Read(inlineWait)
		}
	}

	var noteErr error
	for len(j.written) < p.conf.MinWrites && j.taken < j.launched {
		var r putResult
		var ok bool
		select {
		case r, ok = <-j.results: // mostly there: spares locking ctx's channel too
		default:
		}
		if !ok {
			select {
			case r = <-j.results:
			case <-ctx.Done():
				p.detach(j)
				if p.quorum(j) {
					return j.env.ID, nil
				}
				return p.missed(ctx, j, wid, noteErr, context.Cause(ctx))
			}
		}
		j.taken++
		bufFree(r.buf)
		if r.err == nil {
			j.written = append(j.written, writtenCopy{node: p.nodes[r.node], put: r.put})
			continue
		}
		j.failed = append(j.failed, NodeError{Endpoint: p.nodes[r.node].Endpoint(), Err: r.err})
		if j.next == len(j.order) || ctx.Err() != nil || (!j.spillBy.IsZero() && time.Now().After(j.spillBy)) {
			continue
		}
		if node.IsUncertain(r.err) && j.flags&envelope.FlagUnc == 0 {
			// The copy may still land under this slot, beside the spill
			// copy: the record must then never be collected by counting
			// deleted slots.
			rctx, cancel := p.redisCtx(ctx, false)
			err := p.store.Note(rctx, p.tube, j.env.ID, j.env.DueMs, n)
			cancel()
			if err != nil {
				noteErr = err
				continue
			}
			j.mu.Lock()
			j.flags |= envelope.FlagUnc
			j.mu.Unlock()
		}
		p.launch(j, r.slot, j.flags, false).Await()
	}

	p.detach(j)
	if p.quorum(j) {
		return j.env.ID, nil
	}
	return p.missed(ctx, j, wid, noteErr, nil)
}

// inlineWait is how long an enqueue waits for a node's reply it reads
// itself, before it leaves it to the node's reader goroutine (half of it to
// all of it: see node.Reply.Read). It is not shorter because the read's
// deadline is a runtime timer, moved forward by half the wait as it runs
// out: at 5 ms, moved every 0.6 ms on each connection, it kept the runtime's
// idle thread waking for a stream of lone enqueues (see the README's
// benchmarks). A node that stops answering holds a lone enqueue that long,
// once.
const inlineWait = 50 * time.Millisecond

// maxFirstRound is how many puts of a job's first round are awaited together
// after they all went out; Replicas is rarely more.
const maxFirstRound = 8

// hasQuorum reports whether MinWrites of j's puts stored their copy so far.
func (p *producer) hasQuorum(j *putJob) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stored >= p.conf.MinWrites
}

// quorum reports whether a detached job has MinWrites copies, and then
// records them for a revoke.
func (p *producer) quorum(j *putJob) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.written) < p.conf.MinWrites {
		return false
	}
	j.recorded = len(j.written)
	p.recent.add(j.env.ID, j.written)
	return true
}

// launch encodes the copy of slot with flags and sends its put to the next
// node of the order, or only queues it when queue is set. The caller must
// await the reply it returns. Only the caller of write launches: it alone
// may read j.env.Body, which is the user's.
func (p *producer) launch(j *putJob, slot, flags uint8, queue bool) node.Reply {
	env := j.env
	env.Slot = slot
	env.Flags = flags
	bp := bufPool.Get().(*[]byte)
	buf, err := envelope.AppendEncode((*bp)[:0], &env, p.keys)
	*bp = buf
	j.mu.Lock()
	i := j.next
	k := j.order[i]
	j.next++
	j.launched++
	j.mu.Unlock()
	if err != nil {
		p.settle(j, putResult{slot: slot, node: k, err: fmt.Errorf("encoding the envelope: %w", err), buf: bp})
		return node.Reply{}
	}
	l := &j.launches[i]
	l.slot, l.node, l.buf = slot, k, bp
	// Not on a goroutine of its own: the request is written here, or by
	// the caller's flush when queued (in one write with others that pile up
	// meanwhile), and whoever reads the reply calls putDone.
	if queue {
		return p.nodes[k].PutAsyncQueued(*bp, env.Priority, j.delay, p.ttr, l.done)
	}
	return p.nodes[k].PutAsync(*bp, env.Priority, j.delay, p.ttr, l.done)
}

// detach ends the caller's part in the puts: results it did not take are
// handled as the puts that settle later handle theirs.
func (p *producer) detach(j *putJob) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.detached = true
	for j.taken < j.settled {
		r := <-j.results
		j.taken++
		if r.err != nil {
			j.failed = append(j.failed, NodeError{Endpoint: p.nodes[r.node].Endpoint(), Err: r.err})
		}
		if p.lateLocked(j, r) {
			go p.lateNote(j, r)
		}
	}
}

// settle takes the result of a put: to the caller until the job is
// detached, else handled here; the last put to settle after the caller let
// go finishes the job.
func (p *producer) settle(j *putJob, r putResult) {
	p.ops.put(r)
	j.mu.Lock()
	j.settled++
	if r.err == nil {
		j.stored++
	}
	if !j.detached {
		// Sent under mu, so that detach sees every result sent before it;
		// results has room for a put on every node.
		j.results <- r
		j.mu.Unlock()
		return
	}
	if p.lateLocked(j, r) {
		j.mu.Unlock()
		p.lateNote(j, r)
		return
	}
	last := !j.held && j.settled == j.launched
	j.mu.Unlock()
	if last {
		p.finish(j)
	}
}

// lateLocked handles, with j.mu held, the result of a put that settled after
// the caller's part: a copy written is kept (deleted at finish if the
// enqueue was undone); a failed put still gives its slot to another node,
// encoded from the failed copy since the user's body may be reused by now.
// Past an uncertain put the record must be noted first: lateLocked then
// counts the note as a put in flight and reports it, and the caller runs
// lateNote outside the lock.
func (p *producer) lateLocked(j *putJob, r putResult) (note bool) {
	if r.err == nil {
		j.written = append(j.written, writtenCopy{node: p.nodes[r.node], put: r.put})
		bufFree(r.buf)
		return false
	}
	if !p.spillableLocked(j) || r.buf == nil {
		bufFree(r.buf)
		return false
	}
	if node.IsUncertain(r.err) && j.flags&envelope.FlagUnc == 0 {
		j.launched++
		return true
	}
	p.spillLocked(j, r)
	bufFree(r.buf)
	return false
}

// anyUncertain says whether a put may still land: one whose request went
// out without an answer.
func anyUncertain(failed []NodeError) bool {
	for _, f := range failed {
		if node.IsUncertain(f.Err) {
			return true
		}
	}
	return false
}

// lateNote records that an uncertain put may still land, then spills past
// it; if the note fails, there is no spill.
func (p *producer) lateNote(j *putJob, r putResult) {
	rctx, cancel := context.WithTimeout(context.Background(), p.conf.RedisTimeout)
	err := p.store.Note(rctx, p.tube, j.env.ID, j.env.DueMs, p.conf.Replicas)
	cancel()
	j.mu.Lock()
	if err == nil {
		j.flags |= envelope.FlagUnc
		if p.spillableLocked(j) {
			p.spillLocked(j, r)
		}
	}
	bufFree(r.buf)
	j.settled++
	last := !j.held && j.settled == j.launched
	j.mu.Unlock()
	if last {
		p.finish(j)
	}
}

// spillableLocked reports whether a detached job may still spill.
func (p *producer) spillableLocked(j *putJob) bool {
	return !j.undo && j.next < len(j.order) && (j.spillBy.IsZero() || time.Now().Before(j.spillBy))
}

// spillLocked puts the copy of a failed put again on the next node, with the
// job's current flags.
func (p *producer) spillLocked(j *putJob, r putResult) {
	env, err := envelope.Decode(*r.buf, p.keys, envelope.Accept{})
	if err != nil {
		return
	}
	env.Flags |= j.flags
	bp := bufPool.Get().(*[]byte)
	buf, err := envelope.AppendEncode((*bp)[:0], &env, p.keys)
	*bp = buf
	if err != nil {
		bufFree(bp)
		return
	}
	k := j.order[j.next]
	j.next++
	j.launched++
	go p.putCopy(j, k, r.slot, bp, env.Priority)
}

// letGo ends the caller's use of j; if every put has settled, the job is
// finished now.
func (p *producer) letGo(j *putJob) {
	j.mu.Lock()
	j.held = false
	last := j.settled == j.launched
	j.mu.Unlock()
	if last {
		p.finish(j)
	}
}

// finish settles a job whose puts have all settled and whose caller let go:
// copies that landed after the enqueue was undone are deleted, late copies
// of a standing enqueue are recorded for a revoke, and the job goes back to
// the pool.
func (p *producer) finish(j *putJob) {
	switch {
	case j.undo && j.undone < len(j.written):
		p.startDeletes(slices.Clone(j.written[j.undone:]))
	case !j.undo && j.recorded > 0 && j.recorded < len(j.written):
		p.recent.add(j.env.ID, j.written)
	}
	armed := j.armed
	p.releaseJob(j)
	if armed {
		p.bg.done()
	}
}

// missed handles a job of writer wid below quorum: its record is aborted
// first, so that a copy landing later is deleted when seen, then the copies
// written are removed, those still in flight when they land. A consumer that
// already started the job wins: the ID stands. So does another writer's
// confirmed enqueue of a WithID job that took the ID over after wid's put
// window; one still putting it is left to settle it. cause, when set, is why
// the caller's ctx ended before the puts did: the error wraps it beside
// ErrQuorum.
func (p *producer) missed(ctx context.Context, j *putJob, wid string, noteErr, cause error) (string, error) {
	j.mu.Lock()
	qerr := &QuorumError{
		ID:     j.env.ID,
		Acked:  len(j.written),
		Needed: p.conf.MinWrites,
		Nodes:  append([]NodeError(nil), j.failed...),
	}
	inflight := j.launched - j.settled
	j.mu.Unlock()
	var err error = qerr
	if cause != nil {
		err = fmt.Errorf("%w; the call ended with %d put(s) in flight: %w", err, inflight, cause)
	}

	rctx, cancel := p.redisCtx(ctx, true)
	rep, aerr := p.store.Abort(rctx, p.tube, j.env.ID, wid, j.env.DueMs, p.conf.Replicas)
	cancel()
	switch {
	case aerr != nil:
		// Without the abort only deleting every copy keeps the job from
		// running: ErrQuorum stands only if that happened and no put may
		// still land.
		derr := p.unput(ctx, j)
		if derr != nil || inflight > 0 || anyUncertain(qerr.Nodes) || noteErr != nil {
			return "", fmt.Errorf("%w: %v; recording the abort in Redis failed: %v; removing written copies: %v",
				ErrMaybeEnqueued, err, aerr, derr)
		}
		return "", fmt.Errorf("%w; recording the abort in Redis failed, but every copy written was deleted: %v",
			err, aerr)
	case rep.Kind == claim.Started:
		j.mu.Lock()
		j.recorded = len(j.written)
		p.recent.add(j.env.ID, j.written)
		j.mu.Unlock()
		return j.env.ID, nil
	case rep.Kind == claim.Taken:
		_ = p.unput(ctx, j)
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

// unput undoes a detached job's enqueue: the copies written are deleted, on
// the connections that put them, and so are those that land later. It waits
// for the deletes until ctx ends; the rest go on in the background.
func (p *producer) unput(ctx context.Context, j *putJob) error {
	j.mu.Lock()
	j.undo = true
	copies := slices.Clone(j.written[j.undone:])
	j.undone = len(j.written)
	j.mu.Unlock()
	return p.deleteCopies(ctx, copies)
}

// putDone counts the outcome of a put launched by launch and settles it. It
// runs on the node's reader goroutine, which reads the replies of other
// callers too, and must not block: a failure, which may take Redis calls to
// handle, is settled on a goroutine of its own.
func (p *producer) putDone(j *putJob, r putResult) {
	p.countCopy(r.node, r.err)
	if r.err != nil {
		go p.settle(j, r)
		return
	}
	p.settle(j, r)
}

// putCopy puts one encoded copy and settles its result.
func (p *producer) putCopy(j *putJob, k int, slot uint8, bp *[]byte, pri uint32) {
	r := putResult{slot: slot, node: k, buf: bp}
	defer func() {
		// The job waits for this result: a panic below must become one.
		if v := recover(); v != nil {
			r.put, r.err = node.Put{}, fmt.Errorf("put panicked: %v", v)
		}
		p.settle(j, r)
	}()
	// Not the caller's ctx: a put launched goes out even if the caller
	// gives up, and is then deleted like the other copies.
	r.put, r.err = p.nodes[k].Put(context.Background(), *bp, pri, j.delay, p.ttr)
	p.countCopy(k, r.err)
}

// countCopy counts the outcome of a put on node k.
func (p *producer) countCopy(k int, err error) {
	l := &p.labels.nodes[k]
	switch {
	case err == nil:
		metricCopies.Inc(l.ok...)
	case node.IsUncertain(err):
		metricCopies.Inc(l.uncertain...)
		metricErrors.Inc(l.putErr...)
	default:
		metricCopies.Inc(l.failed...)
		metricErrors.Inc(l.putErr...)
	}
}

// metricLabels are the label values of the producer's hot counters, made
// once: passed whole, they cost an increment no allocation.
type metricLabels struct {
	nodes    []nodeLabels
	produced map[string][]string // by result
}

type nodeLabels struct {
	ok, uncertain, failed, putErr []string
}

func (l *metricLabels) init(tube string, nodes []*node.Node) {
	for _, n := range nodes {
		ep := n.Endpoint()
		l.nodes = append(l.nodes, nodeLabels{
			ok:        []string{ep, "ok"},
			uncertain: []string{ep, "uncertain"},
			failed:    []string{ep, "failed"},
			putErr:    []string{ep, "put"},
		})
	}
	l.produced = map[string][]string{}
	for _, r := range []string{"ok", "quorum", "invalid", "error"} {
		l.produced[r] = []string{tube, r}
	}
}

// bufFree gives an envelope buffer back to the pool.
func bufFree(bp *[]byte) {
	if bp == nil {
		return
	}
	*bp = (*bp)[:0]
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
	j, ok := p.jobs.Get().(*putJob)
	if !ok {
		j = &putJob{
			order:    make([]int, len(p.nodes)),
			results:  make(chan putResult, len(p.nodes)),
			launches: make([]launchState, len(p.nodes)),
		}
		for i := range j.order {
			j.order[i] = i
			l := &j.launches[i]
			l.done = func(put node.Put, err error) {
				p.putDone(j, putResult{slot: l.slot, node: l.node, put: put, err: err, buf: l.buf})
			}
		}
	}
	j.held = true
	return j
}

func (p *producer) releaseJob(j *putJob) {
	j.env = envelope.Envelope{}
	j.spillBy = time.Time{}
	j.taken, j.next, j.flags, j.launched, j.settled = 0, 0, 0, 0, 0
	j.detached, j.held, j.armed, j.undo = false, false, false, false
	j.undone, j.recorded, j.stored = 0, 0, 0
	clear(j.written)
	j.written = j.written[:0]
	clear(j.failed)
	j.failed = j.failed[:0]
	for i := range j.launches {
		j.launches[i].buf = nil
	}
	p.jobs.Put(j)
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if !routine.Sleep(ctx.Done(), d) {
		return ctx.Err()
	}
	return nil
}
