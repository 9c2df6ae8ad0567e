// Package node talks to beanstalkd nodes for zerodq: pooled, pipelined
// producer connections (Node) and one-connection consumers (Reserver), with
// deadlines on every read and write so a frozen node costs a bounded wait,
// and errors that say whether a failed put may still land.
package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Options tunes the connections to one node. Zero fields take their defaults.
type Options struct {
	// DialTimeout bounds a dial. If zero, DefaultDialTimeout.
	DialTimeout time.Duration
	// IOTimeout bounds the wait for a reply beyond a reserve's own timeout,
	// and every write. If zero, DefaultIOTimeout.
	IOTimeout time.Duration
	// Conns is how many connections a Node pools for puts, peeks and
	// deletes. If zero, DefaultConns.
	Conns int
	// Backoff is how long a node is skipped (ErrBackoff) after a dial failure
	// or a timeout: a frozen node must not cost every call a full IOTimeout.
	// If zero, DefaultBackoff.
	Backoff time.Duration
}

// The defaults of Options; dq's DialTimeout and IOTimeout defaults are these.
const (
	DefaultDialTimeout = time.Second
	DefaultIOTimeout   = 2 * time.Second
	DefaultConns       = 2
	DefaultBackoff     = time.Second
)

func (o Options) withDefaults() Options {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	return o
}

// Node is one beanstalkd endpoint and tube as producers use it: put, delete,
// peek. It is safe for concurrent use; requests pipeline on a few pooled
// connections picked round-robin, with no lock on the way unless a
// connection must be dialled. Puts and the deletes of their jobs go on
// pipes of their own (see pipe); the other requests on go-beanstalk
// connections, dialled when first needed.
type Node struct {
	peer
	next     atomic.Uint32
	slots    []slot
	nextPipe atomic.Uint32
	pipes    []pipeSlot
	readers  sync.WaitGroup // the pipes' reader goroutines
}

// slot is one pooled connection, redialled under mu when it is gone so that
// concurrent callers share one dial.
type slot struct {
	mu  sync.Mutex
	cur atomic.Pointer[conn]
}

// New returns a Node for tube on endpoint (host:port). It dials lazily, on
// first use. An invalid tube name makes every call fail definitely.
func New(endpoint, tube string, o Options) *Node {
	n := &Node{peer: newPeer(endpoint, tube, o)}
	n.slots = make([]slot, n.o.Conns)
	n.pipes = make([]pipeSlot, n.o.Conns)
	return n
}

// Tube is the tube the node's jobs go to.
func (n *Node) Tube() string { return n.tube }

// Put identifies a job written by Node.Put on the connection that wrote it.
type Put struct {
	// ID is beanstalkd's job id, meaningful on this node while it runs.
	ID   uint64
	pipe *pipe
}

// Put writes one job to the node's tube. delay and ttr are sent in whole
// seconds, rounded down.
//
// Every error satisfies exactly one of IsDefinite and IsUncertain. Definite:
// the job did not land (nothing could be sent, the node is in back-off, or
// beanstalkd refused it; also a `BURIED <id>` from an out-of-memory node,
// whose job Put deletes on the same connection before returning). Uncertain:
// the request left and no reply came, so the job may still land, as it does
// on a SIGSTOPped node when it wakes. ctx is checked before anything is sent;
// after that the call is bounded by the I/O deadline instead, since a reply
// abandoned half way would leave the shared connection out of step.
func (n *Node) Put(ctx context.Context, body []byte, pri uint32, delay, ttr time.Duration) (Put, error) {
	if err := n.ready(ctx); err != nil {
		return Put{}, n.fail("put", err)
	}
	if delay < 0 || ttr < 0 {
		return Put{}, n.fail("put", errNegative)
	}
	p, s := n.livePipe()
	if p == nil {
		var err error
		if p, err = n.pipeOf(s); err != nil {
			return Put{}, n.fail("put", err)
		}
	}
	type outcome struct {
		put Put
		err error
	}
	ch := make(chan outcome, 1)
	p.put(body, pri, delay, ttr, false, func(put Put, err error) { ch <- outcome{put, err} })
	p.await()
	o := <-ch
	return o.put, o.err
}

// PutAsync is Put without a context that sends the put and returns: done
// gets the outcome, exactly once, when the reply is read, or before
// PutAsync returns when nothing could be sent. body must not change until
// done is called, and done must not block: it may run on a goroutine that
// reads replies of other callers too. Concurrent puts share write syscalls.
//
// The caller must hand the Reply to Reply.Await before it waits for done: a
// caller putting on several nodes sends every put first, then awaits them,
// so that the reader goroutines are kicked once the requests are out.
func (n *Node) PutAsync(body []byte, pri uint32, delay, ttr time.Duration, done func(Put, error)) Reply {
	return n.putAsync(body, pri, delay, ttr, false, done)
}

// PutAsyncQueued is PutAsync that only queues the put on its connection: it
// is written by Reply.Flush (or Await, Read, Leave), or earlier by a write
// of another caller, which takes everything queued along. A caller putting
// while other goroutines put too can queue its puts on every node, let the
// others run (runtime.Gosched) and flush: their requests then share the
// write syscalls, fewer writes for the process and fewer reads for the
// nodes. A put with no connection to queue on yet is sent as PutAsync
// sends it.
func (n *Node) PutAsyncQueued(body []byte, pri uint32, delay, ttr time.Duration, done func(Put, error)) Reply {
	return n.putAsync(body, pri, delay, ttr, true, done)
}

func (n *Node) putAsync(body []byte, pri uint32, delay, ttr time.Duration, queue bool, done func(Put, error)) Reply {
	if err := n.ready(context.Background()); err != nil {
		done(Put{}, n.fail("put", err))
		return Reply{}
	}
	if delay < 0 || ttr < 0 {
		done(Put{}, n.fail("put", errNegative))
		return Reply{}
	}
	p, s := n.livePipe()
	if p != nil {
		return Reply{p: p, seq: p.put(body, pri, delay, ttr, queue, done), queued: queue}
	}
	// A dial can take DialTimeout: not on the caller's time.
	go func() {
		p, err := n.pipeOf(s)
		if err != nil {
			done(Put{}, n.fail("put", err))
			return
		}
		p.put(body, pri, delay, ttr, false, done)
		p.await()
	}()
	return Reply{}
}

// Reply is the reply of a put PutAsync sent (or PutAsyncQueued queued), still
// to be read.
type Reply struct {
	p      *pipe
	seq    uint64
	queued bool // by PutAsyncQueued: flushed before it is awaited
}

// Flush writes a put PutAsyncQueued queued, with every request queued
// after it on its connection, unless a write under way takes them along. It
// does nothing for a put already written.
func (r Reply) Flush() {
	if r.queued && r.p != nil {
		r.p.flush()
	}
}

// Await makes sure the replies still awaited on the put's connection are
// read, by a goroutine of the Node if nobody else is reading them.
func (r Reply) Await() {
	if r.p != nil {
		r.Flush()
		r.p.await()
	}
}

// Read is Await that reads the reply on the caller's goroutine, done
// included, when nobody else reads the connection and no later request was
// sent on it, sparing a hand-off between goroutines. It waits at most wait
// (at least half of it; IOTimeout if less) for the reply: a node slower than
// that gets its reply read by the Node's goroutine, as after Await, and the
// next Reads of its connection leave their replies to that goroutine until
// one reply came.
func (r Reply) Read(wait time.Duration) {
	if r.p != nil && r.seq != 0 {
		r.Flush()
		r.p.readInline(r.seq, wait)
	}
}

// Leave leaves the reply to whoever reads the put's connection next, for a
// caller that does not need it now (its enqueue has its quorum): the next
// Read on the connection takes it on its way, sparing a wake-up of the
// Node's goroutine, which reads it if no Read comes within leaveWait (a
// second; ReadLeft hands it over at once). done runs on the goroutine that
// reads it.
func (r Reply) Leave() {
	if r.p != nil && r.seq != 0 {
		r.Flush()
		r.p.leave(r.seq)
	}
}

// ReadLeft has the Node's goroutines read the replies left (Leave) on its
// connections now, instead of when the next Read on a connection comes or
// leaveWait passes: for a caller about to wait for their puts to settle,
// such as a producer closing.
func (n *Node) ReadLeft() { n.eachPipe((*pipe).readLeft) }

// eachPipe calls f with each current pipe, under its slot's lock.
func (n *Node) eachPipe(f func(*pipe)) {
	for i := range n.pipes {
		s := &n.pipes[i]
		s.mu.Lock()
		if p := s.cur.Load(); p != nil {
			f(p)
		}
		s.mu.Unlock()
	}
}

// Delete deletes a job on the connection that put it. If that connection is
// gone it returns ErrConnGone and sends nothing: without a binlog beanstalkd
// numbers jobs from 1 again after a restart, so the old id may name another
// job.
func (n *Node) Delete(ctx context.Context, p Put) error {
	if err := n.ready(ctx); err != nil {
		return n.fail("delete", err)
	}
	c := p.pipe
	if c == nil || c.node != n || c.gone() {
		return n.fail("delete", ErrConnGone)
	}
	ch := make(chan error, 1)
	c.del(p.ID, func(_ Put, err error) { ch <- err })
	c.await()
	return <-ch
}

// Peek returns the body of job id, on any pooled connection.
func (n *Node) Peek(ctx context.Context, id uint64) ([]byte, error) {
	if err := n.ready(ctx); err != nil {
		return nil, n.fail("peek", err)
	}
	c, err := n.conn()
	if err != nil {
		return nil, n.fail("peek", err)
	}
	body, err := c.bc.Peek(id)
	if err != nil {
		return nil, n.failed(c, "peek", err, 0)
	}
	return body, nil
}

// JobTube returns the tube job id is in (beanstalkd's stats-job), on any
// pooled connection. Without a binlog beanstalkd numbers jobs from 1 again
// after a restart, so a remembered number may name a job of another tube.
func (n *Node) JobTube(ctx context.Context, id uint64) (string, error) {
	if err := n.ready(ctx); err != nil {
		return "", n.fail("stats-job", err)
	}
	c, err := n.conn()
	if err != nil {
		return "", n.fail("stats-job", err)
	}
	stats, err := c.bc.StatsJob(id)
	if err != nil {
		return "", n.failed(c, "stats-job", err, 0)
	}
	tube, ok := stats["tube"]
	if !ok {
		return "", n.fail("stats-job", errNoTube)
	}
	return tube, nil
}

// DeleteID deletes job id on any pooled connection. beanstalkd refuses (with
// ErrNotFound) to delete a job another connection has reserved.
func (n *Node) DeleteID(ctx context.Context, id uint64) error {
	if err := n.ready(ctx); err != nil {
		return n.fail("delete", err)
	}
	c, err := n.conn()
	if err != nil {
		return n.fail("delete", err)
	}
	if err := c.bc.Delete(id); err != nil {
		return n.failed(c, "delete", err, 0)
	}
	return nil
}

// Close closes the pooled connections; calls in flight fail. Later calls of
// any method return ErrClosed.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return n.fail("close", ErrClosed)
	}
	for i := range n.slots {
		if c := n.slots[i].cur.Load(); c != nil {
			c.close()
		}
	}
	n.eachPipe((*pipe).close)
	n.readers.Wait()
	return nil
}

// ready is the check every call makes before it may send anything.
func (n *Node) ready(ctx context.Context) error {
	switch {
	case n.closed.Load():
		return ErrClosed
	case n.tubeErr != nil:
		return n.tubeErr
	case n.hold.active():
		return ErrBackoff
	}
	return ctx.Err()
}

// conn picks the next pooled connection, dialling it if it is gone.
func (n *Node) conn() (*conn, error) {
	s := &n.slots[int(n.next.Add(1)%uint32(len(n.slots)))]
	if c := s.cur.Load(); c != nil && !c.gone() {
		return c, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cur.Load(); c != nil && !c.gone() {
		return c, nil // another caller redialled it meanwhile
	}
	// Callers queued behind a failed dial find the back-off it started.
	if err := n.ready(context.Background()); err != nil {
		return nil, err
	}
	c, err := n.dial()
	if err != nil {
		return nil, err
	}
	c.node = n
	c.tube.Conn, c.tube.Name = c.bc, n.tube
	s.cur.Store(c)
	// Close may have run between ready and Store without seeing c.
	if n.closed.Load() {
		c.close()
		return nil, ErrClosed
	}
	return c, nil
}

// failed reports a request that went to c and failed.
func (n *Node) failed(c *conn, op string, err error, size int) error {
	v := judge(err, size)
	n.settle(c, v)
	return &opError{op: op, endpoint: n.endpoint, uncertain: v.uncertain, err: v.err}
}
