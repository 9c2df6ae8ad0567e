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
		"backlog_rss_mb", "backlog_raw_rss_mb",
	} {
		require.Contains(t, res, key)
		require.Greater(t, res[key], 0.0, key)
	}
	for _, key := range []string{"early_jobs", "backlog_early_jobs"} {
		require.Contains(t, res, key)
		require.Zero(t, res[key], key)
	}
	require.Contains(t, res, "backlog_lateness_p99_ms")
	require.GreaterOrEqual(t, res["lateness_max_ms"], res["lateness_p99_ms"])
	require.GreaterOrEqual(t, res["lateness_p99_ms"], res["lateness_p50_ms"])
	// A 10 ms handler can not beat its Workers' ceiling.
	require.LessOrEqual(t, res["slow_handler_1_jobs_per_s"], 100.0)
}

func TestSoakUnderFaultsLosesNoJobAndAttributesEveryDouble(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	o := defaultSoakOptions()
	o.duration = 24 * time.Second
	o.rate = 40
	o.consumers = 2
	o.workers = 4
	o.ttr = 3 * time.Second
	o.dedupeTTL = 2 * time.Second
	o.longSpread = 5 * time.Second
	o.faultEvery = time.Second
	o.drain = 90 * time.Second
	// One consumer kills itself right after a completion, before its finish:
	// a double is then certain, and the soak must find and attribute it.
	o.dieAfter = 40
	var log bytes.Buffer
	quietLogs(false, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := runSoak(ctx, o, &log)
	require.NoError(t, err, "soak log:\n%s", log.String())
	var table bytes.Buffer
	rep.table(&table)
	t.Logf("\n%s", table.String())

	require.NoError(t, rep.verdict())
	require.Greater(t, rep.produced, 0)
	require.Empty(t, rep.lost, "lost jobs")
	require.Equal(t, rep.produced, rep.completed)
	require.Zero(t, rep.unattributed(), "doubles no fault explains")
	require.Empty(t, rep.ranAfterQuorum)
	require.True(t, rep.drained)
	counts := rep.faultCounts()
	for _, kind := range faultKinds {
		require.Positive(t, counts[kind], "no %s fault injected", kind)
	}
	require.Equal(t, 1, counts[faultConsumerDie])
	require.True(t, slices.ContainsFunc(rep.doubles, func(d double) bool {
		return d.Cause == causeInterrupted && d.Fault != nil && d.Fault.Kind == faultConsumerDie
	}), "the job completed right before a consumer died ran again and was attributed: %+v", rep.doubles)
	require.Positive(t, rep.deaths, "no job died on purpose")
	require.Positive(t, rep.kickedRuns, "no dead letter ran again after a kick")
	require.Positive(t, rep.reenqueued, "no WithID enqueued again after its record expired")
	require.Equal(t, rep.reenqueued, counts[faultReenqueue])
	js := rep.json()
	for _, key := range []string{"soak_jobs", "soak_lost", "soak_double", "soak_double_attributed",
		"soak_double_unattributed", "soak_faults", "soak_faults_by_kind"} {
		require.Contains(t, js, key)
	}
}
