package dq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/clock"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
)

// Consumer runs a handler for the jobs of a queue. It is a go-zero
// service.Service: add it to the service group; Start blocks until Stop has
// drained it.
//
// Delivery is at-least-once and execution exactly-once across a job's copies:
// a job's handler is started again only when an earlier run failed, was
// interrupted (crash, Stop, lost lease) or timed out. Handlers should still be
// idempotent, since a run that was interrupted after its side effects runs
// again.
type Consumer interface {
	// Start reserves and runs jobs until Stop; it returns once Stop has
	// drained the consumer.
	Start()
	// Stop stops reserving, hands back copies not yet started, waits up to
	// ShutdownTimeout for running handlers, cancels the rest and makes their
	// jobs available to other consumers at once, then closes connections.
	// A handler's result that came before the cancel stands as it is; after
	// it, nil is done, ErrSkipRetry is dead, and any other error hands the
	// job back with no failure counted.
	//
	// Stop returns within ShutdownTimeout + 1.5s whatever the servers do: a
	// node or a Redis that does not answer is not waited on (its connections
	// are closed), and an outcome Redis could not take is left to the job's
	// lease, after which the job may run again. It is idempotent.
	Stop()
}

// ConsumerOption tunes a Consumer.
type ConsumerOption func(*consumerOptions)

type consumerOptions struct {
	maxHeld    int
	reservers  int
	claimChunk int // the claims claimDue sends together, at most (tests)
}

// The defaults of the consumer options.
const (
	defaultReservers = 2
	defaultMaxHeld   = 16384
	// defaultClaimChunk bounds the claims the holder sends together: the
	// batch the claim store's pipe sends in one round trip.
	defaultClaimChunk = 256
)

// WithReserversPerNode sets how many connections reserve copies from each
// node, each in its own loop. If unset or zero, 2: while one waits for a
// reply the other's copies are acknowledged.
func WithReserversPerNode(n int) ConsumerOption {
	return func(o *consumerOptions) { o.reservers = n }
}

// WithMaxHeld bounds the copies a consumer holds in memory between reserving
// and running them (copies reserved up to a second before their due time,
// and spares of jobs running elsewhere). If unset or zero, 16384.
func WithMaxHeld(n int) ConsumerOption {
	return func(o *consumerOptions) { o.maxHeld = n }
}

// How long the consumer waits between probes of a Redis that stopped
// answering, and how long a reserve waits for a ready copy.
const (
	redisProbeInterval = 250 * time.Millisecond
	reserveWait        = time.Second
)

var (
	errShutdown  = errors.New("dq: consumer stopping")
	errLeaseLost = errors.New("dq: lease on the job lost")
	// errHandlerExited is the result of a handler that ended its goroutine
	// without returning: a failure, retried.
	errHandlerExited = errors.New("dq: handler exited without returning")
)

type consumer struct {
	conf    DqConf
	id      string // host/pid/random: the consumer's registry ID and the owner its claims record
	tube    string // the queue's name in Redis keys
	handler ConsumeHandler
	store   *claim.Store
	clock   *clock.Clock
	keys    envelope.Keys
	accept  envelope.Accept // the bodies without a MAC run despite keys
	loops   []*nodeLoop
	gate    *gate
	hold    *holder
	chunk   int // the claims claimDue sends together, at most

	leaseMs   int64
	maxFail   int
	heartbeat time.Duration

	// ctx is for the consumer's own Redis and beanstalkd calls; it ends when
	// the drain gives up on them.
	ctx    context.Context
	cancel context.CancelFunc

	stopping chan struct{}
	stopOnce sync.Once
	started  atomic.Bool
	done     chan struct{}

	copies  sync.WaitGroup // copies in hand, held or in a goroutine; added to only through admit
	sealed  bool           // under mu: drain waits for copies, admit refuses
	loopsWG sync.WaitGroup // reserve loops

	mu    sync.Mutex
	runs  map[*activeRun]struct{}
	local map[string]*localJob // job ID → a copy of it being claimed or run here
	idle  chan struct{}        // closed when runs becomes empty during drain

	redis    redisHealth
	ops      consumerOps // registry entry, queue pause, outcome counts
	gones    *goneBatcher
	finished *recentDone
}

// NewConsumer returns a Consumer of c's queue that runs handler. A bad
// config fails at once; Redis is not contacted: Start waits, paused, until
// Redis answers, so a consumer may start before its Redis.
func NewConsumer(c DqConf, handler ConsumeHandler, opts ...ConsumerOption) (Consumer, error) {
	if handler == nil {
		return nil, &ConfigError{Field: "handler", Value: nil, Reason: "a consumer needs a handler"}
	}
	c, err := c.normalize()
	if err != nil {
		return nil, err
	}
	o := consumerOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxHeld <= 0 {
		o.maxHeld = defaultMaxHeld
	}
	if o.reservers <= 0 {
		o.reservers = defaultReservers
	}
	if o.claimChunk <= 0 {
		o.claimChunk = defaultClaimChunk
	}
	// No ping: a consumer may start before its Redis (pods start in any
	// order); Start waits for Redis, paused, as it does in an outage.
	rc := c.redisConf()
	rc.NonBlock = true
	rds, err := redis.NewRedis(rc)
	if err != nil {
		return nil, fmt.Errorf("dq: consumer: %w", err)
	}
	store := claim.New(rds, c.KeyPrefix, c.DedupeTTL, claim.WithHistory(c.History), claim.WithCallTimeout(c.RedisTimeout))
	ctx, cancel := context.WithCancel(context.Background())
	cs := &consumer{
		conf:      c,
		id:        newConsumerID(),
		tube:      c.claimTube(),
		handler:   handler,
		store:     store,
		keys:      c.signingKeys(),
		accept:    envelope.Accept{Legacy: c.AcceptLegacy, Unsigned: c.AcceptUnsigned},
		gate:      newGate(c.Workers, c.Workers+o.maxHeld),
		leaseMs:   c.TTR.Milliseconds(),
		maxFail:   c.MaxRetries,
		heartbeat: c.TTR / 3,
		chunk:     o.claimChunk,
		ctx:       ctx,
		cancel:    cancel,
		stopping:  make(chan struct{}),
		done:      make(chan struct{}),
		runs:      make(map[*activeRun]struct{}),
		local:     make(map[string]*localJob),
	}
	cs.redis.init(cs)
	cs.ops.init(cs)
	cs.clock = clock.New(cs.redis.nowMicros, 0)
	cs.gones = newGoneBatcher(cs)
	cs.hold = newHolder(cs)
	cs.finished = newRecentDone(8192, c.DedupeTTL)
	nopts := node.Options{DialTimeout: c.DialTimeout, IOTimeout: c.IOTimeout}
	for _, b := range c.Beanstalks {
		for range o.reservers {
			cs.loops = append(cs.loops, &nodeLoop{
				c:        cs,
				endpoint: b.Endpoint,
				tube:     b.Tube,
				r:        node.NewReserver(b.Endpoint, b.Tube, nopts),
			})
		}
	}
	return cs, nil
}

// MustNewConsumer is NewConsumer that logs the error and exits on failure.
func MustNewConsumer(c DqConf, handler ConsumeHandler, opts ...ConsumerOption) Consumer {
	cs, err := NewConsumer(c, handler, opts...)
	logx.Must(err)
	return cs
}

// Start implements service.Service.
func (c *consumer) Start() {
	if !c.started.CompareAndSwap(false, true) {
		<-c.done
		return
	}
	c.clock.Start()
	c.gones.start()
	c.ops.start()
	// Nothing is reserved before Redis has answered once (and the clock has
	// its offset to Redis time).
	c.redis.awaitFirst()
	c.startLoops()
	<-c.stopping
	c.drain()
}

// startLoops starts the reserve loops. The wait group counts them all before
// the first starts, so that no loop's Done can bring it to zero while others
// are still being added.
func (c *consumer) startLoops() {
	c.hold.start()
	c.loopsWG.Add(len(c.loops))
	for _, l := range c.loops {
		go l.run()
	}
}

// Stop implements service.Service.
func (c *consumer) Stop() {
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.gate.close()
		if c.started.CompareAndSwap(false, true) {
			// Never started: nothing runs, only connections to release.
			c.drain()
		}
	})
	<-c.done
}

func (c *consumer) isStopping() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// Stop's schedule past ShutdownTimeout: a cancelled handler has stopGrace to
// return; acknowledgements and finishes may go on until stopAcks, when the
// consumer's connections are closed and its Redis calls cancelled; Stop
// returns by stopReturn whatever the servers do.
const (
	stopGrace  = 500 * time.Millisecond
	stopAcks   = 900 * time.Millisecond
	stopReturn = 1300 * time.Millisecond
)

// drain runs the shutdown of DESIGN.md "Stop" once reserving has stopped. It
// returns within ShutdownTimeout + stopReturn: a frozen node or Redis is not
// waited on, and what Redis could not take is left to the lease.
func (c *consumer) drain() {
	defer close(c.done)
	start := time.Now()
	c.seal()
	budget := time.NewTimer(c.conf.ShutdownTimeout)
	defer budget.Stop()
	var abandons sync.WaitGroup
	select {
	case <-c.runsIdle():
	case <-budget.C:
		c.cancelRuns()
		grace := time.NewTimer(stopGrace)
		select {
		case <-c.runsIdle():
		case <-grace.C:
			c.abandonRuns(&abandons)
		}
		grace.Stop()
	}

	acked := make(chan struct{})
	go func() {
		c.copies.Wait()
		abandons.Wait()
		close(acked)
	}()
	acks := time.NewTimer(time.Until(start.Add(c.conf.ShutdownTimeout + stopAcks)))
	defer acks.Stop()
	select {
	case <-acked:
	case <-acks.C:
		// Stop waits no longer on a node or a Redis that does not answer:
		// closing a connection hands its reserved copies back, and a run
		// whose finish Redis did not take is left to its lease.
		c.cancel()
		c.closeLoops()
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-acked
		c.hold.stop()
		c.gones.stop()
		c.closeLoops()
		c.loopsWG.Wait()
		c.ops.stop()
		c.redis.stop()
		c.clock.Close()
		c.redis.close()
		c.cancel()
	}()
	last := time.NewTimer(time.Until(start.Add(c.conf.ShutdownTimeout + stopReturn)))
	defer last.Stop()
	select {
	case <-stopped:
	case <-last.C:
		// What is left is a call to a server that stopped answering, each
		// bounded by its own timeout; it ends in the background.
		c.cancel()
		logx.Errorf("dq: consumer stopped with calls to unresponsive servers still ending")
	}
}

// closeLoops closes every reserver, ending its loop's blocked reserve and the
// acknowledgements still waiting on its connection.
func (c *consumer) closeLoops() {
	for _, l := range c.loops {
		_ = l.r.Close()
	}
}

// admit counts n reserved copies in for processing; false once drain has
// sealed the count (the caller then hands them back). Under mu, so that no
// copy is added while or after drain waits for them: nothing a copy does
// (an ack, a gone) can come after Stop has ended what it needs.
func (c *consumer) admit(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sealed {
		return false
	}
	c.copies.Add(n)
	return true
}

// seal makes admit refuse from now on.
func (c *consumer) seal() {
	c.mu.Lock()
	c.sealed = true
	c.mu.Unlock()
}

// runsIdle returns a channel closed once no handler runs.
func (c *consumer) runsIdle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = make(chan struct{})
		if len(c.runs) == 0 {
			close(c.idle)
		}
	}
	return c.idle
}

func (c *consumer) cancelRuns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r := range c.runs {
		r.stop()
	}
}

// abandonRuns gives up on handlers that ignore their cancelled ctx: their
// lease is cut to 1.5 s and no longer renewed, so another consumer takes the
// job over about two seconds later, never while this lease still holds. The
// cuts go out at once, each in its own goroutine counted in wg.
func (c *consumer) abandonRuns(wg *sync.WaitGroup) {
	c.mu.Lock()
	runs := make([]*activeRun, 0, len(c.runs))
	for r := range c.runs {
		runs = append(runs, r)
	}
	c.mu.Unlock()
	wg.Add(len(runs))
	for _, r := range runs {
		go func() {
			defer wg.Done()
			r.abandon()
		}()
	}
}

// addRun registers a run about to start its handler; false once Stop has
// begun. Under mu, so that a run is either seen by drain (waited for,
// cancelled) or never starts.
func (c *consumer) addRun(r *activeRun) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isStopping() {
		return false
	}
	c.runs[r] = struct{}{}
	return true
}

func (c *consumer) removeRun(r *activeRun) {
	c.mu.Lock()
	delete(c.runs, r)
	if len(c.runs) == 0 && c.idle != nil {
		select {
		case <-c.idle:
		default:
			close(c.idle)
		}
	}
	c.mu.Unlock()
}

// localJob marks a job one of whose copies this process is claiming or
// running: its other copies, which usually arrive together, wait for that
// outcome instead of asking Redis what it would only answer with Spare.
type localJob struct {
	ended   chan struct{} // closed when that copy is done with the job
	claimed atomic.Int64  // unix ns when that copy's claim was answered; 0 while it waits for Redis
}

// ownLocal makes this copy the one that claims job id here, or returns the
// copy's mark that already does.
func (c *consumer) ownLocal(id string) (*localJob, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lj := c.local[id]; lj != nil {
		return lj, false
	}
	lj := &localJob{ended: make(chan struct{})}
	c.local[id] = lj
	return lj, true
}

// endLocal ends this copy's claim on job id and wakes the copies waiting.
func (c *consumer) endLocal(id string, lj *localJob) {
	c.mu.Lock()
	if c.local[id] == lj {
		delete(c.local, id)
	}
	c.mu.Unlock()
	close(lj.ended)
}

// touchRuns touches the copies of every handler running on a node's
// connection; beanstalkd answers DEADLINE_SOON to reserves there until then.
// A run whose heartbeat has ended is left out: it gave its lease up (a hung
// handler past Timeout + 1 s), and its copy must lapse too, so that the job
// is retried, also when that copy is its only one.
func (c *consumer) touchRuns(l *nodeLoop) {
	c.mu.Lock()
	var cps []*node.Copy
	for r := range c.runs {
		if r.loop == l && !r.heartbeatEnded() {
			cps = append(cps, r.cp)
		}
	}
	c.mu.Unlock()
	for _, cp := range cps {
		_ = cp.Touch()
	}
}
