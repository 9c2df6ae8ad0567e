package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// soakOptions are the flags of the soak command.
type soakOptions struct {
	duration   time.Duration // of producing and injecting faults
	rate       int           // jobs per second
	consumers  int           // consumer subprocesses
	workers    int           // Workers of each
	work       time.Duration // each handler's simulated work
	spread     time.Duration // due times spread over 0..spread ahead
	longSpread time.Duration // a tenth of the main tube's jobs are due spread..spread+longSpread ahead
	faultEvery time.Duration // mean time between faults
	drain      time.Duration // bound on the wait for the queue to drain
	ttr        time.Duration
	dedupeTTL  time.Duration // DedupeTTL of the WithID tube
	faults     []string      // the kinds of faults to inject (faultKinds, and faultReenqueue)
	plain      bool          // every job a plain one of the main tube: no WithIDs, none that dies
	dieAfter   int           // the first consumer SIGKILLs itself after this many completions
	seed       uint64
	json       bool
	keep       bool // keep the records directory
	verbose    bool
}

func defaultSoakOptions() soakOptions {
	return soakOptions{
		duration: 3 * time.Minute, rate: 100, consumers: 3, workers: 8, work: 5 * time.Millisecond,
		spread: 3 * time.Second, longSpread: 20 * time.Second, faultEvery: 2 * time.Second,
		drain: 2 * time.Minute, ttr: 5 * time.Second, dedupeTTL: 15 * time.Second,
		faults: append(slices.Clone(faultKinds), faultReenqueue),
	}
}

func soakMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := defaultSoakOptions()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", o.duration, "how long to produce jobs and inject faults")
	fs.IntVar(&o.rate, "rate", o.rate, "jobs produced per second")
	fs.IntVar(&o.consumers, "consumers", o.consumers, "consumer subprocesses")
	fs.IntVar(&o.workers, "workers", o.workers, "Workers of each consumer on the main tube")
	fs.DurationVar(&o.work, "work", o.work, "each handler's simulated work")
	fs.DurationVar(&o.spread, "spread", o.spread, "jobs are due 0 to this far ahead")
	fs.DurationVar(&o.longSpread, "long-spread", o.longSpread, "a tenth of the jobs are due up to this much later still")
	fs.DurationVar(&o.faultEvery, "fault-every", o.faultEvery, "mean time between faults")
	fs.DurationVar(&o.drain, "drain", o.drain, "how long to wait for the queue to drain")
	fs.DurationVar(&o.ttr, "ttr", o.ttr, "TTR (lease) of the jobs")
	fs.DurationVar(&o.dedupeTTL, "dedupe-ttl", o.dedupeTTL, "DedupeTTL of the WithID jobs, which are enqueued again once it has surely passed")
	faults := strings.Join(o.faults, ",")
	fs.StringVar(&faults, "faults", faults, "comma-separated kinds of faults to inject")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the fault schedule (0: random)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of the table")
	fs.BoolVar(&o.keep, "keep", false, "keep the directory of records and consumer logs")
	fs.BoolVar(&o.verbose, "v", false, "log zerodq's messages to stderr")
	fs.IntVar(&o.dieAfter, "die-after", 0, "")
	hideFlags(fs, "die-after") // for the tests: a certain double, to prove it is found and attributed
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	o.faults = strings.Split(faults, ",")
	for _, k := range o.faults {
		if !slices.Contains(faultKinds, k) && k != faultReenqueue {
			return fmt.Errorf("-faults: unknown kind %q (kinds: %s,%s)", k, strings.Join(faultKinds, ","), faultReenqueue)
		}
	}
	if o.duration <= 0 || o.rate <= 0 || o.consumers <= 0 || o.workers <= 0 || o.faultEvery <= 0 || o.dedupeTTL <= 0 {
		return errors.New("-duration, -rate, -consumers, -workers, -fault-every and -dedupe-ttl must be positive")
	}
	quietLogs(o.verbose, stderr)
	rep, err := runSoak(ctx, o, stderr)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep.json()); err != nil {
			return err
		}
	} else {
		rep.table(stdout)
	}
	return rep.verdict()
}

// Outcomes of an enqueue.
const (
	enqueueNone uint8 = iota
	enqueueOK
	enqueueQuorum // ErrQuorum: the job must never run
	enqueueOther  // any other error: it may or may not run
)

// Classes of jobs, by sequence number.
const (
	classMain   = iota // main tube, due within spread
	classLong          // main tube, due spread..spread+longSpread ahead: what a kick of delayed jobs moves early
	classID            // WithID tube: enqueued again once its record expired
	classDoomed        // dead tube: dies on its first attempt, runs once more when kicked
)

// jobClass sorts the sequence numbers of the first enqueues (below n) into
// classes; a sequence number n+s is the second enqueue of WithID job s.
func (s *soak) jobClass(seq uint64) int {
	switch {
	case s.o.plain:
		return classMain
	case seq%20 == 3:
		return classID
	case seq%100 == 7:
		return classDoomed
	case seq%10 == 9:
		return classLong
	}
	return classMain
}

// longestOutage is how long the soak keeps Redis down at most.
func (o soakOptions) longestOutage() time.Duration { return o.ttr + 3*time.Second }

// lateWrite bounds how long after a WithID job's completion its record may
// still be written to: the delete of a spare copy that waited up to a lease
// for the run to end, then through a Redis outage, and a second to spare.
func (o soakOptions) lateWrite() time.Duration { return o.longestOutage() + o.ttr + 2*time.Second }

// reenqueueAfter is how long after a WithID job's completion its record has
// surely expired: each write keeps it DedupeTTL past its lease (TTR).
func (o soakOptions) reenqueueAfter() time.Duration { return o.lateWrite() + o.ttr + o.dedupeTTL }

// soak is one soak run.
type soak struct {
	o         soakOptions
	log       io.Writer
	env       *dqtest.Env
	dir       string
	settings  soakSettings
	rnd       *rand.Rand
	n         uint64 // first enqueues; re-enqueues take n+seq
	producers map[string]dq.Producer
	bg        sync.WaitGroup // consumers draining after a SIGTERM
	prodEnd   time.Time      // when production ended

	mu        sync.Mutex // guards procs, gen, faults, crashErrs
	procs     []*consumerProc
	gen       int
	faults    []fault
	crashErrs []string

	jobsMu  sync.Mutex
	ids     []string // by seq, for enqueueOK and enqueueQuorum
	outcome []uint8  // by seq
	// errSamples are the first distinct errors of enqueues other than
	// ErrQuorum.
	errSamples []string

	pending []uint64 // WithID enqueues that failed, for manageIDs to try again
	// quorumErrs are the errors of enqueues that returned ErrQuorum, by seq,
	// to say why should such a job run all the same.
	quorumErrs map[uint64]string
	// tried marks the WithID seqs enqueued more than once (a retry after
	// an error): an earlier call of the same ID may still be writing it.
	tried map[uint64]int

	// Owned by manageIDs until production ends.
	retries      int
	recordsLived []string        // WithIDs whose record still existed when they were enqueued again
	reenqueued   map[uint64]bool // first-enqueue seqs enqueued again
}

// runSoak runs a soak and reports on it.
func runSoak(ctx context.Context, o soakOptions, log io.Writer) (*soakReport, error) {
	if o.dedupeTTL < o.lateWrite() {
		// Shorter, a spare copy of a done job may outlive the record that
		// tells it the job is done, and run it again: the soak would then
		// find the documented limit it set up, not a fault of zerodq.
		return nil, fmt.Errorf("-dedupe-ttl %v must be at least %v (a Redis outage of the soak and a lease, 2×TTR+5s)",
			o.dedupeTTL, o.lateWrite())
	}
	if !o.verbose {
		goredis.SetLogger(discardLog{})
	}
	if o.seed == 0 {
		o.seed = rand.Uint64()
	}
	s := &soak{o: o, log: log, rnd: rand.New(rand.NewPCG(o.seed, o.seed>>1|1)), reenqueued: map[uint64]bool{},
		quorumErrs: map[uint64]string{}, tried: map[uint64]int{}}
	s.n = uint64(o.duration.Seconds() * float64(o.rate))
	s.ids, s.outcome = make([]string, 2*s.n), make([]uint8, 2*s.n)

	var err error
	s.progress("starting 3 binlogged beanstalkd and an AOF Redis")
	s.env, err = dqtest.StartEnv(dqtest.EnvOptions{
		Nodes: 3, NodeOpts: []dqtest.Option{dqtest.WithBinlog()}, RedisOpts: []dqtest.Option{dqtest.WithAOF()},
	})
	if err != nil {
		return nil, err
	}
	defer s.env.Close()
	if s.dir, err = os.MkdirTemp("", "zerodq-soak-"); err != nil {
		return nil, err
	}
	s.settings = soakSettings{
		endpoints: s.env.Endpoints(), redis: s.env.Redis.Addr(), prefix: "zerodq-soak", tube: "soak",
		workers: o.workers, ttr: o.ttr, dedupeTTL: o.dedupeTTL, work: o.work,
	}

	rep, err := s.run(ctx)
	stopErrs := s.stopConsumers()
	if err != nil {
		return nil, errors.Join(err, s.keepDir())
	}
	rep.consumerErrs = append(rep.consumerErrs, stopErrs...)
	l := newLedger(s.dir)
	if err := l.refresh(); err != nil {
		return nil, err
	}
	s.analyze(rep, l)
	if o.keep || rep.verdict() != nil {
		rep.dir = s.dir
		// The timeline beside the records, to read a finding from.
		if b, err := json.MarshalIndent(rep.faults, "", "  "); err == nil {
			_ = os.WriteFile(filepath.Join(s.dir, "faults.json"), b, 0o644)
		}
	} else {
		_ = os.RemoveAll(s.dir)
	}
	return rep, nil
}

func (s *soak) keepDir() error {
	return fmt.Errorf("records kept in %s", s.dir)
}

func (s *soak) progress(format string, args ...any) {
	fmt.Fprintf(s.log, "zerodq-bench soak: "+format+"\n", args...)
}

// run produces under faults, then waits for the queue to drain.
func (s *soak) run(ctx context.Context) (*soakReport, error) {
	for slot := range s.o.consumers {
		if err := s.startConsumer(slot); err != nil {
			return nil, err
		}
	}
	s.producers = map[string]dq.Producer{}
	for _, suffix := range soakTubes {
		p, err := dq.NewProducer(s.settings.conf(suffix))
		if err != nil {
			return nil, err
		}
		defer p.Close()
		s.producers[suffix] = p
	}

	s.progress("producing %d jobs/s for %v with a fault every ~%v (seed %d)", s.o.rate, s.o.duration, s.o.faultEvery, s.o.seed)
	faultCtx, stopFaults := context.WithCancel(ctx)
	var side sync.WaitGroup
	faultErr, idsErr := make(chan error, 1), make(chan error, 1)
	side.Add(2)
	go func() {
		defer side.Done()
		faultErr <- s.injectFaults(faultCtx)
	}()
	go func() {
		defer side.Done()
		idsErr <- s.manageIDs(faultCtx)
	}()
	perr := runJobs(ctx, int(s.n), 32, s.o.rate, func(ctx context.Context, seq uint64) error {
		if !s.enqueue(ctx, seq) {
			s.retryLater(seq)
		}
		return nil
	})
	s.prodEnd = time.Now()
	stopFaults()
	side.Wait()
	if err := errors.Join(perr, <-faultErr, <-idsErr, ctx.Err()); err != nil {
		return nil, err
	}

	rep := &soakReport{o: s.o, withIDRetries: s.retries, errSamples: s.errSamples, recordsLived: s.recordsLived}
	for _, oc := range s.outcome {
		switch oc {
		case enqueueOK:
			rep.produced++
		case enqueueQuorum:
			rep.quorumErrors++
		case enqueueOther:
			rep.otherErrors++
		}
	}
	s.progress("produced %d jobs (%d ErrQuorum, %d other errors), %d faults; waiting for the queue to drain",
		rep.produced, rep.quorumErrors, rep.otherErrors, len(s.faults))
	start := time.Now()
	drained, left, err := s.awaitDrain(ctx)
	if err != nil {
		return nil, err
	}
	rep.drained, rep.copiesLeft, rep.drainTook = drained, left, time.Since(start)
	return rep, nil
}

// firstSeq is the sequence number of the first enqueue of the job of seq.
func (s *soak) firstSeq(seq uint64) uint64 {
	if seq >= s.n {
		return seq - s.n
	}
	return seq
}

// enqueue produces job seq and records the outcome; it returns false when a
// WithID enqueue failed otherwise than with ErrQuorum, to be tried again.
func (s *soak) enqueue(ctx context.Context, seq uint64) bool {
	first := s.firstSeq(seq)
	class := s.jobClass(first)
	delay := time.Duration(jitter(seq) * float64(s.o.spread))
	suffix := tubeMain
	var opts []dq.JobOption
	timeout := 10 * time.Second
	switch class {
	case classLong:
		delay = s.o.spread + time.Duration(jitter(seq)*float64(s.o.longSpread))
	case classID:
		suffix = tubeIDs
		opts = append(opts, dq.WithID(fmt.Sprintf("job-%d", first)))
		timeout = 3 * time.Second // and tried again: the ID makes that safe
	case classDoomed:
		suffix = tubeDead
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id, err := s.producers[suffix].DelayCtx(ctx, makeBody(64, seq, time.Time{}), delay, opts...)
	var qe *dq.QuorumError
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	s.tried[seq]++
	switch {
	case err == nil:
		s.ids[seq], s.outcome[seq] = id, enqueueOK
	case errors.As(err, &qe):
		s.ids[seq], s.outcome[seq] = qe.ID, enqueueQuorum
		s.quorumErrs[seq] = err.Error()
	default:
		s.outcome[seq] = enqueueOther
		if len(s.errSamples) < 5 && !slices.Contains(s.errSamples, err.Error()) {
			s.errSamples = append(s.errSamples, err.Error())
		}
		return class != classID
	}
	return true
}

// jitter is a number in [0, 1) for seq, spread evenly but out of step with
// the sequence.
func jitter(seq uint64) float64 {
	return float64((seq*7919)%1000) / 1000
}

// awaitDrain waits until every job enqueued without error has completed and
// the tubes hold no copy on any node, within the drain bound, kicking the
// dead letters left as an operator would. It returns whether that happened
// and the copies left.
func (s *soak) awaitDrain(ctx context.Context) (drained bool, left int, err error) {
	l := newLedger(s.dir)
	deadline := time.Now().Add(s.o.drain)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.restartCrashed(); err != nil {
			return false, 0, err
		}
		s.kickAllDeadLetters()
		if err := l.refresh(); err != nil {
			return false, 0, err
		}
		left = s.copiesLeft()
		if left == 0 && s.allDone(l) {
			return true, 0, nil
		}
		if time.Now().After(deadline) {
			return false, left, nil
		}
		select {
		case <-ctx.Done():
			return false, left, ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *soak) allDone(l *ledger) bool {
	for seq, oc := range s.outcome {
		if _, ok := l.doneAt(jobKey{s.ids[seq], uint64(seq)}); oc == enqueueOK && !ok {
			return false
		}
	}
	return true
}

// discardLog keeps go-redis's own messages (a dial refused while Redis is
// down) out of the soak's output.
type discardLog struct{}

func (discardLog) Printf(context.Context, string, ...any) {}
