package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// event is one line a soak consumer recorded.
type event struct {
	Kind     string    `json:"kind"` // S (started), D (done) or X (dead: ErrSkipRetry)
	ID       string    `json:"id"`
	Seq      uint64    `json:"seq"`
	Attempt  int       `json:"attempt"`
	PID      int       `json:"pid"`
	At       time.Time `json:"at"`
	Endpoint string    `json:"endpoint"` // the node the run's copy came from
}

// Kinds of events.
const (
	eventStart = "S"
	eventDone  = "D"
	eventDead  = "X"
)

// jobKey names one enqueue: a job ID and the sequence number of the body it
// was enqueued with. A WithID job enqueued again after its record expired
// keeps its ID under a new sequence number, so that its second run is a run
// of its own and not a double of the first.
type jobKey struct {
	ID  string
	Seq uint64
}

func (k jobKey) String() string { return fmt.Sprintf("%s#%d", k.ID, k.Seq) }

// ledger reads the consumers' record files as they grow.
type ledger struct {
	dir     string
	offsets map[string]int64
	partial map[string][]byte
	starts  map[jobKey][]event // S lines
	ends    map[jobKey][]event // D and X lines
	bad     int                // lines that did not parse
}

func newLedger(dir string) *ledger {
	return &ledger{
		dir: dir, offsets: map[string]int64{}, partial: map[string][]byte{},
		starts: map[jobKey][]event{}, ends: map[jobKey][]event{},
	}
}

// refresh reads what the record files gained since the last call.
func (l *ledger) refresh() error {
	files, err := filepath.Glob(filepath.Join(l.dir, "records-*.log"))
	if err != nil {
		return err
	}
	for _, name := range files {
		if err := l.readFile(name); err != nil {
			return err
		}
	}
	return nil
}

func (l *ledger) readFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(l.offsets[name], io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	l.offsets[name] += int64(len(data))
	data = append(l.partial[name], data...)
	// A line is whole once its newline is there; keep the rest for later.
	cut := bytes.LastIndexByte(data, '\n') + 1
	l.partial[name] = slices.Clone(data[cut:])
	for _, line := range strings.Split(string(data[:cut]), "\n") {
		if line == "" {
			continue
		}
		e, ok := parseEvent(line)
		if !ok {
			l.bad++
			continue
		}
		k := jobKey{e.ID, e.Seq}
		if e.Kind == eventStart {
			l.starts[k] = append(l.starts[k], e)
		} else {
			l.ends[k] = append(l.ends[k], e)
		}
	}
	return nil
}

// doneAt reports whether the job of k completed, and when it last did.
func (l *ledger) doneAt(k jobKey) (time.Time, bool) {
	var last time.Time
	ok := false
	for _, e := range l.ends[k] {
		if e.Kind == eventDone {
			ok = true
			if e.At.After(last) {
				last = e.At
			}
		}
	}
	return last, ok
}

// interrupted counts handler runs that started and recorded no end.
func (l *ledger) interrupted() int {
	n := 0
	for k, starts := range l.starts {
		for _, s := range starts {
			if !slices.ContainsFunc(l.ends[k], func(e event) bool { return e.PID == s.PID && e.Attempt == s.Attempt }) {
				n++
			}
		}
	}
	return n
}

// deaths counts the runs that ended the job as a dead letter.
func (l *ledger) deaths() int {
	n := 0
	for _, ends := range l.ends {
		for _, e := range ends {
			if e.Kind == eventDead {
				n++
			}
		}
	}
	return n
}

func formatEvent(e event) string {
	return fmt.Sprintf("%s %s %d %d %d %d %s\n", e.Kind, e.ID, e.Seq, e.Attempt, e.PID, e.At.UnixMicro(), e.Endpoint)
}

func parseEvent(line string) (event, bool) {
	f := strings.Fields(line)
	if len(f) != 7 || (f[0] != eventStart && f[0] != eventDone && f[0] != eventDead) {
		return event{}, false
	}
	seq, err1 := strconv.ParseUint(f[2], 10, 64)
	attempt, err2 := strconv.Atoi(f[3])
	pid, err3 := strconv.Atoi(f[4])
	us, err4 := strconv.ParseInt(f[5], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return event{}, false
	}
	return event{Kind: f[0], ID: f[1], Seq: seq, Attempt: attempt, PID: pid, At: time.UnixMicro(us), Endpoint: f[6]}, true
}

// fault is one event of the soak's fault timeline: a fault it injected, a
// consumer that died on its own, an operator's kick, or a WithID enqueued
// again after its record expired.
type fault struct {
	Kind     string    `json:"kind"`
	Target   string    `json:"target"`
	PID      int       `json:"pid,omitempty"`      // the consumer killed or stopped
	Endpoint string    `json:"endpoint,omitempty"` // the node kicked
	Count    int       `json:"count,omitempty"`    // jobs kicked
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

// Kinds of faults the soak schedules, one at a time.
const (
	faultNodeKill     = "node-kill"     // SIGKILL a binlogged beanstalkd, restart it
	faultNodePause    = "node-pause"    // SIGSTOP a beanstalkd, SIGCONT it
	faultConsumerKill = "consumer-kill" // SIGKILL a consumer subprocess, start another
	faultConsumerTerm = "consumer-term" // SIGTERM a consumer subprocess (it drains), start another at once
	faultRedisRestart = "redis-restart" // SIGKILL the AOF Redis, restart it within a second
	faultRedisOutage  = "redis-outage"  // SIGKILL the AOF Redis, keep it down longer than TTR, restart it
	faultKickDelayed  = "kick-delayed"  // kick on a node's tube without buried jobs: its delayed jobs become ready early
	faultKickBuried   = "kick-buried"   // kick a node's dead letters
)

// Other events of the timeline.
const (
	faultConsumerCrash = "consumer-crash" // a consumer exited without being told to
	// faultConsumerDie is a consumer that SIGKILLs itself right after
	// recording a completion, before its finish: the window a random kill
	// rarely hits, made certain so that the soak's tests see a double and
	// its attribution (-die-after).
	faultConsumerDie = "consumer-die"
	faultFinalKick   = "final-kick" // the drain kicks every dead letter left
	faultReenqueue   = "reenqueue"  // a WithID enqueued again once its record had surely expired
)

var faultKinds = []string{
	faultNodeKill, faultNodePause, faultConsumerKill, faultConsumerTerm,
	faultRedisRestart, faultRedisOutage, faultKickDelayed, faultKickBuried,
}

// Causes a double is attributed to; any other double is a failure.
const (
	causeInterrupted = "interrupted handler"
	causeOutage      = "redis outage longer than TTR"
)

// double is a run of a job beyond the runs it was due: its end, the end
// before it, and the cause it is attributed to with the fault that caused it.
type double struct {
	ID       string `json:"id"`
	Seq      uint64 `json:"seq"`
	Prev     event  `json:"previous_end"`
	Run      event  `json:"run"`
	Cause    string `json:"cause"`           // causeInterrupted, causeOutage, or "" when unattributed
	Fault    *fault `json:"fault,omitempty"` // the fault that caused it
	Overlap  bool   `json:"overlap"`         // the run started before the previous one ended
	Detail   string `json:"detail"`
	Attempts string `json:"attempts"`
}

func (d double) attributed() bool { return d.Cause != "" }

// timing holds the settings the attribution rules measure against.
type timing struct {
	lease    time.Duration // TTR
	shutdown time.Duration // ShutdownTimeout of the consumers
	// slack is how long before a fault a finish may still have been on its
	// way, and the clock slack of the rules.
	slack time.Duration
}

// verdict is the ledger's reading of one enqueue's runs.
type verdict struct {
	doubles []double
	kicked  int // dead letters that an operator's kick ran again, as they should
}

// judge reads the ends of one enqueue in time order. The ledger's rule: an
// enqueue is due exactly one completion (D). A job of the dead tube dies on its
// first attempt (X); a kick of the node that holds its dead letter must run it
// exactly once more, to a D. So an end following an X is expected when its run
// came from a node whose dead letters were kicked between the death and the
// run's start; every other end after the first is a double, attributed to a
// fault when one explains it:
//
//   - interrupted handler: the consumer that recorded the previous end was
//     SIGKILLed (or died) after that end and within a lease of it, before its
//     outcome could reach Redis; or it was SIGTERMed and its handler was still
//     running when Stop cancelled it (ShutdownTimeout after the signal). A
//     handler that ended before the cancel has its result stand (DESIGN.md,
//     Stop), so a SIGTERM does not explain its double.
//   - redis outage longer than TTR: the previous end came while Redis was down
//     for longer than TTR (or within slack before it went down), so its outcome
//     could not be written within the lease (issue 14, cases I and G).
func judge(k jobKey, starts, ends []event, faults []fault, tm timing) verdict {
	ends = slices.Clone(ends)
	slices.SortFunc(ends, func(a, b event) int { return a.At.Compare(b.At) })
	var v verdict
	for i := 1; i < len(ends); i++ {
		a, b := ends[i-1], ends[i]
		bStart := startOf(b, starts)
		if a.Kind == eventDead && kickedBetween(b.Endpoint, a.At, bStart, faults) {
			v.kicked++
			continue
		}
		d := double{ID: k.ID, Seq: k.Seq, Prev: a, Run: b, Overlap: bStart.Before(a.At),
			Attempts: fmt.Sprintf("attempt %d by consumer %d, then attempt %d by consumer %d %v later",
				a.Attempt, a.PID, b.Attempt, b.PID, b.At.Sub(a.At).Round(time.Millisecond))}
		d.Cause, d.Fault, d.Detail = attribute(a, bStart, faults, tm)
		v.doubles = append(v.doubles, d)
	}
	return v
}

// startOf is when the run that recorded end e started: the latest start of
// its consumer and attempt before it (a claim handed back unrun runs again
// with the same attempt), or e's own time when its start line is missing.
func startOf(e event, starts []event) time.Time {
	at := e.At
	found := false
	for _, s := range starts {
		if s.PID == e.PID && s.Attempt == e.Attempt && !s.At.After(e.At) && (!found || s.At.After(at)) {
			at, found = s.At, true
		}
	}
	return at
}

// kickedBetween reports whether the dead letters of endpoint were kicked
// after from and no later than to.
func kickedBetween(endpoint string, from, to time.Time, faults []fault) bool {
	return slices.ContainsFunc(faults, func(f fault) bool {
		return (f.Kind == faultKickBuried || f.Kind == faultFinalKick) && f.Endpoint == endpoint &&
			!f.Start.Before(from) && !f.Start.After(to)
	})
}

// attribute finds the fault that made the run after end a necessary, per
// judge's rules: the cause, the fault, and a sentence saying why.
func attribute(a event, bStart time.Time, faults []fault, tm timing) (string, *fault, string) {
	for i := range faults {
		f := &faults[i]
		switch f.Kind {
		case faultConsumerKill, faultConsumerCrash, faultConsumerDie:
			if f.PID == a.PID && !f.Start.Before(a.At) && f.Start.Sub(a.At) <= tm.lease && f.Start.Before(bStart) {
				verb := map[string]string{
					faultConsumerKill: "SIGKILLed", faultConsumerCrash: "crashed", faultConsumerDie: "SIGKILLed itself",
				}[f.Kind]
				return causeInterrupted, f, fmt.Sprintf("consumer %d %s %v after the end of attempt %d, before its outcome reached Redis",
					a.PID, verb, f.Start.Sub(a.At).Round(time.Millisecond), a.Attempt)
			}
		case faultConsumerTerm:
			cancel := f.Start.Add(tm.shutdown)
			if f.PID == a.PID && !a.At.Before(cancel) && !a.At.After(f.End) {
				return causeInterrupted, f, fmt.Sprintf("consumer %d SIGTERMed; attempt %d still ran when Stop cancelled it %v later",
					a.PID, a.Attempt, tm.shutdown)
			}
		case faultRedisOutage:
			if f.End.Sub(f.Start) > tm.lease && !a.At.Before(f.Start.Add(-tm.slack)) && !a.At.After(f.End) &&
				!bStart.Before(f.Start) {
				when := fmt.Sprintf("%v into", a.At.Sub(f.Start).Round(time.Millisecond))
				if a.At.Before(f.Start) {
					when = fmt.Sprintf("%v before", f.Start.Sub(a.At).Round(time.Millisecond))
				}
				return causeOutage, f, fmt.Sprintf("attempt %d by consumer %d ended %s a Redis outage of %v (TTR %v)",
					a.Attempt, a.PID, when, f.End.Sub(f.Start).Round(time.Millisecond), tm.lease)
			}
		}
	}
	// Unattributed: name the faults around the previous end, to start from.
	var near []string
	for _, f := range faults {
		end := f.End
		if end.Before(f.Start) {
			end = f.Start // an instant
		}
		if f.Kind != faultReenqueue && !end.Before(a.At.Add(-tm.lease)) && !f.Start.After(a.At.Add(tm.lease)) {
			near = append(near, fmt.Sprintf("%s %s at %+v", f.Kind, f.Target, f.Start.Sub(a.At).Round(time.Millisecond)))
		}
	}
	what := "ran again"
	if a.Kind == eventDead {
		what = "dead letter ran again without a kick of its node"
	}
	detail := fmt.Sprintf("UNATTRIBUTED: %s after attempt %d by consumer %d", what, a.Attempt, a.PID)
	if len(near) > 0 {
		detail += "; faults within a lease of that end: " + strings.Join(near, ", ")
	}
	return "", nil, detail
}
