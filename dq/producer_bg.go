package dq

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// background counts the producer's work that outlives the call that started
// it: puts still in flight when an enqueue returned, and deletes of copies
// that must not run. Close waits for it. Adding never blocks and never
// races with a wait, so an enqueue pays two atomic adds for it.
type background struct {
	n    atomic.Int64
	mu   sync.Mutex
	idle chan struct{} // closed when n drops to 0; nil while nobody waits
}

func (b *background) add() { b.n.Add(1) }

func (b *background) done() {
	if b.n.Add(-1) != 0 {
		return
	}
	b.mu.Lock()
	if b.idle != nil && b.n.Load() == 0 {
		close(b.idle)
		b.idle = nil
	}
	b.mu.Unlock()
}

// wait reports whether the work ended within timeout; a negative timeout
// waits as long as it takes.
func (b *background) wait(timeout time.Duration) bool {
	b.mu.Lock()
	if b.n.Load() == 0 {
		b.mu.Unlock()
		return true
	}
	if b.idle == nil {
		b.idle = make(chan struct{})
	}
	idle := b.idle
	b.mu.Unlock()
	if timeout < 0 {
		<-idle
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

// startDeletes deletes copies in the background, each on the connection
// that put it and bounded by DialTimeout+IOTimeout, and reports one error
// (or nil) per copy on the channel it returns, which never blocks a sender.
func (p *producer) startDeletes(copies []writtenCopy) <-chan error {
	out := make(chan error, len(copies))
	for _, c := range copies {
		p.bg.add()
		go func() {
			defer p.bg.done()
			ctx, cancel := context.WithTimeout(context.Background(), p.conf.DialTimeout+p.conf.IOTimeout)
			defer cancel()
			out <- c.node.Delete(ctx, c.put)
		}()
	}
	return out
}

// deleteCopies deletes copies and waits for the outcome until ctx ends: a
// delete sent to a node that froze answers only after IOTimeout, and a
// caller's deadline must hold. Deletes still going on then finish in the
// background; their errors are not reported.
func (p *producer) deleteCopies(ctx context.Context, copies []writtenCopy) error {
	if len(copies) == 0 {
		return nil
	}
	out := p.startDeletes(copies)
	var errs []error
	for range copies {
		select {
		case err := <-out:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}
