package dq

import (
	"context"
	"io"
	"time"
)

// DeadLetter is one entry of the queue's dead-letter index: a job whose last
// copy is kept buried.
type DeadLetter struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"` // when it was buried
	Attempts int       `json:"attempts"`
	Error    JobError  `json:"error"`
	Node     string    `json:"node"`    // the node holding the buried copy
	JobNum   uint64    `json:"job_num"` // its beanstalkd job id there
}

// DeadFilter selects dead letters: buried at or after Since (zero: any),
// whose ID or error message contains Match ("" any), at most Limit (0: no
// limit) in burial order.
type DeadFilter struct {
	Since time.Time
	Match string
	Limit int
}

// DeadSelect names the dead letters a bulk action works on: the IDs given,
// or, when IDs is empty, every entry Filter selects.
type DeadSelect struct {
	IDs    []string
	Filter DeadFilter
	// DryRun counts what would be done and changes nothing.
	DryRun bool
}

// Progress is told, after each batch of a bulk action, how many of the
// selected entries are done out of the total counted first.
type Progress func(done, total int)

// BulkResult is the outcome of a bulk action on dead letters.
type BulkResult struct {
	Matched int `json:"matched"` // entries selected (counted first)
	Done    int `json:"done"`    // retried, deleted or dropped
	// Skipped are entries left alone, each with why (copy not buried any
	// more, node unreachable, not in the index, ...).
	Skipped []BulkSkip `json:"skipped,omitempty"`
}

// BulkSkip is one entry a bulk action left alone.
type BulkSkip struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// DeadLetters lists the dead-letter index in burial order.
func (in *Inspector) DeadLetters(ctx context.Context, f DeadFilter) ([]DeadLetter, error) {
	return nil, errUnbuilt
}

// CountDead counts the entries f selects (Limit ignored).
func (in *Inspector) CountDead(ctx context.Context, f DeadFilter) (int, error) {
	return 0, errUnbuilt
}

// RetryDead kicks the selected dead letters in bounded batches: each runs
// once more, with a fresh set of retries and a higher attempt number, and
// leaves the index.
func (in *Inspector) RetryDead(ctx context.Context, sel DeadSelect, p Progress) (BulkResult, error) {
	return BulkResult{}, errUnbuilt
}

// DeleteDead deletes the selected dead letters' buried copies in bounded
// batches and drops them from the index.
func (in *Inspector) DeleteDead(ctx context.Context, sel DeadSelect, p Progress) (BulkResult, error) {
	return BulkResult{}, errUnbuilt
}

// ReconcileDead drops index entries whose job is not dead any more (kicked
// or deleted by hand, or a bury that never happened).
func (in *Inspector) ReconcileDead(ctx context.Context, dryRun bool, p Progress) (BulkResult, error) {
	return BulkResult{}, errUnbuilt
}

// ExportDead writes the entries f selects as JSON lines, one DeadLetter
// each.
func (in *Inspector) ExportDead(ctx context.Context, w io.Writer, f DeadFilter) (int, error) {
	return 0, errUnbuilt
}
