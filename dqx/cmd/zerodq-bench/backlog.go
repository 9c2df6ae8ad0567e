package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
)

// The backlog scenario enqueues many delayed jobs and measures the consumer
// while they fire. The consumer runs in a subprocess so that its peak RSS is
// its own, not the producer's: the parent starts it, produces, then writes
// the number of jobs it enqueued to the child's stdin; the child reports its
// completions on stdout as it goes ("progress <n>" lines), runs until the
// expected number completed and writes a backlogResult to the file named by
// -out.

// backlogResult is what a backlog consumer reports.
type backlogResult struct {
	Completed int64   `json:"completed"`
	Doubles   int64   `json:"doubles"`
	RSSMB     float64 `json:"rss_mb"`
	Lateness  summary `json:"lateness"`
}

// benchConf is the DqConf of the bench's scenarios, shared with the backlog
// consumer subprocess so both sides agree on tubes and keys.
func benchConf(endpoints []string, redisAddr, prefix, tube string, workers int) dq.DqConf {
	c := dq.DqConf{
		Redis:     redis.RedisConf{Host: redisAddr, Type: redis.NodeType},
		Replicas:  copies,
		Workers:   workers,
		TTR:       benchTTR,
		KeyPrefix: prefix,
		// A lease lapsed on an overloaded machine is retried, as with the
		// default config, not buried (a DqConf built in Go has 0).
		MaxRetries: 5,
		// Records of a run against someone's Redis go away soon after.
		DedupeTTL: 10 * time.Minute,
		// Finished jobs are kept as summaries, as with the default config
		// (a DqConf built in Go has 0: none), and go with the records.
		History: 10 * time.Minute,
	}
	for _, ep := range endpoints {
		c.Beanstalks = append(c.Beanstalks, dq.Beanstalk{Endpoint: ep, Tube: tube})
	}
	return c
}

func (b *bench) benchBacklog(ctx context.Context) error {
	n, over := b.sz.backlog, b.sz.backlogOver
	zr, err := b.backlogRun(ctx, "backlog", false, n, over)
	if err != nil {
		return err
	}
	rr, err := b.backlogRun(ctx, "backlog", true, n, over)
	if err != nil {
		return err
	}
	b.doubles += zr.Doubles
	b.early += zr.Lateness.Early
	what := fmt.Sprintf("%s jobs due over %v, Workers %d", thousands(int64(n)), over, b.o.workers)
	b.report.add(row{
		name: "backlog consumer peak RSS", unit: "MB", key: "backlog_rss_mb", rawKey: "backlog_raw_rss_mb",
		value: zr.RSSMB, raw: rr.RSSMB, note: what + "; VmHWM of the consumer process",
	})
	b.report.add(row{
		name: "backlog lateness p99", unit: "ms", key: "backlog_lateness_p99_ms", rawKey: "backlog_raw_lateness_p99_ms",
		value: zr.Lateness.P99, raw: rr.Lateness.P99,
		note: fmt.Sprintf("max %.1f ms, %d early (raw: max %.1f ms, %d early)",
			zr.Lateness.Max, zr.Lateness.Early, rr.Lateness.Max, rr.Lateness.Early),
	})
	b.report.set("backlog_jobs", n)
	b.report.set("backlog_early_jobs", zr.Lateness.Early)
	return nil
}

// backlogRun runs a backlog scenario of n jobs due over over against zerodq,
// or raw beanstalkd, on the scenario's tube.
func (b *bench) backlogRun(ctx context.Context, scenario string, raw bool, n int, over time.Duration) (backlogResult, error) {
	var res backlogResult
	who := "zerodq"
	if raw {
		scenario, who = "raw-"+scenario, "raw"
	}
	dir, err := os.MkdirTemp("", "zerodq-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "result.json")

	cmd, err := selfCommand("backlog-consumer", "-beanstalks", strings.Join(b.endpoints, ","),
		"-redis", b.redis, "-prefix", b.run, "-tube", b.tube(scenario), "-workers", strconv.Itoa(b.o.workers),
		"-max", strconv.Itoa(n), "-out", out, "-raw="+strconv.FormatBool(raw))
	if err != nil {
		return res, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	var progressAt atomic.Int64 // unix nanoseconds of the child's latest progress
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readProgress(stdout, &progressAt)
	}()
	exited := make(chan error, 1)
	go func() {
		<-readDone // Wait closes stdout: read it all first
		exited <- cmd.Wait()
	}()
	defer func() {
		_ = cmd.Process.Kill() // a no-op once it exited
		<-exited
	}()

	// The first job is due once production should be over, judged by the
	// produce rate measured earlier with a margin, so that jobs fire while
	// nothing else runs. A job whose due time production overtook anyway is
	// skipped and counted.
	rate := b.produceRate
	if rate <= 0 {
		rate = 1000
	}
	lead := time.Duration(1.5*float64(n)/rate*float64(time.Second)) + b.sz.backlogLead
	base := time.Now().Add(lead)
	due := func(seq uint64) time.Time { return base.Add(time.Duration(seq) * over / time.Duration(n)) }
	b.progress("%s (%s): %d jobs due over %v from %v ahead", scenario, who, n, over.Round(time.Millisecond), lead.Round(time.Second))

	var skipped atomic.Int64
	var perr error
	if raw {
		perr = b.backlogProduceRaw(ctx, scenario, n, due, &skipped)
	} else {
		perr = b.backlogProduce(ctx, scenario, n, due, &skipped)
	}
	if perr != nil {
		return res, perr
	}
	if s := skipped.Load(); s > 0 {
		b.progress("%s (%s): %d jobs skipped, production overtook their due time", scenario, who, s)
	}
	if _, err := fmt.Fprintf(stdin, "%d\n", int64(n)-skipped.Load()); err != nil {
		return res, exitError("backlog consumer", err, stderr.Bytes())
	}
	_ = stdin.Close()

	// However slow the consumer, it is waited for while it makes progress.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case err := <-exited:
			exited <- err // for the deferred wait
			if err != nil {
				return res, exitError("backlog consumer", err, stderr.Bytes())
			}
			done = true
		case now := <-tick.C:
			last := time.Unix(0, max(base.UnixNano(), progressAt.Load()))
			if now.Sub(last) > stallLimit {
				return res, exitError("backlog consumer", fmt.Errorf("no job completed for %v", stallLimit),
					stderr.Bytes())
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, err
	}
	if want := int64(n) - skipped.Load(); res.Completed < want {
		return res, fmt.Errorf("%s backlog consumer completed %d of %d jobs", who, res.Completed, want)
	}
	return res, nil
}

func (b *bench) backlogProduce(ctx context.Context, scenario string, n int, due func(uint64) time.Time, skipped *atomic.Int64) error {
	p, err := dq.NewProducer(b.conf(scenario, b.o.workers))
	if err != nil {
		return err
	}
	defer p.Close()
	return runJobs(ctx, n, producers, 0, func(ctx context.Context, seq uint64) error {
		_, err := p.AtCtx(ctx, makeBody(b.o.body, seq, time.Time{}), due(seq))
		if errors.Is(err, dq.ErrTimeBeforeNow) {
			skipped.Add(1)
			return nil
		}
		return err
	})
}

func (b *bench) backlogProduceRaw(ctx context.Context, scenario string, n int, due func(uint64) time.Time, skipped *atomic.Int64) error {
	p, err := newRawProducer(b.endpoints, b.tube(scenario), copies)
	if err != nil {
		return err
	}
	defer p.close()
	return runJobs(ctx, n, producers, 0, func(_ context.Context, seq uint64) error {
		at := due(seq)
		d := time.Until(at)
		if d < 0 {
			skipped.Add(1)
			return nil
		}
		return p.put(makeBody(b.o.body, seq, at), d)
	})
}

// readProgress reads the child's "progress <n>" lines and notes the time
// whenever n grows.
func readProgress(r io.Reader, at *atomic.Int64) {
	sc := bufio.NewScanner(r)
	last := int64(-1)
	for sc.Scan() {
		var n int64
		if _, err := fmt.Sscanf(sc.Text(), "progress %d", &n); err == nil && n > last {
			last = n
			at.Store(time.Now().UnixNano())
		}
	}
}

// backlogConsumerMain is the backlog consumer subprocess.
func backlogConsumerMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backlog-consumer", flag.ContinueOnError)
	beanstalks := fs.String("beanstalks", "", "")
	redisAddr := fs.String("redis", "", "")
	prefix := fs.String("prefix", "", "")
	tube := fs.String("tube", "", "")
	workers := fs.Int("workers", 64, "")
	maxJobs := fs.Int("max", 0, "")
	out := fs.String("out", "", "")
	raw := fs.Bool("raw", false, "")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	quietLogs(false, stderr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The parent writes the number of jobs to expect once it has enqueued
	// them; its stdin closing first means it is gone.
	var expect atomic.Int64
	expect.Store(-1)
	go func() {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		n, perr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if err != nil || perr != nil {
			cancel()
			return
		}
		expect.Store(n)
	}()

	endpoints := strings.Split(*beanstalks, ",")
	tr := newCompactTracker(*maxJobs)
	var stop func() error
	if *raw {
		rc, err := startRawConsumer(endpoints, *tube, *workers, 0, tr)
		if err != nil {
			return err
		}
		stop = rc.stop
	} else {
		cs, err := dq.NewConsumer(benchConf(endpoints, *redisAddr, *prefix, *tube, *workers), benchHandler(tr, 0))
		if err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			cs.Start()
		}()
		stop = func() error {
			cs.Stop()
			<-done
			return nil
		}
	}

	// The parent bounds this run: it kills the child when it gives up.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var reported time.Time
	for {
		done := tr.done.Load()
		if n := expect.Load(); n >= 0 && done >= n {
			break
		}
		if time.Since(reported) >= 500*time.Millisecond {
			fmt.Fprintf(stdout, "progress %d\n", done)
			reported = time.Now()
		}
		select {
		case <-ctx.Done():
			_ = stop()
			return ctx.Err()
		case <-tick.C:
		}
	}
	if err := stop(); err != nil {
		return err
	}
	res := backlogResult{
		Completed: tr.done.Load(),
		Doubles:   tr.doubles.Load(),
		RSSMB:     peakRSSMB(),
		Lateness:  tr.lat.summary(),
	}
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, data, 0o644)
}
