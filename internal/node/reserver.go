package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// Reserver is one consumer connection to a node, watching only the job tube
// (never `default`, which would hand it other programs' jobs). Reserve is
// called from one loop at a time; the copies it returns may be deleted,
// released, touched and buried from any goroutine meanwhile. Those requests
// share writes: each waits until the next Reserve or until its caller's turn
// to read a reply, so those issued while a reserve or another request is on
// the wire go out together.
type Reserver struct {
	peer
	mu  sync.Mutex // one Reserve at a time, and one dial
	cur atomic.Pointer[conn]
}

// NewReserver returns a Reserver for tube on endpoint (host:port). It dials
// lazily, on the first Reserve. Options.Conns does not apply.
func NewReserver(endpoint, tube string, o Options) *Reserver {
	return &Reserver{peer: newPeer(endpoint, tube, o)}
}

// ReserveUpTo reserves up to n ready jobs in one round trip: one request
// waits up to timeout (whole seconds, rounded down) for a ready job, n-1 more
// take only jobs ready at once, and all go out in one write. It returns at
// least one copy; (nil, ErrTimeout) when none became ready; ErrDeadlineSoon
// when a job reserved on this connection is within a second of its TTR. A
// DEADLINE_SOON or TIMED_OUT on the extra requests only makes the batch
// smaller. On a network failure the connection is closed (its reserved jobs
// go back to ready) and the next call redials, unless the node is in
// back-off after a failed dial or a timeout. The call lasts at most timeout
// plus IOTimeout, plus DialTimeout when it dials.
func (r *Reserver) ReserveUpTo(n int, timeout time.Duration) ([]*Copy, error) {
	if timeout < 0 {
		return nil, r.fail("reserve", errNegative)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.conn()
	if err != nil {
		return nil, r.fail("reserve", err)
	}
	c.dc.wait.Store(int64(timeout.Truncate(time.Second)))
	defer c.dc.wait.Store(0)
	type reply struct {
		id   uint64
		body []byte
		err  error
	}
	n = max(n, 1)
	var extra chan reply
	if n > 1 {
		// go-beanstalk answers one request per call, so each extra request
		// needs a caller of its own; the connection holds every write back
		// until all n are in and sends them together.
		extra = make(chan reply, n-1)
		c.dc.batchOf(n)
		for range n - 1 {
			go func() {
				id, body, err := c.ts.Reserve(0)
				extra <- reply{id, body, err}
			}()
		}
	}
	replies := make([]reply, 0, n)
	id, body, err := c.ts.Reserve(timeout)
	replies = append(replies, reply{id, body, err})
	for range n - 1 {
		replies = append(replies, <-extra)
	}
	var copies []*Copy
	var worst error
	for _, rp := range replies {
		if rp.err == nil {
			copies = append(copies, &Copy{ID: rp.id, Body: rp.body, c: c, r: r})
			continue
		}
		v := judge(rp.err, 0)
		switch v.err {
		case beanstalk.ErrTimeout:
			if worst == nil {
				worst = ErrTimeout
			}
		case beanstalk.ErrDeadline:
			if worst == nil || worst == ErrTimeout {
				worst = ErrDeadlineSoon
			}
		default:
			r.settle(c, v)
			worst = &opError{op: "reserve", endpoint: r.endpoint, uncertain: v.uncertain, err: v.err}
		}
	}
	switch {
	case len(copies) > 0 && !c.gone():
		// An error on another request of the batch that left the connection
		// standing only makes the batch smaller.
		return copies, nil
	case len(copies) > 0:
		// The connection is closed: its copies went back to ready.
		if r.closed.Load() {
			return nil, r.fail("reserve", ErrClosed)
		}
		if worst == nil {
			worst = r.fail("reserve", ErrConnGone)
		}
		return nil, worst
	default:
		if r.closed.Load() && worst != ErrTimeout && worst != ErrDeadlineSoon {
			return nil, r.fail("reserve", ErrClosed)
		}
		return nil, worst
	}
}

// Close closes the connection, which interrupts a blocked Reserve and puts
// the jobs it had reserved back to ready. Later calls return ErrClosed.
func (r *Reserver) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return r.fail("close", ErrClosed)
	}
	if c := r.cur.Load(); c != nil {
		c.close()
	}
	return nil
}

// conn returns the live connection, dialling a new one if needed. r.mu is held.
func (r *Reserver) conn() (*conn, error) {
	switch {
	case r.closed.Load():
		return nil, ErrClosed
	case r.tubeErr != nil:
		return nil, r.tubeErr
	}
	if c := r.cur.Load(); c != nil && !c.gone() {
		return c, nil
	}
	if r.hold.active() {
		return nil, ErrBackoff
	}
	c, err := r.dial()
	if err != nil {
		return nil, err
	}
	c.dc.coalesce = true
	// A TubeSet of our own: the Conn's embedded one watches `default`, and
	// renaming tubes on a Conn in use races with its other requests.
	c.ts = beanstalk.TubeSet{Conn: c.bc, Name: map[string]bool{r.tube: true}}
	r.cur.Store(c)
	// Close may have run between the check above and Store without seeing c.
	if r.closed.Load() {
		c.close()
		return nil, ErrClosed
	}
	return c, nil
}

// Copy is a job reserved by a Reserver. It belongs to the connection that
// reserved it: beanstalkd answers NOT_FOUND for it on any other, and after a
// reconnect its id may name another job.
type Copy struct {
	// ID is beanstalkd's job id.
	ID uint64
	// Body is the job body as stored.
	Body []byte
	c    *conn
	r    *Reserver
}

// Endpoint is the host:port of the node the copy was reserved on.
func (cp *Copy) Endpoint() string { return cp.r.endpoint }

// Delete deletes the job. It returns nil on DELETED, ErrNotFound when
// beanstalkd says NOT_FOUND, and ErrConnGone, sending nothing, when the
// reserving connection was closed or replaced.
func (cp *Copy) Delete() error {
	if cp.c.gone() {
		return cp.r.fail("delete", ErrConnGone)
	}
	return cp.result("delete", cp.c.bc.Delete(cp.ID))
}

// Release puts the job back, ready after delay (whole seconds, rounded down)
// with priority pri. Errors as for Delete.
func (cp *Copy) Release(pri uint32, delay time.Duration) error {
	if delay < 0 {
		return cp.r.fail("release", errNegative)
	}
	if cp.c.gone() {
		return cp.r.fail("release", ErrConnGone)
	}
	return cp.result("release", cp.c.bc.Release(cp.ID, pri, delay))
}

// Touch restarts the job's TTR. Errors as for Delete.
func (cp *Copy) Touch() error {
	if cp.c.gone() {
		return cp.r.fail("touch", ErrConnGone)
	}
	return cp.result("touch", cp.c.bc.Touch(cp.ID))
}

// Bury moves the job to its tube's buried list with priority pri, where it
// stays until kicked. Errors as for Delete.
func (cp *Copy) Bury(pri uint32) error {
	if cp.c.gone() {
		return cp.r.fail("bury", ErrConnGone)
	}
	return cp.result("bury", cp.c.bc.Bury(cp.ID, pri))
}

func (cp *Copy) result(op string, err error) error {
	if err == nil {
		return nil
	}
	v := judge(err, 0)
	cp.r.settle(cp.c, v)
	return &opError{op: op, endpoint: cp.r.endpoint, uncertain: v.uncertain, err: v.err}
}
