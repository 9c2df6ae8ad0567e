package dq

import (
	"context"
	"time"
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
}

// Job tells what is known of the job with this ID. An ID with no record is
// shown as waiting (not seen) when it carries a due time, else it is
// ErrJobNotFound.
func (in *Inspector) Job(ctx context.Context, id string) (JobInfo, error) {
	return JobInfo{}, errUnbuilt
}

// Revoke revokes a job as Producer.Revoke does, and writes the action to the
// audit stream.
func (in *Inspector) Revoke(ctx context.Context, id string) error {
	return errUnbuilt
}

// Enqueue writes a job due at at, as Producer.AtCtx does (WithID makes it
// idempotent), and writes the action to the audit stream.
func (in *Inspector) Enqueue(ctx context.Context, body []byte, at time.Time, opts ...JobOption) (string, error) {
	return "", errUnbuilt
}
