package dq

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/envelope"
)

// JobState is a job's state as an Inspector shows it.
type JobState string

// The states of a job.
const (
	// StateWaiting: not due yet, or due and not yet claimed by a consumer
	// (JobInfo.Seen tells whether any consumer has met a copy).
	StateWaiting JobState = "waiting"
	// StateRunning: a consumer runs its handler (R).
	StateRunning JobState = "running"
	// StateRetrying: failed, waiting for its next attempt (W).
	StateRetrying JobState = "retrying"
	// StateDone: its handler succeeded (D).
	StateDone JobState = "done"
	// StateDead: failed past MaxRetries, or ErrSkipRetry; a dead letter is
	// kept buried (X).
	StateDead JobState = "dead"
	// StateRevoked: revoked before it ran, or its enqueue missed its quorum (V).
	StateRevoked JobState = "revoked"
)

// JobError is the last failure of a job.
type JobError struct {
	// Class is one of "error" (the handler returned an error), "panic",
	// "timeout" (Timeout passed), "lease" (its consumer neither finished nor
	// renewed: crashed, frozen or cut off), "skip" (ErrSkipRetry).
	Class string `json:"class"`
	// Message is the error's text, cut to 512 bytes.
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// CopyInfo is one copy of a job a consumer met.
type CopyInfo struct {
	Node   string `json:"node"`
	JobNum uint64 `json:"job_num"` // beanstalkd's job id on Node
	// Fate is "ran" (an attempt ran from it), "spare deleted", "revoked"
	// (deleted because the job was revoked), "dead letter" (kept buried),
	// "extra dead deleted" or "deleted".
	Fate string `json:"fate"`
}

// RunInfo is one attempt of a job.
type RunInfo struct {
	Attempt  int       `json:"attempt"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"` // zero while running or when its end was never recorded
	Consumer string    `json:"consumer"`     // the consumer's registry ID
	Node     string    `json:"node"`
	JobNum   uint64    `json:"job_num"`
	// Outcome is "ok", "fail", "dead", "yield" (handed back on Stop),
	// "unrun" (claimed but never started) or "" (running, or lapsed).
	Outcome string `json:"outcome,omitempty"`
}

// JobInfo is what an Inspector knows of one job.
type JobInfo struct {
	ID    string   `json:"id"`
	Queue string   `json:"queue"`
	State JobState `json:"state"`
	// Seen is false when Redis has no record of the job: it is known from
	// its ID only (a generated ID carries its due time), and no consumer
	// has met a copy yet, or its record expired.
	Seen        bool       `json:"seen"`
	DueAt       time.Time  `json:"due_at,omitzero"`
	Attempts    int        `json:"attempts"`
	Failures    int        `json:"failures"`
	LeaseUntil  time.Time  `json:"lease_until,omitzero"`  // running
	NextAttempt time.Time  `json:"next_attempt,omitzero"` // retrying
	Owner       string     `json:"owner,omitempty"`       // consumer ID of the latest claim
	LastError   *JobError  `json:"last_error,omitempty"`
	Copies      []CopyInfo `json:"copies"`
	Runs        []RunInfo  `json:"runs"`
	// WithID is true for a job enqueued with a caller-chosen ID.
	WithID bool `json:"with_id"`
	// Expires is when Redis drops the record (zero when there is none).
	Expires time.Time `json:"expires,omitzero"`
	// Verdict sums the job up in one plain sentence, e.g. "ran once on
	// consumer host/123/ab12; 2 spare copies deleted".
	Verdict string `json:"verdict"`
	// Body is the job's body as its handler gets it, read from one copy
	// still on a node that the record names (the dead letter, a copy an
	// attempt ran from, or another copy met); nil when no such copy is
	// reachable: no consumer has met one yet, or every copy is gone.
	Body []byte `json:"body,omitempty"`
}

// Job tells what is known of the job with this ID. An ID with no record is
// shown as waiting (not seen) when it carries a due time, else it is
// ErrJobNotFound. It reads the job's record in one round trip, no script.
func (in *Inspector) Job(ctx context.Context, id string) (JobInfo, error) {
	if err := envelope.ValidID(id); err != nil {
		return JobInfo{}, fmt.Errorf("%w: %q: %v", ErrBadID, id, err)
	}
	rec, ok, err := in.store.Record(ctx, in.tube, id)
	if err != nil {
		return JobInfo{}, fmt.Errorf("dq: reading job %s: %w", id, err)
	}
	info := JobInfo{ID: id, Queue: in.tube, Copies: []CopyInfo{}, Runs: []RunInfo{}}
	dueMs, generated := envelope.IDDue(id)
	if !ok {
		if !generated {
			return JobInfo{}, fmt.Errorf("%w: %s", ErrJobNotFound, id)
		}
		info.State = StateWaiting
		info.DueAt = time.UnixMilli(dueMs)
		info.Verdict = unseenVerdict(info.DueAt)
		return info, nil
	}
	info.Seen = true
	info.WithID = rec.Writer != ""
	if rec.DueMs > 0 {
		dueMs = rec.DueMs
	}
	if dueMs > 0 {
		info.DueAt = time.UnixMilli(dueMs)
	}
	info.Attempts, info.Failures, info.Owner = rec.Attempts, rec.Failures, rec.By
	switch rec.State {
	case "P":
		info.State = StateWaiting
	case "R":
		info.State = StateRunning
		info.LeaseUntil = msTime(rec.LeaseMs)
	case "W":
		info.State = StateRetrying
		info.NextAttempt = msTime(rec.NotBefore)
	case "D":
		info.State = StateDone
	case "X":
		info.State = StateDead
	case "V":
		info.State = StateRevoked
	default:
		info.State = JobState(rec.State) // written by a newer version
	}
	if rec.LastError.Class != "" {
		info.LastError = &JobError{Class: rec.LastError.Class, Message: rec.LastError.Message, At: msTime(rec.ErrorAtMs)}
	}
	for _, c := range rec.Copies {
		node, num, err := claim.SplitRef(c.Ref)
		if err != nil {
			continue
		}
		info.Copies = append(info.Copies, CopyInfo{Node: node, JobNum: num, Fate: fateWords[c.Fate]})
	}
	for _, a := range rec.Runs {
		node, num, _ := claim.SplitRef(a.Ref)
		info.Runs = append(info.Runs, RunInfo{Attempt: a.N, Start: msTime(a.StartMs), End: msTime(a.EndMs),
			Consumer: a.By, Node: node, JobNum: num, Outcome: a.Outcome})
	}
	if rec.TTLMs > 0 {
		info.Expires = time.Now().Add(time.Duration(rec.TTLMs) * time.Millisecond).Truncate(time.Millisecond)
	}
	info.Verdict = verdict(&info, rec)
	info.Body = in.jobBody(ctx, id, rec)
	return info, nil
}

// maxBodyPeeks bounds the copies Job tries for a job's body.
const maxBodyPeeks = 4

// jobBody reads a job's body from a live copy its record names: its dead
// letter first, then the copies its attempts ran from (newest first), then
// the other copies met; never one recorded deleted. A copy counts when
// stats-job finds it in this queue's tube and its envelope carries this
// job's ID (a node restarted without a binlog numbers jobs anew). nil when
// none answers.
func (in *Inspector) jobBody(ctx context.Context, id string, rec claim.Record) []byte {
	refs := []string{rec.DeadRef}
	for i := len(rec.Runs) - 1; i >= 0; i-- {
		refs = append(refs, rec.Runs[i].Ref)
	}
	gone := map[string]bool{}
	for _, c := range rec.Copies {
		switch c.Fate {
		case claim.FateSpare, claim.FateRevoked, claim.FateExtraDead, claim.FateDeleted:
			gone[c.Ref] = true
		default:
			refs = append(refs, c.Ref)
		}
	}
	nodes := in.nodesByKey()
	tried := map[string]bool{}
	for _, ref := range refs {
		if ref == "" || gone[ref] || tried[ref] || len(tried) == maxBodyPeeks || ctx.Err() != nil {
			continue
		}
		tried[ref] = true
		nd, num, err := claim.SplitRef(ref)
		n := nodes[nd]
		if err != nil || n == nil {
			continue
		}
		if st, err := n.JobStat(ctx, num); err != nil || st.Tube != n.Tube() {
			continue
		}
		raw, err := n.Peek(ctx, num)
		if err != nil {
			continue
		}
		env, err := envelope.Decode(raw, in.conf.signingKeys(), envelope.Accept{Legacy: true, Unsigned: true})
		if err == nil && env.ID == id {
			return bytes.Clone(env.Body)
		}
	}
	return nil
}

// fateWords are the CopyInfo.Fate words of the record's fates.
var fateWords = map[string]string{
	claim.FateRan:        "ran",
	claim.FateSpare:      "spare deleted",
	claim.FateRevoked:    "revoked",
	claim.FateDeadLetter: "dead letter",
	claim.FateExtraDead:  "extra dead deleted",
	claim.FateDeleted:    "deleted",
}

// msTime is a record's time in ms; zero stays the zero time.
func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// unseenVerdict tells a job known from its ID only.
func unseenVerdict(due time.Time) string {
	if due.After(time.Now()) {
		return "waiting, due at " + due.UTC().Format(time.RFC3339) + ", not seen by any consumer yet"
	}
	return "due at " + due.UTC().Format(time.RFC3339) + " and not seen by any consumer: not claimed yet, " +
		"or finished and its record expired"
}

// verdict sums a job up in one sentence.
func verdict(info *JobInfo, rec claim.Record) string {
	var s string
	due := info.DueAt.UTC().Format(time.RFC3339)
	switch info.State {
	case StateWaiting:
		s = "waiting, due at " + due + ", not claimed by any consumer yet"
		if info.Attempts > 0 {
			s = "waiting, due at " + due + ", to run again"
		}
	case StateRunning:
		s = fmt.Sprintf("running attempt %d on consumer %s (lease until %s)", info.Attempts, info.Owner,
			info.LeaseUntil.UTC().Format(time.RFC3339))
	case StateRetrying:
		s = retryVerdict(info)
	case StateDone:
		s = ranVerdict(info)
	case StateDead:
		s = "dead after " + times(info.Attempts, "attempt")
		if info.LastError != nil {
			s += " (last error: " + errorWords(info.LastError) + ")"
		}
		if ref := deadLetterRef(info, rec); ref != "" {
			s += "; dead letter on " + ref
		} else {
			s += "; no dead letter recorded yet"
		}
	case StateRevoked:
		switch {
		case rec.Why == "abort":
			s = "never ran: its enqueue missed the write quorum and was aborted"
		case info.Attempts == 0:
			s = "revoked before it ran"
		default:
			s = "revoked between retries, after " + times(info.Attempts, "attempt")
		}
	default:
		s = "in state " + string(info.State) + ", unknown to this version"
	}
	return s + copiesSummary(info)
}

// ranVerdict tells a done job: how often it ran, where, and what went wrong
// on the way.
func ranVerdict(info *JobInfo) string {
	var notes []string
	for k, r := range info.Runs {
		switch {
		case r.Outcome == "fail":
			notes = append(notes, fmt.Sprintf("attempt %d failed on consumer %s", r.Attempt, r.Consumer))
		case r.Outcome == "yield":
			notes = append(notes, fmt.Sprintf("attempt %d handed back on consumer %s", r.Attempt, r.Consumer))
		case r.Outcome == "" && k < len(info.Runs)-1:
			notes = append(notes, fmt.Sprintf("attempt %d lease lapsed on consumer %s", r.Attempt, r.Consumer))
		}
	}
	if info.Attempts <= 1 {
		return "ran once on consumer " + info.Owner
	}
	s := "ran " + times(info.Attempts, "time")
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s + ", last on consumer " + info.Owner
}

// retryVerdict tells a job waiting for its next attempt: after a failure,
// or handed back unfinished (a consumer's Stop), when it runs at once.
func retryVerdict(info *JobInfo) string {
	next := "next attempt at " + info.NextAttempt.UTC().Format(time.RFC3339)
	if n := len(info.Runs); n > 0 {
		if last := info.Runs[n-1]; last.Outcome == "yield" || last.Outcome == "unrun" {
			return fmt.Sprintf("retrying: attempt %d was handed back unfinished by consumer %s; %s", last.Attempt,
				last.Consumer, next)
		}
	}
	s := fmt.Sprintf("retrying: attempt %d failed", info.Attempts)
	if info.Failures > 1 {
		s = fmt.Sprintf("retrying: %d of %s failed", info.Failures, times(info.Attempts, "attempt"))
	}
	if info.LastError != nil {
		s += " (last error: " + errorWords(info.LastError) + ")"
	}
	return s + "; " + next
}

// deadLetterRef names the dead letter's copy: node and job number.
func deadLetterRef(info *JobInfo, rec claim.Record) string {
	for _, c := range info.Copies {
		if c.Fate == "dead letter" {
			return fmt.Sprintf("%s job %d", c.Node, c.JobNum)
		}
	}
	if node, num, err := claim.SplitRef(rec.DeadRef); err == nil {
		return fmt.Sprintf("%s job %d", node, num)
	}
	return ""
}

// errorWords is a last error in a verdict: its class and the start of its
// message.
func errorWords(e *JobError) string {
	const most = 80
	msg := e.Message
	if len(msg) > most {
		k := most
		for k > 0 && !utf8.RuneStart(msg[k]) {
			k--
		}
		msg = msg[:k] + "..."
	}
	if msg == "" {
		return e.Class
	}
	return e.Class + ": " + msg
}

// copiesSummary counts the copies deleted, by fate: "; 2 spare copies
// deleted".
func copiesSummary(info *JobInfo) string {
	var spare, revoked, extra, other int
	for _, c := range info.Copies {
		switch c.Fate {
		case "spare deleted":
			spare++
		case "revoked":
			revoked++
		case "extra dead deleted":
			extra++
		case "deleted":
			other++
		}
	}
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s deleted", n, plural(n, what)))
		}
	}
	add(spare, "spare copy")
	add(revoked, "revoked copy")
	add(extra, "extra dead copy")
	add(other, "other copy")
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// times is "once" or "N <what>s" ("2 attempts").
func times(n int, what string) string {
	if n == 1 && what == "time" {
		return "once"
	}
	return fmt.Sprintf("%d %s", n, plural(n, what))
}

func plural(n int, what string) string {
	if n == 1 {
		return what
	}
	if strings.HasSuffix(what, "copy") {
		return strings.TrimSuffix(what, "y") + "ies"
	}
	return what + "s"
}

// Revoke revokes a job as Producer.Revoke does, and writes the action to the
// audit stream first. An ID no job can have is refused before anything is
// written.
func (in *Inspector) Revoke(ctx context.Context, id string) error {
	if err := envelope.ValidID(id); err != nil && !strings.Contains(id, "/") { // '/': a go-queue ID
		return fmt.Errorf("%w: %q: %v", ErrBadID, id, err)
	}
	if err := in.Audit(ctx, "revoke "+id); err != nil {
		return err
	}
	p, err := in.producer()
	if err != nil {
		return err
	}
	return p.RevokeCtx(ctx, id)
}

// Enqueue writes a job due at at, as Producer.AtCtx does (WithID makes it
// idempotent), and writes the action to the audit stream first.
func (in *Inspector) Enqueue(ctx context.Context, body []byte, at time.Time, opts ...JobOption) (string, error) {
	p, err := in.enqueuer(ctx, "at "+at.UTC().Format(time.RFC3339Nano), opts)
	if err != nil {
		return "", err
	}
	return p.AtCtx(ctx, body, at, opts...)
}

// EnqueueIn writes a job due after delay, as Producer.DelayCtx does (on
// Redis time, so 0 is due now), and writes the action to the audit stream.
func (in *Inspector) EnqueueIn(ctx context.Context, body []byte, delay time.Duration, opts ...JobOption) (string,
	error) {
	p, err := in.enqueuer(ctx, "in "+delay.String(), opts)
	if err != nil {
		return "", err
	}
	return p.DelayCtx(ctx, body, delay, opts...)
}

// enqueuer checks a WithID ID, audits the enqueue, and returns the producer
// that writes it.
func (in *Inspector) enqueuer(ctx context.Context, when string, opts []JobOption) (Producer, error) {
	var o jobOptions
	for _, opt := range opts {
		opt(&o)
	}
	id := o.id
	if id == "" {
		id = "new"
	} else if err := envelope.ValidID(id); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadID, id, err)
	}
	if err := in.Audit(ctx, "enqueue "+id+" "+when); err != nil {
		return nil, err
	}
	return in.producer()
}
