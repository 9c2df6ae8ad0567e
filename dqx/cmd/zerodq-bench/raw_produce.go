package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerodq/zerodq/internal/envelope"
)

// The raw produce baseline is the fastest honest way to do a zerodq
// producer's beanstalkd work: put every job's body, padded to the size of
// zerodq's envelope around the same body, on each of the nodes, and count the
// job once every node stored it. It speaks beanstalkd's put protocol over
// net.Conn itself, skipping go-beanstalk's formatting and per-request
// flushes:
//
//   - with several producers, each node is fed by its own goroutines (16 per
//     node, taking jobs from a counter of their own) sharing one connection
//     per node (rawFanoutConns; 2 and 4 were no faster here). On a
//     connection, a put appends its request to a buffer, yields to the other
//     goroutines (runtime.Gosched) and then, unless another goroutine's write
//     took it along, sends everything buffered in one write; a reader
//     goroutine hands each reply to the oldest waiting put. So no node waits
//     for a slower one, and the puts made meanwhile share a write (about
//     three per write with 16 goroutines; writing at once sent ~1.1 each and
//     was ~15% slower here);
//   - with one producer, that goroutine writes the job's put to every node
//     (one connection each), then reads the three replies: three puts in
//     flight per job, no goroutine hand-off.

// rawFanoutConns is how many connections per node the raw produce baseline
// feeds from several goroutines.
const rawFanoutConns = 1

// rawPipe is one connection over which puts pipeline.
type rawPipe struct {
	nc net.Conn
	rd *bufio.Reader

	mu      sync.Mutex
	buf     []byte // requests not written yet
	spare   []byte
	writing bool
	waiters []chan error // puts waiting for their reply, oldest first
	err     error        // set once the connection failed
}

// dialRawPipe connects to endpoint and uses tube on the connection.
func dialRawPipe(endpoint, tube string) (*rawPipe, error) {
	nc, err := net.DialTimeout("tcp", endpoint, rawDial)
	if err != nil {
		return nil, err
	}
	p := &rawPipe{nc: nc, rd: bufio.NewReaderSize(nc, 64<<10)}
	if _, err := nc.Write([]byte("use " + tube + "\r\n")); err != nil {
		_ = nc.Close()
		return nil, err
	}
	line, err := p.rd.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(line, []byte("USING ")) {
		_ = nc.Close()
		return nil, fmt.Errorf("use %s: %q %v", tube, line, err)
	}
	return p, nil
}

// appendPut appends a put request for body.
func appendPut(dst, body []byte, delay time.Duration) []byte {
	dst = append(dst, "put "...)
	dst = strconv.AppendUint(dst, rawPriority, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(delay/time.Second), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(rawTTR/time.Second), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, body...)
	return append(dst, "\r\n"...)
}

// readPutReply reads one put's reply.
func readPutReply(rd *bufio.Reader) error {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("INSERTED ")) {
		return fmt.Errorf("put: %q", bytes.TrimSpace(line))
	}
	return nil
}

// put sends a put for body and returns done, which receives its outcome.
// done must have room for one value.
func (p *rawPipe) put(body []byte, delay time.Duration, done chan error) {
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		done <- err
		return
	}
	p.buf = appendPut(p.buf, body, delay)
	p.waiters = append(p.waiters, done)
	if p.writing {
		p.mu.Unlock() // the write under way sends it after its own
		return
	}
	// Let the other goroutines run first: the puts they make meanwhile go
	// out in this write (about three puts per write instead of one).
	p.mu.Unlock()
	runtime.Gosched()
	p.mu.Lock()
	if p.writing || len(p.buf) == 0 || p.err != nil {
		p.mu.Unlock() // another goroutine's write took it along
		return
	}
	p.writing = true
	for len(p.buf) > 0 && p.err == nil {
		out := p.buf
		p.buf, p.spare = p.spare[:0], nil
		p.mu.Unlock()
		_, err := p.nc.Write(out)
		p.mu.Lock()
		p.spare = out[:0]
		if err != nil {
			p.failLocked(err)
		}
	}
	p.writing = false
	p.mu.Unlock()
}

// readLoop hands each reply to the oldest waiting put until the connection
// fails or closes.
func (p *rawPipe) readLoop() {
	for {
		err := readPutReply(p.rd)
		p.mu.Lock()
		if errors.Is(err, net.ErrClosed) || err != nil && len(p.waiters) == 0 {
			p.failLocked(err)
			p.mu.Unlock()
			return
		}
		done := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		done <- err
	}
}

func (p *rawPipe) failLocked(err error) {
	if p.err == nil {
		p.err = fmt.Errorf("raw producer: %w", err)
		_ = p.nc.Close()
	}
	for _, w := range p.waiters {
		w <- p.err
	}
	p.waiters = nil
}

// rawBodySize is the size of the job body zerodq puts for a body of size
// bytes: the envelope of a job with a generated ID and no headers around it.
func rawBodySize(size int) int {
	env := envelope.Envelope{ID: envelope.NewID(0), Count: copies}
	return size + envelope.Overhead(&env, nil)
}

// fanout is the raw produce baseline's connections: conns per node, or one
// per node for a single goroutine, which reads the replies itself.
type fanout struct {
	pipes      [][]*rawPipe
	goroutines int
	size       int
	readers    sync.WaitGroup
}

// newFanout connects to every node for goroutines goroutines putting jobs
// of size bytes (with zerodq's envelope size).
func newFanout(endpoints []string, tube string, goroutines, conns, size int) (*fanout, error) {
	f := &fanout{goroutines: goroutines, size: rawBodySize(size)}
	if goroutines == 1 {
		conns = 1
	}
	for _, ep := range endpoints {
		var ps []*rawPipe
		for range conns {
			p, err := dialRawPipe(ep, tube)
			if err != nil {
				f.close()
				return nil, fmt.Errorf("raw producer: %w", err)
			}
			ps = append(ps, p)
		}
		f.pipes = append(f.pipes, ps)
	}
	if goroutines > 1 {
		for _, ps := range f.pipes {
			for _, p := range ps {
				f.readers.Add(1)
				go func() {
					defer f.readers.Done()
					p.readLoop()
				}()
			}
		}
	}
	return f, nil
}

// close closes the connections, which ends the readers.
func (f *fanout) close() {
	for _, ps := range f.pipes {
		for _, p := range ps {
			_ = p.nc.Close()
		}
	}
	f.readers.Wait()
}

// run puts the jobs from, from+1, ..., from+n-1 on every node and returns
// how long it took for every node to store every one of them.
func (f *fanout) run(ctx context.Context, from, n int) (time.Duration, error) {
	if f.goroutines == 1 {
		return f.runOne(ctx, from, n)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	var wg sync.WaitGroup
	for _, ps := range f.pipes {
		var next atomic.Int64
		for g := range f.goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := ps[g%len(ps)]
				done := make(chan error, 1)
				for ctx.Err() == nil {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					seq := uint64(from) + uint64(i)
					p.put(makeBody(f.size, seq, start), 0, done)
					if err := <-done; err != nil {
						cancel(fmt.Errorf("job %d: %w", seq, err))
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	return time.Since(start), context.Cause(ctx)
}

// runOne is run from one goroutine: each job's put is written to every
// node, then the replies are read.
func (f *fanout) runOne(ctx context.Context, from, n int) (time.Duration, error) {
	var req []byte
	start := time.Now()
	for seq := from; seq < from+n; seq++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		req = appendPut(req[:0], makeBody(f.size, uint64(seq), start), 0)
		for _, ps := range f.pipes {
			if _, err := ps[0].nc.Write(req); err != nil {
				return 0, fmt.Errorf("raw producer: job %d: %w", seq, err)
			}
		}
		for _, ps := range f.pipes {
			if err := readPutReply(ps[0].rd); err != nil {
				return 0, fmt.Errorf("raw producer: job %d: %w", seq, err)
			}
		}
	}
	return time.Since(start), nil
}
