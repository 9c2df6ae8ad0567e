package main

import (
	"context"
	"fmt"
	"time"
)

// The backlog-1m scenario (run only when named with -only) asks whether a
// consumer's memory stays flat however many delayed jobs wait in beanstalkd:
// the same consumer subprocess as the backlog scenario, for 200,000 and then
// 1,000,000 jobs, beside the raw consumer at 200,000 (it holds nothing, so
// its memory does not depend on the backlog; a million more jobs would add
// a quarter of an hour to the run and nothing to the figure). The jobs come due at
// half the drain rate measured at the start of the same run, so that the
// consumer has the headroom a user would plan for, and lateness then says
// what holding and claiming cost, not how far behind the consumer fell.

// onlyWhenNamed are the scenarios a full run leaves out: -only names them.
var onlyWhenNamed = map[string]bool{"backlog-1m": true}

// backlog1mSizes are the scenario's sizes: the smaller and the larger
// backlog, and the jobs the drain rate is measured on.
func (b *bench) backlog1mSizes() (small, large, drain int) {
	switch {
	case b.o.smoke:
		return 300, 600, 300
	case b.o.quick:
		return 5000, 20000, 5000
	}
	return 200000, 1000000, 20000
}

// dueShare is the due rate of the backlogs as a share of the drain rate.
const dueShare = 0.5

func (b *bench) benchBacklog1M(ctx context.Context) error {
	small, large, drainN := b.backlog1mSizes()

	// The drain rate, and the produce rate the backlogs' lead is sized by.
	b.progress("backlog-1m: measuring the drain rate on %d jobs", drainN)
	took, err := b.produce(ctx, b.conf("backlog-1m-drain", b.o.workers), drainN, producers, 0, dueNow)
	if err != nil {
		return err
	}
	b.produceRate = perSecond(drainN, took)
	drain, err := b.drainZerodq("backlog-1m-drain", drainN, b.o.workers, 0)
	if err != nil {
		return err
	}
	rate := dueShare * drain
	over := func(n int) time.Duration { return time.Duration(float64(n) / rate * float64(time.Second)) }
	b.progress("backlog-1m: drain %.0f jobs/s, produce %.0f jobs/s: jobs due at %.0f/s", drain, b.produceRate, rate)

	zs, err := b.backlogRun(ctx, "backlog-small", false, small, over(small))
	if err != nil {
		return err
	}
	zl, err := b.backlogRun(ctx, "backlog-large", false, large, over(large))
	if err != nil {
		return err
	}
	rs, err := b.backlogRun(ctx, "backlog-small", true, small, over(small))
	if err != nil {
		return err
	}
	b.doubles += zs.Doubles + zl.Doubles
	b.early += zs.Lateness.Early + zl.Lateness.Early

	how := fmt.Sprintf("due at %s jobs/s (%.0f%% of the drain rate, %s jobs/s), Workers %d", thousands(int64(rate)),
		100*dueShare, thousands(int64(drain)), b.o.workers)
	for _, r := range []struct {
		n    int
		key  string
		res  backlogResult
		note string
	}{
		{small, "backlog_small", zs, ""},
		{large, "backlog_large", zl, "; raw: the smaller backlog's"},
	} {
		b.report.add(row{
			name: fmt.Sprintf("backlog %s peak RSS", thousands(int64(r.n))), unit: "MB",
			key: r.key + "_rss_mb", rawKey: "backlog_raw_rss_mb", value: r.res.RSSMB, raw: rs.RSSMB,
			note: "VmHWM of the consumer process; " + how + r.note,
		})
		b.report.add(row{
			name: fmt.Sprintf("backlog %s lateness p99", thousands(int64(r.n))), unit: "ms",
			key: r.key + "_lateness_p99_ms", rawKey: "backlog_raw_lateness_p99_ms",
			value: r.res.Lateness.P99, raw: rs.Lateness.P99,
			note: fmt.Sprintf("p50 %.1f ms, max %.1f ms, %d early (raw: max %.1f ms, %d early)%s",
				r.res.Lateness.P50, r.res.Lateness.Max, r.res.Lateness.Early, rs.Lateness.Max, rs.Lateness.Early,
				r.note),
		})
	}
	b.report.add(row{
		name: "backlog RSS, larger over smaller", unit: "ratio", key: "backlog_rss_growth",
		value: zl.RSSMB / zs.RSSMB, note: "target at most 1.10",
	})
	b.report.set("backlog_small_jobs", small)
	b.report.set("backlog_large_jobs", large)
	b.report.set("backlog_drain_jobs_per_s", round3(drain))
	b.report.set("backlog_due_jobs_per_s", round3(rate))
	return nil
}
