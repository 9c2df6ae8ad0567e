package dq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// Producer enqueues delayed jobs on the nodes of a DqConf and revokes them.
// Its first four methods are those of go-queue's dq.Producer, so migrating is
// an import change plus the constructor. Every method returns or takes the
// job's ID: generated (ordered by due time) or the one given with WithID. A
// Producer is safe for concurrent use.
type Producer interface {
	// At enqueues body to run at the given time, rounded up to the
	// millisecond. A time in the past is refused with ErrTimeBeforeNow.
	// Like every enqueue it fails with ErrNoRedisTime while the producer
	// has never been able to read Redis time.
	At(body []byte, at time.Time) (string, error)
	// Delay enqueues body to run after delay, counted from the latest Redis
	// time can be now and rounded up to the millisecond. A negative delay
	// is refused with ErrNegativeDelay.
	Delay(body []byte, delay time.Duration) (string, error)
	// Revoke makes sure the job with the given ID never starts; see RevokeCtx.
	Revoke(id string) error
	// Close releases the producer's connections. Puts and deletes that
	// earlier calls left in flight get up to DialTimeout+IOTimeout to settle
	// first; none outlives Close. Later calls of any method return
	// ErrClosed.
	Close() error
	// AtCtx is At with a context and job options.
	//
	// Like every enqueue it returns as soon as MinWrites copies are
	// acknowledged; the other puts settle in the background (a copy that
	// lands there counts like the others). If ctx ends first, it returns
	// then: the job is aborted, so that it never runs, and its copies are
	// deleted, those still in flight when they land; the error matches both
	// ErrQuorum (a *QuorumError) and ctx's cause (context.DeadlineExceeded
	// or context.Canceled). If a consumer had already started the job, it
	// returns the ID and nil instead.
	AtCtx(ctx context.Context, body []byte, at time.Time, opts ...JobOption) (string, error)
	// DelayCtx is Delay with a context and job options; it returns as AtCtx
	// does.
	DelayCtx(ctx context.Context, body []byte, delay time.Duration, opts ...JobOption) (string, error)
	// RevokeCtx records the revocation in Redis, so that no consumer starts
	// the job afterwards, from whichever process enqueued it, and deletes
	// the job's copies this producer knows of (consumers delete the others
	// when they come due). It returns nil when the job is revoked,
	// ErrRunning, ErrDone or ErrDead when it is too late, and ErrMaybeDone
	// when no record of a past job is left. The deletes are awaited until
	// ctx ends, then go on in the background. A go-queue ID
	// ("host:port/tube/id,...") is understood too: only a go-queue body in
	// that tube is taken for its job, since a node restarted without a
	// binlog numbers its jobs from 1 again.
	RevokeCtx(ctx context.Context, id string) error
}

// ProducerOption tunes a Producer beyond its DqConf.
type ProducerOption func(*producerOptions)

type producerOptions struct {
	conns int
}

// WithConnsPerNode sets how many connections the producer keeps to each
// node; requests pipeline on each of them. If unset or zero, default 1.
func WithConnsPerNode(n int) ProducerOption {
	return func(o *producerOptions) { o.conns = n }
}

const (
	// defaultProducerConns is one connection per node: beanstalkd serves a
	// node's requests one at a time whatever the connection, and the puts of
	// concurrent enqueues pipelined on one connection share its write and
	// read syscalls, and its reader goroutine's wakeups; with 4, the
	// producer was slower by a third at 16 goroutines.
	defaultProducerConns = 1
	// clockSyncTimeout bounds the first Redis TIME sample, at construction
	// or, when that failed, in the first enqueues.
	clockSyncTimeout = clock.SyncTimeout
)

// producer is the Producer of NewProducer.
type producer struct {
	conf   DqConf // normalized
	tube   string // the tube part of the jobs' Redis keys
	nodes  []*node.Node
	legacy map[string]*node.Node // endpointKey + "/" + tube → node, for go-queue IDs
	store  *claim.Store
	clock  *clock.Clock
	keys   envelope.Keys
	ttr    time.Duration // whole seconds
	ttrSec uint32
	window time.Duration // how long a WithID reservation keeps other writers out
	wid    string        // writer id prefix of this instance
	widSeq atomic.Uint64
	recent recentPuts
	jobs   sync.Pool  // *putJob
	bg     background // puts and deletes that outlive the call that started them
	ops    producerOps
	spans  enqueueTracer
	labels metricLabels
	// writing counts the enqueues writing their job, quorum and spills
	// included.
	writing atomic.Int32
	closed  atomic.Bool
}

// NewProducer returns a Producer for c. It validates c (errors match
// ErrBadConfig), connects to Redis (go-zero's client, shared per address) and
// reads its clock; beanstalkd nodes are dialled on first use, so a node that
// is down does not keep a producer from starting.
func NewProducer(c DqConf, opts ...ProducerOption) (Producer, error) {
	c, err := c.normalize()
	if err != nil {
		return nil, err
	}
	o := producerOptions{conns: defaultProducerConns}
	for _, opt := range opts {
		opt(&o)
	}
	if o.conns <= 0 {
		o.conns = defaultProducerConns
	}

	rds, err := redis.NewRedis(c.redisConf())
	if err != nil {
		return nil, fmt.Errorf("dq: producer: %w", err)
	}
	store := claim.New(rds, c.KeyPrefix, c.DedupeTTL, claim.WithCallTimeout(c.RedisTimeout))

	p := &producer{
		conf:   c,
		tube:   c.claimTube(),
		legacy: make(map[string]*node.Node, len(c.Beanstalks)),
		store:  store,
		clock:  clock.New(store.NowMicros, 0),
		keys:   c.signingKeys(),
		ttr:    c.TTR.Truncate(time.Second),
		ttrSec: uint32(c.TTR / time.Second),
		// Long enough for a first round of puts and one spill past a
		// failed node; spills that would end later are not started.
		window: 2*(c.DialTimeout+c.IOTimeout) + time.Second,
		wid:    randomHex(8),
	}
	p.recent.init()
	p.spans.init(p.tube)
	nopts := node.Options{DialTimeout: c.DialTimeout, IOTimeout: c.IOTimeout, Conns: o.conns}
	for _, b := range c.Beanstalks {
		n := node.New(b.Endpoint, b.Tube, nopts)
		p.nodes = append(p.nodes, n)
		key, _ := endpointKey(b.Endpoint)
		p.legacy[key+"/"+b.Tube] = n
	}
	p.labels.init(p.tube, p.nodes)
	p.ops.init(p)

	// Best effort: until a sample succeeds, an enqueue first tries one
	// itself (and fails without it), and the background loop keeps trying.
	ctx, cancel := context.WithTimeout(context.Background(), clockSyncTimeout)
	if err := p.clock.Sync(ctx); err != nil {
		logx.Errorf("dq: producer: reading the Redis clock: %v", err)
	}
	cancel()
	p.clock.Start()
	return p, nil
}

// MustNewProducer is NewProducer that logs the error and exits on failure.
func MustNewProducer(c DqConf, opts ...ProducerOption) Producer {
	p, err := NewProducer(c, opts...)
	logx.Must(err)
	return p
}

// At enqueues body to run at the given time.
func (p *producer) At(body []byte, at time.Time) (string, error) {
	return p.AtCtx(context.Background(), body, at)
}

// Delay enqueues body to run after delay.
func (p *producer) Delay(body []byte, delay time.Duration) (string, error) {
	return p.DelayCtx(context.Background(), body, delay)
}

// Revoke revokes the job with the given ID.
func (p *producer) Revoke(id string) error {
	return p.RevokeCtx(context.Background(), id)
}

// AtCtx enqueues body to run at the given time.
func (p *producer) AtCtx(ctx context.Context, body []byte, at time.Time, opts ...JobOption) (string, error) {
	if p.closed.Load() {
		return "", ErrClosed
	}
	if err := p.clockReady(ctx); err != nil {
		return "", err
	}
	// Rounded up: a due time rounded down would fire up to 1 ms before at.
	due := clock.CeilMs(at)
	// Compared in ms, the resolution of due times, and on the earliest Redis
	// time can be now, so that At(time.Now()) on a host in step with Redis
	// is accepted.
	if due < p.clock.NowMs() {
		return "", ErrTimeBeforeNow
	}
	return p.enqueue(ctx, body, due, opts)
}

// DelayCtx enqueues body to run after delay.
func (p *producer) DelayCtx(ctx context.Context, body []byte, delay time.Duration, opts ...JobOption) (string, error) {
	if p.closed.Load() {
		return "", ErrClosed
	}
	if delay < 0 {
		return "", fmt.Errorf("%w: %v", ErrNegativeDelay, delay)
	}
	if err := p.clockReady(ctx); err != nil {
		return "", err
	}
	// Counted from the latest Redis time can be now and rounded up to whole
	// ms: a job never comes due before the caller's own now plus delay.
	due := clock.CeilMs(p.clock.Latest().Add(delay))
	return p.enqueue(ctx, body, due, opts)
}

// clockReady makes sure the producer has read Redis time once: until then
// the local clock's offset is unknown, and a due time computed on it could
// be early by that much. A failed sample at construction is retried here,
// bounded by ctx and clockSyncTimeout.
func (p *producer) clockReady(ctx context.Context) error {
	if p.clock.Synced() {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, clockSyncTimeout)
	defer cancel()
	if err := p.clock.Ready(sctx); err != nil {
		return fmt.Errorf("%w: reading Redis TIME: %w", ErrNoRedisTime, err)
	}
	return nil
}

// Close closes the node connections and stops the clock. go-zero's Redis
// client is shared per address and stays open. Puts and deletes that
// enqueues and revokes left in flight get DialTimeout+IOTimeout to settle;
// closing the connections then ends those still waiting, and Close returns
// once they have.
func (p *producer) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	p.ops.stop()
	p.readLeft()
	p.bg.wait(p.conf.DialTimeout + p.conf.IOTimeout)
	p.clock.Close()
	for _, n := range p.nodes {
		_ = n.Close()
	}
	p.bg.wait(-1)
	return nil
}

// readLeft has the nodes read now the replies enqueues left for the next
// one on their connections, for a caller about to wait for the puts to
// settle when no enqueue follows.
func (p *producer) readLeft() {
	for _, n := range p.nodes {
		n.ReadLeft()
	}
}

// jobSettings are the options of one enqueue, with their defaults.
func jobSettings(opts []JobOption) jobOptions {
	if len(opts) == 0 {
		return jobOptions{priority: DefaultPriority}
	}
	o := &jobOptions{priority: DefaultPriority}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return *o
}

// redisCtx bounds one claim-store call, and keeps it going when the caller
// gave up half way through work that must be finished or undone.
func (p *producer) redisCtx(ctx context.Context, detach bool) (context.Context, context.CancelFunc) {
	if detach {
		ctx = context.WithoutCancel(ctx)
	}
	return context.WithTimeout(ctx, p.conf.RedisTimeout)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}
