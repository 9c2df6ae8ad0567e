package claim

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is what a claim script tells its caller to do.
type Kind uint8

// The answers of the claim scripts. Each script gives only some of them (see
// its method); Reply.Ms and Reply.Attempt carry the numbers some need.
const (
	Run       Kind = iota + 1 // the handler may run; Reply.Attempt is its attempt number
	Early                     // not due yet: Reply.Ms until it is
	Spare                     // another claim holds or awaits the job: hold or release this copy for Reply.Ms
	Delete                    // delete this copy (job done, revoked, or an extra dead copy)
	Bury                      // bury this copy (dead letter)
	Release                   // finish (fail or yield): release this copy with delay Reply.Ms
	OK                        // extend, gone, note or confirm done
	Lost                      // extend: the claim is not ours any more
	Keep                      // buried: this copy is the job's dead letter
	Extra                     // buried: another copy is the dead letter; delete this one
	Fresh                     // reserve: the ID is yours, put it now (not "New": that is the constructor)
	Busy                      // reserve: another writer is putting it; retry in Reply.Ms
	Dup                       // reserve: already enqueued
	Aborted                   // abort: the job will never run
	Started                   // abort: a consumer already has it
	Revoked                   // reserve, confirm: the ID was revoked; revoke: now revoked
	Running                   // revoke: a consumer runs it now
	Done                      // revoke: it ran to completion
	Dead                      // revoke: it failed for good (dead letter)
	MaybeDone                 // revoke: no record; revoked if it had not run. confirm: no record; the enqueue stands
	Taken                     // abort, confirm: another writer's enqueue of the ID stands
	Other                     // abort, confirm: another writer holds the ID unconfirmed (confirm: or nobody does)
)

var kindNames = [...]string{
	Run: "Run", Early: "Early", Spare: "Spare", Delete: "Delete", Bury: "Bury", Release: "Release",
	OK: "OK", Lost: "Lost", Keep: "Keep", Extra: "Extra", Fresh: "Fresh", Busy: "Busy", Dup: "Dup",
	Aborted: "Aborted", Started: "Started", Revoked: "Revoked", Running: "Running", Done: "Done",
	Dead: "Dead", MaybeDone: "MaybeDone", Taken: "Taken", Other: "Other",
}

// wireKinds maps the scripts' words (the names in upper case) to kinds.
var wireKinds = func() map[string]Kind {
	m := make(map[string]Kind, len(kindNames))
	for k, name := range kindNames {
		if name != "" {
			m[strings.ToUpper(name)] = Kind(k)
		}
	}
	return m
}()

// String returns the kind's name, e.g. "Run".
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Reply is a script's answer.
type Reply struct {
	Kind    Kind
	Attempt int   // Run: the attempt this claim starts, from 1
	Ms      int64 // Early, Spare, Release, Busy: milliseconds of Redis time
	// Own is set by Finish when the answer is about the caller's own claim:
	// its outcome was recorded, now or by an earlier send of the same
	// finish. Unset, the job is another claim's (its lease lapsed and was
	// taken over) and the answer is what Claim would route: a Delete then
	// does not mean that this run's outcome stands.
	Own bool
}

// Revoked reports a Delete answered because the job was revoked (rather than
// done, or an extra dead letter).
func (r Reply) Revoked() bool { return r.Kind == Delete && r.Ms == 1 }

// Outcome is how a run ended, as told to Finish.
type Outcome uint8

// The outcomes of a run.
const (
	OutcomeOK    Outcome = iota + 1 // the handler succeeded
	OutcomeFail                     // the handler failed: retry after a back-off unless out of retries
	OutcomeDead                     // the handler failed for good: bury at once
	OutcomeYield                    // the run was given back unfinished (shutdown): run again at once, no failure counted
	OutcomeUnrun                    // the claim is given back before its handler started: as yield, and the attempt is not counted
)

var outcomeWords = [...]string{OutcomeOK: "ok", OutcomeFail: "fail", OutcomeDead: "dead", OutcomeYield: "yield", OutcomeUnrun: "unrun"}

// String returns the outcome's word as the finish script reads it.
func (o Outcome) String() string {
	if int(o) < len(outcomeWords) && outcomeWords[o] != "" {
		return outcomeWords[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

func (o Outcome) valid() bool { return o >= OutcomeOK && o <= OutcomeUnrun }

// Failure is why a run failed, as Finish records it for the job's last
// error.
type Failure struct {
	Class   string // error, panic, timeout, lease (cancelled as its lease lapsed) or skip
	Message string // Finish keeps MaxErrorMessage bytes of it
}

// MaxErrorMessage bounds the error message a record keeps, in bytes.
const MaxErrorMessage = 512

// CutMessage cuts msg to at most MaxErrorMessage bytes without splitting a
// UTF-8 sequence.
func CutMessage(msg string) string {
	if len(msg) <= MaxErrorMessage {
		return msg
	}
	end := MaxErrorMessage
	for end > 0 && !utf8.RuneStart(msg[end]) {
		end--
	}
	return msg[:end]
}

// ErrBadReply reports a script answer this version does not understand, e.g.
// from a Redis that runs other scripts under the same names.
var ErrBadReply = errors.New("claim: unexpected script reply")

// ErrBadArg reports an argument a script cannot take (a slot out of range, an
// unknown outcome, a negative duration).
var ErrBadArg = errors.New("claim: bad argument")

// parseReply reads the {word, attempt, ms} table every job script returns;
// finish adds a 4th element, 1, when it answers for the caller's own claim.
func parseReply(v any) (Reply, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 3 && len(a) != 4 {
		return Reply{}, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	word, _ := a[0].(string)
	k, ok := wireKinds[word]
	att, ok2 := a[1].(int64)
	ms, ok3 := a[2].(int64)
	if !ok || !ok2 || !ok3 {
		return Reply{}, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	rep := Reply{Kind: k, Attempt: int(att), Ms: ms}
	if len(a) == 4 {
		if own, _ := a[3].(int64); own != 1 {
			return Reply{}, fmt.Errorf("%w: %v", ErrBadReply, v)
		}
		rep.Own = true
	}
	return rep, nil
}
