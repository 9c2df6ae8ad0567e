package claim

import (
	"context"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/stores/redis"
)

// pipeMax bounds the calls sent in one round trip, and pipeSenders the round
// trips of one lane on the wire at once: a call waits for a batch only while
// that many of its lane are out, so a claim due now rarely queues behind
// other claims, and under load the calls gather into batches all the same.
const (
	pipeMax     = 256
	pipeSenders = 1
)

// lane separates the claims, which due jobs wait for, from the calls that
// follow a run (finish, extend, gone, ...): a claim never waits for a batch of
// those to come back, and each lane gathers its own batches.
type lane uint8

const (
	laneClaim lane = iota
	laneOther
	lanes
)

// laneOf is the lane of a script's calls.
func laneOf(sc *redis.Script) lane {
	if sc == claimScript {
		return laneClaim
	}
	return laneOther
}

// pipe sends the job scripts of concurrent callers in pipelined round trips:
// while one batch of a lane is on the wire the next one gathers, so under
// load many claims, or many finishes, share one write and one read. A
// consumer makes two such calls per job, and one round trip each was most of
// its cost.
//
// A caller that finds fewer than pipeSenders batches of its lane on the wire
// sends its own at once, in its own goroutine (a job due now waits for no
// hand-over); calls that gathered meanwhile go out from a goroutine started
// for them, which ends when none are left.
type pipe struct {
	s       *Store
	mu      sync.Mutex
	queue   [lanes][]*pipeCall
	sending [lanes]int // batches on the wire; their senders take the queue next
	trips   atomic.Int64
}

type pipeCall struct {
	ctx  context.Context
	sc   *redis.Script
	keys []string
	args []any
	done chan pipeResult // buffered: the sender never blocks on a caller
}

type pipeResult struct {
	v   any
	err error
}

func newPipe(s *Store) *pipe { return &pipe{s: s} }

// do runs one script call through the pipeline and waits for its reply.
func (p *pipe) do(ctx context.Context, sc *redis.Script, keys []string, args []any) (any, error) {
	if err := p.s.load(ctx, sc); err != nil {
		return nil, err
	}
	c := &pipeCall{ctx: ctx, sc: sc, keys: keys, args: args, done: make(chan pipeResult, 1)}
	ln := laneOf(sc)
	p.mu.Lock()
	p.queue[ln] = append(p.queue[ln], c)
	if p.sending[ln] < pipeSenders {
		p.sending[ln]++
		batch := p.take(ln)
		p.mu.Unlock()
		p.send(batch) // c is in it
		p.mu.Lock()
		if len(p.queue[ln]) > 0 {
			go p.sendQueued(ln)
		} else {
			p.sending[ln]--
		}
		p.mu.Unlock()
	} else {
		p.mu.Unlock()
	}
	select {
	case r := <-c.done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// take removes the next batch from a lane's queue; p.mu is held.
func (p *pipe) take(ln lane) []*pipeCall {
	q := p.queue[ln]
	n := min(len(q), pipeMax)
	batch := append([]*pipeCall(nil), q[:n]...)
	clear(q[:n])
	p.queue[ln] = q[n:]
	return batch
}

// sendQueued sends a lane's batches until its queue is empty, then gives up
// sending.
func (p *pipe) sendQueued(ln lane) {
	p.mu.Lock()
	for len(p.queue[ln]) > 0 {
		batch := p.take(ln)
		p.mu.Unlock()
		p.send(batch)
		p.mu.Lock()
	}
	p.sending[ln]--
	p.mu.Unlock()
}

// send runs a batch: one call alone as usual, several in one pipeline.
func (p *pipe) send(batch []*pipeCall) {
	p.trips.Add(1)
	if len(batch) == 1 {
		c := batch[0]
		v, err := p.s.rds.ScriptRunCtx(c.ctx, c.sc, c.keys, c.args...)
		c.done <- pipeResult{v, err}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.s.callTimeout)
	defer cancel()
	cmds := make([]*goredis.Cmd, len(batch))
	err := p.s.rds.PipelinedCtx(ctx, func(pl redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = pl.EvalSha(ctx, c.sc.Hash(), c.keys, c.args...)
		}
		return nil
	})
	for i, c := range batch {
		if cmds[i] == nil {
			c.done <- pipeResult{nil, err}
			continue
		}
		v, cerr := cmds[i].Result()
		if goredis.HasErrorPrefix(cerr, "NOSCRIPT") {
			// Redis restarted and forgot the script: EVAL falls back.
			v, cerr = p.s.rds.ScriptRunCtx(c.ctx, c.sc, c.keys, c.args...)
		}
		c.done <- pipeResult{v, cerr}
	}
}
