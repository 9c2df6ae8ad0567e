package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func runBenchJSON(t *testing.T, args ...string) map[string]float64 {
	t.Helper()
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"bench", "-smoke", "-json"}, args...), &out, &log)
	require.Equal(t, 0, code, "bench failed; stderr:\n%s", log.String())
	t.Logf("bench progress:\n%s", log.String())
	var res map[string]float64
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), "output: %s", out.String())
	return res
}

// The paced end to end reports a rate that held the lateness limit, and it
// is a whole step of a tenth of the drain rate measured in the same run.
func TestBenchPacedReportsAStepOfTheDrainRateThatHeldTheLatenessLimit(t *testing.T) {
	res := runBenchJSON(t, "-only", "paced")
	for _, who := range []string{"", "_raw"} {
		rate, drain := res["e2e_paced"+who+"_jobs_per_s"], res["e2e_paced"+who+"_drain_jobs_per_s"]
		require.Positive(t, rate, who)
		require.Positive(t, drain, who)
		steps := rate / (drain / pacedSteps)
		require.InDelta(t, math.Round(steps), steps, 0.01, "%s: %v jobs/s is not a step of %v/10", who, rate, drain)
		require.LessOrEqual(t, res["e2e_paced"+who+"_p99_ms"], ms(pacedLimit), who)
	}
}

// The cost of a job, measured on one Redis and on a 3-master Redis Cluster:
// a WithID enqueue sends the same commands to both, a job run costs the
// same commands within the spread of the copies' timing, and every figure
// the capacity sizing uses is measured.
func TestBenchCostOnARedisClusterCountsTheSameCommandsPerJobAsOneRedis(t *testing.T) {
	res := runBenchJSON(t, "-only", "cost,cost-cluster")
	for _, key := range []string{
		"cost_redis_commands_per_job", "cost_redis_sent_per_job", "cost_redis_cpu_with_idle_us_per_job",
		"cost_redis_usec_per_job", "cost_redis_bytes_per_job", "cost_redis_record_bytes",
		"cost_redis_history_bytes", "cost_beanstalkd_cpu_us_per_request", "cost_beanstalkd_bytes_per_job",
		"cost_producer_cpu_us_per_job", "cost_consumer_cpu_us_per_job", "cost_consumer_held_copy_bytes",
		"cost_cluster_redis_commands_per_job", "cost_cluster_redis_record_bytes", "cost_cluster_cpu_ratio",
	} {
		require.Positive(t, res[key], key)
	}
	// Three copies: a put, a reserve and a delete each, at the least.
	require.GreaterOrEqual(t, res["cost_beanstalkd_requests_per_job"], 9.0)
	require.Positive(t, res["cost_consumer_held_copies"])

	withID := 0
	for key, v := range res {
		name, ok := strings.CutPrefix(key, "cost_withid_redis_cmd_")
		// Keys spell a subcommand's '|' as '_'; no command name holds one.
		if !ok || setupCommand(strings.SplitN(name, "_", 2)[0]) {
			continue
		}
		withID++
		require.Equal(t, v, res["cost_cluster_withid_redis_cmd_"+name], name)
	}
	require.Positive(t, withID, "no WithID enqueue command counted")
	require.Positive(t, res["cost_redis_cmd_evalsha_per_job"])
	require.InDelta(t, res["cost_redis_cmd_evalsha_per_job"], res["cost_cluster_redis_cmd_evalsha_per_job"], 1.0)
}
