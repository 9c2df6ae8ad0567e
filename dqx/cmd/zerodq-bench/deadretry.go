package main

import (
	"context"
	"fmt"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// deadBody is the body of a job the bench handler sends to the dead letters:
// too short to be a bench job, it answers ErrSkipRetry.
var deadBody = []byte("dead")

// benchDeadRetry measures what a bulk retry of dead letters costs the
// consumers around it: one consumer drains a fresh backlog alone, again
// while an Inspector retries every dead letter of another queue on the same
// nodes and Redis, and alone once more. The retried jobs land in their own queue, which no
// consumer drains here: the figure is the retry's own load (index pages,
// record reads, stats-job, peek and kick per dead letter), not the runs it
// brings back.
func (b *bench) benchDeadRetry(ctx context.Context) error {
	n, backlog := b.sz.deadRetry, b.sz.deadBacklog
	b.progress("dead retry: seeding %d dead letters", n)
	deadConf := b.conf("dead-letters", b.o.workers)
	if err := b.seedDead(ctx, deadConf, n); err != nil {
		return err
	}
	in, err := dq.NewInspector(deadConf, dq.WithActor("zerodq-bench"))
	if err != nil {
		return err
	}
	defer in.Close()

	// The drain alone runs before and after the one beside the retry, and
	// their mean is the reference: on a shared machine the rate drifts.
	drainAlone := func(scenario string) (float64, error) {
		b.progress("dead retry: draining %d jobs alone", backlog)
		if _, err := b.produce(ctx, b.conf(scenario, b.o.workers), backlog, producers, 0, dueNow); err != nil {
			return 0, err
		}
		return b.drainZerodq(scenario, backlog, b.o.workers, 0)
	}
	before, err := drainAlone("dead-retry-before")
	if err != nil {
		return err
	}

	b.progress("dead retry: draining %d jobs while retrying %d dead letters", backlog, n)
	if _, err := b.produce(ctx, b.conf("dead-retry-beside", b.o.workers), backlog, producers, 0, dueNow); err != nil {
		return err
	}
	type retried struct {
		res  dq.BulkResult
		took time.Duration
		err  error
	}
	ch := make(chan retried, 1)
	go func() {
		start := time.Now()
		res, err := in.RetryDead(ctx, dq.DeadSelect{}, nil)
		ch <- retried{res, time.Since(start), err}
	}()
	beside, derr := b.drainZerodq("dead-retry-beside", backlog, b.o.workers, 0)
	r := <-ch
	switch {
	case derr != nil:
		return derr
	case r.err != nil:
		return fmt.Errorf("retry: %w", r.err)
	case r.res.Done != n:
		return fmt.Errorf("retry: %d of %d dead letters retried (%d skipped, first: %v)", r.res.Done, n,
			len(r.res.Skipped), firstSkip(r.res))
	}
	after, err := drainAlone("dead-retry-after")
	if err != nil {
		return err
	}
	alone := (before + after) / 2
	ratio := beside / alone
	b.report.add(row{
		name: "drain beside a dead-letter retry", unit: "ratio", key: "dead_retry_consumer_ratio",
		value: ratio,
		note: fmt.Sprintf("%s jobs/s beside it / %s alone (mean of %s before and %s after), %s-job backlog, "+
			"Workers %d; target >= 0.80", thousands(int64(beside)), thousands(int64(alone)),
			thousands(int64(before)), thousands(int64(after)), thousands(int64(backlog)), b.o.workers),
	})
	b.report.add(row{
		name: fmt.Sprintf("retry %s dead letters", thousands(int64(n))), unit: "s", key: "dead_retry_seconds",
		value: r.took.Seconds(),
		note:  "Inspector.RetryDead of all of them, checked batches of 500, beside the drain",
	})
	b.report.set("dead_retry_jobs", n)
	return nil
}

// seedDead enqueues n jobs to c's queue and runs a consumer until every one
// of them is a dead letter in the index.
func (b *bench) seedDead(ctx context.Context, c dq.DqConf, n int) error {
	p, err := dq.NewProducer(c)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := runJobs(ctx, n, producers, 0, func(ctx context.Context, _ uint64) error {
		_, err := p.DelayCtx(ctx, deadBody, 0)
		return err
	}); err != nil {
		return err
	}
	in, err := dq.NewInspector(c)
	if err != nil {
		return err
	}
	defer in.Close()
	stop, err := b.consume(c, newTracker(n, false), 0)
	if err != nil {
		return err
	}
	defer stop()
	last, lastAt := -1, time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		count, err := in.CountDead(ctx, dq.DeadFilter{})
		if err != nil {
			return err
		}
		if count >= n {
			return nil
		}
		if count != last {
			last, lastAt = count, time.Now()
		} else if time.Since(lastAt) > stallLimit {
			return fmt.Errorf("%d of %d jobs dead, then none for %v", count, n, stallLimit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func firstSkip(r dq.BulkResult) any {
	if len(r.Skipped) == 0 {
		return nil
	}
	return r.Skipped[0]
}
