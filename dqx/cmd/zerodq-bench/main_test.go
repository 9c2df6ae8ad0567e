package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestMain runs the program itself when a test re-executes the test binary
// as one of the program's subprocesses (a soak or backlog consumer).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestBenchSmokeReportsEveryScenarioWithNoEarlyJob(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"bench", "-smoke", "-json"}, &out, &log)
	require.Equal(t, 0, code, "bench failed; stderr:\n%s", log.String())
	t.Logf("bench progress:\n%s", log.String())

	var res map[string]float64
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), "output: %s", out.String())
	for _, key := range []string{
		"produce_1_jobs_per_s", "produce_1_raw_jobs_per_s", "produce_jobs_per_s", "produce_raw_jobs_per_s",
		"drain_jobs_per_s", "drain_raw_jobs_per_s", "e2e_jobs_per_s", "e2e_raw_jobs_per_s",
		"slow_handler_1_jobs_per_s", "slow_handler_8_jobs_per_s", "slow_handler_64_jobs_per_s",
		"slow_handler_64_raw_jobs_per_s", "lateness_p50_ms", "lateness_p99_ms", "lateness_max_ms",
		"lateness_floor_p50_ms", "lateness_floor_p99_ms",
		"backlog_rss_mb", "backlog_raw_rss_mb", "dead_retry_consumer_ratio", "dead_retry_seconds",
	} {
		require.Contains(t, res, key)
		require.Greater(t, res[key], 0.0, key)
	}
	for _, key := range []string{"early_jobs", "backlog_early_jobs"} {
		require.Contains(t, res, key)
		require.Zero(t, res[key], key)
	}
	require.Contains(t, res, "backlog_lateness_p99_ms")
	require.NotContains(t, res, "backlog_large_rss_mb", "backlog-1m runs only when named")
	require.GreaterOrEqual(t, res["lateness_max_ms"], res["lateness_p99_ms"])
	require.GreaterOrEqual(t, res["lateness_p99_ms"], res["lateness_p50_ms"])
	// A 10 ms handler can not beat its Workers' ceiling.
	require.LessOrEqual(t, res["slow_handler_1_jobs_per_s"], 100.0)
}

func TestBenchBacklog1MReportsBothBacklogsBesideRawAndRunsOnlyWhenNamed(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"bench", "-smoke", "-json", "-only", "backlog-1m"}, &out, &log)
	require.Equal(t, 0, code, "bench failed; stderr:\n%s", log.String())
	t.Logf("bench progress:\n%s", log.String())

	var res map[string]float64
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), "output: %s", out.String())
	for _, key := range []string{
		"backlog_small_rss_mb", "backlog_large_rss_mb", "backlog_raw_rss_mb", "backlog_rss_growth",
		"backlog_small_lateness_p99_ms", "backlog_large_lateness_p99_ms", "backlog_drain_jobs_per_s",
		"backlog_due_jobs_per_s", "backlog_small_jobs", "backlog_large_jobs",
	} {
		require.Contains(t, res, key)
		require.Greater(t, res[key], 0.0, key)
	}
	require.Less(t, res["backlog_small_jobs"], res["backlog_large_jobs"])
	require.InDelta(t, res["backlog_drain_jobs_per_s"]/2, res["backlog_due_jobs_per_s"], 0.01,
		"jobs come due at half the drain rate")
	require.NotContains(t, res, "produce_jobs_per_s", "only the named scenario ran")
}

// soakTestOptions are the options of the soaks that run in the tests: short,
// with every kind of fault in turn about once a second, and one consumer that
// kills itself right after a completion, before its finish: a double is then
// certain, and the soak must find and attribute it.
func soakTestOptions() soakOptions {
	o := defaultSoakOptions()
	o.rate = 40
	o.consumers = 2
	o.workers = 4
	o.longSpread = 5 * time.Second
	o.faultEvery = time.Second
	o.dieAfter = 40
	return o
}

func runTestSoak(t *testing.T, o soakOptions) *soakReport {
	t.Helper()
	var log bytes.Buffer
	quietLogs(false, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := runSoak(ctx, o, &log)
	require.NoError(t, err, "soak log:\n%s", log.String())
	var table bytes.Buffer
	rep.table(&table)
	t.Logf("\n%s", table.String())

	counts := rep.faultCounts()
	for _, kind := range o.faults {
		require.Positive(t, counts[kind], "no %s fault injected", kind)
	}
	require.Equal(t, 1, counts[faultConsumerDie])
	require.True(t, slices.ContainsFunc(rep.doubles, func(d double) bool {
		return d.Cause == causeInterrupted && d.Fault != nil && d.Fault.Kind == faultConsumerDie
	}), "the job completed right before a consumer died ran again and was attributed: %+v", rep.doubles)
	require.Greater(t, rep.produced, 0)
	require.Equal(t, rep.produced, rep.completed+len(rep.lost), "every job is completed or reported lost")
	js := rep.json()
	for _, key := range []string{"soak_jobs", "soak_lost", "soak_double", "soak_double_attributed",
		"soak_double_unattributed", "soak_faults", "soak_faults_by_kind"} {
		require.Contains(t, js, key)
	}
	return rep
}

// TestSoakUnderEveryFaultLosesNoJobAndAttributesEveryDouble runs every kind
// of fault and holds the library to its promises: no job lost, no double
// that no fault explains. It also checks the soak's own bookkeeping: each
// kind injected, the jobs that die on purpose kicked and run once more,
// WithIDs enqueued again after their record expired, and every double
// attributed to the fault that caused it.
func TestSoakUnderEveryFaultLosesNoJobAndAttributesEveryDouble(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	o := soakTestOptions()
	// A WithID job is enqueued again once its record has surely expired,
	// reenqueueAfter (25s here, at the shortest TTR and DedupeTTL the soak
	// takes) after it completed: 40s of production leave the jobs that
	// complete in the first 15s room to be, even when a Redis outage early
	// on delays them (30s left 5s, and a clean-clone run saw none).
	o.duration = 40 * time.Second
	o.drain = 45 * time.Second
	o.ttr = 3 * time.Second
	o.dedupeTTL = 11 * time.Second
	rep := runTestSoak(t, o)
	require.Positive(t, rep.deaths, "no job died on purpose")
	require.Positive(t, rep.kickedRuns, "no dead letter ran again after a kick")
	require.Equal(t, rep.reenqueued, rep.faultCounts()[faultReenqueue])
	for _, d := range rep.doubles {
		if d.attributed() {
			require.NotNil(t, d.Fault, d.Detail)
			want := map[string][]string{
				causeInterrupted: {faultConsumerKill, faultConsumerTerm, faultConsumerDie, faultConsumerCrash},
				causeOutage:      {faultRedisOutage},
			}[d.Cause]
			require.Contains(t, want, d.Fault.Kind, d.Detail)
		} else {
			require.Nil(t, d.Fault)
			require.Contains(t, d.Detail, "UNATTRIBUTED")
		}
	}
	require.NoError(t, rep.verdict())
	require.Empty(t, rep.lost, "lost jobs")
	require.Zero(t, rep.unattributed(), "doubles no fault explains")
	require.Empty(t, rep.ranAfterQuorum)
	require.True(t, rep.drained)
}

// The drain drains the backlog the 16-goroutine produce writes: asked for
// alone, it must run that produce too rather than wait on an empty tube.
func TestBenchOnlyDrainRunsTheProduceItDrains(t *testing.T) {
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"bench", "-smoke", "-json", "-only", "drain"}, &out, &log)
	require.Equal(t, 0, code, "bench failed; stderr:\n%s", log.String())
	var res map[string]float64
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), "output: %s", out.String())
	require.Greater(t, res["drain_jobs_per_s"], 0.0)
	require.Contains(t, res, "produce_jobs_per_s")
}
