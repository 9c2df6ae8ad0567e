package dq

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/node"
	"github.com/zerodq/zerodq/internal/routine"
)

// producerOps keeps a producer visible to operators, as consumerOps does a
// consumer: it counts enqueues and each node's puts, and from the first
// enqueue on writes the producer's registry entry every registryEvery, on a
// Redis client of its own (apart from the breaker the enqueues go through).
// A producer that never enqueues writes nothing; Close removes the entry.
type producerOps struct {
	p        *producer
	id       string
	enqueued atomic.Int64
	failed   atomic.Int64
	nodes    []putCounters // by node index
	running  atomic.Bool   // the loop started: read on every enqueue

	mu      sync.Mutex // start against stop
	closed  bool
	started time.Time
	loop    *routine.Loop
	ctx     context.Context // ends at stop
	cancel  context.CancelFunc
	side    goredis.UniversalClient
	idx     *claim.Index
}

// putCounters are one node's put outcomes.
type putCounters struct {
	puts, failed, uncertain atomic.Int64
}

func (o *producerOps) init(p *producer) {
	o.p = p
	o.id = newConsumerID()
	o.nodes = make([]putCounters, len(p.nodes))
	o.loop = routine.NewLoop()
}

// enqueuedOne counts an enqueue's outcome and, the first time, starts the
// registry loop.
func (o *producerOps) enqueuedOne(err error) {
	if err == nil {
		o.enqueued.Add(1)
	} else {
		o.failed.Add(1)
	}
	if !o.running.Load() {
		o.start()
	}
}

// put counts a settled put on its node.
func (o *producerOps) put(r putResult) {
	if r.node < 0 || r.node >= len(o.nodes) {
		return
	}
	n := &o.nodes[r.node]
	switch {
	case r.err == nil:
		n.puts.Add(1)
	case node.IsUncertain(r.err):
		n.uncertain.Add(1)
	default:
		n.failed.Add(1)
	}
}

// start opens the side client and starts the loop, unless it runs already
// or the producer is closed.
func (o *producerOps) start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.loop == nil || o.running.Load() {
		return
	}
	o.started = time.Now()
	o.side = newSideClient(o.p.conf.Redis, o.p.conf.RedisTimeout)
	o.idx = o.p.store.IndexOn(o.side)
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.running.Store(true)
	o.loop.Start(o.run)
}

func (o *producerOps) run(stop <-chan struct{}) {
	o.writeEntry()
	for routine.Sleep(stop, registryEvery) {
		o.writeEntry()
	}
}

// writeEntry writes the producer's registry entry.
func (o *producerOps) writeEntry() {
	info := o.info()
	b, err := json.Marshal(info)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(o.ctx, registryEvery)
	_ = o.idx.PutProducer(ctx, o.p.tube, o.id, b, info.Seen.UnixMilli())
	cancel()
}

// info is the producer's registry entry as of now.
func (o *producerOps) info() ProducerInfo {
	host, _ := os.Hostname()
	nodes := make(map[string]PutCounts, len(o.nodes))
	for i := range o.nodes {
		ep := o.p.nodes[i].Endpoint()
		pc := nodes[ep] // two tubes on one node count together
		pc.Puts += o.nodes[i].puts.Load()
		pc.Failed += o.nodes[i].failed.Load()
		pc.Uncertain += o.nodes[i].uncertain.Load()
		nodes[ep] = pc
	}
	return ProducerInfo{
		ID:       o.id,
		Host:     host,
		Pid:      os.Getpid(),
		Version:  Version(),
		Queue:    o.p.tube,
		Started:  o.started,
		Seen:     o.p.clock.Now(),
		Enqueued: o.enqueued.Load(),
		Failed:   o.failed.Load(),
		Nodes:    nodes,
	}
}

// stop ends the loop and removes the registry entry, so that a closed
// producer leaves the registry at once rather than when its entry expires.
// No loop starts after it.
func (o *producerOps) stop() {
	o.mu.Lock()
	o.closed = true
	ran := o.running.Load()
	o.mu.Unlock()
	if !ran {
		return
	}
	o.cancel()
	o.loop.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := o.idx.RemoveProducer(ctx, o.p.tube, o.id); err != nil {
		logx.Errorf("dq: removing producer %s from the registry: %v (its entry expires in %v)",
			o.id, err, claim.ConsumerTTL)
	}
	_ = o.side.Close()
}
