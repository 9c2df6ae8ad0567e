package claim

import (
	"context"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/stores/redis"
)

// pipeIdle is how long the pipeline's writer waits for more calls before it
// ends; the next call starts a new one.
const pipeIdle = 200 * time.Millisecond

// pipeMax bounds the calls sent in one round trip.
const pipeMax = 256

// pipeTimeout bounds one pipelined round trip; each caller also stops
// waiting when its own ctx ends.
const pipeTimeout = 3 * time.Second

// pipe sends the job scripts of concurrent callers in pipelined round trips:
// while one batch is on the wire the next one gathers, so under load many
// claims and finishes share one write and one read, and an idle caller waits
// for nobody. A consumer makes two such calls per job, and one round trip
// each was most of its cost.
type pipe struct {
	s     *Store
	mu    sync.Mutex
	queue []*pipeCall
	alive bool // a writer goroutine runs
	wake  chan struct{}
}

type pipeCall struct {
	ctx  context.Context
	sc   *redis.Script
	keys []string
	args []any
	done chan pipeResult // buffered: the writer never blocks on a caller
}

type pipeResult struct {
	v   any
	err error
}

func newPipe(s *Store) *pipe { return &pipe{s: s, wake: make(chan struct{}, 1)} }

// do runs one script call through the pipeline and waits for its reply.
func (p *pipe) do(ctx context.Context, sc *redis.Script, keys []string, args []any) (any, error) {
	if err := p.s.load(ctx, sc); err != nil {
		return nil, err
	}
	c := &pipeCall{ctx: ctx, sc: sc, keys: keys, args: args, done: make(chan pipeResult, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, c)
	start := !p.alive
	p.alive = true
	p.mu.Unlock()
	if start {
		go p.write()
	} else {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	select {
	case r := <-c.done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipe) write() {
	idle := time.NewTimer(pipeIdle)
	defer idle.Stop()
	for {
		p.mu.Lock()
		n := min(len(p.queue), pipeMax)
		batch := append([]*pipeCall(nil), p.queue[:n]...)
		p.queue = p.queue[n:]
		if n == 0 {
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-idle.C:
				p.mu.Lock()
				if len(p.queue) == 0 {
					p.alive = false
					p.mu.Unlock()
					return
				}
				p.mu.Unlock()
				idle.Reset(pipeIdle)
				continue
			}
		}
		p.mu.Unlock()
		p.send(batch)
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(pipeIdle)
	}
}

// send runs a batch: one call alone as usual, several in one pipeline.
func (p *pipe) send(batch []*pipeCall) {
	if len(batch) == 1 {
		c := batch[0]
		v, err := p.s.rds.ScriptRunCtx(c.ctx, c.sc, c.keys, c.args...)
		c.done <- pipeResult{v, err}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipeTimeout)
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
		if cerr != nil && strings.HasPrefix(cerr.Error(), "NOSCRIPT") {
			// Redis restarted and forgot the script: EVAL falls back.
			v, cerr = p.s.rds.ScriptRunCtx(c.ctx, c.sc, c.keys, c.args...)
		}
		c.done <- pipeResult{v, cerr}
	}
}
