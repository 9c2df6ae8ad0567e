package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestMain(m *testing.M) { dqtest.Main(m) }

// raw is a plain go-beanstalk connection for looking at a server from the
// side. Its overall deadline keeps a test from hanging on a server it paused.
func raw(t testing.TB, addr string) *beanstalk.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	require.NoError(t, nc.SetDeadline(time.Now().Add(30*time.Second)))
	c := beanstalk.NewConn(nc)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func tubeStat(t testing.TB, c *beanstalk.Conn, tube, field string) int {
	t.Helper()
	st, err := beanstalk.NewTube(c, tube).Stats()
	if errors.Is(err, beanstalk.ErrNotFound) {
		return 0 // no job and no watcher yet
	}
	require.NoError(t, err)
	v, err := strconv.Atoi(st[field])
	require.NoError(t, err, "stats-tube %s: %q", field, st[field])
	return v
}

func jobState(t testing.TB, c *beanstalk.Conn, id uint64) string {
	t.Helper()
	st, err := c.StatsJob(id)
	require.NoError(t, err)
	return st["state"]
}

// requireOneKind checks the contract of every put error: definite or
// uncertain, never both, never neither.
func requireOneKind(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.NotEqual(t, IsDefinite(err), IsUncertain(err), "error must be exactly one of definite/uncertain: %v", err)
}

func TestPutPeekDeleteRoundTrip(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t)
	n := New(addr, tube, Options{})
	defer n.Close()
	ctx := context.Background()
	require.Equal(t, addr, n.Endpoint())
	require.Equal(t, tube, n.Tube())

	p, err := n.Put(ctx, []byte("hello"), 10, time.Hour, time.Minute)
	require.NoError(t, err)
	body, err := n.Peek(ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, "hello", string(body))
	st, err := raw(t, addr).StatsJob(p.ID)
	require.NoError(t, err)
	require.Equal(t, tube, st["tube"])
	require.Equal(t, "delayed", st["state"])
	require.Equal(t, "10", st["pri"])

	require.NoError(t, n.Delete(ctx, p))
	_, err = n.Peek(ctx, p.ID)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, err, beanstalk.ErrNotFound)
	require.True(t, IsDefinite(err))

	empty, err := n.Put(ctx, nil, 0, 0, time.Second)
	require.NoError(t, err, "an empty body is a valid job")
	require.NoError(t, n.DeleteID(ctx, empty.ID))
	require.ErrorIs(t, n.DeleteID(ctx, empty.ID), ErrNotFound)
}

func TestPutToAKilledNodeFailsDefinitelyAndBacksOff(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t)
	s.Kill()
	n := New(s.Addr(), dqtest.Name(t), Options{Backoff: time.Minute})
	defer n.Close()

	_, err := n.Put(context.Background(), []byte("x"), 0, 0, time.Second)
	requireOneKind(t, err)
	require.True(t, IsDefinite(err), "a refused dial sent nothing: %v", err)

	start := time.Now()
	_, err = n.Put(context.Background(), []byte("x"), 0, 0, time.Second)
	require.ErrorIs(t, err, ErrBackoff)
	require.True(t, IsDefinite(err))
	require.Less(t, time.Since(start), 100*time.Millisecond, "a node in back-off must fail at once")
}

func TestPutWorksAgainAfterTheNodeRestarts(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t, dqtest.WithBinlog())
	n := New(s.Addr(), dqtest.Name(t), Options{Backoff: 100 * time.Millisecond})
	defer n.Close()
	ctx := context.Background()
	_, err := n.Put(ctx, []byte("before"), 0, 0, time.Minute)
	require.NoError(t, err)

	s.Kill()
	// The pooled connection may still look open: the first put after the kill
	// can be written and then find the connection reset.
	_, err = n.Put(ctx, []byte("while down"), 0, 0, time.Minute)
	requireOneKind(t, err)
	dqtest.Eventually(t, 3*time.Second, func() bool {
		_, err := n.Put(ctx, []byte("while down"), 0, 0, time.Minute)
		requireOneKind(t, err)
		return IsDefinite(err)
	}, "puts to a dead node end up failing definitely")

	require.NoError(t, s.Restart())
	var p Put
	dqtest.Eventually(t, 5*time.Second, func() bool {
		p, err = n.Put(ctx, []byte("after"), 0, 0, time.Minute)
		return err == nil
	}, "the same Node puts again after the restart: last error %v", err)
	body, err := n.Peek(ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, "after", string(body))
}

// A node that closed an idle pooled connection (killed, say) never saw a put
// written to it afterwards: the put fails definitely, not as uncertain, so
// that the producer neither notes the job's record nor spills for a copy
// that cannot exist.
func TestPutOnAnIdleConnectionTheKilledNodeClosedIsDefinite(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t)
	n := New(s.Addr(), dqtest.Name(t), Options{Backoff: time.Minute, Conns: 1, IOTimeout: 50 * time.Millisecond})
	defer n.Close()
	ctx := context.Background()
	_, err := n.Put(ctx, []byte("before"), 0, 0, time.Minute)
	require.NoError(t, err)
	// Past the read deadline the last reply left on the connection.
	time.Sleep(100 * time.Millisecond)

	s.Kill()
	dqtest.Eventually(t, 3*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, "the node is gone")
	_, err = n.Put(ctx, []byte("after the kill"), 0, 0, time.Minute)
	requireOneKind(t, err)
	require.True(t, IsDefinite(err), "the node closed the connection before the put: %v", err)
}

func TestPutToAPausedNodeIsUncertainAndLandsOnResume(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t)
	tube := dqtest.Name(t)
	const ioTimeout = 500 * time.Millisecond
	n := New(s.Addr(), tube, Options{IOTimeout: ioTimeout, Backoff: 300 * time.Millisecond, Conns: 1})
	defer n.Close()
	ctx := context.Background()
	_, err := n.Put(ctx, []byte("first"), 0, 0, time.Minute)
	require.NoError(t, err)

	resume := pause(t, s)
	start := time.Now()
	_, err = n.Put(ctx, []byte("ghost"), 0, 0, time.Minute)
	require.Less(t, time.Since(start), ioTimeout+500*time.Millisecond, "a frozen node must not hang a put")
	requireOneKind(t, err)
	require.True(t, IsUncertain(err), "the put was written and may land: %v", err)

	start = time.Now()
	_, err = n.Put(ctx, []byte("skipped"), 0, 0, time.Minute)
	require.ErrorIs(t, err, ErrBackoff)
	require.True(t, IsDefinite(err))
	require.Less(t, time.Since(start), 100*time.Millisecond)

	resume()
	c := raw(t, s.Addr())
	dqtest.Eventually(t, 3*time.Second, func() bool {
		return tubeStat(t, c, tube, "current-jobs-ready") == 2
	}, "the timed-out put lands when the node wakes")

	dqtest.Eventually(t, 3*time.Second, func() bool {
		_, err = n.Put(ctx, []byte("again"), 0, 0, time.Minute)
		return err == nil
	}, "the same Node is used again after its back-off: last error %v", err)
	require.Equal(t, 3, tubeStat(t, c, tube, "current-jobs-ready"))
}

func TestDeleteOfAPutWhoseConnectionWasReplacedIsConnGone(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t, dqtest.WithBinlog())
	n := New(s.Addr(), dqtest.Name(t), Options{Backoff: 100 * time.Millisecond, Conns: 1})
	defer n.Close()
	ctx := context.Background()
	old, err := n.Put(ctx, []byte("old"), 0, time.Hour, time.Minute)
	require.NoError(t, err)

	require.NoError(t, s.Restart())
	var fresh Put
	dqtest.Eventually(t, 5*time.Second, func() bool {
		fresh, err = n.Put(ctx, []byte("new"), 0, time.Hour, time.Minute)
		return err == nil
	}, "put after restart: last error %v", err)

	err = n.Delete(ctx, old)
	require.ErrorIs(t, err, ErrConnGone)
	require.True(t, IsDefinite(err))
	body, err := n.Peek(ctx, old.ID)
	require.NoError(t, err, "nothing was sent: the binlogged job is still there")
	require.Equal(t, "old", string(body))
	require.NoError(t, n.Delete(ctx, fresh))

	require.ErrorIs(t, n.Delete(ctx, Put{ID: fresh.ID}), ErrConnGone, "a Put not made by this Node names no connection")
}

func TestJobTooBigIsDefiniteAndKeepsTheConnection(t *testing.T) {
	t.Parallel()
	n := New(dqtest.Shared(t).Nodes[1].Addr(), dqtest.Name(t), Options{Conns: 1})
	defer n.Close()
	ctx := context.Background()
	_, err := n.Put(ctx, bytes.Repeat([]byte("z"), 70_000), 0, 0, time.Minute)
	requireOneKind(t, err)
	require.True(t, IsDefinite(err))
	require.ErrorIs(t, err, beanstalk.ErrJobTooBig)

	p, err := n.Put(ctx, []byte("fits"), 0, 0, time.Minute)
	require.NoError(t, err)
	require.NoError(t, n.Delete(ctx, p), "the connection that put it is still the same")
}

func TestBadArgumentsFailDefinitelyWithoutSending(t *testing.T) {
	t.Parallel()
	addr := dqtest.Shared(t).Nodes[0].Addr()
	ctx := context.Background()
	for _, tube := range []string{"", "-dash", `back\slash`, "sp ace", string(bytes.Repeat([]byte("t"), 200))} {
		n := New(addr, tube, Options{})
		_, err := n.Put(ctx, []byte("x"), 0, 0, time.Second)
		require.True(t, IsDefinite(err), "tube %q: %v", tube, err)
		_, err = reserveOne(NewReserver(addr, tube, Options{}), 0)
		require.True(t, IsDefinite(err), "tube %q: %v", tube, err)
		require.NoError(t, n.Close())
	}

	n := New(addr, dqtest.Name(t), Options{})
	defer n.Close()
	_, err := n.Put(ctx, []byte("x"), 0, -time.Second, time.Second)
	require.True(t, IsDefinite(err))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = n.Put(cancelled, []byte("x"), 0, 0, time.Second)
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, IsDefinite(err))
}

func TestNodeCloseIsIdempotentAndLaterCallsFailClosed(t *testing.T) {
	t.Parallel()
	n := New(dqtest.Shared(t).Nodes[2].Addr(), dqtest.Name(t), Options{})
	ctx := context.Background()
	p, err := n.Put(ctx, []byte("x"), 0, 0, time.Minute)
	require.NoError(t, err)
	require.NoError(t, n.Close())
	require.ErrorIs(t, n.Close(), ErrClosed)

	_, err = n.Put(ctx, []byte("x"), 0, 0, time.Minute)
	require.ErrorIs(t, err, ErrClosed)
	require.True(t, IsDefinite(err))
	require.ErrorIs(t, n.Delete(ctx, p), ErrClosed)
	_, err = n.Peek(ctx, p.ID)
	require.ErrorIs(t, err, ErrClosed)
}

func TestConcurrentPutsOnOneNode(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[2].Addr(), dqtest.Name(t)
	n := New(addr, tube, Options{})
	defer n.Close()
	const goroutines, each = 16, 200
	var (
		mu  sync.Mutex
		ids = make(map[uint64]bool, goroutines*each)
		wg  sync.WaitGroup
	)
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p, err := n.Put(context.Background(), []byte(fmt.Sprintf("%d/%d", g, i)), 0, time.Hour, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids[p.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, ids, goroutines*each, "every put got its own job id")
	require.Equal(t, goroutines*each, tubeStat(t, raw(t, addr), tube, "current-jobs-delayed"))
}

func TestJudgeClassifiesFailures(t *testing.T) {
	t.Parallel()
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	ce := func(err error) error { return beanstalk.ConnError{Op: "put", Err: err} }
	for _, tc := range []struct {
		name                        string
		err                         error
		size                        int
		uncertain, broken, timedOut bool
		is                          error
	}{
		{"write sent nothing", ce(&ioError{write: true, err: errFailedBefore}), 10, false, true, false, nil},
		{"write sent part", ce(&ioError{write: true, sent: 5, err: errFailedBefore}), 10, true, true, false, nil},
		{"large write may have sent earlier parts", ce(&ioError{write: true, err: errFailedBefore}), 10_000, true, true, false, nil},
		{"read failed", ce(&ioError{err: errors.New("EOF")}), 10, true, true, false, nil},
		{"read timed out", ce(&ioError{err: timeout}), 10, true, true, true, nil},
		{"not found", ce(beanstalk.ErrNotFound), 0, false, false, false, ErrNotFound},
		{"job too big", ce(beanstalk.ErrJobTooBig), 0, false, false, false, beanstalk.ErrJobTooBig},
		{"draining", ce(beanstalk.ErrDraining), 0, false, false, false, beanstalk.ErrDraining},
		{"bad format", ce(beanstalk.ErrBadFormat), 0, false, true, false, beanstalk.ErrBadFormat},
		{"unexpected reply", ce(errors.New("unknown response: WHAT")), 0, true, true, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.err, tc.size)
			require.Equal(t, tc.uncertain, v.uncertain, "uncertain")
			require.Equal(t, tc.broken, v.broken, "broken")
			require.Equal(t, tc.timedOut, v.timeout, "timeout")
			if tc.is != nil {
				require.ErrorIs(t, v.err, tc.is)
			}
		})
	}
}

func TestRepliesAreReadAsGoBeanstalkWouldReportThem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		op        op
		line      string
		id        uint64
		buried    bool
		is        error
		uncertain bool
		broken    bool
	}{
		{op: opPut, line: "INSERTED 7\r\n", id: 7},
		{op: opPut, line: "BURIED 42\r\n", id: 42, buried: true},
		{op: opPut, line: "BURIED x\r\n", uncertain: true, broken: true},
		{op: opPut, line: "JOB_TOO_BIG\r\n", is: beanstalk.ErrJobTooBig},
		{op: opPut, line: "DRAINING\r\n", is: beanstalk.ErrDraining},
		{op: opPut, line: "OUT_OF_MEMORY\r\n", is: beanstalk.ErrOOM},
		{op: opPut, line: "EXPECTED_CRLF\r\n", is: beanstalk.ErrNoCRLF, broken: true},
		{op: opPut, line: "BAD_FORMAT\r\n", is: beanstalk.ErrBadFormat, broken: true},
		{op: opPut, line: "DELETED\r\n", uncertain: true, broken: true},
		{op: opDelete, line: "DELETED\r\n"},
		{op: opDelete, line: "NOT_FOUND\r\n", is: ErrNotFound},
		{op: opDelete, line: "INSERTED 3\r\n", uncertain: true, broken: true},
	} {
		t.Run(tc.op.String()+" "+strings.TrimSpace(tc.line), func(t *testing.T) {
			id, buried, err := parseReply(tc.op, []byte(tc.line))
			require.Equal(t, tc.id, id)
			require.Equal(t, tc.buried, buried)
			if tc.is == nil && !tc.uncertain && !tc.broken {
				require.NoError(t, err)
				return
			}
			v := judge(err, 0)
			if tc.is != nil {
				require.ErrorIs(t, v.err, tc.is)
			}
			require.Equal(t, tc.uncertain, v.uncertain, "uncertain")
			require.Equal(t, tc.broken, v.broken, "broken")
		})
	}
}

func benchPuts(b *testing.B, goroutines int, put func() error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := put(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

var benchBody = bytes.Repeat([]byte("b"), 200)

// BenchmarkPut puts through a Node; compare with BenchmarkRawPut.
func BenchmarkPut(b *testing.B) {
	for _, g := range []int{1, 16} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			n := New(dqtest.Shared(b).Nodes[0].Addr(), dqtest.Name(b), Options{Conns: 2})
			defer n.Close()
			ctx := context.Background()
			benchPuts(b, g, func() error {
				_, err := n.Put(ctx, benchBody, 0, time.Hour, time.Minute)
				return err
			})
		})
	}
}

// BenchmarkRawPut is the baseline: go-beanstalk alone on as many connections,
// with no deadlines.
func BenchmarkRawPut(b *testing.B) {
	for _, g := range []int{1, 16} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			addr, tube := dqtest.Shared(b).Nodes[0].Addr(), dqtest.Name(b)
			tubes := make([]*beanstalk.Tube, 2)
			for i := range tubes {
				c, err := beanstalk.DialTimeout("tcp", addr, time.Second)
				require.NoError(b, err)
				defer c.Close()
				tubes[i] = beanstalk.NewTube(c, tube)
			}
			var rr atomic.Uint32
			benchPuts(b, g, func() error {
				_, err := tubes[rr.Add(1)%uint32(len(tubes))].Put(benchBody, 0, time.Hour, time.Minute)
				return err
			})
		})
	}
}

func TestPutsMadeWhileAWriteIsUnderWayShareTheNextWrite(t *testing.T) {
	t.Parallel()
	s := dqtest.Shared(t).Nodes[0]
	n := New(s.Addr(), dqtest.Name(t), Options{Conns: 1})
	defer n.Close()
	ctx := context.Background()
	first, err := n.Put(ctx, []byte("first"), 0, 0, time.Minute)
	require.NoError(t, err)
	p := first.pipe
	before := p.writes.Load()

	// As if a write were under way: the puts below only queue.
	p.mu.Lock()
	p.writing = true
	p.mu.Unlock()
	const puts = 20
	results := make(chan error, puts)
	ids := make(chan uint64, puts)
	var r Reply
	for i := range puts {
		r = n.PutAsync([]byte(fmt.Sprintf("job %d", i)), 0, 0, time.Minute, func(put Put, err error) {
			ids <- put.ID
			results <- err
		})
	}
	require.Equal(t, before, p.writes.Load(), "nothing is written while a write is under way")
	p.mu.Lock()
	p.writing = false
	p.writeLocked()
	r.Await()

	last := first.ID
	for range puts {
		require.NoError(t, <-results)
		id := <-ids
		require.Greater(t, id, last, "replies are handed out in the order the puts were made")
		last = id
	}
	require.Equal(t, before+1, p.writes.Load(), "the queued puts went out in one write")
	body, err := n.Peek(ctx, last)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("job %d", puts-1), string(body))
}

func TestQueuedPutsWaitForAFlushAndShareItsWrite(t *testing.T) {
	t.Parallel()
	n := dialedNode(t, dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{})
	p := n.pipes[0].cur.Load()
	before := p.writes.Load()

	const puts = 5
	var settled atomic.Int32
	ids := make([]uint64, puts)
	errs := make([]error, puts)
	replies := make([]Reply, puts)
	for i := range puts {
		replies[i] = n.PutAsyncQueued([]byte(fmt.Sprintf("queued %d", i)), 0, 0, time.Minute, func(put Put, err error) {
			ids[i], errs[i] = put.ID, err
			settled.Add(1)
		})
	}
	require.Equal(t, before, p.writes.Load(), "a queued put is not written before a flush")
	require.Zero(t, settled.Load())

	replies[2].Flush()
	require.Equal(t, before+1, p.writes.Load(), "one flush writes every queued put")
	for _, r := range replies {
		r.Flush() // written already: nothing to do
	}
	require.Equal(t, before+1, p.writes.Load(), "a flush of a written put writes nothing")
	replies[puts-1].Await()
	dqtest.Eventually(t, 5*time.Second, func() bool { return settled.Load() == puts }, "every queued put settled")
	for i := range puts {
		require.NoError(t, errs[i])
		require.True(t, i == 0 || ids[i] > ids[i-1], "the puts went out in the order they were queued")
	}

	// Awaiting a queued put flushes it: a caller that forgets Flush still
	// gets its reply, not a timeout.
	done := make(chan error, 1)
	r := n.PutAsyncQueued([]byte("awaited"), 0, 0, time.Minute, func(_ Put, err error) { done <- err })
	r.Await()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("an awaited queued put got no reply")
	}
	require.Equal(t, before+2, p.writes.Load())
}

func TestReadGivesTheReplyBeforeItReturnsWhenNobodyElseReads(t *testing.T) {
	t.Parallel()
	n := dialedNode(t, dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{})
	for i := range 3 {
		var got atomic.Bool
		var id uint64
		var perr error
		r := n.PutAsync([]byte("inline"), 0, 0, time.Minute, func(p Put, err error) {
			id, perr = p.ID, err
			got.Store(true)
		})
		r.Read(5 * time.Second)
		require.True(t, got.Load(), "put %d: the reply was read by the caller of Read", i)
		require.NoError(t, perr)
		require.NotZero(t, id)
	}
}

func TestReadLeavesAPausedNodesReplyToTheReaderAndItLandsOnResume(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t)
	tube := dqtest.Name(t)
	n := dialedNode(t, s.Addr(), tube, Options{IOTimeout: 5 * time.Second})

	resume := pause(t, s)
	done := make(chan error, 1)
	start := time.Now()
	r := n.PutAsync([]byte("late"), 0, 0, time.Minute, func(_ Put, err error) { done <- err })
	r.Read(20 * time.Millisecond)
	require.Less(t, time.Since(start), 2*time.Second, "Read gives up on a slow node long before IOTimeout")
	pp := n.pipes[0].cur.Load()
	require.True(t, pp.slow.Load(), "the caller read, then left the reply to the goroutine")
	select {
	case err := <-done:
		t.Fatalf("a paused node cannot have answered: %v", err)
	default:
	}

	resume()
	select {
	case err := <-done:
		require.NoError(t, err, "the reader goroutine read the reply once the node woke")
		require.False(t, pp.slow.Load(), "a reply read: callers may read inline again")
	case <-time.After(4 * time.Second):
		t.Fatal("the reply of a put Read gave up on was never read")
	}
	c := raw(t, s.Addr())
	require.Equal(t, 2, tubeStat(t, c, tube, "current-jobs-ready"))
}

// dialedNode returns a Node on addr with one connection, dialed by a first
// put whose reply its reader goroutine read and let go of; it is closed when
// the test ends.
func dialedNode(t *testing.T, addr, tube string, o Options) *Node {
	t.Helper()
	o.Conns = 1
	n := New(addr, tube, o)
	t.Cleanup(func() { _ = n.Close() })
	_, err := n.Put(context.Background(), []byte("dial"), 0, 0, time.Minute)
	require.NoError(t, err)
	awaitReaderIdle(t, n)
	return n
}

// awaitReaderIdle waits until nobody reads n's one connection: the reader
// goroutine lets go of it just after handing out the last reply.
func awaitReaderIdle(t *testing.T, n *Node) {
	dqtest.Eventually(t, 3*time.Second, func() bool {
		p := n.pipes[0].cur.Load()
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.reading
	}, "the reader goroutine is idle")
}

func TestALeftReplyIsReadByTheNextReadOnItsConnection(t *testing.T) {
	t.Parallel()
	n := dialedNode(t, dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{})
	pp := n.pipes[0].cur.Load()
	kicks := pp.kicks.Load()
	for i := range 3 {
		var left, next atomic.Bool
		n.PutAsync([]byte("left"), 0, 0, time.Minute, func(_ Put, err error) {
			require.NoError(t, err)
			left.Store(true)
		}).Leave()
		n.PutAsync([]byte("next"), 0, 0, time.Minute, func(_ Put, err error) {
			require.NoError(t, err)
			next.Store(true)
		}).Read(5 * time.Second)
		require.True(t, left.Load(), "put %d: the left reply was read on the way to the next one", i)
		require.True(t, next.Load(), "put %d: the next reply was read by its caller", i)
	}
	require.Equal(t, kicks, pp.kicks.Load(), "no reply went to the reader goroutine")
}

func TestALeftReplyNobodyReadsGoesToTheReaderGoroutine(t *testing.T) {
	t.Parallel()
	n := dialedNode(t, dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{IOTimeout: time.Minute})
	done := make(chan error, 1)
	n.PutAsync([]byte("left"), 0, 0, time.Minute, func(_ Put, err error) { done <- err }).Leave()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a left reply nobody read was never read")
	}
}

func TestReadLeftHandsALeftReplyToTheReaderGoroutineAtOnce(t *testing.T) {
	t.Parallel()
	n := dialedNode(t, dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{IOTimeout: time.Minute})
	pp := n.pipes[0].cur.Load()
	pp.mu.Lock()
	pp.leaveWait = time.Hour // only ReadLeft can hand the reply over
	pp.mu.Unlock()
	done := make(chan error, 1)
	n.PutAsync([]byte("left"), 0, 0, time.Minute, func(_ Put, err error) { done <- err }).Leave()
	kicks := pp.kicks.Load()
	require.Empty(t, done, "nobody read the left reply yet")
	n.ReadLeft()
	require.Equal(t, kicks+1, pp.kicks.Load(), "ReadLeft kicked the reader goroutine, not waiting for the leave timer")
	require.NoError(t, <-done)
	n.ReadLeft()
	require.Equal(t, kicks+1, pp.kicks.Load(), "with nothing left, ReadLeft kicks nobody")
}

func TestCloseEndsALeftReplyNobodyReadYet(t *testing.T) {
	t.Parallel()
	n := dialedNode(t, dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t), Options{IOTimeout: time.Minute})
	done := make(chan error, 1)
	n.PutAsync([]byte("left"), 0, 0, time.Minute, func(_ Put, err error) { done <- err }).Leave()
	require.NoError(t, n.Close())
	select {
	case err := <-done:
		// Answered before the close, or ended by it: written, so uncertain.
		if err != nil {
			require.True(t, IsUncertain(err), "a put written before the close is uncertain: %v", err)
		}
	default:
		t.Fatal("Close returned with a left reply's put never ended")
	}
}

// TestAReplyArrivingOnAQuietConnectionWakesItsReader: a connection an inline
// read made quiet (its low-water mark raised, so that arriving replies wake
// nobody) is made loud again before a reader waits on it: a reply that comes
// while the reader goroutine waits is read when it comes, not at IOTimeout.
func TestAReplyArrivingOnAQuietConnectionWakesItsReader(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t)
	tube := dqtest.Name(t)
	n := dialedNode(t, s.Addr(), tube, Options{IOTimeout: 20 * time.Second})
	first := make(chan error, 1)
	n.PutAsync([]byte("first"), 0, 0, time.Minute, func(_ Put, err error) { first <- err }).Read(5 * time.Second)
	require.NoError(t, <-first)
	pp := n.pipes[0].cur.Load()
	pp.leaveWait = time.Hour // only ReadLeft hands the reply over
	// The inline read left it quiet, unless it had to wait: make sure.
	require.NoError(t, pp.rc.Control(pp.quietNow))
	pp.quiet = true

	resume := pause(t, s)
	done := make(chan error, 1)
	n.PutAsync([]byte("late"), 0, 0, time.Minute, func(_ Put, err error) { done <- err }).Leave()
	kicks := pp.kicks.Load()
	n.ReadLeft()
	// The reader goroutine found no reply and waits in the poller, the
	// connection made loud first (its low-water mark back at 1).
	lowat := func() int {
		v := -1
		require.NoError(t, pp.rc.Control(func(fd uintptr) {
			v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
		}))
		return v
	}
	dqtest.Eventually(t, 5*time.Second, func() bool { return pp.kicks.Load() == kicks+1 && lowat() == 1 },
		"the reader goroutine made the connection loud to wait")

	resume()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a reply arriving on a quiet connection woke no reader")
	}
}

// pause freezes s until the returned resume is called, or the test ends.
func pause(t *testing.T, s *dqtest.Server) (resume func()) {
	t.Helper()
	require.NoError(t, s.Pause())
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = s.Resume() }) })
	return func() { once.Do(func() { require.NoError(t, s.Resume()) }) }
}
