package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// runJobs calls fn for the sequence numbers 0..n-1 from goroutines
// goroutines, flat out, or paced to rate jobs per second when rate > 0. It
// stops at the first error and returns it.
func runJobs(ctx context.Context, n, goroutines, rate int, fn func(ctx context.Context, seq uint64) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				seq := next.Add(1) - 1
				if seq >= int64(n) {
					return
				}
				if rate > 0 && !sleepUntil(ctx, start.Add(time.Duration(seq)*time.Second/time.Duration(rate))) {
					return
				}
				if err := fn(ctx, uint64(seq)); err != nil {
					cancel(fmt.Errorf("job %d: %w", seq, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// sleepUntil waits until t, or returns false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// produce enqueues n jobs through zerodq from g goroutines (paced to rate
// when rate > 0), each due delay(seq) after its enqueue, and returns how long
// it took.
func (b *bench) produce(ctx context.Context, c dq.DqConf, n, g, rate int, delay func(uint64) time.Duration) (time.Duration, error) {
	p, err := dq.NewProducer(c)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	start := time.Now()
	err = runJobs(ctx, n, g, rate, func(ctx context.Context, seq uint64) error {
		_, err := p.DelayCtx(ctx, makeBody(b.o.body, seq, time.Time{}), delay(seq))
		return err
	})
	return time.Since(start), err
}

// produceRaw does produce's beanstalkd work with go-beanstalk alone.
func (b *bench) produceRaw(ctx context.Context, tube string, n, g, rate int, delay func(uint64) time.Duration) (time.Duration, error) {
	p, err := newRawProducer(b.endpoints, tube, copies)
	if err != nil {
		return 0, err
	}
	defer p.close()
	start := time.Now()
	err = runJobs(ctx, n, g, rate, func(_ context.Context, seq uint64) error {
		d := delay(seq)
		return p.put(makeBody(b.o.body, seq, time.Now().Add(d)), d)
	})
	return time.Since(start), err
}

// dueNow schedules every job to be due at once.
func dueNow(uint64) time.Duration { return 0 }

// consume starts a zerodq consumer whose handler records runs in tr and
// works for work; the returned func stops it and books its doubles and early
// starts against zerodq.
func (b *bench) consume(c dq.DqConf, tr *tracker, work time.Duration) (stop func(), err error) {
	cs, err := dq.NewConsumer(c, benchHandler(tr, work))
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cs.Start()
	}()
	return func() {
		cs.Stop()
		<-done
		b.doubles += tr.doubles.Load()
		if tr.lat != nil {
			b.early += tr.lat.summary().Early
		}
	}, nil
}

// benchHandler records each job's first run in tr: its lateness against the
// job's due time, then its completion after work.
func benchHandler(tr *tracker, work time.Duration) dq.ConsumeHandler {
	return dq.WithHandle(func(ctx context.Context, body []byte) error {
		start := time.Now()
		seq, _, ok := parseBody(body)
		if !ok {
			return fmt.Errorf("%w: not a bench job", dq.ErrSkipRetry)
		}
		if !tr.first(seq) {
			return nil
		}
		if j, ok := dq.JobFromContext(ctx); ok {
			tr.started(start.Sub(j.DueAt))
		}
		if work > 0 && !sleepUntil(ctx, start.Add(work)) {
			return ctx.Err()
		}
		tr.completed()
		return nil
	})
}

// drainZerodq runs a zerodq consumer on the scenario's tube until n jobs
// completed and returns jobs/s from its start to the last completion.
func (b *bench) drainZerodq(scenario string, n, workers int, work time.Duration) (float64, error) {
	tr := newTracker(n, false)
	start := time.Now()
	stop, err := b.consume(b.conf(scenario, workers), tr, work)
	if err != nil {
		return 0, err
	}
	ok := tr.wait(time.Now(), stallLimit)
	stop()
	if !ok {
		return 0, fmt.Errorf("zerodq completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	return tr.rate(start), nil
}

// drainRaw does drainZerodq's beanstalkd work with go-beanstalk alone.
func (b *bench) drainRaw(scenario string, n, workers int, work time.Duration) (float64, error) {
	tr := newTracker(n, false)
	start := time.Now()
	rc, err := startRawConsumer(b.endpoints, b.tube("raw-"+scenario), workers, work, tr)
	if err != nil {
		return 0, err
	}
	ok := tr.wait(time.Now(), stallLimit)
	if err := rc.stop(); err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("raw completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	return tr.rate(start), nil
}

// benchProduce measures enqueueing with 1 and 16 goroutines. The jobs are
// due at once; those of the 16-goroutine run are the drain's backlog. The
// raw figure is the fanout's: zerodq counts an enqueue when the call
// returns, the raw baseline a job once every node stored it.
//
// Each side puts its jobs in produceRounds rounds, in the order zerodq, raw,
// raw, zerodq, ..., each side's figure is its jobs over the sum of its
// rounds: on a shared machine the load drifts during a run, and the ratio
// should not depend on which side it favoured.
func (b *bench) benchProduce(ctx context.Context) error {
	for _, g := range []int{1, producers} {
		n, scenario := b.sz.produce1, "produce1"
		if g > 1 {
			n, scenario = b.sz.produce16, "produce16"
		}
		name, key, rawKey := "produce, 1 goroutine", "produce_1_jobs_per_s", "produce_1_raw_jobs_per_s"
		if g > 1 {
			name = fmt.Sprintf("produce, %d goroutines", g)
			key, rawKey = "produce_jobs_per_s", "produce_raw_jobs_per_s"
		}
		b.progress("%s: %d jobs", name, n)
		zd, rd, err := b.produceRounds(ctx, scenario, n, g)
		if err != nil {
			return err
		}
		note := fmt.Sprintf("%s jobs due now; raw: one goroutine, a job's %d puts in flight at once", thousands(int64(n)), copies)
		if g > 1 {
			b.produceRate = perSecond(n, zd)
			note = fmt.Sprintf("%s jobs due now; raw: %d goroutines per node on one pipelined connection, yielding before each write", thousands(int64(n)), g)
		}
		b.report.add(row{
			name: name, unit: "jobs/s", key: key, rawKey: rawKey,
			value: perSecond(n, zd), raw: perSecond(n, rd), note: note,
		})
	}
	return nil
}

// produceRounds is how many rounds each side of a produce scenario puts its
// jobs in.
const produceRounds = 4

// produceRounds puts n jobs through zerodq and n through the raw baseline
// from g goroutines, in alternating rounds, and returns each side's time.
func (b *bench) produceRounds(ctx context.Context, scenario string, n, g int) (zd, rd time.Duration, err error) {
	p, err := dq.NewProducer(b.conf(scenario, b.o.workers))
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	f, err := newFanout(b.endpoints, b.tube("raw-"+scenario), g, rawFanoutConns, b.o.body)
	if err != nil {
		return 0, 0, err
	}
	defer f.close()
	zerodq := func(from, count int) (time.Duration, error) {
		start := time.Now()
		err := runJobs(ctx, count, g, 0, func(ctx context.Context, seq uint64) error {
			_, err := p.DelayCtx(ctx, makeBody(b.o.body, uint64(from)+seq, time.Time{}), 0)
			return err
		})
		return time.Since(start), err
	}
	for r := range produceRounds {
		from, count := n*r/produceRounds, n*(r+1)/produceRounds-n*r/produceRounds
		for i := range 2 {
			var d time.Duration
			if (r+i)%2 == 0 {
				d, err = zerodq(from, count)
				zd += d
			} else {
				d, err = f.run(ctx, from, count)
				rd += d
			}
			if err != nil {
				return 0, 0, err
			}
		}
	}
	return zd, rd, nil
}

// benchDrain measures how fast one consumer empties the backlog the
// 16-goroutine produce left behind.
func (b *bench) benchDrain(context.Context) error {
	n := b.sz.produce16
	b.progress("drain: %d-job backlog, Workers %d", n, b.o.workers)
	zr, err := b.drainZerodq("produce16", n, b.o.workers, 0)
	if err != nil {
		return err
	}
	rr, err := b.drainRaw("produce16", n, b.o.workers, 0)
	if err != nil {
		return err
	}
	b.report.add(row{
		name: fmt.Sprintf("drain %s-job backlog", thousands(int64(n))), unit: "jobs/s",
		key: "drain_jobs_per_s", rawKey: "drain_raw_jobs_per_s", value: zr, raw: rr,
		note: fmt.Sprintf("one consumer, Workers %d, no-op handler, no producer running", b.o.workers),
	})
	b.report.set("drain_jobs", n)
	return nil
}

// benchE2E measures producer and consumer running together in this process.
func (b *bench) benchE2E(ctx context.Context) error {
	n := b.sz.e2e
	b.progress("end-to-end: %d jobs", n)
	zr, err := b.e2eZerodq(ctx, n)
	if err != nil {
		return err
	}
	rr, err := b.e2eRaw(ctx, n)
	if err != nil {
		return err
	}
	b.report.add(row{
		name: "end-to-end, 3 copies", unit: "jobs/s", key: "e2e_jobs_per_s", rawKey: "e2e_raw_jobs_per_s",
		value: zr, raw: rr,
		note: fmt.Sprintf("%s jobs, %d producer goroutines and Workers %d in one process: mostly CPU share, see drain",
			thousands(int64(n)), producers, b.o.workers),
	})
	return nil
}

func (b *bench) e2eZerodq(ctx context.Context, n int) (float64, error) {
	tr := newTracker(n, false)
	start := time.Now()
	stop, err := b.consume(b.conf("e2e", b.o.workers), tr, 0)
	if err != nil {
		return 0, err
	}
	defer stop()
	if _, err := b.produce(ctx, b.conf("e2e", b.o.workers), n, producers, 0, dueNow); err != nil {
		return 0, err
	}
	if !tr.wait(time.Now(), stallLimit) {
		return 0, fmt.Errorf("zerodq completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	return tr.rate(start), nil
}

func (b *bench) e2eRaw(ctx context.Context, n int) (float64, error) {
	tr := newTracker(n, false)
	start := time.Now()
	rc, err := startRawConsumer(b.endpoints, b.tube("raw-e2e"), b.o.workers, 0, tr)
	if err != nil {
		return 0, err
	}
	_, perr := b.produceRaw(ctx, b.tube("raw-e2e"), n, producers, 0, dueNow)
	ok := perr == nil && tr.wait(time.Now(), stallLimit)
	if err := rc.stop(); err != nil {
		return 0, err
	}
	switch {
	case perr != nil:
		return 0, perr
	case !ok:
		return 0, fmt.Errorf("raw completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	return tr.rate(start), nil
}

// benchSlow measures handler concurrency: a 10 ms handler drained from a
// backlog with Workers 1, 8 and 64.
func (b *bench) benchSlow(ctx context.Context) error {
	for _, w := range []int{1, 8, 64} {
		ideal := float64(w) * float64(time.Second/slowWork)
		n := min(int(ideal*b.sz.slowSeconds), b.sz.slowMax)
		scenario := fmt.Sprintf("slow%d", w)
		b.progress("slow handler: %d jobs, Workers %d", n, w)
		if _, err := b.produce(ctx, b.conf(scenario, w), n, producers, 0, dueNow); err != nil {
			return err
		}
		if _, err := b.produceRaw(ctx, b.tube("raw-"+scenario), n, producers, 0, dueNow); err != nil {
			return err
		}
		zr, err := b.drainZerodq(scenario, n, w, slowWork)
		if err != nil {
			return err
		}
		rr, err := b.drainRaw(scenario, n, w, slowWork)
		if err != nil {
			return err
		}
		b.report.add(row{
			name: fmt.Sprintf("slow handler, Workers %d", w), unit: "jobs/s",
			key:   fmt.Sprintf("slow_handler_%d_jobs_per_s", w),
			value: zr, rawKey: fmt.Sprintf("slow_handler_%d_raw_jobs_per_s", w), raw: rr,
			note: fmt.Sprintf("%s jobs, %v handler; ideal %s jobs/s", thousands(int64(n)), slowWork,
				thousands(int64(ideal))),
		})
	}
	return nil
}

// benchLateness produces lateRate jobs/s for lateFor, due spread over the
// next lateSpread, and measures when their handlers start against their due
// times.
func (b *bench) benchLateness(ctx context.Context) error {
	rate, n := b.sz.lateRate, int(float64(b.sz.lateRate)*b.sz.lateFor.Seconds())
	spread := func(seq uint64) time.Duration {
		// Spread deterministically but not in step with the sequence.
		return time.Duration((seq*7919)%1000) * b.sz.lateSpread / 1000
	}

	b.progress("lateness: %d jobs/s for %v, due over 0-%v ahead", rate, b.sz.lateFor, b.sz.lateSpread)
	floor, err := newFloorProbe(b.redis)
	if err != nil {
		return err
	}
	defer floor.close()
	tr := newTracker(n, true)
	stop, err := b.consume(b.conf("lateness", b.o.workers), tr, 0)
	if err != nil {
		return err
	}
	// The floor wakes at the jobs' due times (as the paced producer sets
	// them) while the consumer runs.
	start := time.Now()
	dues := make([]time.Time, n)
	for seq := range dues {
		dues[seq] = start.Add(time.Duration(seq)*time.Second/time.Duration(rate) + spread(uint64(seq)))
	}
	floorCtx, floorCancel := context.WithCancel(ctx)
	floorDone := make(chan summary, 1)
	go func() { floorDone <- floor.run(floorCtx, dues) }()
	_, perr := b.produce(ctx, b.conf("lateness", b.o.workers), n, producers, rate, spread)
	ok := perr == nil && tr.wait(time.Now().Add(b.sz.lateSpread), stallLimit)
	if !ok {
		floorCancel()
	}
	fs := <-floorDone
	floorCancel()
	stop()
	if perr != nil {
		return perr
	}
	if !ok {
		return fmt.Errorf("zerodq completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	zs := tr.lat.summary()

	rtr := newTracker(n, true)
	rc, err := startRawConsumer(b.endpoints, b.tube("raw-lateness"), b.o.workers, 0, rtr)
	if err != nil {
		return err
	}
	_, perr = b.produceRaw(ctx, b.tube("raw-lateness"), n, producers, rate, spread)
	ok = perr == nil && rtr.wait(time.Now().Add(b.sz.lateSpread), stallLimit)
	if err := rc.stop(); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	if !ok {
		return fmt.Errorf("raw completed %d of %d jobs, then none for %v", rtr.done.Load(), n, stallLimit)
	}
	rs := rtr.lat.summary()

	notes := map[string]string{
		"p50": fmt.Sprintf("handler start - due time; %s jobs/s for %v, due 0-%v ahead",
			thousands(int64(rate)), b.sz.lateFor, b.sz.lateSpread),
		"max": "raw: beanstalkd delays are whole seconds, so raw jobs start early",
	}
	for _, p := range []struct {
		name string
		z, r float64
	}{{"p50", zs.P50, rs.P50}, {"p90", zs.P90, rs.P90}, {"p99", zs.P99, rs.P99}, {"max", zs.Max, rs.Max}} {
		b.report.add(row{
			name: "lateness " + p.name, unit: "ms", key: "lateness_" + p.name + "_ms",
			rawKey: "lateness_raw_" + p.name + "_ms", value: p.z, raw: p.r, note: notes[p.name],
		})
	}
	for _, p := range []struct {
		name string
		z    float64
		max  float64
	}{{"p50", fs.P50, 0.5}, {"p99", fs.P99, 1}} {
		b.report.add(row{
			name: "lateness floor " + p.name, unit: "ms", key: "lateness_floor_" + p.name + "_ms", value: p.z,
			note: fmt.Sprintf("Go timer wake-up + one EVALSHA on its own connection, same due times and load; target: zerodq %s within %v ms of it", p.name, p.max),
		})
	}
	b.report.add(row{
		name: "early jobs", unit: "jobs", key: "early_jobs", rawKey: "early_raw_jobs",
		value: float64(zs.Early), raw: float64(rs.Early),
		note: "started before their due time; zerodq must show 0",
	})
	return nil
}
