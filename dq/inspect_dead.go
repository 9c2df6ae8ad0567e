package dq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
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
// selected entries are worked through (acted on or skipped) out of the
// total counted first.
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

// deadBatch bounds the entries a bulk action reads, checks and acts on at a
// time, and the page a listing reads.
const deadBatch = 500

// deadWorkers bounds the dead letters of a batch checked and acted on at
// once: enough to hide round trips, few enough to leave the nodes to the
// consumers.
const deadWorkers = 1

// DeadLetters lists the dead-letter index in burial order.
func (in *Inspector) DeadLetters(ctx context.Context, f DeadFilter) ([]DeadLetter, error) {
	var out []DeadLetter
	err := in.eachDead(ctx, f, true, func(d DeadLetter) error {
		out = append(out, d)
		return nil
	})
	return out, err
}

// CountDead counts the entries f selects (Limit ignored).
func (in *Inspector) CountDead(ctx context.Context, f DeadFilter) (int, error) {
	if f.Match == "" {
		n, err := in.store.Index().DeadCount(ctx, in.tube, sinceMs(f.Since))
		if err != nil {
			return 0, fmt.Errorf("dq: inspector: dead letters: %w", err)
		}
		return n, nil
	}
	f.Limit = 0
	n := 0
	err := in.eachDead(ctx, f, false, func(DeadLetter) error {
		n++
		return nil
	})
	return n, err
}

// ExportDead writes the entries f selects as JSON lines, one DeadLetter
// each.
func (in *Inspector) ExportDead(ctx context.Context, w io.Writer, f DeadFilter) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	err := in.eachDead(ctx, f, true, func(d DeadLetter) error {
		if err := enc.Encode(d); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// eachDead hands fn the entries f selects, in burial order, reading the
// index a page at a time; with resolve, each names its job's real dead
// letter (realRefs).
func (in *Inspector) eachDead(ctx context.Context, f DeadFilter, resolve bool, fn func(DeadLetter) error) error {
	idx := in.store.Index()
	from, seen := sinceMs(f.Since), 0
	for off := 0; ; off += deadBatch {
		page, err := idx.DeadPage(ctx, in.tube, from, off, deadBatch)
		if err != nil {
			return fmt.Errorf("dq: inspector: dead letters: %w", err)
		}
		if resolve {
			if err := in.realRefs(ctx, page); err != nil {
				return err
			}
		}
		for _, e := range page {
			if !f.matches(e) {
				continue
			}
			if err := fn(deadLetterOf(e)); err != nil {
				return err
			}
			if seen++; f.Limit > 0 && seen >= f.Limit {
				return nil
			}
		}
		if len(page) < deadBatch {
			return nil
		}
	}
}

// realRefs points each entry of a page at its job's real dead letter: the
// copy the job's record names (bid), when there is a record. The entry was
// written before the bury by the copy about to be buried, and when two
// copies of a job are buried at once, the first whose bury is recorded is
// the dead letter and the other is deleted. An entry written by a copy that
// knew nothing of the job's runs (a claim that buried it after its leases
// lapsed) takes the attempts and last error from the record too.
func (in *Inspector) realRefs(ctx context.Context, page []claim.DeadEntry) error {
	if len(page) == 0 {
		return nil
	}
	cmds := make([]*goredis.SliceCmd, len(page))
	err := in.rds.PipelinedCtx(ctx, func(p goredis.Pipeliner) error {
		for i, e := range page {
			cmds[i] = p.HMGet(ctx, in.store.Key(in.tube, e.ID), "bid", "att", "err", "em")
		}
		_, err := p.Exec(ctx)
		return err
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("dq: inspector: job records: %w", err)
	}
	for i := range page {
		v := cmds[i].Val()
		if len(v) != 4 {
			continue
		}
		field := func(j int) string { s, _ := v[j].(string); return s }
		if bid := field(0); bid != "" {
			page[i].Ref = bid
		}
		if page[i].Att == 0 {
			page[i].Att, _ = strconv.Atoi(field(1))
		}
		if page[i].Cls == "" && field(2) != "" {
			page[i].Cls, page[i].Msg = field(2), field(3)
		}
	}
	return nil
}

// matches says whether an entry's ID or error message contains f.Match.
func (f DeadFilter) matches(e claim.DeadEntry) bool {
	return f.Match == "" || strings.Contains(e.ID, f.Match) || strings.Contains(e.Msg, f.Match)
}

func sinceMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func deadLetterOf(e claim.DeadEntry) DeadLetter {
	at := time.UnixMilli(e.At)
	nd, num, _ := claim.SplitRef(e.Ref)
	return DeadLetter{
		ID: e.ID, At: at, Attempts: e.Att, Node: nd, JobNum: num,
		Error: JobError{Class: e.Cls, Message: e.Msg, At: at},
	}
}

// RetryDead kicks the selected dead letters in bounded batches: each runs
// once more, with a fresh set of retries and a higher attempt number, and
// leaves the index.
func (in *Inspector) RetryDead(ctx context.Context, sel DeadSelect, p Progress) (BulkResult, error) {
	return in.bulkDead(ctx, "retry", sel, p.report())
}

// DeleteDead deletes the selected dead letters' buried copies in bounded
// batches and drops them from the index.
func (in *Inspector) DeleteDead(ctx context.Context, sel DeadSelect, p Progress) (BulkResult, error) {
	return in.bulkDead(ctx, "delete", sel, p.report())
}

// report tells p, after a batch, the entries worked through so far (acted
// on or skipped) out of the total; nil for a nil p.
func (p Progress) report() func(BulkResult) {
	if p == nil {
		return nil
	}
	return func(r BulkResult) { p(r.Done+len(r.Skipped), r.Matched) }
}

// deadActions are the actions a bulk action on dead letters takes on a
// dead letter's buried copy, by verb.
var deadActions = map[string]func(context.Context, *node.Node, uint64) error{
	"retry":  func(ctx context.Context, n *node.Node, num uint64) error { return n.KickID(ctx, num) },
	"delete": func(ctx context.Context, n *node.Node, num uint64) error { return n.DeleteID(ctx, num) },
}

// bulkDead counts the selected entries, writes the action to the audit
// stream, then, a batch at a time, checks each entry's dead letter (buried,
// in this queue's tube, holding this job) and acts on it (deadActions[verb]),
// dropping it from the index when the action succeeded. After each batch it
// tells report the result so far.
func (in *Inspector) bulkDead(ctx context.Context, verb string, sel DeadSelect, report func(BulkResult)) (BulkResult,
	error) {
	act := deadActions[verb]
	verb = "dead " + verb
	entries, res, err := in.selectDead(ctx, sel)
	if err != nil {
		return res, err
	}
	res.Matched = len(entries) + len(res.Skipped)
	if sel.DryRun {
		return res, nil
	}
	if err := in.Audit(ctx, verb+" "+describeSelect(sel, res.Matched)); err != nil {
		return res, err
	}
	err = in.sweepDead(ctx, entries, &res, true, func(d deadCopy) (bool, string) {
		reason := d.skip
		if reason == "" {
			reason = in.checkBuried(ctx, d)
		}
		if reason == "" {
			if err := act(ctx, d.node, d.num); err != nil {
				reason = err.Error()
			}
		}
		return reason == "", reason
	}, func(int) {
		if report != nil {
			report(res)
		}
	})
	if err != nil {
		return res, fmt.Errorf("dq: inspector: %s: %w", verb, err)
	}
	return res, nil
}

// sweepDead works through entries a batch at a time: it resolves each
// entry's dead letter, asks judge whether it is done with (then dropped
// from the index, if drop) or skipped and why ("" to leave it quietly),
// counts both in res, and tells after how many entries are worked through.
// It stops at the first error, or when ctx ends between batches.
func (in *Inspector) sweepDead(ctx context.Context, entries []claim.DeadEntry, res *BulkResult, drop bool,
	judge func(deadCopy) (done bool, skip string), after func(worked int)) error {
	for start := 0; start < len(entries); start += deadBatch {
		batch := entries[start:min(start+deadBatch, len(entries))]
		letters, err := in.resolveDead(ctx, batch)
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var done []string
		in.forEachLetter(letters, func(d deadCopy) {
			ok, skip := judge(d)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ok:
				done = append(done, d.id)
			case skip != "":
				res.Skipped = append(res.Skipped, BulkSkip{ID: d.id, Reason: skip})
			}
		})
		if drop {
			if err := in.store.Index().DeadRemove(ctx, in.tube, done...); err != nil {
				return fmt.Errorf("%d done, dropping them from the index: %w", len(done), err)
			}
		}
		res.Done += len(done)
		after(start + len(batch))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// ReconcileDead drops index entries whose job is not dead any more (kicked
// or deleted by hand, or a bury that never happened). An entry is dropped
// only once checked: its job's record says it is not dead, or its dead
// letter is gone from its node or no longer buried there. An entry whose
// node does not answer, or whose copy is still reserved (a bury on its
// way), stays. In a dry run Done counts what would be dropped.
func (in *Inspector) ReconcileDead(ctx context.Context, dryRun bool, p Progress) (BulkResult, error) {
	entries, res, err := in.selectDead(ctx, DeadSelect{})
	if err != nil {
		return res, err
	}
	res.Matched = len(entries)
	if !dryRun {
		if err := in.Audit(ctx, fmt.Sprintf("dead reconcile: %d entries", res.Matched)); err != nil {
			return res, err
		}
	}
	err = in.sweepDead(ctx, entries, &res, !dryRun, func(d deadCopy) (bool, string) {
		return in.deadGone(ctx, d)
	}, func(worked int) {
		if p != nil {
			p(worked, res.Matched)
		}
	})
	if err != nil {
		return res, fmt.Errorf("dq: inspector: dead reconcile: %w", err)
	}
	return res, nil
}

// deadGone says whether an entry's job is surely not dead any more; when it
// cannot tell, why says so ("" for a dead letter that is there).
func (in *Inspector) deadGone(ctx context.Context, d deadCopy) (gone bool, why string) {
	if d.state != "" && d.state != "X" {
		return true, ""
	}
	if d.node == nil {
		return false, d.skip
	}
	st, err := d.node.JobStat(ctx, d.num)
	switch {
	case errors.Is(err, node.ErrNotFound):
		return true, ""
	case err != nil:
		return false, err.Error()
	case st.Tube != d.node.Tube():
		return true, "" // the number names another job now
	case st.State == "reserved":
		return false, "copy reserved (a bury on its way?)"
	case st.State != "buried":
		return true, "" // kicked by hand
	}
	mine, err := in.holdsJob(ctx, d)
	if err != nil {
		return false, err.Error()
	}
	return !mine, ""
}

// deadCopy is an index entry resolved to the copy that is its dead letter.
type deadCopy struct {
	id    string
	state string // the job record's st ("" when there is no record)
	node  *node.Node
	num   uint64
	skip  string // why it cannot be acted on, when it cannot
}

// selectDead reads the entries sel names: the IDs given (each looked up in
// the index; an ID absent from it is still taken when its record names a
// dead letter), or every entry the filter selects, a page at a time.
func (in *Inspector) selectDead(ctx context.Context, sel DeadSelect) ([]claim.DeadEntry, BulkResult, error) {
	var res BulkResult
	if len(sel.IDs) == 0 {
		var out []claim.DeadEntry
		// The records are read batch by batch as the action goes
		// (resolveDead).
		err := in.eachDead(ctx, sel.Filter, false, func(d DeadLetter) error {
			out = append(out, claim.DeadEntry{ID: d.ID, Ref: claim.CopyRef(d.Node, d.JobNum)})
			return nil
		})
		return out, res, err
	}
	var out []claim.DeadEntry
	seen := make(map[string]bool, len(sel.IDs))
	for start := 0; start < len(sel.IDs); start += deadBatch {
		ids := sel.IDs[start:min(start+deadBatch, len(sel.IDs))]
		infos, err := in.store.Index().DeadInfo(ctx, in.tube, ids...)
		if err != nil {
			return nil, res, fmt.Errorf("dq: inspector: dead letters: %w", err)
		}
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			e, ok := infos[id]
			if !ok {
				e = claim.DeadEntry{ID: id}
			}
			out = append(out, e)
		}
	}
	return out, res, nil
}

// resolveDead reads the records of a batch of entries (one pipeline) and
// finds each one's dead letter: the copy the record names (bid) when there
// is a record, else the one the entry names.
func (in *Inspector) resolveDead(ctx context.Context, batch []claim.DeadEntry) ([]deadCopy, error) {
	cmds := make([]*goredis.SliceCmd, len(batch))
	err := in.rds.PipelinedCtx(ctx, func(p goredis.Pipeliner) error {
		for i, e := range batch {
			cmds[i] = p.HMGet(ctx, in.store.Key(in.tube, e.ID), "st", "bid")
		}
		_, err := p.Exec(ctx)
		return err
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("dq: inspector: job records: %w", err)
	}
	nodes := in.nodesByKey()
	out := make([]deadCopy, len(batch))
	for i, e := range batch {
		d := deadCopy{id: e.ID}
		ref := e.Ref
		if v := cmds[i].Val(); len(v) == 2 {
			d.state, _ = v[0].(string)
			if bid, ok := v[1].(string); ok && bid != "" {
				ref = bid
			}
		}
		nd, num, serr := claim.SplitRef(ref)
		ok := serr == nil
		switch {
		case d.state != "" && d.state != "X":
			d.skip = "job is not dead (state " + d.state + ")"
		case d.state == "X" && !recorded(cmds[i].Val()):
			// Dead, its bury not recorded yet: several copies may be on
			// their way to the buried list, and the entry may name one that
			// will be deleted as extra. The record will say which stays.
			d.skip = "bury not recorded yet (a consumer is burying it): try again"
		case ref == "":
			d.skip = "not a dead letter"
		case !ok:
			d.skip = "bad copy reference " + strconv.Quote(ref)
		case nodes[nd] == nil:
			d.skip = "node " + nd + " not in the config"
		default:
			d.node, d.num = nodes[nd], num
		}
		out[i] = d
	}
	return out, nil
}

// recorded says whether a record's st, bid pair names its dead letter.
func recorded(v []any) bool {
	if len(v) != 2 {
		return false
	}
	bid, _ := v[1].(string)
	return bid != ""
}

// nodesByKey maps each configured node's endpoint, as copy references spell
// it, to its connection.
func (in *Inspector) nodesByKey() map[string]*node.Node {
	m := make(map[string]*node.Node, len(in.nodes))
	for i, b := range in.conf.Beanstalks {
		if key, _ := endpointKey(b.Endpoint); key != "" {
			m[key] = in.nodes[i]
		}
	}
	return m
}

// checkBuried says why a dead letter may not be acted on ("" when it may):
// it must be buried, in this queue's tube, and hold this job.
func (in *Inspector) checkBuried(ctx context.Context, d deadCopy) string {
	st, err := d.node.JobStat(ctx, d.num)
	switch {
	case errors.Is(err, node.ErrNotFound):
		return "copy not on its node any more"
	case err != nil:
		return err.Error()
	case st.Tube != d.node.Tube():
		return "copy not on its node any more (its number names a job of tube " + st.Tube + ")"
	case st.State != "buried":
		return "copy not buried any more (" + st.State + ")"
	}
	switch mine, err := in.holdsJob(ctx, d); {
	case err != nil:
		return err.Error()
	case !mine:
		return "copy not on its node any more (its number names another job)"
	}
	return ""
}

// holdsJob says whether the copy's body is this job's (an error when the
// node could not tell).
func (in *Inspector) holdsJob(ctx context.Context, d deadCopy) (bool, error) {
	body, err := d.node.Peek(ctx, d.num)
	if errors.Is(err, node.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	env, err := envelope.Decode(body, in.conf.signingKeys(), envelope.Accept{Legacy: true, Unsigned: true})
	return err == nil && env.ID == d.id, nil
}

// forEachLetter runs fn on every copy of a batch, deadWorkers at a time.
func (in *Inspector) forEachLetter(letters []deadCopy, fn func(deadCopy)) {
	work := make(chan deadCopy)
	var wg sync.WaitGroup
	for range min(deadWorkers, len(letters)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				fn(d)
			}
		}()
	}
	for _, d := range letters {
		work <- d
	}
	close(work)
	wg.Wait()
}

// describeSelect spells a selection for the audit stream.
func describeSelect(sel DeadSelect, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d entries", n)
	if len(sel.IDs) > 0 {
		b.WriteString(", ids")
		for i, id := range sel.IDs {
			if i == 10 {
				fmt.Fprintf(&b, " and %d more", len(sel.IDs)-10)
				break
			}
			b.WriteString(" " + id)
		}
		return b.String()
	}
	f := sel.Filter
	if !f.Since.IsZero() {
		b.WriteString(", since " + f.Since.UTC().Format(time.RFC3339))
	}
	if f.Match != "" {
		b.WriteString(", match " + strconv.Quote(f.Match))
	}
	if f.Limit > 0 {
		b.WriteString(", limit " + strconv.Itoa(f.Limit))
	}
	return b.String()
}
