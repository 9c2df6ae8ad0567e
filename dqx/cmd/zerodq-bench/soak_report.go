package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// soakReport is the outcome of a soak.
type soakReport struct {
	o              soakOptions
	dir            string // the records, when kept
	produced       int    // enqueues that returned an ID and nil, re-enqueues included
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
	interrupted    int      // handler runs that started and never recorded their end
	deaths         int      // runs that gave their job up as a dead letter (doomed jobs)
	kickedRuns     int      // dead letters run again after a kick of their node, as they should
	reenqueued     int      // WithIDs enqueued again after their record expired
	reenqueueDue   int      // WithIDs whose record had surely expired before production ended
	reenqueueRan   int      // of those, the ones whose second enqueue ran
	withIDRetries  int      // WithID enqueues tried again after an error
	consumerErrs   []string // consumers that exited on their own or did not stop on SIGTERM
	errSamples     []string // the first distinct enqueue errors other than ErrQuorum
	recordsLived   []string // WithIDs enqueued again while their record still existed
}

// unattributed counts the doubles no fault explains.
func (r *soakReport) unattributed() int {
	n := 0
	for _, d := range r.doubles {
		if !d.attributed() {
			n++
		}
	}
	return n
}

// attributedByCause counts the doubles of each cause.
func (r *soakReport) attributedByCause() map[string]int {
	m := map[string]int{causeInterrupted: 0, causeOutage: 0}
	for _, d := range r.doubles {
		if d.attributed() {
			m[d.Cause]++
		}
	}
	return m
}

// injected counts the faults the soak scheduled and injected.
func (r *soakReport) injected() int {
	n := 0
	for _, f := range r.faults {
		if slices.Contains(faultKinds, f.Kind) {
			n++
		}
	}
	return n
}

// faultCounts counts the timeline's events by kind, with a zero for every
// scheduled kind.
func (r *soakReport) faultCounts() map[string]int {
	m := map[string]int{}
	for _, k := range faultKinds {
		m[k] = 0
	}
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
	if n := r.unattributed(); n > 0 {
		errs = append(errs, fmt.Errorf("%d runs twice that no fault explains", n))
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
		"soak_double_attributed":      r.attributedByCause(),
		"soak_double_unattributed":    r.unattributed(),
		"soak_doubles":                doubles,
		"soak_faults":                 r.injected(),
		"soak_faults_by_kind":         r.faultCounts(),
		"soak_consumer_errors":        nonNil(r.consumerErrs),
		"soak_enqueue_quorum_errors":  r.quorumErrors,
		"soak_enqueue_other_errors":   r.otherErrors,
		"soak_enqueue_error_samples":  nonNil(r.errSamples),
		"soak_withid_retries":         r.withIDRetries,
		"soak_withid_reenqueued":      r.reenqueued,
		"soak_withid_reenqueue_due":   r.reenqueueDue,
		"soak_withid_reenqueue_ran":   r.reenqueueRan,
		"soak_withid_records_lived":   nonNil(r.recordsLived),
		"soak_dead_letters":           r.deaths,
		"soak_dead_letters_kick_ran":  r.kickedRuns,
		"soak_ran_after_quorum_error": len(r.ranAfterQuorum),
		"soak_ran_after_quorum_jobs":  r.ranAfterQuorum,
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
	fmt.Fprintf(w, "zerodq soak: %v of production at %d jobs/s, %d consumer processes (Workers %d), TTR %v, a fault every ~%v, seed %d\n",
		r.o.duration, r.o.rate, r.o.consumers, r.o.workers, r.o.ttr, r.o.faultEvery, r.o.seed)
	counts := r.faultCounts()
	var kinds []string
	for _, k := range append(slices.Clone(faultKinds), faultConsumerDie, faultConsumerCrash) {
		if counts[k] > 0 || slices.Contains(r.o.faults, k) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	byCause := r.attributedByCause()
	doubleNote := fmt.Sprintf("%s %d, %s %d (both allowed), unattributed %d (must be 0)",
		causeInterrupted, byCause[causeInterrupted], causeOutage, byCause[causeOutage], r.unattributed())
	drainNote := fmt.Sprintf("in %v after production stopped", r.drainTook.Round(100*time.Millisecond))
	if !r.drained {
		drainNote = fmt.Sprintf("NOT drained within %v", r.o.drain)
	}
	rows := []struct {
		name  string
		value int
		note  string
	}{
		{"jobs produced", r.produced, fmt.Sprintf("enqueue errors: %d ErrQuorum, %d other; %d WithID enqueues tried again",
			r.quorumErrors, r.otherErrors, r.withIDRetries)},
		{"jobs completed", r.completed, drainNote},
		{"lost", len(r.lost), "produced, never completed"},
		{"run twice", len(r.doubles), doubleNote},
		{"faults injected", r.injected(), strings.Join(kinds, ", ")},
		{"dead letters", r.deaths, fmt.Sprintf("jobs given up on purpose; %d ran again once after a kick, as they should", r.kickedRuns)},
		{"WithIDs re-enqueued", r.reenqueued, fmt.Sprintf("of %d whose record surely expired during production; %d ran again, as they should; %d records still there (must be 0)",
			r.reenqueueDue, r.reenqueueRan, len(r.recordsLived))},
		{"consumer failures", len(r.consumerErrs), "exited on their own, or did not stop on SIGTERM; must be 0"},
		{"runs interrupted", r.interrupted, "handlers started and never ended (killed, cancelled), run again"},
		{"ran after ErrQuorum", len(r.ranAfterQuorum), "must be 0"},
		{"copies left", r.copiesLeft, "ready, delayed, reserved or buried in the tubes at the end"},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%-20s %8s  %s\n", row.name, thousands(int64(row.value)), row.note)
	}
	for _, d := range r.doubles {
		cause := d.Cause + ": "
		if cause == ": " {
			cause = ""
		}
		fmt.Fprintf(w, "  twice: %s: %s%s; %s\n", jobKey{d.ID, d.Seq}, cause, d.Detail, d.Attempts)
	}
	for i, id := range r.lost {
		if i == 20 {
			fmt.Fprintf(w, "  ... and %d more lost\n", len(r.lost)-i)
			break
		}
		fmt.Fprintf(w, "  lost: %s\n", id)
	}
	for _, q := range r.ranAfterQuorum {
		fmt.Fprintf(w, "  ran after ErrQuorum: %s\n", q)
	}
	for _, k := range r.recordsLived {
		fmt.Fprintf(w, "  record still there when enqueued again: %s\n", k)
	}
	for _, e := range r.errSamples {
		fmt.Fprintf(w, "  enqueue error: %s\n", e)
	}
	for _, e := range r.consumerErrs {
		fmt.Fprintf(w, "  consumer: %s\n", e)
	}
	if r.dir != "" {
		fmt.Fprintf(w, "records kept in %s\n", r.dir)
	}
}

// describe names the job of seq for the report.
func (s *soak) describe(seq uint64) string {
	k := jobKey{s.ids[seq], seq}.String()
	switch {
	case seq >= s.n:
		return k + " (WithID, enqueued again after its record expired)"
	case s.jobClass(seq) == classID:
		return k + " (WithID)"
	case s.jobClass(seq) == classDoomed:
		return k + " (dies on its first attempt, kicked)"
	case s.jobClass(seq) == classLong:
		return k + " (long delay)"
	}
	return k
}

// analyze compares what was enqueued with what the consumers recorded.
func (s *soak) analyze(rep *soakReport, l *ledger) {
	s.mu.Lock()
	rep.faults = slices.Clone(s.faults)
	rep.consumerErrs = append(rep.consumerErrs, s.crashErrs...)
	s.mu.Unlock()
	rep.badLines = l.bad
	rep.interrupted = l.interrupted()
	rep.deaths = l.deaths()
	enqueued := map[jobKey]uint8{}
	for seq, oc := range s.outcome {
		k := jobKey{s.ids[seq], uint64(seq)}
		enqueued[k] = oc
		if uint64(seq) >= s.n && oc != enqueueNone {
			rep.reenqueued++
		}
		if oc != enqueueOK {
			continue
		}
		if _, ok := l.doneAt(k); !ok {
			rep.lost = append(rep.lost, s.describe(uint64(seq)))
			continue
		}
		rep.completed++
		if uint64(seq) >= s.n {
			rep.reenqueueRan++
		}
	}
	for seq := uint64(3); seq < s.n && s.jobClass(3) == classID; seq += 20 {
		if at, ok := l.doneAt(jobKey{s.ids[seq], seq}); ok && s.outcome[seq] == enqueueOK &&
			at.Add(s.o.reenqueueAfter()).Before(s.prodEnd) {
			rep.reenqueueDue++
		}
	}
	keys := make([]jobKey, 0, len(l.ends))
	for k := range l.ends {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	tm := timing{lease: s.o.ttr, shutdown: soakShutdownTimeout, slack: time.Second}
	for _, k := range keys {
		// ErrQuorum says this call's enqueue never runs; a WithID enqueued
		// again after an error may run from that earlier call's copies,
		// which the same body cannot tell apart.
		if enqueued[k] == enqueueQuorum && s.tried[k.Seq] == 1 {
			rep.ranAfterQuorum = append(rep.ranAfterQuorum,
				fmt.Sprintf("%s: %s; its enqueue returned: %s", k, s.describe(k.Seq), s.quorumErrs[k.Seq]))
		}
		v := judge(k, l.starts[k], l.ends[k], rep.faults, tm)
		rep.doubles = append(rep.doubles, v.doubles...)
		rep.kickedRuns += v.kicked
	}
}
