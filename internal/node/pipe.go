package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// pipe is one connection a Node puts and deletes on, speaking beanstalkd's
// protocol itself. Through go-beanstalk every request went out in a write
// of its own, formatted with fmt, and its caller waited for its turn to read:
// on a producer the write syscalls alone were nearly half of the CPU.
//
// A request is appended to buf, and the caller that finds no write under way
// sends everything buffered in one write, again and again while more piled up
// meanwhile: requests made while a write is under way share the next one. One
// reader goroutine per pipe reads the replies, in order, and hands each to
// the oldest request still waiting. Every write, and every read while a reply
// is awaited, is bounded by IOTimeout. The first failure is final: the
// connection is closed and every request still waiting fails, uncertain if
// any of it was written, definite if none was.
type pipe struct {
	node   *Node
	nc     net.Conn
	rd     *bufio.Reader
	io     time.Duration
	failed atomic.Bool

	mu      sync.Mutex
	buf     []byte // requests not handed to a write yet
	spare   []byte // the other buffer, while buf is being written
	writing bool
	waiting ring // requests awaiting their reply, oldest first
	batch   int  // of them, those of the write under way, just before the unsent ones
	unsent  int  // of them, the last ones: still in buf

	writes atomic.Int64 // write syscalls, for tests
}

// waiter is a request waiting for its reply.
type waiter struct {
	op   op
	done func(Put, error)
}

type op uint8

const (
	opPut op = iota
	opDelete
)

func (o op) String() string {
	if o == opPut {
		return "put"
	}
	return "delete"
}

// dialPipe connects to the node and makes its tube the one puts go to.
func (n *Node) dialPipe() (*pipe, error) {
	d := net.Dialer{Timeout: n.o.DialTimeout, KeepAlive: keepAlive}
	nc, err := d.Dial("tcp", n.endpoint)
	if err != nil {
		n.hold.start(n.o.Backoff)
		return nil, err
	}
	p := &pipe{node: n, nc: nc, io: n.o.IOTimeout}
	p.rd = bufio.NewReaderSize(pipeReader{p}, 16<<10)
	if err := p.use(n.tube); err != nil {
		_ = nc.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			n.hold.start(n.o.Backoff)
		}
		return nil, err
	}
	return p, nil
}

// use sends `use tube` and reads its reply, before the reader starts.
func (p *pipe) use(tube string) error {
	deadline := time.Now().Add(p.io)
	if err := p.nc.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := p.nc.Write([]byte("use " + tube + "\r\n")); err != nil {
		return err
	}
	p.waiting.push(waiter{}) // so that pipeReader keeps the deadline
	line, err := p.rd.ReadSlice('\n')
	p.waiting.pop()
	if err != nil {
		return err
	}
	if string(line) != "USING "+tube+"\r\n" {
		return fmt.Errorf("use %s: unexpected reply %q", tube, bytes.TrimSpace(line))
	}
	return p.nc.SetWriteDeadline(time.Time{})
}

func (p *pipe) gone() bool { return p.failed.Load() }

// close closes the connection; the reader then fails what still waits.
func (p *pipe) close() {
	p.failed.Store(true)
	_ = p.nc.Close()
}

// put sends a put of body and calls done with its outcome, once; done runs
// on the reader's goroutine, or on the caller's when the request cannot be
// sent. body is copied before put returns.
func (p *pipe) put(body []byte, pri uint32, delay, ttr time.Duration, done func(Put, error)) {
	p.mu.Lock()
	if p.failed.Load() {
		p.mu.Unlock()
		done(Put{}, p.node.fail("put", ErrConnGone))
		return
	}
	b := append(p.buf, "put "...)
	b = strconv.AppendUint(b, uint64(pri), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(delay/time.Second), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(ttr/time.Second), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	p.buf = append(b, "\r\n"...)
	p.sendLocked(waiter{op: opPut, done: done})
}

// del sends a delete of job id and calls done as put does.
func (p *pipe) del(id uint64, done func(Put, error)) {
	p.mu.Lock()
	if p.failed.Load() {
		p.mu.Unlock()
		done(Put{}, p.node.fail("delete", ErrConnGone))
		return
	}
	b := append(p.buf, "delete "...)
	b = strconv.AppendUint(b, id, 10)
	p.buf = append(b, "\r\n"...)
	p.sendLocked(waiter{op: opDelete, done: done})
}

// sendLocked queues the request just appended to buf and, unless a write is
// under way, writes buf until nothing is left in it. It releases mu.
func (p *pipe) sendLocked(w waiter) {
	p.waiting.push(w)
	p.unsent++
	if p.waiting.n == 1 {
		// The reader may be waiting without a deadline.
		_ = p.nc.SetReadDeadline(time.Now().Add(p.io))
	}
	p.writeLocked()
}

// writeLocked writes buf, unless a write is under way, until nothing is left
// in it. It releases mu.
func (p *pipe) writeLocked() {
	if p.writing {
		p.mu.Unlock()
		return
	}
	p.writing = true
	for len(p.buf) > 0 && !p.failed.Load() {
		out := p.buf
		p.buf, p.spare = p.spare[:0], nil
		p.batch, p.unsent = p.unsent, 0
		p.mu.Unlock()
		err := p.nc.SetWriteDeadline(time.Now().Add(p.io))
		n := 0
		if err == nil {
			p.writes.Add(1)
			n, err = p.nc.Write(out)
		}
		p.mu.Lock()
		p.spare = out[:0]
		if err != nil {
			if n == 0 {
				p.unsent += p.batch // none of them left
			}
			p.batch = 0
			p.writing = false
			failed := p.failLocked()
			p.mu.Unlock()
			p.notify(failed, &ioError{write: true, sent: n, err: err})
			return
		}
		p.batch = 0
	}
	p.writing = false
	p.mu.Unlock()
}

// failLocked closes the connection and takes every waiting request out,
// each with whether any of it may have been written.
func (p *pipe) failLocked() []failedWaiter {
	p.failed.Store(true)
	_ = p.nc.Close()
	out := make([]failedWaiter, 0, p.waiting.n)
	sent := p.waiting.n - p.unsent
	for i := 0; p.waiting.n > 0; i++ {
		out = append(out, failedWaiter{w: p.waiting.pop(), sent: i < sent})
	}
	p.batch, p.unsent = 0, 0
	p.buf = p.buf[:0]
	return out
}

type failedWaiter struct {
	w    waiter
	sent bool
}

// notify fails the requests failLocked took out, with cause.
func (p *pipe) notify(failed []failedWaiter, cause error) {
	v := judge(cause, 0)
	if v.timeout {
		p.node.hold.start(p.node.o.Backoff)
	}
	for _, f := range failed {
		f.w.done(Put{}, &opError{op: f.w.op.String(), endpoint: p.node.endpoint, uncertain: f.sent, err: v.err})
	}
}

// readLoop reads the replies until the connection fails or closes.
func (p *pipe) readLoop() {
	for {
		line, err := p.rd.ReadSlice('\n')
		if err != nil {
			p.mu.Lock()
			failed := p.failLocked()
			p.mu.Unlock()
			p.notify(failed, &ioError{err: err})
			return
		}
		p.mu.Lock()
		if p.waiting.n == 0 {
			failed := p.failLocked()
			p.mu.Unlock()
			p.notify(failed, fmt.Errorf("reply %q to no request", bytes.TrimSpace(line)))
			return
		}
		w := p.waiting.pop()
		p.mu.Unlock()
		if !p.reply(w, line) {
			p.mu.Lock()
			failed := p.failLocked()
			p.mu.Unlock()
			p.notify(failed, errOutOfStep)
			return
		}
	}
}

// errOutOfStep fails the requests behind one whose reply showed the stream
// cannot be trusted.
var errOutOfStep = errors.New("connection closed: an earlier reply was malformed or refused the framing")

// reply hands w its reply line; false when the connection must be closed.
func (p *pipe) reply(w waiter, line []byte) bool {
	id, buried, err := parseReply(w.op, line)
	switch {
	case buried:
		p.buried(id, w.done)
		return true
	case err == nil:
		w.done(Put{ID: id, pipe: p}, nil)
		return true
	}
	v := judge(err, 0)
	w.done(Put{}, &opError{op: w.op.String(), endpoint: p.node.endpoint, uncertain: v.uncertain, err: v.err})
	return !v.broken
}

// parseReply reads the reply to a request of op: the job id of a put, and
// whether an out-of-memory node stored that job buried; else an error in
// go-beanstalk's terms, which judge classifies.
func parseReply(o op, line []byte) (id uint64, buried bool, err error) {
	word, arg, _ := bytes.Cut(bytes.TrimSuffix(line, []byte("\r\n")), []byte(" "))
	switch {
	case o == opPut && (string(word) == "INSERTED" || string(word) == "BURIED"):
		if id, err := strconv.ParseUint(string(arg), 10, 64); err == nil {
			return id, string(word) == "BURIED", nil
		}
	case o == opDelete && string(word) == "DELETED" && len(arg) == 0:
		return 0, false, nil
	}
	return 0, false, replyError(string(word))
}

// buried deletes a job that an out-of-memory node stored buried instead of
// queueing it, on the same connection, then fails its put definitely.
func (p *pipe) buried(id uint64, done func(Put, error)) {
	p.del(id, func(_ Put, err error) {
		cause := fmt.Errorf("out of memory: job %d stored buried, deleted: %w", id, beanstalk.ErrOOM)
		if err != nil {
			var oe *opError
			if errors.As(err, &oe) {
				err = oe.err
			}
			cause = fmt.Errorf("out of memory: job %d stored buried, delete failed (%v): %w", id, err, beanstalk.ErrOOM)
		}
		done(Put{}, &opError{op: "put", endpoint: p.node.endpoint, err: cause})
	})
}

// replyError is go-beanstalk's error for a reply word, so that judge
// classifies it as it does go-beanstalk's; an unexpected reply gets one
// judge takes for uncertain and broken.
func replyError(word string) error {
	switch word {
	case "NOT_FOUND":
		return beanstalk.ErrNotFound
	case "JOB_TOO_BIG":
		return beanstalk.ErrJobTooBig
	case "DRAINING":
		return beanstalk.ErrDraining
	case "OUT_OF_MEMORY":
		return beanstalk.ErrOOM
	case "BAD_FORMAT":
		return beanstalk.ErrBadFormat
	case "UNKNOWN_COMMAND":
		return beanstalk.ErrUnknown
	case "EXPECTED_CRLF":
		return beanstalk.ErrNoCRLF
	case "INTERNAL_ERROR":
		return beanstalk.ErrInternal
	}
	return fmt.Errorf("unexpected reply %q", word)
}

// pipeReader is what the reader's bufio.Reader reads from: it bounds every
// read while a reply is awaited, and lets an idle connection wait.
type pipeReader struct{ p *pipe }

func (r pipeReader) Read(b []byte) (int, error) {
	p := r.p
	p.mu.Lock()
	var deadline time.Time
	if p.waiting.n > 0 {
		deadline = time.Now().Add(p.io)
	}
	err := p.nc.SetReadDeadline(deadline)
	p.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return p.nc.Read(b)
}

// ring is a FIFO of waiters.
type ring struct {
	buf  []waiter
	head int
	n    int
}

func (r *ring) push(w waiter) {
	if r.n == len(r.buf) {
		grown := make([]waiter, max(8, 2*len(r.buf)))
		for i := range r.n {
			grown[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = w
	r.n++
}

func (r *ring) pop() waiter {
	w := r.buf[r.head]
	r.buf[r.head] = waiter{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return w
}

// pipeSlot is one pooled pipe, redialled under mu when it is gone so that
// concurrent callers share one dial.
type pipeSlot struct {
	mu  sync.Mutex
	cur atomic.Pointer[pipe]
}

// livePipe picks the next pooled pipe if it stands; nil when it must be
// dialled.
func (n *Node) livePipe() (*pipe, *pipeSlot) {
	s := &n.pipes[int(n.nextPipe.Add(1)%uint32(len(n.pipes)))]
	if p := s.cur.Load(); p != nil && !p.gone() {
		return p, s
	}
	return nil, s
}

// pipeOf returns the pipe of slot s, dialling it if it is gone.
func (n *Node) pipeOf(s *pipeSlot) (*pipe, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.cur.Load(); p != nil && !p.gone() {
		return p, nil // another caller redialled it meanwhile
	}
	// Callers queued behind a failed dial find the back-off it started.
	if err := n.ready(context.Background()); err != nil {
		return nil, err
	}
	p, err := n.dialPipe()
	if err != nil {
		return nil, err
	}
	// Close sets closed, then closes every slot's pipe under its mu: a pipe
	// stored here either is seen by Close or sees closed.
	if n.closed.Load() {
		p.close()
		return nil, ErrClosed
	}
	n.readers.Add(1)
	go func() {
		defer n.readers.Done()
		p.readLoop()
	}()
	s.cur.Store(p)
	return p, nil
}
