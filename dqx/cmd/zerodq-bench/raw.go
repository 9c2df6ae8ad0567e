package main

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// The raw baseline does the beanstalkd work of zerodq without zerodq: the same
// number of copies per job on distinct nodes, the same body size, and for
// consumers a reserve and a delete per copy; a job's first copy runs the
// handler and its other copies are deleted, deduplicated in process memory.
// It is as fast as go-beanstalk allows: several connections per node, each
// pipelining the requests of concurrent callers.

const (
	rawPriority = 1024
	rawTTR      = 30 * time.Second
	rawDial     = 2 * time.Second
	// rawProducerConns is how many connections per node the raw producer
	// spreads its puts over.
	rawProducerConns = 4
)

// rawProducer puts copies of a job on copies distinct nodes in parallel.
type rawProducer struct {
	tubes  [][]*beanstalk.Tube // per node, one per connection
	conns  []*beanstalk.Conn
	copies int
	next   atomic.Uint64
}

func newRawProducer(endpoints []string, tube string, copies int) (*rawProducer, error) {
	p := &rawProducer{copies: min(copies, len(endpoints))}
	for _, ep := range endpoints {
		var ts []*beanstalk.Tube
		for range rawProducerConns {
			c, err := beanstalk.DialTimeout("tcp", ep, rawDial)
			if err != nil {
				p.close()
				return nil, fmt.Errorf("raw producer: %w", err)
			}
			p.conns = append(p.conns, c)
			ts = append(ts, beanstalk.NewTube(c, tube))
		}
		p.tubes = append(p.tubes, ts)
	}
	return p, nil
}

// put writes the job's copies, one per node, concurrently, and returns once
// every node answered.
func (p *rawProducer) put(body []byte, delay time.Duration) error {
	k := p.next.Add(1)
	errs := make([]error, p.copies)
	var wg sync.WaitGroup
	for c := 1; c < p.copies; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[c] = p.putCopy(k, c, body, delay)
		}()
	}
	errs[0] = p.putCopy(k, 0, body, delay)
	wg.Wait()
	return errors.Join(errs...)
}

func (p *rawProducer) putCopy(k uint64, c int, body []byte, delay time.Duration) error {
	node := p.tubes[(k+uint64(c))%uint64(len(p.tubes))]
	_, err := node[(k/uint64(len(p.tubes)))%uint64(len(node))].Put(body, rawPriority, delay, rawTTR)
	return err
}

func (p *rawProducer) close() {
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// rawConsumer reserves copies on every node, one loop per connection, and
// runs the handler for the first copy of each job within workers slots.
type rawConsumer struct {
	tr       *tracker
	work     time.Duration
	slots    chan struct{}
	conns    []*beanstalk.Conn
	stopping atomic.Bool
	wg       sync.WaitGroup

	mu  sync.Mutex
	err error
}

func startRawConsumer(endpoints []string, tube string, workers int, work time.Duration, tr *tracker) (*rawConsumer, error) {
	rc := &rawConsumer{tr: tr, work: work, slots: make(chan struct{}, workers)}
	// A loop holds the copy it runs, so the loops must outnumber the
	// workers for every worker to be busy; and a few per node keep a node
	// busy while others wait for replies.
	loops := max(4, (workers+len(endpoints)-1)/len(endpoints)+1)
	for _, ep := range endpoints {
		for range loops {
			c, err := beanstalk.DialTimeout("tcp", ep, rawDial)
			if err != nil {
				_ = rc.stop()
				return nil, fmt.Errorf("raw consumer: %w", err)
			}
			rc.conns = append(rc.conns, c)
		}
	}
	for _, c := range rc.conns {
		rc.wg.Add(1)
		go func() {
			defer rc.wg.Done()
			rc.loop(c, tube)
		}()
	}
	return rc, nil
}

func (rc *rawConsumer) loop(c *beanstalk.Conn, tube string) {
	ts := beanstalk.NewTubeSet(c, tube)
	for !rc.stopping.Load() {
		id, body, err := ts.Reserve(time.Second)
		switch {
		case err == nil:
		case errors.Is(err, beanstalk.ErrTimeout), errors.Is(err, beanstalk.ErrDeadline):
			continue
		default:
			rc.fail(err)
			return
		}
		if seq, due, ok := parseBody(body); ok && rc.tr.first(seq) {
			rc.slots <- struct{}{}
			rc.tr.started(time.Since(due))
			if rc.work > 0 {
				time.Sleep(rc.work) // the handler's simulated work
			}
			<-rc.slots
			rc.tr.completed()
		}
		if err := c.Delete(id); err != nil {
			rc.fail(err)
			return
		}
	}
}

func (rc *rawConsumer) fail(err error) {
	if rc.stopping.Load() {
		return // closing the connections fails the loops' requests
	}
	rc.mu.Lock()
	if rc.err == nil {
		rc.err = fmt.Errorf("raw consumer: %w", err)
	}
	rc.mu.Unlock()
}

// stop closes the connections, which ends blocked reserves, waits for the
// loops and returns the first error a loop met.
func (rc *rawConsumer) stop() error {
	rc.stopping.Store(true)
	for _, c := range rc.conns {
		_ = c.Close()
	}
	rc.wg.Wait()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}

// purgeTube deletes every job of tube on the given nodes, so that a run
// against someone's servers leaves nothing behind.
func purgeTube(endpoints []string, tube string) error {
	var errs []error
	for _, ep := range endpoints {
		errs = append(errs, purgeNode(ep, tube))
	}
	return errors.Join(errs...)
}

func purgeNode(endpoint, tube string) error {
	c, err := beanstalk.DialTimeout("tcp", endpoint, rawDial)
	if err != nil {
		return err
	}
	defer c.Close()
	t := beanstalk.NewTube(c, tube)
	ts := beanstalk.NewTubeSet(c, tube)
	deadline := time.Now().Add(time.Minute)
	// kick moves buried jobs, or delayed ones when none is buried.
	for range 3 {
		if _, err := t.Kick(1 << 30); err != nil {
			return err
		}
	}
	for time.Now().Before(deadline) {
		id, _, err := ts.Reserve(0)
		if errors.Is(err, beanstalk.ErrTimeout) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.Delete(id); err != nil {
			return err
		}
	}
	return fmt.Errorf("purging %s on %s: still not empty after a minute", tube, endpoint)
}
