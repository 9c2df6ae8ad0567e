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
	Kind    string    `json:"kind"` // S or D
	ID      string    `json:"id"`
	Seq     uint64    `json:"seq"`
	Attempt int       `json:"attempt"`
	PID     int       `json:"pid"`
	At      time.Time `json:"at"`
}

// ledger reads the consumers' record files as they grow.
type ledger struct {
	dir     string
	offsets map[string]int64
	partial map[string][]byte
	starts  map[string][]event // by job ID
	done    map[string][]event // by job ID
	bad     int                // lines that did not parse
}

func newLedger(dir string) *ledger {
	return &ledger{
		dir: dir, offsets: map[string]int64{}, partial: map[string][]byte{},
		starts: map[string][]event{}, done: map[string][]event{},
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
		if e.Kind == "D" {
			l.done[e.ID] = append(l.done[e.ID], e)
		} else {
			l.starts[e.ID] = append(l.starts[e.ID], e)
		}
	}
	return nil
}

// interrupted counts handler runs that started and recorded no completion.
func (l *ledger) interrupted() int {
	n := 0
	for id, starts := range l.starts {
		for _, s := range starts {
			if !slices.ContainsFunc(l.done[id], func(d event) bool { return d.PID == s.PID && d.Attempt == s.Attempt }) {
				n++
			}
		}
	}
	return n
}

func parseEvent(line string) (event, bool) {
	f := strings.Fields(line)
	if len(f) != 6 || (f[0] != "S" && f[0] != "D") {
		return event{}, false
	}
	seq, err1 := strconv.ParseUint(f[2], 10, 64)
	attempt, err2 := strconv.Atoi(f[3])
	pid, err3 := strconv.Atoi(f[4])
	us, err4 := strconv.ParseInt(f[5], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return event{}, false
	}
	return event{Kind: f[0], ID: f[1], Seq: seq, Attempt: attempt, PID: pid, At: time.UnixMicro(us)}, true
}

// fault is one fault the soak injected, or a consumer that died on its own.
type fault struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	PID    int       `json:"pid,omitempty"` // the consumer killed
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// Kinds of faults.
const (
	faultNodeKill      = "node-kill"      // SIGKILL a binlogged beanstalkd, restart it
	faultNodePause     = "node-pause"     // SIGSTOP a beanstalkd, SIGCONT it
	faultConsumerKill  = "consumer-kill"  // SIGKILL a consumer subprocess, start another
	faultRedisRestart  = "redis-restart"  // SIGKILL the AOF Redis, restart it
	faultConsumerCrash = "consumer-crash" // a consumer exited without being told to
	// faultConsumerDie is a consumer that SIGKILLs itself right after
	// recording a completion, before its finish: the window a random kill
	// rarely hits, made certain so that the soak's tests see a double and
	// its explanation (-die-after).
	faultConsumerDie = "consumer-die"
)

var faultKinds = []string{faultNodeKill, faultNodePause, faultConsumerKill, faultRedisRestart}

// double is a job completed more than once, with what explains it.
type double struct {
	ID        string  `json:"id"`
	Runs      []event `json:"runs"`
	Cause     string  `json:"cause"`
	Explained bool    `json:"explained"`
}

// explainDouble finds, for each completion after the first, the fault that
// interrupted the run before it between its work being done and its finish
// reaching Redis. lease is the soak's TTR: a finish lost longer than that
// ago would have made the job run again anyway only through a lapsed lease.
func explainDouble(id string, runs []event, starts []event, faults []fault, lease time.Duration) double {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b event) int { return a.At.Compare(b.At) })
	d := double{ID: id, Runs: runs, Explained: true}
	var causes []string
	for i := 1; i < len(runs); i++ {
		cause, ok := explainPair(runs[i-1], runs[i], starts, faults, lease)
		causes = append(causes, cause)
		d.Explained = d.Explained && ok
	}
	d.Cause = strings.Join(causes, "; ")
	return d
}

func explainPair(a, b event, starts []event, faults []fault, lease time.Duration) (string, bool) {
	rerun := fmt.Sprintf("run again by consumer %d (attempt %d) %v later", b.PID, b.Attempt,
		b.At.Sub(a.At).Round(time.Millisecond))
	for _, f := range faults {
		if (f.Kind == faultConsumerKill || f.Kind == faultConsumerCrash || f.Kind == faultConsumerDie) &&
			f.PID == a.PID && !f.Start.Before(a.At) && f.Start.Before(b.At) && f.Start.Sub(a.At) <= lease {
			verb := map[string]string{
				faultConsumerKill: "SIGKILLed", faultConsumerCrash: "crashed", faultConsumerDie: "SIGKILLed itself",
			}[f.Kind]
			return fmt.Sprintf("consumer %d %s %v after completing attempt %d, before its finish reached Redis; %s",
				a.PID, verb, f.Start.Sub(a.At).Round(time.Millisecond), a.Attempt, rerun), true
		}
	}
	for _, f := range faults {
		if f.Kind == faultRedisRestart && !f.End.Before(a.At.Add(-time.Second)) && !f.Start.After(a.At.Add(lease)) {
			return fmt.Sprintf("Redis restarted %v from the completion of attempt %d by consumer %d, its finish was lost "+
				"and the lease lapsed; %s", f.Start.Sub(a.At).Round(time.Millisecond), a.Attempt, a.PID, rerun), true
		}
	}
	overlap := ""
	for _, s := range starts {
		if s.PID == b.PID && s.Attempt == b.Attempt && s.At.Before(a.At) {
			overlap = " (the runs overlapped)"
		}
	}
	return fmt.Sprintf("UNEXPLAINED: attempt %d completed by consumer %d, %s%s", a.Attempt, a.PID, rerun, overlap), false
}
