package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// The cost scenario measures what one job costs the servers and the
// processes: it reads Redis's and beanstalkd's own counters before and after
// n jobs are enqueued (no consumer running yet; they come due later, one
// after another at a steady rate), and again after one consumer ran them all
// and deleted every copy. Costs are per job, which the machine's load
// changes much less than it changes throughput.

// costSizes are the jobs the cost scenario runs, the rate at which they
// come due, and the jobs whose copies the held-copy measure holds at once.
func (b *bench) costSizes() (jobs, rate, held int) {
	switch {
	case b.o.smoke:
		// Held copies cost a few hundred bytes each: fewer than a few
		// thousand are lost in the heap's own noise.
		return 300, 300, 2000
	case b.o.quick:
		return 2000, 500, 1000
	}
	return 10000, 500, 3000
}

// costLead is the time between the first enqueue and the first due time:
// the enqueues, at a pessimistic 2,000 jobs/s, end before the consumer
// starts, so their cost is measured alone.
func costLead(n int) time.Duration {
	return time.Second + time.Duration(n)*time.Second/2000
}

// setupCommand says whether a Redis command is one a client sends when it
// connects, learns a cluster's layout or loads a script on a server, not
// per job: they are left out of the
// per-job comparison between one Redis and a cluster.
func setupCommand(name string) bool {
	for _, p := range []string{"info", "hello", "client", "cluster", "command", "ping", "readonly", "script"} {
		if name == p || strings.HasPrefix(name, p+"|") {
			return true
		}
	}
	return false
}

// scriptCommand says whether a command is one the claim scripts run
// inside Redis (commandstats counts those beside the EVALSHA that ran them,
// whose usec include theirs). TIME is counted with them: the scripts read it
// on every claim, the processes' clocks a few times a second, not per job.
func scriptCommand(name string) bool {
	switch name {
	case "hmget", "hset", "hdel", "hget", "pexpire", "pttl", "exists", "object", "time":
		return true
	}
	return false
}

// jobCost is what one job cost, averaged over the jobs of a measure.
type jobCost struct {
	jobs          int
	rate          int                // jobs/s coming due
	redisCalls    map[string]float64 // Redis commands per job, by command
	redisCommands float64            // their sum, setup commands left out
	redisSent     float64            // of which sent by the processes (not run by a script)
	enqueueCalls  map[string]float64 // Redis commands per job of the enqueue alone
	redisCPU      float64            // µs of Redis CPU (used_cpu_sys + user) beyond its idle rate
	redisCPUAll   float64            // µs of Redis CPU, idle rate included
	redisIdle     float64            // Redis CPU seconds per second while idle
	redisUsec     float64            // µs inside commands (commandstats usec)
	redisBytes    float64            // bytes in and out of Redis
	recordBytes   float64            // Redis memory per record, of WithID jobs enqueued and not run
	withIDCalls   map[string]float64 // Redis commands per WithID enqueue
	historyBytes  float64            // Redis memory per finished job kept as History
	nodeCalls     map[string]float64 // beanstalkd requests per job, by command
	nodeRequests  float64            // their sum
	nodeCPUPerReq float64            // µs of beanstalkd CPU per request
	nodeBytes     float64            // bytes in and out of beanstalkd; -1 unmeasured
	producerCPU   float64            // µs of producer process CPU per job
	consumerCPU   float64            // µs of consumer process CPU per job
}

// measureCost runs n jobs due at rate jobs/s through c, reading the
// counters of the Redis servers at redisAddrs and of the nodes.
func (b *bench) measureCost(ctx context.Context, c dq.DqConf, redisAddrs []string, n, rate int) (jobCost, error) {
	jc := jobCost{jobs: n, rate: rate}
	tube := c.Beanstalks[0].Tube
	rp, err := newRedisProbe(ctx, redisAddrs)
	if err != nil {
		return jc, err
	}
	defer rp.close()
	np, err := newNodeProbe(b.endpoints)
	if err != nil {
		return jc, err
	}
	defer np.close()
	local := b.env != nil // nodes this run started: their processes run here, without a binlog

	// The servers' own background work (Redis's cron, a cluster's gossip)
	// is not the jobs': its rate is read while nothing else runs, and taken
	// out of the CPU below.
	idle := 200 * time.Millisecond
	if !b.o.smoke {
		idle = time.Second
	}
	ri, err := rp.read(ctx)
	if err != nil {
		return jc, err
	}
	idleStart := time.Now()
	if !sleepUntil(ctx, idleStart.Add(idle)) {
		return jc, ctx.Err()
	}
	r0, err := rp.read(ctx)
	if err != nil {
		return jc, err
	}
	idleRate := (r0.cpu - ri.cpu) / time.Since(idleStart).Seconds()
	measureStart := time.Now()
	n0, err := np.read(local)
	if err != nil {
		return jc, err
	}
	// The jobs come due one after the other at rate, the way delayed jobs
	// do, starting once they are all enqueued: each copy is reserved less
	// than a second ahead, held and claimed at its due time.
	first := time.Now().Add(costLead(n))
	due := func(seq uint64) time.Duration {
		return time.Until(first.Add(time.Duration(seq) * time.Second / time.Duration(rate)))
	}
	cpu0 := processCPU()
	if _, err := b.produce(ctx, c, n, producers, 0, due); err != nil {
		return jc, err
	}
	cpu1 := processCPU()
	r1, err := rp.read(ctx)
	if err != nil {
		return jc, err
	}

	tr := newTracker(n, false)
	stop, err := b.consume(c, tr, 0)
	if err != nil {
		return jc, err
	}
	ok := tr.wait(first, stallLimit)
	var werr error
	if ok {
		werr = np.awaitEmpty(tube, stallLimit)
	}
	stop()
	cpu2 := processCPU()
	if !ok {
		return jc, fmt.Errorf("zerodq completed %d of %d jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	if werr != nil {
		return jc, werr
	}
	r2, err := rp.read(ctx)
	if err != nil {
		return jc, err
	}
	n2, err := np.read(local)
	if err != nil {
		return jc, err
	}

	per := func(d float64) float64 { return d / float64(n) }
	jc.redisCalls = map[string]float64{}
	var usec int64
	for name, k := range r2.calls {
		d := k - r0.calls[name]
		if d <= 0 || name == "info" {
			continue
		}
		jc.redisCalls[name] = per(float64(d))
		if !setupCommand(name) {
			jc.redisCommands += per(float64(d))
			if !scriptCommand(name) {
				jc.redisSent += per(float64(d))
			}
		}
		if !scriptCommand(name) {
			usec += r2.usec[name] - r0.usec[name]
		}
	}
	jc.enqueueCalls = map[string]float64{}
	for name, k := range r1.calls {
		if d := k - r0.calls[name]; d > 0 && name != "info" {
			jc.enqueueCalls[name] = per(float64(d))
		}
	}
	jc.redisCPUAll = per((r2.cpu - r0.cpu) * 1e6)
	jc.redisIdle = idleRate
	jc.redisCPU = per((r2.cpu - r0.cpu - idleRate*time.Since(measureStart).Seconds()) * 1e6)
	jc.redisUsec = per(float64(usec))
	jc.redisBytes = per(float64(r2.net - r0.net))
	jc.historyBytes = per(float64(r2.memory - r0.memory))
	jc.nodeCalls = map[string]float64{}
	var reqs int64
	for name, k := range n2.cmds {
		if d := k - n0.cmds[name]; d > 0 {
			jc.nodeCalls[name] = per(float64(d))
			reqs += d
		}
	}
	jc.nodeRequests = per(float64(reqs))
	if reqs > 0 {
		jc.nodeCPUPerReq = (n2.cpu - n0.cpu) * 1e6 / float64(reqs)
	}
	jc.nodeBytes = -1
	if n0.io >= 0 && n2.io >= 0 {
		jc.nodeBytes = per(float64(n2.io - n0.io))
	}
	jc.producerCPU = per((cpu1 - cpu0) * 1e6)
	jc.consumerCPU = per((cpu2 - cpu1) * 1e6)
	return jc, nil
}

// measureRecords measures the Redis memory of n records alive: a job
// enqueued with a generated ID has no record until a consumer claims it, so
// these are WithID jobs, whose enqueue writes the record. The jobs are run
// afterwards, so that their copies do not outlive the measure.
func (b *bench) measureRecords(ctx context.Context, c dq.DqConf, redisAddrs []string, n int, jc *jobCost) error {
	tube := c.Beanstalks[0].Tube
	rp, err := newRedisProbe(ctx, redisAddrs)
	if err != nil {
		return err
	}
	defer rp.close()
	np, err := newNodeProbe(b.endpoints)
	if err != nil {
		return err
	}
	defer np.close()
	p, err := dq.NewProducer(c)
	if err != nil {
		return err
	}
	defer p.Close()
	r0, err := rp.read(ctx)
	if err != nil {
		return err
	}
	err = runJobs(ctx, n, producers, 0, func(ctx context.Context, seq uint64) error {
		_, err := p.DelayCtx(ctx, makeBody(b.o.body, seq, time.Time{}), 0, dq.WithID(fmt.Sprintf("%s-%d", tube, seq)))
		return err
	})
	if err != nil {
		return err
	}
	r1, err := rp.read(ctx)
	if err != nil {
		return err
	}
	jc.recordBytes = float64(r1.memory-r0.memory) / float64(n)
	jc.withIDCalls = map[string]float64{}
	for name, k := range r1.calls {
		if d := k - r0.calls[name]; d > 0 && name != "info" {
			jc.withIDCalls[name] = float64(d) / float64(n)
		}
	}

	tr := newTracker(n, false)
	stop, err := b.consume(c, tr, 0)
	if err != nil {
		return err
	}
	defer stop()
	if !tr.wait(time.Now(), stallLimit) {
		return fmt.Errorf("zerodq completed %d of %d WithID jobs, then none for %v", tr.done.Load(), n, stallLimit)
	}
	return np.awaitEmpty(tube, stallLimit)
}

// heapInUse is the memory of live objects and goroutine stacks, after two
// collections (the stacks of goroutines that ended are freed by the first).
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// measureHeld measures a consumer's memory per copy it holds: m jobs all
// due at one instant about 3 s ahead are enqueued within a second, so that
// beanstalkd makes every copy ready during the second before the due time,
// when the consumer reserves and holds them. At the most copies reserved,
// it compares this process's heap with the heap before. It returns bytes
// per copy and the copies held.
func (b *bench) measureHeld(ctx context.Context, c dq.DqConf, m int) (float64, int64, error) {
	tube := c.Beanstalks[0].Tube
	np, err := newNodeProbe(b.endpoints)
	if err != nil {
		return 0, 0, err
	}
	defer np.close()
	p, err := dq.NewProducer(c)
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	tr := newTracker(m, false)
	stop, err := b.consume(c, tr, 0)
	if err != nil {
		return 0, 0, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	// The consumer's connections and first reserves are not held copies.
	if !sleepUntil(ctx, time.Now().Add(300*time.Millisecond)) {
		return 0, 0, ctx.Err()
	}
	base := heapInUse()

	// Put within the first 0.95 s, every copy's whole-second delay is 2 s:
	// each is ready 2.95 s - delay before the due time, at most 0.95 s.
	due := time.Now().Add(2950 * time.Millisecond)
	err = runJobs(ctx, m, producers, 0, func(ctx context.Context, seq uint64) error {
		_, err := p.AtCtx(ctx, makeBody(b.o.body, seq, time.Time{}), due)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	want := int64(copies * m)
	var held int64
	for time.Now().Before(due.Add(-100 * time.Millisecond)) {
		_, r, err := np.copiesIn(tube)
		if err != nil {
			return 0, 0, err
		}
		if r >= want {
			break
		}
		if !sleepUntil(ctx, time.Now().Add(10*time.Millisecond)) {
			return 0, 0, ctx.Err()
		}
	}
	_, before, err := np.copiesIn(tube)
	if err != nil {
		return 0, 0, err
	}
	heap := heapInUse()
	_, after, err := np.copiesIn(tube)
	if err != nil {
		return 0, 0, err
	}
	held = min(before, after)

	if !tr.wait(due, stallLimit) {
		return 0, 0, fmt.Errorf("zerodq completed %d of %d held jobs, then none for %v", tr.done.Load(), m, stallLimit)
	}
	if err := np.awaitEmpty(tube, stallLimit); err != nil {
		return 0, 0, err
	}
	stopped = true
	stop()
	if held <= 0 {
		return 0, 0, fmt.Errorf("no copy held before the due time (the %d jobs took too long to enqueue)", m)
	}
	return float64(heap-base) / float64(held), held, nil
}

func (b *bench) benchCost(ctx context.Context) error {
	if b.o.quick && b.o.only == "" {
		// Costs per job want thousands of jobs; -quick is about throughput.
		b.progress("cost: left out of -quick (-only cost runs it)")
		return nil
	}
	n, rate, m := b.costSizes()
	b.progress("cost: %d jobs due at %d/s through one Redis", n, rate)
	jc, err := b.measureCost(ctx, b.conf("cost", b.o.workers), []string{b.redis}, n, rate)
	if err != nil {
		return err
	}
	b.progress("cost: %d records of WithID jobs", n)
	if err := b.measureRecords(ctx, b.conf("cost-records", b.o.workers), []string{b.redis}, n, &jc); err != nil {
		return err
	}
	b.progress("cost: a consumer holding the copies of %d jobs", m)
	perCopy, held, err := b.measureHeld(ctx, b.conf("cost-held", b.o.workers), m)
	if err != nil {
		return err
	}
	b.costRows("", "", jc)
	b.report.add(row{
		name: "consumer memory per held copy", unit: "B", key: "cost_consumer_held_copy_bytes",
		value: perCopy,
		note:  fmt.Sprintf("heap+stacks with %s copies reserved ahead of their due time, over the heap before", thousands(held)),
	})
	b.report.set("cost_consumer_held_copies", held)
	return nil
}

// costRows reports a measure's figures; prefix and label tell the cluster's
// apart.
func (b *bench) costRows(prefix, label string, jc jobCost) {
	key := func(s string) string { return "cost_" + prefix + s }
	jobs := fmt.Sprintf("%s jobs due at %s/s", thousands(int64(jc.jobs)), thousands(int64(jc.rate)))
	b.report.add(row{
		name: "Redis commands per job" + label, unit: "cmds", key: key("redis_commands_per_job"),
		value: jc.redisCommands, note: fmt.Sprintf("%.2f sent, the rest run by scripts: %s; enqueue alone: %s",
			jc.redisSent, breakdown(jc.redisCalls), breakdown(jc.enqueueCalls)),
	})
	b.report.set(key("redis_sent_per_job"), round3(jc.redisSent))
	b.report.add(row{
		name: "Redis CPU per job" + label, unit: "µs", key: key("redis_cpu_us_per_job"), value: jc.redisCPU,
		note: fmt.Sprintf("used_cpu_sys+user over %s beyond the idle rate (%.1f%% of a core; %.1f µs with it); in the commands sent (commandstats usec) %.1f µs",
			jobs, 100*jc.redisIdle, jc.redisCPUAll, jc.redisUsec),
	})
	b.report.set(key("redis_usec_per_job"), round3(jc.redisUsec))
	b.report.set(key("redis_cpu_with_idle_us_per_job"), round3(jc.redisCPUAll))
	b.report.add(row{
		name: "Redis bytes on the wire per job" + label, unit: "B", key: key("redis_bytes_per_job"),
		value: jc.redisBytes, note: "total_net_input_bytes + total_net_output_bytes",
	})
	b.report.add(row{
		name: "Redis memory per record" + label, unit: "B", key: key("redis_record_bytes"),
		value: jc.recordBytes, note: fmt.Sprintf("used_memory with %s WithID jobs enqueued, not run, over the jobs; WithID enqueue: %s",
			thousands(int64(jc.jobs)), breakdown(jc.withIDCalls)),
	})
	b.report.add(row{
		name: "Redis memory per finished job" + label, unit: "B", key: key("redis_history_bytes"),
		value: jc.historyBytes, note: "used_memory after every copy was deleted: the History summaries",
	})
	for name, v := range jc.redisCalls {
		b.report.set(key("redis_cmd_"+strings.ReplaceAll(name, "|", "_")+"_per_job"), round3(v))
	}
	for name, v := range jc.withIDCalls {
		b.report.set(key("withid_redis_cmd_"+strings.ReplaceAll(name, "|", "_")+"_per_job"), round3(v))
	}
	for name, v := range jc.enqueueCalls {
		b.report.set(key("enqueue_redis_cmd_"+strings.ReplaceAll(name, "|", "_")+"_per_job"), round3(v))
	}
	if prefix != "" {
		return // the nodes and processes do the same work as with one Redis
	}
	b.report.add(row{
		name: "beanstalkd requests per job", unit: "reqs", key: key("beanstalkd_requests_per_job"),
		value: jc.nodeRequests, note: breakdown(jc.nodeCalls) + "; summed over the nodes",
	})
	b.report.add(row{
		name: "beanstalkd CPU per request", unit: "µs", key: key("beanstalkd_cpu_us_per_request"),
		value: jc.nodeCPUPerReq, note: "rusage-utime+stime over the requests, summed over the nodes",
	})
	if jc.nodeBytes >= 0 {
		b.report.add(row{
			name: "beanstalkd bytes on the wire per job", unit: "B", key: key("beanstalkd_bytes_per_job"),
			value: jc.nodeBytes, note: "the nodes' rchar+wchar (/proc/<pid>/io), no binlog",
		})
	}
	b.report.add(row{
		name: "producer CPU per job", unit: "µs", key: key("producer_cpu_us_per_job"),
		value: jc.producerCPU, note: fmt.Sprintf("this process, %d goroutines enqueueing %s", producers, jobs),
	})
	b.report.add(row{
		name: "consumer CPU per job", unit: "µs", key: key("consumer_cpu_us_per_job"),
		value: jc.consumerCPU, note: fmt.Sprintf("this process, one consumer running %s", jobs),
	})
}

// breakdown lists per-job counts by command, largest first.
func breakdown(calls map[string]float64) string {
	names := slices.Collect(maps.Keys(calls))
	slices.SortFunc(names, func(a, b string) int {
		if calls[a] != calls[b] {
			if calls[a] > calls[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var s []string
	for _, n := range names {
		if v := calls[n]; v >= 0.005 {
			s = append(s, fmt.Sprintf("%s %.2f", n, v))
		}
	}
	return strings.Join(s, ", ")
}

// commandsDiff is the largest difference in per-job calls of one command
// between two measures, setup commands left out.
func commandsDiff(a, b map[string]float64) float64 {
	var d float64
	for _, m := range []map[string]float64{a, b} {
		for name := range m {
			if !setupCommand(name) {
				d = max(d, math.Abs(a[name]-b[name]))
			}
		}
	}
	return d
}
