package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// pipe is one connection a Node puts and deletes on, speaking beanstalkd's
// protocol itself. Through go-beanstalk every request was formatted with fmt
// and its reply parsed with fmt.Sscanf, each went out in a flush of its own,
// and its caller then waited for its turn to read, woken by the one before:
// a producer spent most of its CPU there and in switching goroutines.
//
// A request is appended to buf, and the caller that finds no write under way
// sends everything buffered in one write, again and again while more piled up
// meanwhile: requests made while a write is under way share the next one.
//
// Replies are read, in order, by the pipe's reader goroutine, and each is
// handed to the oldest request still waiting. A caller that sent requests
// kicks the reader (await) unless it is reading already; it reads while
// replies are awaited, then waits to be kicked again, so that an idle
// connection costs no read and a busy one one wake-up for many replies.
// A caller whose request is the last one sent on a connection nobody reads
// may read its reply itself instead (readInline), sparing the wake-up and
// hand-off of the reader goroutine; exactly one reads at a time (reading),
// and what is still awaited when it has its reply goes to the goroutine.
//
// Every write, and every read while replies are awaited, is bounded by
// IOTimeout. The first failure is final: the connection is closed and every
// request still waiting fails, uncertain if any of it was written, definite
// if none was.
type pipe struct {
	node   *Node
	nc     net.Conn
	rc     syscall.RawConn
	io     time.Duration
	failed atomic.Bool

	// Held by the reader goroutine.
	rbuf    []byte
	rs, re  int   // rbuf[rs:re] is read and not handled yet
	rn      int   // rawRead's bytes
	rerr    error // rawRead's error, other than "no bytes yet"
	readNow func(fd uintptr) bool
	rdl     time.Time // the read deadline set on nc
	// quiet is set while the socket's receive low-water mark is raised
	// (quietLowat): replies then arrive without waking the runtime's poller.
	// readInline makes a connection quiet, since it reads replies as they
	// are there and rarely waits; a read that must wait makes it loud again
	// first. Without it, in a stream of lone enqueues, every reply arriving
	// while the enqueue's goroutine was busy woke the runtime's idle thread
	// for nothing.
	quiet    bool
	quietNow func(fd uintptr)

	// Held by the writer.
	writeNow func(fd uintptr) bool
	wbuf     []byte
	wn       int
	werr     error

	mu      sync.Mutex
	buf     []byte // requests not handed to a write yet
	spare   []byte // the other buffer, while buf is being written
	writing bool
	waiting ring // requests awaiting their reply, oldest first
	batch   int  // of them, those of the write under way, just before the unsent ones
	unsent  int  // of them, the last ones: still in buf
	reading bool // the reader goroutine is kicked, or reading, or a caller reads inline

	kick     chan struct{} // await wakes the reader goroutine
	quit     chan struct{} // closed when the pipe fails or closes
	quitOnce sync.Once

	// slow is set when a caller reading inline waited its whole bound: until
	// the next reply is read, callers leave the replies to the goroutine.
	slow atomic.Bool

	// Replies left (leave) for the next reader of the connection, and the
	// timer that hands them to the reader goroutine if none comes; under mu.
	leftAt     time.Time
	leaveTimer *time.Timer
	leaveArmed bool
	leaveWait  time.Duration // leaveWait, but for tests

	writes     atomic.Int64 // write syscalls, for tests
	kicks      atomic.Int64 // hand-offs to the reader goroutine, for tests
	peek       [1]byte      // peerClosed's buffer, under mu
	peekNow    func(fd uintptr)
	peekClosed bool // peekNow's finding, under mu
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
	opUse
)

func (o op) String() string {
	switch o {
	case opPut:
		return "put"
	case opUse:
		return "use"
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
	p := &pipe{node: n, nc: nc, io: n.o.IOTimeout, rbuf: make([]byte, 4096)}
	p.writeNow, p.peekNow, p.readNow = p.rawWrite, p.rawPeek, p.rawRead
	p.quietNow = func(fd uintptr) { setLowat(fd, quietLowat) }
	p.kick, p.quit = make(chan struct{}, 1), make(chan struct{})
	p.leaveWait = leaveWait
	p.leaveTimer = time.AfterFunc(time.Hour, p.leftTooLong)
	p.leaveTimer.Stop()
	if tc, ok := nc.(*net.TCPConn); ok {
		p.rc, err = tc.SyscallConn()
	}
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	// Sent with the first request, as go-beanstalk does: its reply comes
	// first and is checked like any other.
	p.buf = append(p.buf, "use "+n.tube+"\r\n"...)
	p.waiting.push(waiter{op: opUse, done: func(Put, error) {}})
	p.unsent = 1
	return p, nil
}

func (p *pipe) gone() bool { return p.failed.Load() }

// close closes the connection; whoever reads then fails what still waits,
// and close itself when nobody reads.
func (p *pipe) close() {
	p.mu.Lock()
	p.failed.Store(true)
	var failed []failedWaiter
	if !p.reading {
		// Replies left for a later reader (leave) will have none: end their
		// requests here, as a reader would on the closed connection.
		failed = p.failLocked()
	}
	p.mu.Unlock()
	_ = p.nc.Close()
	p.quitOnce.Do(func() { close(p.quit) })
	p.leaveTimer.Stop()
	p.notify(failed, &ioError{err: net.ErrClosed})
}

// put sends a put of body and calls done with its outcome, once; done runs
// on the goroutine that reads the reply, or on the caller's when the request
// cannot be sent. body is copied before put returns. With queue, the
// request waits in the buffer for a flush or another caller's write. It
// returns the request's sequence number, for readInline.
func (p *pipe) put(body []byte, pri uint32, delay, ttr time.Duration, queue bool, done func(Put, error)) uint64 {
	p.mu.Lock()
	if p.failed.Load() {
		p.mu.Unlock()
		done(Put{}, p.node.fail("put", ErrConnGone))
		return 0
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
	seq := p.waiting.pushed + 1
	w := waiter{op: opPut, done: done}
	if queue {
		p.waiting.push(w)
		p.unsent++
		p.mu.Unlock()
		return seq
	}
	p.sendLocked(w)
	return seq
}

// flush writes what put queued, unless nothing is left or a write under way
// takes it.
func (p *pipe) flush() {
	p.mu.Lock()
	if p.unsent == 0 || p.writing {
		p.mu.Unlock()
		return
	}
	p.writeLocked()
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
	// On a connection with no reply due, the node may have closed it since
	// (killed, restarted): nothing tells until a read. Writing to it would
	// make every request uncertain although the node never saw one, so look
	// first; a closed one fails them definitely and the next caller
	// redials.
	if p.waiting.n == p.unsent && p.peerClosed() {
		p.writing = false
		failed := p.failLocked()
		p.mu.Unlock()
		p.notify(failed, &ioError{write: true, err: errPeerClosed})
		return
	}
	for len(p.buf) > 0 && !p.failed.Load() {
		out := p.buf
		p.buf, p.spare = p.spare[:0], nil
		p.batch, p.unsent = p.unsent, 0
		p.mu.Unlock()
		n, err := p.send(out)
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

// send writes out: first in one attempt that never waits, which a socket
// with room takes whole, sparing a deadline's timer; what is left, under a
// deadline of IOTimeout. It returns how much of out was written.
func (p *pipe) send(out []byte) (int, error) {
	p.writes.Add(1)
	p.wbuf = out
	err := p.rc.Write(p.writeNow)
	n, werr := max(p.wn, 0), p.werr
	p.wbuf = nil
	switch {
	case err == nil && werr == nil && n == len(out):
		return n, nil
	case err == nil && (werr == nil || werr == syscall.EAGAIN || werr == syscall.EINTR):
		// The socket is full: wait for room, within the deadline.
	case err == nil:
		return n, werr
	case !errors.Is(err, os.ErrDeadlineExceeded):
		return n, err
	}
	if err := p.nc.SetWriteDeadline(time.Now().Add(p.io)); err != nil {
		return n, err
	}
	m, err := p.nc.Write(out[n:])
	return n + m, err
}

// peerClosed tells, without waiting, whether the node closed the
// connection: a peek that finds end of file (or an error) where an open idle
// connection has nothing to read.
func (p *pipe) peerClosed() bool {
	p.peekClosed = false
	// Control, not Read: a read deadline left from the last replies would
	// make Read answer at once without looking.
	err := p.rc.Control(p.peekNow)
	return p.peekClosed || err != nil
}

// rawPeek is peerClosed's look, made once, so that it allocates nothing.
func (p *pipe) rawPeek(fd uintptr) {
	n, _, err := syscall.Recvfrom(int(fd), p.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.peekClosed = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
}

// rawRead is fillBy's read (the socket is non-blocking), made once, so that
// it allocates nothing. It reports false when no byte is there yet: the
// runtime's poller then waits for some, within the read deadline, and calls
// it again.
func (p *pipe) rawRead(fd uintptr) bool {
	n, err := syscall.Read(int(fd), p.rbuf[p.re:])
	if (err == syscall.EAGAIN || err == syscall.EINTR) && p.quiet {
		// About to wait in the poller: replies must wake it again, and one
		// that arrived since the read may have woken nobody (a kernel
		// before 4.18 does not signal it when the mark comes down): look
		// once more.
		setLowat(fd, 1)
		p.quiet = false
		n, err = syscall.Read(int(fd), p.rbuf[p.re:])
	}
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return false
	case err != nil:
		p.rerr = os.NewSyscallError("read", err)
	case n == 0:
		p.rerr = io.EOF
	default:
		p.rn = n
	}
	return true
}

// errPeerClosed fails the requests of a connection the node closed while
// no reply was due: none of them was written.
var errPeerClosed = errors.New("connection closed by the node")

// rawWrite is send's single write attempt, made once, so that send
// allocates nothing.
func (p *pipe) rawWrite(fd uintptr) bool {
	p.wn, p.werr = syscall.Write(int(fd), p.wbuf)
	return true // one attempt: never wait here
}

// failLocked closes the connection and takes every waiting request out,
// each with whether any of it may have been written.
func (p *pipe) failLocked() []failedWaiter {
	p.failed.Store(true)
	_ = p.nc.Close()
	p.quitOnce.Do(func() { close(p.quit) })
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

// await makes sure the replies still awaited are read: it kicks the reader
// goroutine unless it is reading.
func (p *pipe) await() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reading || p.waiting.n == 0 || p.failed.Load() {
		return
	}
	p.reading = true
	p.kickLocked()
}

// kickLocked hands the reading to the reader goroutine; reading is set and
// nobody else reads.
func (p *pipe) kickLocked() {
	p.kicks.Add(1)
	select {
	case p.kick <- struct{}{}:
	default: // cannot happen: nobody read, so the reader waits for a kick
	}
}

// readInline reads, on the caller's goroutine, replies up to that of request
// seq (a number put returned), waiting at most wait (IOTimeout if less) for
// them; the replies still awaited after it, and its own if it comes later,
// go to the reader goroutine. It does so only when nobody reads, request seq
// is the last one sent and the node did not answer slowly last time; else it
// awaits like await. The failure rules are the reader's: a read error or
// timeout past IOTimeout fails the pipe.
func (p *pipe) readInline(seq uint64, wait time.Duration) {
	p.mu.Lock()
	if p.reading || p.failed.Load() || p.waiting.n == 0 || p.waiting.popped >= seq {
		p.mu.Unlock()
		return
	}
	if p.waiting.pushed != seq || p.slow.Load() {
		p.reading = true
		p.kickLocked()
		p.mu.Unlock()
		return
	}
	p.reading = true
	p.mu.Unlock()
	if quietSupported && !p.quiet && p.rc.Control(p.quietNow) == nil {
		p.quiet = true
	}
	short := wait < p.io
	start, wait := time.Now(), min(wait, p.io)
	for {
		err := p.handle()
		if err == nil {
			p.mu.Lock()
			if p.waiting.popped >= seq || p.failed.Load() {
				if p.waiting.n > 0 && !p.failed.Load() {
					p.kickLocked() // reading stays set: the goroutine reads on
				} else {
					p.reading = false
				}
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			err = p.fillBy(start, wait)
			if err != nil && short && errors.Is(err, os.ErrDeadlineExceeded) {
				// Not an IOTimeout yet: the goroutine waits for the rest.
				p.slow.Store(true)
				p.mu.Lock()
				p.kickLocked()
				p.mu.Unlock()
				return
			}
		}
		if err != nil {
			p.mu.Lock()
			p.reading = false
			p.failRead(err) // releases mu
			return
		}
	}
}

// leaveWait is how long replies left for the next reader of a connection
// wait for one before the reader goroutine reads them. It bounds how late a
// put that an enqueue did not wait for (its quorum came first) settles when
// no other enqueue follows: its copy is on the node, but a failure of it is
// noticed (and spilled) that much later. It is not shorter because the
// leave timer fires about every leaveWait on each connection for as long as
// a stream of lone enqueues lasts (there is always a reply left), and each
// firing starts a goroutine and wakes the runtime's idle thread: at 5 ms
// those wake-ups cost a stream of lone enqueues 1.5–3% of its rate, and at
// 50 ms, once the read deadlines and reply arrivals (see quiet) no longer
// woke that thread, they alone still kept it waking.
const leaveWait = time.Second

// leave leaves the replies up to that of request seq to whoever reads the
// connection next: a later readInline takes them on its way, sparing the
// reader goroutine's wake-up and hand-off; if none comes within leaveWait,
// the reader goroutine reads them. A stream of lone enqueues thus reads the
// reply it did not wait for (its quorum came first) with the next one's.
func (p *pipe) leave(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reading || p.failed.Load() || p.waiting.popped >= seq {
		return
	}
	p.leftAt = time.Now()
	if !p.leaveArmed {
		p.leaveArmed = true
		p.leaveTimer.Reset(p.leaveWait)
	}
}

// leftTooLong is leave's timer: replies left for leaveWait with nobody
// reading go to the reader goroutine.
func (p *pipe) leftTooLong() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leaveArmed = false
	if !p.leftLocked() {
		return
	}
	if d := p.leaveWait - time.Since(p.leftAt); d > 0 {
		p.leaveArmed = true // left again since: wait for the latest
		p.leaveTimer.Reset(d)
		return
	}
	p.reading = true
	p.kickLocked()
}

// readLeft hands the replies left for a later reader to the reader
// goroutine now, not after leaveWait.
func (p *pipe) readLeft() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leftLocked() {
		p.reading = true
		p.kickLocked()
	}
}

// leftLocked reports, with mu held, whether replies are awaited that nobody
// reads: left ones.
func (p *pipe) leftLocked() bool {
	return !p.reading && !p.failed.Load() && p.waiting.n > 0
}

// reader is the pipe's reader goroutine: kicked by await, it reads replies
// while some are awaited. It ends when the pipe fails or closes.
func (p *pipe) reader() {
	defer p.node.readers.Done()
	for {
		select {
		case <-p.kick:
			p.readAwaited()
		case <-p.quit:
			return
		}
	}
}

// readAwaited reads replies while some are awaited, then waits to be kicked
// again.
func (p *pipe) readAwaited() {
	for {
		err := p.handle()
		if err == nil {
			p.mu.Lock()
			if p.waiting.n == 0 || p.failed.Load() {
				p.reading = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			err = p.fill()
		}
		if err != nil {
			p.mu.Lock()
			p.reading = false
			p.failRead(err) // releases mu
			return
		}
	}
}

// failRead fails the pipe after a read error or a reply that shows the
// stream cannot be trusted. It is called with mu held and releases it.
func (p *pipe) failRead(err error) {
	failed := p.failLocked()
	p.mu.Unlock()
	p.notify(failed, err)
}

// handle hands every whole reply read so far to its request.
func (p *pipe) handle() error {
	for {
		line := p.line()
		if line == nil {
			return nil
		}
		p.mu.Lock()
		if p.waiting.n == 0 {
			p.mu.Unlock()
			return fmt.Errorf("reply %q to no request", bytes.TrimSpace(line))
		}
		w := p.waiting.pop()
		p.mu.Unlock()
		if p.slow.Load() {
			p.slow.Store(false)
		}
		if !p.reply(w, line) {
			return errOutOfStep
		}
	}
}

// line takes the next whole line read, or nil. It stays valid until the
// next fill.
func (p *pipe) line() []byte {
	i := bytes.IndexByte(p.rbuf[p.rs:p.re], '\n')
	if i < 0 {
		return nil
	}
	line := p.rbuf[p.rs : p.rs+i+1]
	p.rs += i + 1
	return line
}

// room makes room in rbuf for more bytes after a partial line.
func (p *pipe) room() error {
	if p.rs == p.re {
		p.rs, p.re = 0, 0
	}
	if p.re == len(p.rbuf) {
		if p.rs == 0 {
			return errLongReply
		}
		p.re = copy(p.rbuf, p.rbuf[p.rs:p.re])
		p.rs = 0
	}
	return nil
}

var errLongReply = errors.New("reply line too long")

// fill waits for more bytes, up to IOTimeout.
func (p *pipe) fill() error { return p.fillBy(time.Now(), p.io) }

// fillBy waits for more bytes, up to wait after now. A read deadline set
// earlier is kept when it falls short of now+wait by less than half of a
// short wait or a sixty-fourth of IOTimeout, never when it falls later:
// resetting the deadline's timer costs more than a read, a busy connection
// would do it for every reply, and each reset leaves the runtime's idle
// thread a wake-up at the old time. So a read may fail up to 1/64 of
// IOTimeout before it, never after; a short wait, which only hands the
// replies to the reader goroutine when it ends, lasts half of it to all of
// it.
func (p *pipe) fillBy(now time.Time, wait time.Duration) error {
	if err := p.room(); err != nil {
		return err
	}
	deadline := now.Add(wait)
	slack := wait / 2
	if wait >= p.io {
		slack = p.io / 64
	}
	if p.rdl.After(deadline) || p.rdl.Before(deadline.Add(-slack)) {
		if err := p.nc.SetReadDeadline(deadline); err != nil {
			return &ioError{err: err}
		}
		p.rdl = deadline
	}
	// One read, and a wait in the runtime's poller only when no byte is
	// there: a lone enqueue reads three replies, mostly there by the time
	// it looks.
	p.rn, p.rerr = 0, nil
	err := p.rc.Read(p.readNow)
	p.re += p.rn
	if err == nil {
		err = p.rerr
	}
	if err != nil {
		return &ioError{err: err}
	}
	return nil
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
	case o == opUse && string(word) == "USING":
		return 0, false, nil
	}
	return 0, false, replyError(string(word))
}

// buried deletes a job that an out-of-memory node stored buried instead of
// queueing it, on the same connection, then fails its put definitely. It
// runs on the reader goroutine, which reads the delete's reply too.
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

// ring is a FIFO of waiters.
type ring struct {
	buf    []waiter
	head   int
	n      int
	pushed uint64 // waiters pushed, ever
	popped uint64 // waiters popped, ever
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
	r.pushed++
}

func (r *ring) pop() waiter {
	w := r.buf[r.head]
	r.buf[r.head] = waiter{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.popped++
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
	go p.reader()
	s.cur.Store(p)
	return p, nil
}
