package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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
//     node, taking jobs from a counter of their own) sharing 4 connections
//     per node. On a connection, a put appends its request to a buffer and
//     whoever finds no write under way sends everything buffered in one
//     write; a reader goroutine hands each reply to the oldest waiting put.
//     So no node waits for a slower one, and puts that pile up while a write
//     is under way share the next one;
//   - with one producer, that goroutine writes the job's put to every node
//     (one connection each), then reads the three replies: three puts in
//     flight per job, no goroutine hand-off.

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

// produceFanout puts n jobs of size bytes (with zerodq's envelope size) on
// every node, as described above, from goroutines goroutines per node, or
// from one goroutine in all when goroutines is 1, and returns how long it
// took for every node to store every job.
func produceFanout(ctx context.Context, endpoints []string, tube string, n, goroutines, size int) (time.Duration, error) {
	size = rawBodySize(size)
	if goroutines == 1 {
		return produceFanoutOne(ctx, endpoints, tube, n, size)
	}
	var pipes [][]*rawPipe
	defer func() {
		for _, ps := range pipes {
			for _, p := range ps {
				_ = p.nc.Close()
			}
		}
	}()
	for _, ep := range endpoints {
		var ps []*rawPipe
		for range rawProducerConns {
			p, err := dialRawPipe(ep, tube)
			if err != nil {
				return 0, fmt.Errorf("raw producer: %w", err)
			}
			ps = append(ps, p)
		}
		pipes = append(pipes, ps)
	}
	var readers sync.WaitGroup
	for _, ps := range pipes {
		for _, p := range ps {
			readers.Add(1)
			go func() {
				defer readers.Done()
				p.readLoop()
			}()
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	var wg sync.WaitGroup
	for _, ps := range pipes {
		var next atomic.Int64
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := ps[g%len(ps)]
				done := make(chan error, 1)
				for ctx.Err() == nil {
					seq := next.Add(1) - 1
					if seq >= int64(n) {
						return
					}
					p.put(makeBody(size, uint64(seq), start), 0, done)
					if err := <-done; err != nil {
						cancel(fmt.Errorf("job %d: %w", seq, err))
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, ps := range pipes {
		for _, p := range ps {
			_ = p.nc.Close()
		}
	}
	readers.Wait()
	return elapsed, context.Cause(ctx)
}

// produceFanoutOne is produceFanout from one goroutine.
func produceFanoutOne(ctx context.Context, endpoints []string, tube string, n, size int) (time.Duration, error) {
	var pipes []*rawPipe
	defer func() {
		for _, p := range pipes {
			_ = p.nc.Close()
		}
	}()
	for _, ep := range endpoints {
		p, err := dialRawPipe(ep, tube)
		if err != nil {
			return 0, fmt.Errorf("raw producer: %w", err)
		}
		pipes = append(pipes, p)
	}
	var req []byte
	start := time.Now()
	for seq := range n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		req = appendPut(req[:0], makeBody(size, uint64(seq), start), 0)
		for _, p := range pipes {
			if _, err := p.nc.Write(req); err != nil {
				return 0, fmt.Errorf("raw producer: job %d: %w", seq, err)
			}
		}
		for _, p := range pipes {
			if err := readPutReply(p.rd); err != nil {
				return 0, fmt.Errorf("raw producer: job %d: %w", seq, err)
			}
		}
	}
	return time.Since(start), nil
}
