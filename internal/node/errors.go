package node

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/beanstalkd/go-beanstalk"
)

// Errors callers match with errors.Is. ErrNotFound, ErrTimeout and
// ErrDeadlineSoon also match go-beanstalk's sentinels of the same replies.
var (
	// ErrConnGone reports that the connection a copy or put belongs to was
	// closed or replaced, so nothing was sent: beanstalkd ids name jobs per
	// server life, and a remembered id on another connection may name another
	// job (or a job reserved by someone else).
	ErrConnGone = errors.New("node: connection gone")
	// ErrClosed reports a call on a closed Node or Reserver.
	ErrClosed = errors.New("node: closed")
	// ErrBackoff reports that the node failed to dial or timed out a moment
	// ago and is skipped until its back-off ends; nothing was sent.
	ErrBackoff = errors.New("node: in back-off after a failure")
	// ErrNotFound reports beanstalkd's NOT_FOUND: no such job, or (for
	// delete, release, touch, bury) a job not reserved by this connection.
	ErrNotFound = fmt.Errorf("node: %w", beanstalk.ErrNotFound)
	// ErrTimeout is Reserve's answer when no job became ready in time.
	ErrTimeout = fmt.Errorf("node: reserve: %w", beanstalk.ErrTimeout)
	// ErrDeadlineSoon is Reserve's answer when a job reserved on the same
	// connection is within a second of its TTR: touch or release it first.
	ErrDeadlineSoon = fmt.Errorf("node: reserve: %w", beanstalk.ErrDeadline)
)

// errNegative reports a negative delay, TTR or timeout, refused before
// anything is sent.
var errNegative = errors.New("negative duration")

// errNoTube reports a stats-job reply without a tube.
var errNoTube = errors.New("stats-job reply names no tube")

// opError is every failure of a request to a node. uncertain says whether the
// request may still have taken effect: its bytes (or some of them) left this
// process and no reply came back.
type opError struct {
	op        string
	endpoint  string
	uncertain bool
	err       error
}

func (e *opError) Error() string {
	s := "node " + e.endpoint + ": " + e.op + ": " + e.err.Error()
	if e.uncertain {
		s += " (outcome unknown)"
	}
	return s
}

func (e *opError) Unwrap() error { return e.err }

// IsDefinite reports whether err is a failure that surely did not take
// effect: nothing was sent, or the server refused the request.
func IsDefinite(err error) bool {
	var oe *opError
	if errors.As(err, &oe) {
		return !oe.uncertain
	}
	return errors.Is(err, ErrBackoff) || errors.Is(err, ErrClosed) || errors.Is(err, ErrConnGone)
}

// IsUncertain reports whether err is a failure whose request may still take
// effect: it was written (or partly written) and no reply came, e.g. a put
// to a SIGSTOPped node, which lands when the node wakes.
func IsUncertain(err error) bool {
	var oe *opError
	return errors.As(err, &oe) && oe.uncertain
}

// ioError is what deadlineConn returns for a failed Read or Write. sent is
// the number of bytes of the failed Write that still went out.
type ioError struct {
	write bool
	sent  int
	err   error
}

func (e *ioError) Error() string {
	if e.write {
		return "write: " + e.err.Error()
	}
	return "read: " + e.err.Error()
}

func (e *ioError) Unwrap() error { return e.err }

// singleWrite is the largest request go-beanstalk hands to the connection in
// one Write: its textproto writer buffers 4096 bytes and flushes once per
// request, and the command line plus a `use` line take at most ~300 bytes.
// A request no larger that failed with 0 bytes sent surely sent nothing.
const singleWrite = 4096 - 300

// verdict is how a failed request is reported and what it does to its
// connection.
type verdict struct {
	err       error // what the caller gets, unwrapped from go-beanstalk's ConnError
	uncertain bool  // the request may still take effect
	broken    bool  // the reply stream cannot be trusted: close the connection
	timeout   bool  // a deadline passed: the node hangs, skip it for a while
}

// judge classifies an error from a go-beanstalk call whose request was size
// bytes of body (0 for requests without one).
func judge(err error, size int) verdict {
	inner := err
	var ce beanstalk.ConnError
	if errors.As(err, &ce) {
		inner = ce.Err
	}
	var ie *ioError
	if errors.As(inner, &ie) {
		// go-beanstalk's writer keeps the first write error and hands it to
		// every later request on the connection without sending them; those
		// then see that first request's count. Counting them uncertain too
		// errs on the safe side, and only a Write that itself failed does it:
		// after a read failure, later Writes fail afresh with 0 bytes.
		definite := ie.write && ie.sent == 0 && size <= singleWrite
		return verdict{err: inner, uncertain: !definite, broken: true, timeout: errors.Is(ie.err, os.ErrDeadlineExceeded)}
	}
	switch inner {
	case beanstalk.ErrNotFound:
		return verdict{err: ErrNotFound}
	case beanstalk.ErrJobTooBig, beanstalk.ErrDraining, beanstalk.ErrOOM, beanstalk.ErrBuried,
		beanstalk.ErrTimeout, beanstalk.ErrDeadline, beanstalk.ErrNotIgnored:
		return verdict{err: inner}
	case beanstalk.ErrBadFormat, beanstalk.ErrUnknown, beanstalk.ErrNoCRLF, beanstalk.ErrInternal:
		// Refused, but the server misread our framing (or broke): later
		// replies on this connection may be out of step with their requests.
		return verdict{err: inner, broken: true}
	}
	// An unexpected reply or a malformed one: whatever the server did with
	// the request is unknown, and the stream may be out of step.
	return verdict{err: inner, uncertain: true, broken: true}
}

// tubeChars are the characters beanstalkd accepts in a tube name (its own
// list: go-beanstalk's also lets a backslash through).
const tubeChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+/;.$_()"

// MaxTubeNameLen is the longest tube name, in bytes, that works end to end.
// beanstalkd takes 200 (MAX_TUBE_NAME_LEN 201, counting the NUL; its command
// line buffer holds the longest command with such a name), but go-beanstalk
// refuses a name of 200 bytes or more before sending it.
const MaxTubeNameLen = 199

// CheckTube reports why beanstalkd or go-beanstalk would refuse name as a
// tube name, or nil. Configs are checked with it before any connection sees
// the name.
func CheckTube(name string) error { return checkTube(name) }

// checkTube applies beanstalkd's tube name rules. go-beanstalk leaves a
// connection waiting forever after a name it rejects, and beanstalkd answers
// BAD_FORMAT to a name starting with '-', which would shift every later reply
// onto the wrong request: refuse both before any connection sees them.
func checkTube(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("tube name is empty")
	case len(name) > MaxTubeNameLen:
		return fmt.Errorf("tube name %.20q... is longer than %d bytes", name, MaxTubeNameLen)
	case name[0] == '-':
		return fmt.Errorf("tube name %q starts with '-'", name)
	}
	for _, r := range name {
		if !strings.ContainsRune(tubeChars, r) {
			return fmt.Errorf("tube name %q has character %q (allowed: letters, digits and %s)", name, r, tubeChars[62:])
		}
	}
	return nil
}
