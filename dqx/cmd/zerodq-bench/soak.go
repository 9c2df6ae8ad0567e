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
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/beanstalkd/go-beanstalk"

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
	faultEvery time.Duration // mean time between faults
	drain      time.Duration // bound on the wait for the queue to drain
	ttr        time.Duration
	dieAfter   int // the first consumer SIGKILLs itself after this many completions
	seed       uint64
	json       bool
	keep       bool // keep the records directory
	verbose    bool
}

func defaultSoakOptions() soakOptions {
	return soakOptions{
		duration: 3 * time.Minute, rate: 100, consumers: 3, workers: 8, work: 5 * time.Millisecond,
		spread: 3 * time.Second, faultEvery: 3 * time.Second, drain: 2 * time.Minute, ttr: 5 * time.Second,
	}
}

func soakMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := defaultSoakOptions()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", o.duration, "how long to produce jobs and inject faults")
	fs.IntVar(&o.rate, "rate", o.rate, "jobs produced per second")
	fs.IntVar(&o.consumers, "consumers", o.consumers, "consumer subprocesses")
	fs.IntVar(&o.workers, "workers", o.workers, "Workers of each consumer")
	fs.DurationVar(&o.work, "work", o.work, "each handler's simulated work")
	fs.DurationVar(&o.spread, "spread", o.spread, "jobs are due 0 to this far ahead")
	fs.DurationVar(&o.faultEvery, "fault-every", o.faultEvery, "mean time between faults")
	fs.DurationVar(&o.drain, "drain", o.drain, "how long to wait for the queue to drain")
	fs.DurationVar(&o.ttr, "ttr", o.ttr, "TTR (lease) of the jobs")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the fault schedule (0: random)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of the table")
	fs.BoolVar(&o.keep, "keep", false, "keep the directory of records and consumer logs")
	fs.BoolVar(&o.verbose, "v", false, "log zerodq's messages to stderr")
	fs.IntVar(&o.dieAfter, "die-after", 0, "")
	hideFlags(fs, "die-after") // for the tests: a certain double, to prove it is found and explained
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if o.duration <= 0 || o.rate <= 0 || o.consumers <= 0 || o.workers <= 0 || o.faultEvery <= 0 {
		return errors.New("-duration, -rate, -consumers, -workers and -fault-every must be positive")
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

// soakReport is the outcome of a soak.
type soakReport struct {
	o              soakOptions
	dir            string // the records, when kept
	produced       int
	completed      int
	lost           []string
	doubles        []double
	faults         []fault
	quorumErrors   int
	otherErrors    int
	ranAfterQuorum []string
	copiesLeft     int
	drained        bool
	drainTook      time.Duration
	badLines       int
	interrupted    int      // handler runs that started and never recorded their completion
	consumerErrs   []string // consumers that exited on their own or did not stop on SIGTERM
}

func (r *soakReport) unexplained() int {
	n := 0
	for _, d := range r.doubles {
		if !d.Explained {
			n++
		}
	}
	return n
}

// injected counts the faults the soak injected (a consumer crash is not one).
func (r *soakReport) injected() int {
	n := 0
	for _, f := range r.faults {
		if slices.Contains(faultKinds, f.Kind) || f.Kind == faultConsumerDie {
			n++
		}
	}
	return n
}

func (r *soakReport) faultCounts() map[string]int {
	m := map[string]int{}
	for _, f := range r.faults {
		m[f.Kind]++
	}
	return m
}

// verdict fails the soak on a broken promise.
func (r *soakReport) verdict() error {
	var errs []error
	if len(r.lost) > 0 {
		errs = append(errs, fmt.Errorf("%d jobs lost", len(r.lost)))
	}
	if n := r.unexplained(); n > 0 {
		errs = append(errs, fmt.Errorf("%d jobs completed twice without a fault to explain it", n))
	}
	if len(r.ranAfterQuorum) > 0 {
		errs = append(errs, fmt.Errorf("%d jobs ran although their enqueue returned ErrQuorum", len(r.ranAfterQuorum)))
	}
	if !r.drained {
		errs = append(errs, fmt.Errorf("the queue did not drain within %v", r.o.drain))
	}
	if len(r.consumerErrs) > 0 {
		errs = append(errs, fmt.Errorf("%d consumer failures", len(r.consumerErrs)))
	}
	if r.badLines > 0 {
		errs = append(errs, fmt.Errorf("%d record lines did not parse", r.badLines))
	}
	if err := errors.Join(errs...); err != nil {
		if r.dir != "" {
			return fmt.Errorf("%w (records kept in %s)", err, r.dir)
		}
		return err
	}
	return nil
}

func (r *soakReport) json() map[string]any {
	doubles := r.doubles
	if doubles == nil {
		doubles = []double{}
	}
	return map[string]any{
		"soak_duration_s":             r.o.duration.Seconds(),
		"soak_rate":                   r.o.rate,
		"soak_seed":                   r.o.seed,
		"soak_jobs":                   r.produced,
		"soak_completed":              r.completed,
		"soak_lost":                   len(r.lost),
		"soak_lost_ids":               nonNil(r.lost),
		"soak_double":                 len(r.doubles),
		"soak_double_unexplained":     r.unexplained(),
		"soak_doubles":                doubles,
		"soak_faults":                 r.injected(),
		"soak_consumer_errors":        nonNil(r.consumerErrs),
		"soak_faults_by_kind":         r.faultCounts(),
		"soak_enqueue_quorum_errors":  r.quorumErrors,
		"soak_enqueue_other_errors":   r.otherErrors,
		"soak_ran_after_quorum_error": len(r.ranAfterQuorum),
		"soak_copies_left":            r.copiesLeft,
		"soak_interrupted_runs":       r.interrupted,
		"soak_drained":                r.drained,
		"soak_drain_s":                r.drainTook.Seconds(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (r *soakReport) table(w io.Writer) {
	fmt.Fprintf(w, "zerodq soak: %v of production at %d jobs/s, %d consumer processes (Workers %d), a fault every ~%v, seed %d\n",
		r.o.duration, r.o.rate, r.o.consumers, r.o.workers, r.o.faultEvery, r.o.seed)
	counts := r.faultCounts()
	var kinds []string
	for _, k := range append(slices.Clone(faultKinds), faultConsumerDie, faultConsumerCrash) {
		if counts[k] > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	doubleNote := "none"
	if len(r.doubles) > 0 {
		doubleNote = fmt.Sprintf("%d explained by a fault, %d unexplained", len(r.doubles)-r.unexplained(), r.unexplained())
	}
	drainNote := fmt.Sprintf("in %v after production stopped", r.drainTook.Round(100*time.Millisecond))
	if !r.drained {
		drainNote = fmt.Sprintf("NOT drained within %v", r.o.drain)
	}
	rows := []struct {
		name  string
		value int
		note  string
	}{
		{"jobs produced", r.produced, fmt.Sprintf("enqueue errors: %d ErrQuorum, %d other", r.quorumErrors, r.otherErrors)},
		{"jobs completed", r.completed, drainNote},
		{"lost", len(r.lost), "produced, never completed"},
		{"completed twice", len(r.doubles), doubleNote},
		{"faults injected", r.injected(), strings.Join(kinds, ", ")},
		{"consumer failures", len(r.consumerErrs), "exited on their own, or did not stop on SIGTERM; must be 0"},
		{"runs interrupted", r.interrupted, "handlers started and never completed (killed, cancelled), run again"},
		{"ran after ErrQuorum", len(r.ranAfterQuorum), "must be 0"},
		{"copies left", r.copiesLeft, "ready, delayed or reserved in the tube at the end"},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%-20s %8s  %s\n", row.name, thousands(int64(row.value)), row.note)
	}
	for _, d := range r.doubles {
		fmt.Fprintf(w, "  twice: %s: %s\n", d.ID, d.Cause)
	}
	for i, id := range r.lost {
		if i == 20 {
			fmt.Fprintf(w, "  ... and %d more lost\n", len(r.lost)-i)
			break
		}
		fmt.Fprintf(w, "  lost: %s\n", id)
	}
	for _, e := range r.consumerErrs {
		fmt.Fprintf(w, "  consumer: %s\n", e)
	}
	if r.dir != "" {
		fmt.Fprintf(w, "records kept in %s\n", r.dir)
	}
}

// Outcomes of an enqueue.
const (
	enqueueNone uint8 = iota
	enqueueOK
	enqueueQuorum // ErrQuorum: the job must never run
	enqueueOther  // any other error: it may or may not run
)

// soak is one soak run.
type soak struct {
	o        soakOptions
	log      io.Writer
	env      *dqtest.Env
	dir      string
	settings soakSettings
	rnd      *rand.Rand

	mu        sync.Mutex // guards procs, faults, gen
	procs     []*consumerProc
	gen       int
	faults    []fault
	crashErrs []string

	ids     []string // by seq, for enqueueOK and enqueueQuorum
	outcome []uint8  // by seq
}

// runSoak runs a soak and reports on it.
func runSoak(ctx context.Context, o soakOptions, log io.Writer) (*soakReport, error) {
	if o.seed == 0 {
		o.seed = rand.Uint64()
	}
	s := &soak{o: o, log: log, rnd: rand.New(rand.NewPCG(o.seed, o.seed>>1|1))}
	n := int(o.duration.Seconds() * float64(o.rate))
	s.ids, s.outcome = make([]string, n), make([]uint8, n)

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
		workers: o.workers, ttr: o.ttr, work: o.work,
	}

	rep, err := s.run(ctx, n)
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
func (s *soak) run(ctx context.Context, n int) (*soakReport, error) {
	for slot := range s.o.consumers {
		if err := s.startConsumer(slot); err != nil {
			return nil, err
		}
	}
	p, err := dq.NewProducer(s.settings.conf())
	if err != nil {
		return nil, err
	}
	defer p.Close()

	s.progress("producing %d jobs/s for %v with a fault every ~%v (seed %d)", s.o.rate, s.o.duration, s.o.faultEvery, s.o.seed)
	faultCtx, stopFaults := context.WithCancel(ctx)
	faultErr := make(chan error, 1)
	go func() { faultErr <- s.injectFaults(faultCtx) }()
	perr := runJobs(ctx, n, 32, s.o.rate, func(ctx context.Context, seq uint64) error {
		s.enqueue(ctx, p, seq)
		return nil
	})
	stopFaults()
	ferr := <-faultErr
	if err := errors.Join(perr, ferr, ctx.Err()); err != nil {
		return nil, err
	}

	rep := &soakReport{o: s.o}
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

// enqueue produces job seq and records the outcome.
func (s *soak) enqueue(ctx context.Context, p dq.Producer, seq uint64) {
	delay := time.Duration(s.jitter(seq) * float64(s.o.spread))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := p.DelayCtx(ctx, makeBody(64, seq, time.Time{}), delay)
	var qe *dq.QuorumError
	switch {
	case err == nil:
		s.ids[seq], s.outcome[seq] = id, enqueueOK
	case errors.As(err, &qe):
		s.ids[seq], s.outcome[seq] = qe.ID, enqueueQuorum
	default:
		s.outcome[seq] = enqueueOther
	}
}

// jitter is a number in [0, 1) for seq, spread evenly but out of step with
// the sequence.
func (s *soak) jitter(seq uint64) float64 {
	return float64((seq*7919)%1000) / 1000
}

func (s *soak) startConsumer(slot int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	settings := s.settings
	if s.gen == 1 {
		settings.dieAfter = s.o.dieAfter
	}
	p, err := startConsumerProc(settings, s.dir, slot, s.gen)
	if err != nil {
		return err
	}
	if slot < len(s.procs) {
		s.procs[slot] = p
	} else {
		s.procs = append(s.procs, p)
	}
	return nil
}

// restartCrashed starts consumers again that exited without being killed
// and books each as a fault: a planned death (-die-after), or a crash.
func (s *soak) restartCrashed() error {
	s.mu.Lock()
	var ended []*consumerProc
	for _, p := range s.procs {
		if p.hasExited() {
			ended = append(ended, p)
		}
	}
	s.mu.Unlock()
	for _, p := range ended {
		f := fault{Kind: faultConsumerDie, Target: fmt.Sprintf("consumer %d", p.pid), PID: p.pid,
			Start: p.endedAt, End: p.endedAt}
		if !p.dies {
			f.Kind = faultConsumerCrash
			s.mu.Lock()
			s.crashErrs = append(s.crashErrs, fmt.Sprint(p.exitErr()))
			s.mu.Unlock()
			s.progress("consumer %d exited on its own: %v", p.pid, p.exitErr())
		}
		s.record(f)
		if err := s.startConsumer(p.slot); err != nil {
			return err
		}
	}
	return nil
}

func (s *soak) record(f fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// injectFaults injects one fault at a time at random intervals until ctx
// ends, every kind once per round in a random order, and restores what it
// broke before it returns.
func (s *soak) injectFaults(ctx context.Context) error {
	var round []string
	for {
		gap := time.Duration((0.5 + s.rnd.Float64()) * float64(s.o.faultEvery))
		if !sleepUntil(ctx, time.Now().Add(gap)) {
			return nil
		}
		if err := s.restartCrashed(); err != nil {
			return err
		}
		if len(round) == 0 {
			round = slices.Clone(faultKinds)
			s.rnd.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		kind := round[0]
		round = round[1:]
		if err := s.inject(kind); err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
	}
}

// inject applies one fault and undoes it; it always restores the server or
// consumer, also when ctx has ended, so that the drain runs on a whole system.
func (s *soak) inject(kind string) error {
	f := fault{Kind: kind, Start: time.Now()}
	between := func(lo, hi time.Duration) {
		d := lo + time.Duration(s.rnd.Int64N(int64(hi-lo)))
		time.Sleep(d) // the fault lasts this long: the wait is the fault
	}
	var err error
	switch kind {
	case faultNodeKill:
		n := s.env.Nodes[s.rnd.IntN(len(s.env.Nodes))]
		f.Target = n.Addr()
		n.Kill()
		between(300*time.Millisecond, 1500*time.Millisecond)
		err = restart(n)
	case faultNodePause:
		n := s.env.Nodes[s.rnd.IntN(len(s.env.Nodes))]
		f.Target = n.Addr()
		if err = n.Pause(); err == nil {
			between(500*time.Millisecond, 2500*time.Millisecond)
			err = n.Resume()
		}
	case faultRedisRestart:
		f.Target = s.env.Redis.Addr()
		s.env.Redis.Kill()
		between(100*time.Millisecond, 800*time.Millisecond)
		err = restart(s.env.Redis)
	case faultConsumerKill:
		s.mu.Lock()
		// A consumer that is to die on its own (-die-after) is spared, so
		// that its planned death, and the double it causes, surely happen.
		victims := make([]*consumerProc, 0, len(s.procs))
		for _, q := range s.procs {
			if !q.dies {
				victims = append(victims, q)
			}
		}
		if len(victims) == 0 {
			victims = s.procs
		}
		p := victims[s.rnd.IntN(len(victims))]
		s.mu.Unlock()
		f.Target, f.PID = fmt.Sprintf("consumer %d", p.pid), p.pid
		f.Start = time.Now()
		p.kill()
		err = s.startConsumer(p.slot)
	}
	f.End = time.Now()
	s.record(f)
	return err
}

// restart restarts a server, trying again a few times: its port may linger.
func restart(srv *dqtest.Server) error {
	var err error
	for range 3 {
		if err = srv.Restart(); err == nil {
			return nil
		}
	}
	return err
}

// awaitDrain waits until every job enqueued without error has completed and
// the tube holds no ready, delayed or reserved copy on any node, within the
// drain bound. It returns whether that happened and the copies left.
func (s *soak) awaitDrain(ctx context.Context) (drained bool, left int, err error) {
	l := newLedger(s.dir)
	deadline := time.Now().Add(s.o.drain)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.restartCrashed(); err != nil {
			return false, 0, err
		}
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
		if oc == enqueueOK && len(l.done[s.ids[seq]]) == 0 {
			return false
		}
	}
	return true
}

// copiesLeft counts the copies still ready, delayed or reserved in the tube
// (-1 when a node does not answer).
func (s *soak) copiesLeft() int {
	total := 0
	for _, ep := range s.settings.endpoints {
		c, err := beanstalk.DialTimeout("tcp", ep, time.Second)
		if err != nil {
			return -1
		}
		st, err := beanstalk.NewTube(c, s.settings.tube).Stats()
		_ = c.Close()
		if errors.Is(err, beanstalk.ErrNotFound) {
			continue // no such tube: nothing in it
		}
		if err != nil {
			return -1
		}
		for _, k := range []string{"current-jobs-ready", "current-jobs-delayed", "current-jobs-reserved"} {
			var v int
			_, _ = fmt.Sscan(st[k], &v)
			total += v
		}
	}
	return total
}

// stopConsumers drains every consumer with SIGTERM and returns what went
// wrong on the way.
func (s *soak) stopConsumers() []string {
	s.mu.Lock()
	procs := slices.Clone(s.procs)
	s.mu.Unlock()
	var errs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.stop(10 * time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// analyze compares what was enqueued with what the consumers recorded.
func (s *soak) analyze(rep *soakReport, l *ledger) {
	s.mu.Lock()
	rep.faults = slices.Clone(s.faults)
	rep.consumerErrs = append(rep.consumerErrs, s.crashErrs...)
	s.mu.Unlock()
	rep.badLines = l.bad
	quorumSeq := map[uint64]bool{}
	for seq, oc := range s.outcome {
		switch oc {
		case enqueueOK:
			if len(l.done[s.ids[seq]]) == 0 {
				rep.lost = append(rep.lost, s.ids[seq])
			} else {
				rep.completed++
			}
		case enqueueQuorum:
			quorumSeq[uint64(seq)] = true
		}
	}
	rep.interrupted = l.interrupted()
	ids := make([]string, 0, len(l.done))
	for id := range l.done {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		runs := l.done[id]
		if quorumSeq[runs[0].Seq] {
			rep.ranAfterQuorum = append(rep.ranAfterQuorum, id)
		}
		if len(runs) > 1 {
			rep.doubles = append(rep.doubles, explainDouble(id, runs, l.starts[id], rep.faults, s.o.ttr))
		}
	}
}
