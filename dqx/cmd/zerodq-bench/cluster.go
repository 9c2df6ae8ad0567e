package main

import (
	"context"
	"fmt"
	"math"

	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// benchCostCluster measures the cost of a job on a 3-master Redis Cluster
// beside one Redis, back to back under the same load: the same commands per
// job, spread over the masters, and about the same CPU. It starts its
// cluster itself, also when the run was given its servers.
func (b *bench) benchCostCluster(ctx context.Context) error {
	if b.o.quick && b.o.only == "" {
		b.progress("cost-cluster: left out of -quick (-only cost-cluster runs it)")
		return nil
	}
	n, rate, _ := b.costSizes()
	b.progress("cost-cluster: starting a 3-master Redis Cluster")
	cl, err := dqtest.StartRedisCluster(3)
	if err != nil {
		return err
	}
	defer cl.Close()
	addrs := make([]string, len(cl.Servers))
	for i, s := range cl.Servers {
		addrs[i] = s.Addr()
	}

	// One Redis is measured before and after the cluster, and the cluster
	// compared with their mean: the machine's load drifts over a run.
	var ones []jobCost
	measureOne := func(tube string) error {
		b.progress("cost-cluster: %d jobs due at %d/s through one Redis", n, rate)
		one, err := b.measureCost(ctx, b.conf(tube, b.o.workers), []string{b.redis}, n, rate)
		ones = append(ones, one)
		return err
	}
	if err := measureOne("cost-one"); err != nil {
		return err
	}
	b.progress("cost-cluster: %d jobs due at %d/s through the cluster", n, rate)
	c := b.conf("cost-cluster", b.o.workers)
	c.Redis = redis.RedisConf{Host: cl.Hosts(), Type: redis.ClusterType}
	cj, err := b.measureCost(ctx, c, addrs, n, rate)
	if err != nil {
		return err
	}
	if err := measureOne("cost-one-after"); err != nil {
		return err
	}
	one := ones[0]
	one.redisCPU = (ones[0].redisCPU + ones[1].redisCPU) / 2
	one.redisCPUAll = (ones[0].redisCPUAll + ones[1].redisCPUAll) / 2
	one.redisUsec = (ones[0].redisUsec + ones[1].redisUsec) / 2
	rc := b.conf("cost-cluster-records", b.o.workers)
	rc.Redis = c.Redis
	if err := b.measureRecords(ctx, rc, addrs, n, &cj); err != nil {
		return err
	}
	b.costRows("cluster_", ", 3-master cluster", cj)
	diff := commandsDiff(one.redisCalls, cj.redisCalls)
	cpuRatio := cj.redisCPU / one.redisCPU
	usecRatio := cj.redisUsec / one.redisUsec
	allRatio := cj.redisCPUAll / one.redisCPUAll
	b.report.add(row{
		name: "cluster beside one Redis: commands", unit: "cmds", key: "cost_cluster_commands_max_diff",
		value: diff, note: fmt.Sprintf("largest per-job difference of one command (one Redis: %.2f per job, %s)",
			one.redisCommands, breakdown(one.redisCalls)),
	})
	b.report.add(row{
		name: "cluster beside one Redis: CPU", unit: "ratio", key: "cost_cluster_cpu_ratio", value: cpuRatio,
		note: fmt.Sprintf("Redis CPU per job beyond idle, cluster (sum of masters) / one Redis (%.1f µs) (mean of the measures before and after); idle included %.2f; commandstats usec %.2f",
			one.redisCPU, allRatio, usecRatio),
	})
	b.report.set("cost_cluster_usec_ratio", round3(usecRatio))
	b.report.set("cost_cluster_one_redis_cpu_us_per_job", round3(one.redisCPU))
	b.report.set("cost_cluster_one_redis_cpu_spread", round3(math.Abs(ones[0].redisCPU-ones[1].redisCPU)/one.redisCPU))
	b.report.set("cost_cluster_cpu_with_idle_ratio", round3(allRatio))
	return nil
}
