package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// benchOptions are the flags of the bench command.
type benchOptions struct {
	quick      bool
	smoke      bool
	json       bool
	verbose    bool
	beanstalks string
	redis      string
	body       int
	workers    int
	only       string
	cpuprofile string
}

// sizes are how much work each scenario does.
type sizes struct {
	produce1    int           // jobs produced by one goroutine
	produce16   int           // jobs produced by 16 goroutines, then drained
	e2e         int           // jobs produced and consumed together
	slowSeconds float64       // slow handler: Workers*100 jobs/s for this long
	slowMax     int           // cap on the slow handler's jobs
	lateRate    int           // lateness: jobs per second
	lateFor     time.Duration // lateness: for this long
	lateSpread  time.Duration // lateness: due times spread over this far ahead
	backlog     int           // backlog: delayed jobs
	backlogOver time.Duration // backlog: due over this long
	backlogLead time.Duration // backlog: margin between production and the first due time
	deadRetry   int           // dead retry: dead letters retried
	deadBacklog int           // dead retry: jobs the consumer drains beside the retry
}

var (
	fullSizes = sizes{
		produce1: 20000, produce16: 20000, e2e: 20000, slowSeconds: 3, slowMax: 20000,
		lateRate: 1000, lateFor: 20 * time.Second, lateSpread: 5 * time.Second,
		backlog: 200000, backlogOver: 60 * time.Second, backlogLead: 5 * time.Second,
		deadRetry: 10000, deadBacklog: 20000,
	}
	quickSizes = sizes{
		produce1: 1000, produce16: 5000, e2e: 3000, slowSeconds: 1, slowMax: 2000,
		lateRate: 1000, lateFor: 3 * time.Second, lateSpread: 2 * time.Second,
		backlog: 5000, backlogOver: 5 * time.Second, backlogLead: 2 * time.Second,
		deadRetry: 2000, deadBacklog: 10000,
	}
	// smokeSizes only prove that every scenario runs (the tests use them).
	smokeSizes = sizes{
		produce1: 100, produce16: 300, e2e: 300, slowSeconds: 0.1, slowMax: 300,
		lateRate: 500, lateFor: 500 * time.Millisecond, lateSpread: 500 * time.Millisecond,
		backlog: 500, backlogOver: time.Second, backlogLead: time.Second,
		deadRetry: 200, deadBacklog: 300,
	}
)

const (
	producers = 16 // goroutines of the concurrent producers
	copies    = 3  // copies per job, zerodq's default Replicas
	slowWork  = 10 * time.Millisecond
	benchTTR  = 30 * time.Second // the default lease
	// stallLimit is how long a scenario may go without a job completing
	// before the bench gives up on it.
	stallLimit = 30 * time.Second
)

func benchMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOptions
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "smaller scenarios, finishing in under a minute")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of the table")
	fs.BoolVar(&o.verbose, "v", false, "log zerodq's messages to stderr")
	fs.StringVar(&o.beanstalks, "beanstalks", "", "comma-separated beanstalkd host:port list (default: start 3)")
	fs.StringVar(&o.redis, "redis", "", "Redis host:port, with -beanstalks")
	fs.IntVar(&o.body, "body", 64, "job body size in bytes")
	fs.IntVar(&o.workers, "workers", 64, "consumer Workers for the no-op handler scenarios")
	fs.StringVar(&o.only, "only", "", "comma-separated scenarios to run (produce, drain, end-to-end, paced, slow, lateness, backlog, dead-retry, cost, cost-cluster; backlog-1m runs only when named)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.BoolVar(&o.smoke, "smoke", false, "")
	hideFlags(fs, "smoke") // a few hundred jobs per scenario, for the tests
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if (o.beanstalks == "") != (o.redis == "") {
		return errors.New("-beanstalks and -redis go together")
	}
	if o.body < bodyHeader || o.workers < 1 {
		return fmt.Errorf("-body must be at least %d and -workers at least 1", bodyHeader)
	}
	quietLogs(o.verbose, stderr)

	b, err := newBench(o, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := b.runAll(ctx); err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(b.report.json()); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, b.header())
		b.report.table(stdout)
	}
	return b.verdict()
}

// quietLogs keeps zerodq's and go-zero's logs out of the printed results.
func quietLogs(verbose bool, stderr io.Writer) {
	logx.DisableStat()
	if verbose {
		logx.SetWriter(logx.NewWriter(stderr))
		return
	}
	logx.Disable()
}

// hideFlags leaves names out of the flag set's usage message.
func hideFlags(fs *flag.FlagSet, names ...string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage of %s:\n", fs.Name())
		visible := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		fs.VisitAll(func(f *flag.Flag) {
			for _, n := range names {
				if f.Name == n {
					return
				}
			}
			visible.Var(f.Value, f.Name, f.Usage)
		})
		visible.SetOutput(fs.Output())
		visible.PrintDefaults()
	}
}

// bench holds the servers and the results of one run.
type bench struct {
	o         benchOptions
	sz        sizes
	log       io.Writer
	env       *dqtest.Env
	endpoints []string
	redis     string
	run       string // names this run's tubes and keys
	tubes     map[string]bool
	report    report

	produceRate float64 // zerodq's 16-goroutine produce rate, to size the backlog's lead
	doubles     int64   // zerodq handler runs beyond the first, over all scenarios
	early       int     // zerodq jobs started before their due time, over all scenarios
}

func newBench(o benchOptions, log io.Writer) (*bench, error) {
	b := &bench{o: o, sz: fullSizes, log: log, tubes: map[string]bool{}}
	switch {
	case o.smoke:
		b.sz = smokeSizes
	case o.quick:
		b.sz = quickSizes
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	b.run = "zerodq-bench-" + hex.EncodeToString(rnd[:])
	if o.beanstalks != "" {
		b.endpoints = strings.Split(o.beanstalks, ",")
		b.redis = o.redis
		return b, nil
	}
	b.progress("starting 3 beanstalkd and a Redis")
	env, err := dqtest.StartEnv(dqtest.EnvOptions{Nodes: 3})
	if err != nil {
		return nil, err
	}
	b.env, b.endpoints, b.redis = env, env.Endpoints(), env.Redis.Addr()
	return b, nil
}

// close stops the servers the bench started, or empties the tubes it used
// on servers it was given: copies of jobs that already ran (spares a
// consumer had not deleted yet when it stopped, the 1-goroutine produce's
// jobs) must not stay behind. The run's Redis records expire by themselves
// (DedupeTTL).
func (b *bench) close() {
	if b.env != nil {
		b.env.Close()
		return
	}
	for tube := range b.tubes {
		if err := purgeTube(b.endpoints, tube); err != nil {
			b.progress("emptying tube %s: %v", tube, err)
		}
	}
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "zerodq-bench: "+format+"\n", args...)
}

func (b *bench) header() string {
	servers := "started by the bench"
	if b.env == nil {
		servers = "given"
	}
	return fmt.Sprintf("zerodq-bench: %d beanstalkd nodes and Redis %s, %d copies per job, %d-byte bodies, GOMAXPROCS %d",
		len(b.endpoints), servers, min(copies, len(b.endpoints)), b.o.body, runtime.GOMAXPROCS(0))
}

// conf is the DqConf of one scenario: its own tube, the run's key prefix.
func (b *bench) conf(scenario string, workers int) dq.DqConf {
	return benchConf(b.endpoints, b.redis, b.run, b.tube(scenario), workers)
}

func (b *bench) tube(scenario string) string {
	t := b.run + "-" + scenario
	b.tubes[t] = true
	return t
}

// runAll runs every scenario in turn; each adds its rows to the report.
func (b *bench) runAll(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"produce", b.benchProduce},
		{"drain", b.benchDrain},
		{"end-to-end", b.benchE2E},
		{"paced", b.benchPaced},
		{"slow", b.benchSlow},
		{"lateness", b.benchLateness},
		{"backlog", b.benchBacklog},
		{"dead-retry", b.benchDeadRetry},
		{"cost", b.benchCost},
		{"cost-cluster", b.benchCostCluster},
		{"backlog-1m", b.benchBacklog1M},
	}
	only, unknown := map[string]bool{}, map[string]bool{}
	for _, n := range strings.Split(b.o.only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			only[n], unknown[n] = true, true
		}
	}
	for _, s := range steps {
		delete(unknown, s.name)
	}
	for n := range unknown {
		return fmt.Errorf("-only: no scenario %q", n)
	}
	if only["drain"] && !only["produce"] {
		// The drain's backlog is what the 16-goroutine produce wrote.
		only["produce"] = true
		b.progress("drain drains the backlog produce writes: running produce too")
	}
	for _, s := range steps {
		if len(only) > 0 && !only[s.name] || len(only) == 0 && onlyWhenNamed[s.name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.progress("%s: took %v", s.name, time.Since(start).Round(10*time.Millisecond))
	}
	return nil
}

// verdict fails the run when zerodq broke a promise while being measured.
func (b *bench) verdict() error {
	var errs []error
	if b.early > 0 {
		errs = append(errs, fmt.Errorf("zerodq started %d jobs before their due time", b.early))
	}
	if b.doubles > 0 {
		errs = append(errs, fmt.Errorf("zerodq ran %d jobs more than once", b.doubles))
	}
	return errors.Join(errs...)
}
