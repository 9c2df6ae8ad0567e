package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// The paced end to end: producer and consumer together, the producer held
// to a steady rate of jobs due at once. The figure is the highest rate, in
// steps of a tenth of the consumer's drain rate measured in the same run, at
// which the lateness p99 of the jobs enqueued over pacedHold stays within
// pacedLimit: a rate users can plan with, where the flat-out end to end only
// says how fast the two share the CPU.

const (
	pacedLimit = 50 * time.Millisecond
	// pacedSteps is the step count of the drain rate the search covers.
	pacedSteps = 10
	// pacedProducers are the paced producer's goroutines: enough that the
	// put latency never holds the pace back.
	pacedProducers = 4 * producers
	// pacedSlack is how far behind its schedule, as a share of the hold,
	// the paced producer may end and still count as having held the rate;
	// pacedSlackMin is the least, for short holds, where the last put's
	// own round trip is a large share.
	pacedSlack    = 0.05
	pacedSlackMin = 100 * time.Millisecond
	// pacedSettle lets a step's consumer connect and start reserving
	// before the producer starts: the figure is of a steady state.
	pacedSettle = 250 * time.Millisecond
)

// pacedHold is how long each rate is held: 15 s, shorter in the quick and
// smoke runs.
func (b *bench) pacedHold() time.Duration {
	switch {
	case b.o.smoke:
		return 300 * time.Millisecond
	case b.o.quick:
		return time.Second
	}
	return 15 * time.Second
}

// pacedTries bounds the rates tried per system: enough to walk from the
// start to either end of the range in the full run, a few in the quick
// one and the tests.
func (b *bench) pacedTries() int {
	switch {
	case b.o.smoke:
		return 2
	case b.o.quick:
		return 4
	}
	return pacedSteps
}

// pacedStep is the outcome of one rate held for pacedHold.
type pacedStep struct {
	rate     float64       // jobs/s asked of the producer
	achieved float64       // jobs/s it enqueued over the hold
	behind   time.Duration // how long after the last put's schedule the producer ended
	slack    time.Duration // how far behind it may end
	lat      summary
}

// enqueued books the producer's n jobs that took took.
func (s *pacedStep) enqueued(n int, took, hold time.Duration) {
	s.achieved = perSecond(n, took)
	s.behind = took - time.Duration(float64(n-1)/s.rate*float64(time.Second))
	s.slack = max(pacedSlackMin, time.Duration(pacedSlack*float64(hold)))
}

// passed says whether the step held its rate within the lateness limit.
func (s pacedStep) passed() bool {
	return s.behind <= s.slack && s.lat.P99 <= ms(pacedLimit) && s.lat.Early == 0
}

func (s pacedStep) String() string {
	verdict := "held"
	if !s.passed() {
		verdict = "missed"
	}
	return fmt.Sprintf("%s jobs/s (enqueued %s/s): p99 %.1f ms, %s", thousands(int64(math.Round(s.rate))),
		thousands(int64(math.Round(s.achieved))), s.lat.P99, verdict)
}

func (b *bench) benchPaced(ctx context.Context) error {
	zDrain, rDrain, err := b.pacedDrainRates(ctx)
	if err != nil {
		return err
	}
	zFlat, _ := b.report.value("e2e_jobs_per_s")
	rFlat, _ := b.report.value("e2e_raw_jobs_per_s")

	zBest, zSteps, err := b.pacedSearch(ctx, "zerodq", zDrain, zFlat, b.pacedZerodq)
	if err != nil {
		return err
	}
	rBest, rSteps, err := b.pacedSearch(ctx, "raw", rDrain, rFlat, b.pacedRaw)
	if err != nil {
		return err
	}
	b.report.add(row{
		name: "end-to-end, paced", unit: "jobs/s", key: "e2e_paced_jobs_per_s", rawKey: "e2e_paced_raw_jobs_per_s",
		value: zBest.rate, raw: rBest.rate,
		note: fmt.Sprintf("highest steady rate of jobs due now with lateness p99 <= %v for %v, in steps of 10%% of the drain rate (%s; raw %s jobs/s)",
			pacedLimit, b.pacedHold(), thousands(int64(zDrain)), thousands(int64(rDrain))),
	})
	b.report.set("e2e_paced_p99_ms", zBest.lat.P99)
	b.report.set("e2e_paced_raw_p99_ms", rBest.lat.P99)
	b.report.set("e2e_paced_drain_jobs_per_s", round3(zDrain))
	b.report.set("e2e_paced_raw_drain_jobs_per_s", round3(rDrain))
	b.report.set("e2e_paced_hold_s", b.pacedHold().Seconds())
	b.progress("paced zerodq: %s", pacedLog(zSteps))
	b.progress("paced raw: %s", pacedLog(rSteps))
	return nil
}

func pacedLog(steps []pacedStep) string {
	s := make([]string, len(steps))
	for i, x := range steps {
		s[i] = x.String()
	}
	return strings.Join(s, "; ")
}

// pacedDrainRates are the drain rates of this run, zerodq's and raw's: the
// drain scenario's when it ran, else measured here on a backlog of the
// end-to-end size.
func (b *bench) pacedDrainRates(ctx context.Context) (float64, float64, error) {
	z, zok := b.report.value("drain_jobs_per_s")
	r, rok := b.report.value("drain_raw_jobs_per_s")
	if zok && rok && z > 0 && r > 0 {
		return z, r, nil
	}
	n := b.sz.e2e
	b.progress("paced: measuring the drain rate on a %d-job backlog", n)
	if _, err := b.produce(ctx, b.conf("paced-drain", b.o.workers), n, producers, 0, dueNow); err != nil {
		return 0, 0, err
	}
	if _, err := b.produceRaw(ctx, b.tube("raw-paced-drain"), n, producers, 0, dueNow); err != nil {
		return 0, 0, err
	}
	z, err := b.drainZerodq("paced-drain", n, b.o.workers, 0)
	if err != nil {
		return 0, 0, err
	}
	r, err = b.drainRaw("paced-drain", n, b.o.workers, 0)
	return z, r, err
}

// pacedSearch finds the highest step of drain/10 jobs/s that try holds. It
// starts at the last step below half the flat-out end-to-end rate (where
// the paced rate has come out, give or take a step or two) or at half the
// drain rate, then climbs while steps hold or descends until one does. The
// best step is the zero step when none held.
func (b *bench) pacedSearch(ctx context.Context, who string, drain, flat float64,
	try func(context.Context, int, float64) (pacedStep, error)) (pacedStep, []pacedStep, error) {
	step := drain / pacedSteps
	k := pacedSteps / 2
	if flat > 0 {
		k = int(flat / 2 / step)
	}
	k = max(1, min(k, pacedSteps))
	if b.o.smoke {
		k = 1 // the tests check that a held step is found, not how high
	}
	var steps []pacedStep
	var best pacedStep
	run := func(k int) (bool, error) {
		b.progress("paced %s: %.0f jobs/s (%d0%% of drain) for %v", who, float64(k)*step, k, b.pacedHold())
		s, err := try(ctx, k, float64(k)*step)
		if err != nil {
			return false, err
		}
		b.progress("paced %s: %v", who, s)
		steps = append(steps, s)
		if s.passed() && s.rate > best.rate {
			best = s
		}
		return s.passed(), nil
	}
	ok, err := run(k)
	if err != nil {
		return best, steps, err
	}
	for len(steps) < b.pacedTries() {
		next := k + 1
		if !ok {
			next = k - 1
		}
		if next < 1 || next > 2*pacedSteps {
			break
		}
		k = next
		held, err := run(k)
		if err != nil {
			return best, steps, err
		}
		if held != ok {
			break // climbing, a step missed; descending, a step held
		}
	}
	return best, steps, nil
}

// pacedZerodq holds rate through zerodq for pacedHold on a tube of its own.
func (b *bench) pacedZerodq(ctx context.Context, k int, rate float64) (pacedStep, error) {
	s := pacedStep{rate: rate}
	n := max(1, int(rate*b.pacedHold().Seconds()))
	scenario := fmt.Sprintf("paced-%d", k)
	tr := newTracker(n, true)
	stop, err := b.consume(b.conf(scenario, b.o.workers), tr, 0)
	if err != nil {
		return s, err
	}
	if !sleepUntil(ctx, time.Now().Add(pacedSettle)) {
		stop()
		return s, ctx.Err()
	}
	took, perr := b.produce(ctx, b.conf(scenario, b.o.workers), n, pacedProducers, int(math.Ceil(rate)), dueNow)
	ok := perr == nil && tr.wait(time.Now(), stallLimit)
	stop()
	if perr != nil {
		return s, perr
	}
	if !ok {
		return s, fmt.Errorf("zerodq completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	s.enqueued(n, took, b.pacedHold())
	s.lat = tr.lat.summary()
	return s, nil
}

// pacedRaw does pacedZerodq's beanstalkd work with go-beanstalk alone.
func (b *bench) pacedRaw(ctx context.Context, k int, rate float64) (pacedStep, error) {
	s := pacedStep{rate: rate}
	n := max(1, int(rate*b.pacedHold().Seconds()))
	tube := b.tube(fmt.Sprintf("raw-paced-%d", k))
	tr := newTracker(n, true)
	rc, err := startRawConsumer(b.endpoints, tube, b.o.workers, 0, tr)
	if err != nil {
		return s, err
	}
	if !sleepUntil(ctx, time.Now().Add(pacedSettle)) {
		_ = rc.stop()
		return s, ctx.Err()
	}
	took, perr := b.produceRaw(ctx, tube, n, pacedProducers, int(math.Ceil(rate)), dueNow)
	ok := perr == nil && tr.wait(time.Now(), stallLimit)
	if err := rc.stop(); err != nil {
		return s, err
	}
	if perr != nil {
		return s, perr
	}
	if !ok {
		return s, fmt.Errorf("raw completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	s.enqueued(n, took, b.pacedHold())
	s.lat = tr.lat.summary()
	return s, nil
}

// value is the figure of this run under a JSON key, zerodq's or raw's.
func (r *report) value(key string) (float64, bool) {
	for _, x := range r.rows {
		switch key {
		case x.key:
			return x.value, true
		case x.rawKey:
			return x.raw, true
		}
	}
	return 0, false
}
