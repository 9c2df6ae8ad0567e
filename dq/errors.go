package dq

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The errors of package dq live in this file: the sentinel values and the
// error types users match with errors.Is and errors.As, whichever part of the
// package returns them. Errors wrap one of these with %w and add context, so a
// match works through every layer.

var (
	// ErrBadConfig is matched by every error that rejects a DqConf; the
	// *ConfigError behind it names the field.
	ErrBadConfig = errors.New("dq: bad config")
)

// ConfigError reports a DqConf field whose value is not acceptable. It
// matches ErrBadConfig with errors.Is.
type ConfigError struct {
	// Field is the path of the field, as in Beanstalks[1].Tube.
	Field string
	// Value is the value that was rejected, after defaults were applied.
	Value any
	// Reason says what is wrong with Value.
	Reason string
}

// Error returns the message, naming the field and the rejected value.
func (e *ConfigError) Error() string {
	value := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		value = strconv.Quote(s)
	}
	return ErrBadConfig.Error() + ": " + e.Field + " = " + value + ": " + e.Reason
}

// Is reports whether target is ErrBadConfig, so that callers need not know the
// error's type to recognise a configuration problem.
func (e *ConfigError) Is(target error) bool {
	return target == ErrBadConfig
}

func badConfig(field string, value any, reason string) error {
	return &ConfigError{Field: field, Value: value, Reason: reason}
}

// Errors of enqueueing and revoking jobs.
var (
	// ErrTimeBeforeNow is returned by At for a time in the past (as go-queue's dq).
	ErrTimeBeforeNow = errors.New("dq: can't schedule task to past time")
	// ErrNegativeDelay is returned by Delay for a negative delay.
	ErrNegativeDelay = errors.New("dq: negative delay")
	// ErrNoRedisTime is returned by an enqueue of a producer that has not
	// read Redis time yet (Redis was down since it started) and cannot read
	// it now: due times are on Redis time, and the local clock is not
	// trusted to stand in for it.
	ErrNoRedisTime = errors.New("dq: Redis time unknown: cannot compute the due time")
	// ErrJobTooBig is returned when the body and its envelope exceed MaxJobSize.
	ErrJobTooBig = errors.New("dq: job too big")
	// ErrBadID is returned for a WithID or Revoke ID that cannot be a job ID.
	ErrBadID = errors.New("dq: bad job id")
	// ErrQuorum is matched by a *QuorumError: fewer than MinWrites copies were acknowledged.
	// The job never runs.
	ErrQuorum = errors.New("dq: write quorum not reached")
	// ErrMaybeEnqueued is returned by an enqueue that missed its quorum and
	// could not make sure the job never runs: Redis did not take the abort,
	// and a copy written could not be deleted (a consumer had it already) or
	// a put may still land. The job may run once; enqueue it again only with
	// the same WithID.
	ErrMaybeEnqueued = errors.New("dq: enqueue failed, but the job may run")
	// ErrClosed is returned by a Producer or Consumer used after Close/Stop.
	ErrClosed = errors.New("dq: closed")
	// ErrRevoked is returned when enqueueing a WithID job whose ID was revoked.
	ErrRevoked = errors.New("dq: job revoked")
	// ErrRunning is returned by Revoke for a job whose handler is running.
	ErrRunning = errors.New("dq: job is running")
	// ErrDone is returned by Revoke for a job that already completed.
	ErrDone = errors.New("dq: job already done")
	// ErrDead is returned by Revoke for a job that ended in the dead letter.
	ErrDead = errors.New("dq: job is dead")
	// ErrMaybeDone is returned by Revoke when no record of the job is left and
	// its due time has passed: it is revoked if it had not run, but it may
	// have run already.
	ErrMaybeDone = errors.New("dq: job revoked if it had not run (no record left; it may have run)")
)

// NodeError is one node's failure during an enqueue. errors.As finds it in a
// QuorumError, and errors.Is sees through it to Err.
type NodeError struct {
	// Endpoint is the node's host:port as configured.
	Endpoint string
	// Err is why the put failed there: a dial or I/O error, a timeout, or the
	// node's error reply.
	Err error
}

// Error names the node and its failure.
func (e NodeError) Error() string { return e.Endpoint + ": " + fmt.Sprint(e.Err) }

// Unwrap returns the node's own failure.
func (e NodeError) Unwrap() error { return e.Err }

// QuorumError reports an enqueue that reached fewer than MinWrites nodes. The
// copies that were written have been removed and the job will not run.
// errors.Is(err, ErrQuorum) holds, and errors.Is and errors.As also reach
// every node's failure (a NodeError each).
type QuorumError struct {
	// ID is the job's ID.
	ID string
	// Acked is how many nodes acknowledged a copy.
	Acked int
	// Needed is MinWrites.
	Needed int
	// Nodes are the failed puts, one per node tried.
	Nodes []NodeError
}

// Error lists the failed nodes and why.
func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: job %s: %d of %d acknowledged", ErrQuorum, e.ID, e.Acked, e.Needed)
	for i, n := range e.Nodes {
		if i == 0 {
			b.WriteString("; failed: ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(n.Error())
	}
	return b.String()
}

// Unwrap returns every node's failure, each a NodeError.
func (e *QuorumError) Unwrap() []error {
	errs := make([]error, len(e.Nodes))
	for i, n := range e.Nodes {
		errs[i] = n
	}
	return errs
}

// Is makes errors.Is(err, ErrQuorum) hold.
func (e *QuorumError) Is(target error) bool { return target == ErrQuorum }
