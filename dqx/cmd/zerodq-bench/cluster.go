package main

import (
	"context"
	"fmt"

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

	// One Redis and the cluster are measured in turn, one Redis first and
	// last, and the CPU compared as the means of each: the machine's load
	// drifts over a run.
	rounds := 2
	if b.o.smoke || b.o.quick {
		rounds = 1
	}
	c := b.conf("cost-cluster", b.o.workers)
	c.Redis = redis.RedisConf{Host: cl.Hosts(), Type: redis.ClusterType}
	var ones, clusters []jobCost
	for r := 0; ; r++ {
		b.progress("cost-cluster: %d jobs due at %d/s through one Redis", n, rate)
		one, err := b.measureCost(ctx, b.conf(fmt.Sprintf("cost-one-%d", r), b.o.workers), []string{b.redis}, n, rate)
		if err != nil {
			return err
		}
		ones = append(ones, one)
		if r == rounds {
			break
		}
		b.progress("cost-cluster: %d jobs due at %d/s through the cluster", n, rate)
		cc := c
		cc.Beanstalks = b.conf(fmt.Sprintf("cost-cluster-%d", r), b.o.workers).Beanstalks
		cj, err := b.measureCost(ctx, cc, addrs, n, rate)
		if err != nil {
			return err
		}
		clusters = append(clusters, cj)
	}
	one, cj := meanCPU(ones), meanCPU(clusters)
	lo, hi := ones[0].redisCPU, ones[0].redisCPU
	for _, o := range ones {
		lo, hi = min(lo, o.redisCPU), max(hi, o.redisCPU)
	}
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
		note: fmt.Sprintf("Redis CPU per job beyond idle, cluster (sum of masters, %.1f µs) / one Redis (%.1f µs), means of %d and %d measures in turn; idle included %.2f; commandstats usec %.2f",
			cj.redisCPU, one.redisCPU, len(clusters), len(ones), allRatio, usecRatio),
	})
	b.report.set("cost_cluster_usec_ratio", round3(usecRatio))
	b.report.set("cost_cluster_one_redis_cpu_us_per_job", round3(one.redisCPU))
	b.report.set("cost_cluster_one_redis_cpu_spread", round3((hi-lo)/one.redisCPU))
	b.report.set("cost_cluster_rounds", rounds)
	b.report.set("cost_cluster_cpu_with_idle_ratio", round3(allRatio))
	return nil
}

// meanCPU is the first measure with the CPU figures averaged over all.
func meanCPU(ms []jobCost) jobCost {
	m := ms[0]
	m.redisCPU, m.redisCPUAll, m.redisUsec = 0, 0, 0
	for _, x := range ms {
		m.redisCPU += x.redisCPU / float64(len(ms))
		m.redisCPUAll += x.redisCPUAll / float64(len(ms))
		m.redisUsec += x.redisUsec / float64(len(ms))
	}
	return m
}
