package claim

import (
	"context"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/stores/redis"
)

// pipeMax bounds the calls sent in one round trip, and pipeSenders the round
// trips on the wire at once: a call waits for a batch only while that many
// are out, so under load the calls gather into batches. A claim, which a due
// job waits for, may open one round trip more, which carries claims only: it
// never waits for a batch of other jobs' finishes, extends or gones to come
// back, nor for Redis to run them before it.
const (
	pipeMax     = 256
	pipeSenders = 1
)

// pipe sends the job scripts of concurrent callers in pipelined round trips:
// while one batch is on the wire the next one gathers, so under load many
// claims and finishes share one write and one read. A consumer makes two such
// calls per job, and one round trip each was most of its cost.
//
// A caller that finds fewer than pipeSenders batches on the wire sends its
// own at once, with what gathered, in its own goroutine (a job due now waits
// for no hand-over); a claim that finds them all out sends the claims that
// gathered, alone. Calls that gather meanwhile go out from a goroutine
// started for them by the last sender back, which ends when none are left.
// Claims go first in every batch and, when some wait, in a batch of their
// own: a batch's replies come back together, after Redis ran all of it.
type pipe struct {
	s       *Store
	mu      sync.Mutex
	claims  []*pipeCall // claims waiting for a batch
	queue   []*pipeCall // other calls waiting for a batch
	sending int         // batches on the wire
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
	c := newPipeCall(ctx, sc, keys, args)
	if err := p.start(ctx, sc, []*pipeCall{c}); err != nil {
		return nil, err
	}
	return c.wait(ctx)
}

func newPipeCall(ctx context.Context, sc *redis.Script, keys []string, args []any) *pipeCall {
	return &pipeCall{ctx: ctx, sc: sc, keys: keys, args: args, done: make(chan pipeResult, 1)}
}

// wait waits for the call's reply, or ctx's end.
func (c *pipeCall) wait(ctx context.Context) (any, error) {
	select {
	case r := <-c.done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// start queues calls of script sc together, so that they go out in one
// batch, and sends that batch now, in the caller's goroutine, when fewer
// batches are on the wire than it may open; the replies are then in when it
// returns. It fails only when sc cannot be loaded.
func (p *pipe) start(ctx context.Context, sc *redis.Script, calls []*pipeCall) error {
	if err := p.s.load(ctx, sc); err != nil {
		return err
	}
	claim := sc == claimScript
	p.mu.Lock()
	if claim {
		p.claims = append(p.claims, calls...)
	} else {
		p.queue = append(p.queue, calls...)
	}
	if p.sending < pipeSenders || (claim && p.sending < pipeSenders+1) {
		p.sending++
		batch := p.take(p.sending > pipeSenders)
		p.mu.Unlock()
		p.send(batch) // the calls are in it, or left for sendQueued after claims that went first
		p.mu.Lock()
		if p.queued() && p.sending == 1 {
			go p.sendQueued() // the last sender back takes what gathered
		} else {
			p.sending--
		}
	}
	p.mu.Unlock()
	return nil
}

// queued says whether calls wait for a batch; p.mu is held.
func (p *pipe) queued() bool { return len(p.claims)+len(p.queue) > 0 }

// take removes the next batch from the queues, claims first: the claims
// alone when some wait or claimsOnly is set, else the other calls. p.mu is
// held.
func (p *pipe) take(claimsOnly bool) []*pipeCall {
	q := &p.queue
	if claimsOnly || len(p.claims) > 0 {
		q = &p.claims
	}
	n := min(len(*q), pipeMax)
	batch := append([]*pipeCall(nil), (*q)[:n]...)
	clear((*q)[:n])
	*q = (*q)[n:]
	return batch
}

// sendQueued sends batches until the queues are empty, or another sender
// is out that will take them when back, then gives up sending.
func (p *pipe) sendQueued() {
	p.mu.Lock()
	for p.queued() && p.sending == 1 {
		batch := p.take(false)
		p.mu.Unlock()
		p.send(batch)
		p.mu.Lock()
	}
	p.sending--
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
		v, cerr := pipedResult(cmds[i], err)
		if goredis.HasErrorPrefix(cerr, "NOSCRIPT") {
			// Redis restarted and forgot the script: EVAL falls back.
			v, cerr = p.s.rds.ScriptRunCtx(c.ctx, c.sc, c.keys, c.args...)
		}
		c.done <- pipeResult{v, cerr}
	}
}

// pipedResult is the answer to one command of a pipeline that returned err.
// A command the pipeline never sent has neither a value nor an error of its
// own: go-zero's breaker refuses a whole pipeline without touching its
// commands. It gets the pipeline's error, not an empty answer.
func pipedResult(cmd *goredis.Cmd, err error) (any, error) {
	if err != nil && unsent(cmd) {
		return nil, err
	}
	return cmd.Result()
}

// unsent says whether a pipelined command got no answer, not even an error.
func unsent(cmd *goredis.Cmd) bool {
	v, err := cmd.Result()
	return v == nil && err == nil
}
