package node

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// conn is one go-beanstalk connection with the tube handles its owner uses.
// Puts and copies keep a pointer to the conn that made them: the pointer is
// the connection's identity, and gone() says whether it still stands.
type conn struct {
	dc   *deadlineConn
	bc   *beanstalk.Conn
	tube beanstalk.Tube    // for a Node's puts
	ts   beanstalk.TubeSet // for a Reserver: names only the job tube
	node *Node             // the Node whose pool holds it; nil for a Reserver's
}

// gone reports whether the connection failed or was closed: anything still
// pending on it is lost, and a reserved job id remembered from it must not
// be sent elsewhere.
func (c *conn) gone() bool { return c.dc.failed.Load() }

// close closes the connection; beanstalkd puts the jobs it had reserved back
// to ready at once.
func (c *conn) close() { c.dc.fail() }

// keepAlive lets the kernel notice a node whose host vanished while a
// connection idles.
const keepAlive = 15 * time.Second

// dial connects to endpoint within o.DialTimeout. It does not take the
// caller's context: one dial serves every caller waiting on the connection,
// and one caller giving up must not fail it (nor start a back-off) for all.
func dial(endpoint string, o Options) (*conn, error) {
	d := net.Dialer{Timeout: o.DialTimeout, KeepAlive: keepAlive}
	nc, err := d.Dial("tcp", endpoint)
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{nc: nc, io: o.IOTimeout}
	return &conn{dc: dc, bc: beanstalk.NewConn(dc)}, nil
}

// deadlineConn bounds every Read and Write of a net.Conn, because go-beanstalk
// sets no deadline and a SIGSTOPped node would otherwise hang a call forever.
//
// go-beanstalk pipelines requests and reads the replies strictly in order, so
// a Read is always for the oldest request still waiting. A reply can only
// come after the replies before it: a touch queued behind a blocking reserve
// is read only once the reserve's reply is in, with a fresh deadline. What the
// reader must allow for is the blocking reserve itself, hence wait.
//
// The first failure is final: the connection is closed and every later Read
// and Write fails at once. A request written after a lost reply would have
// its own reply attributed to the wrong request.
//
// A Reserver's connection also coalesces writes (see coalesce).
type deadlineConn struct {
	nc     net.Conn
	io     time.Duration
	wait   atomic.Int64 // ns a reserve in progress may legitimately block
	failed atomic.Bool
	once   sync.Once

	// coalesce: a request other than a reserve is kept in pending and goes
	// out in one write with the next reserve, or when a reader needs a reply
	// (every Read first sends what is pending). Requests issued while earlier
	// ones wait for replies so share one write; beanstalkd answers in order
	// and would not have answered them sooner. While a batch gathers (see
	// batchOf), every write waits for its last one. One write syscall per
	// request was most of a consumer's cost. The request order on the wire
	// is unchanged.
	coalesce bool
	wmu      sync.Mutex
	pending  []byte
	batch    int          // writes still to come before a batch goes out
	writes   atomic.Int64 // write syscalls, for tests
}

// reserveCmd starts the request that is written at once, with what is
// pending: the consumer's throughput waits on it.
var reserveCmd = []byte("reserve-with-timeout ")

// errFailedBefore is what a Read or Write gets once the connection failed.
var errFailedBefore = errors.New("connection closed after an earlier failure")

func (d *deadlineConn) Read(p []byte) (int, error) {
	if d.failed.Load() {
		return 0, &ioError{err: errFailedBefore}
	}
	if d.coalesce && !d.flushUnlessBatching() {
		return 0, &ioError{err: errFailedBefore}
	}
	wait := time.Duration(d.wait.Load())
	if err := d.nc.SetReadDeadline(time.Now().Add(d.io + wait)); err != nil {
		d.fail()
		return 0, &ioError{err: err}
	}
	n, err := d.nc.Read(p)
	if err != nil {
		d.fail()
		return n, &ioError{err: err}
	}
	return n, nil
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	if !d.coalesce {
		return d.write(p)
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	batching := d.batch > 0
	if batching {
		d.batch--
	}
	if d.failed.Load() {
		return 0, &ioError{write: true, err: errFailedBefore}
	}
	if batching && d.batch > 0 || !batching && !bytes.HasPrefix(p, reserveCmd) {
		// Its reader sends it at the latest, before waiting for the reply
		// (or the batch's last write does).
		d.pending = append(d.pending, p...)
		return len(p), nil
	}
	buf, before := p, len(d.pending)
	if before > 0 {
		buf = append(d.pending, p...)
		d.pending = buf[:0]
	}
	n, err := d.write(buf)
	if err != nil {
		// What was sent of the requests before p is their readers' concern:
		// the connection is closed and their reads fail.
		var ioe *ioError
		if errors.As(err, &ioe) {
			ioe.sent = max(0, n-before)
		}
		return max(0, n-before), err
	}
	return len(p), nil
}

// batchOf holds every write back until n more have come, then sends them in
// one: a reader of one of them waits meanwhile. Each of the n must be a
// go-beanstalk call already under way, so that all n come soon.
func (d *deadlineConn) batchOf(n int) {
	d.wmu.Lock()
	d.batch = n
	d.wmu.Unlock()
}

// flushUnlessBatching writes the requests kept back, unless a batch is still
// gathering; false when the connection failed.
func (d *deadlineConn) flushUnlessBatching() bool {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.batch == 0 && len(d.pending) > 0 {
		buf := d.pending
		d.pending = buf[:0]
		_, _ = d.write(buf) // a failure closes the connection; the readers see it
	}
	return !d.failed.Load()
}

func (d *deadlineConn) write(p []byte) (int, error) {
	if d.failed.Load() {
		return 0, &ioError{write: true, err: errFailedBefore}
	}
	if err := d.nc.SetWriteDeadline(time.Now().Add(d.io)); err != nil {
		d.fail()
		return 0, &ioError{write: true, err: err}
	}
	d.writes.Add(1)
	n, err := d.nc.Write(p)
	if err != nil {
		d.fail()
		return n, &ioError{write: true, sent: n, err: err}
	}
	return n, nil
}

// Close is go-beanstalk's Conn.Close; it marks the connection failed too.
func (d *deadlineConn) Close() error {
	d.fail()
	return nil
}

func (d *deadlineConn) fail() {
	d.failed.Store(true)
	d.once.Do(func() { _ = d.nc.Close() })
}

// epoch anchors monotonic readings: time.Since keeps using the monotonic
// clock, so a wall-clock step cannot lengthen or cut a back-off.
var epoch = time.Now()

// backoff is a node's "skip me until" mark, read on every call without a lock.
type backoff struct {
	until atomic.Int64 // ns since epoch; 0 = never set
}

func (b *backoff) active() bool {
	u := b.until.Load()
	return u != 0 && int64(time.Since(epoch)) < u
}

func (b *backoff) start(d time.Duration) {
	b.until.Store(int64(time.Since(epoch) + d))
}
