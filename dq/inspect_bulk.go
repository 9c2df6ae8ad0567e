package dq

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// BulkOp is a bulk action on dead letters started with StartBulk, as kept in
// Redis under its ID while it runs and for a day after, so that any process
// of the queue can report its progress.
type BulkOp struct {
	ID       string     `json:"id"`
	Verb     string     `json:"verb"` // "retry" or "delete"
	Select   DeadSelect `json:"select"`
	By       string     `json:"by"` // the actor who started it
	Started  time.Time  `json:"started"`
	Updated  time.Time  `json:"updated"`
	Matched  int        `json:"matched"` // counted first, recounted when the work starts
	Done     int        `json:"done"`    // entries worked through: acted on or skipped
	Skipped  int        `json:"skipped"` // of those, the entries left alone (known at the end)
	Finished bool       `json:"finished"`
	// Skips are the first entries left alone (up to 20), each with why.
	Skips []BulkSkip `json:"skips,omitempty"`
	Err   string     `json:"err,omitempty"` // why it stopped early
}

// ErrNoSuchOp is returned by Inspector.Bulk for an ID that names no bulk
// operation (never started, or finished more than a day ago).
var ErrNoSuchOp = errors.New("dq: no such bulk operation")

// ErrBadVerb is returned by Inspector.StartBulk for a verb other than
// "retry" and "delete".
var ErrBadVerb = errors.New("dq: bulk operation verb must be retry or delete")

// maxBulkSkips bounds the skips a bulk operation's record keeps.
const maxBulkSkips = 20

// StartBulk counts the dead letters sel names, records the operation in
// Redis and works through them in the background (verb "retry" as
// RetryDead, "delete" as DeleteDead), updating its progress after every
// batch. It returns at once with the operation as recorded. The work stops
// early when the Inspector is closed.
func (in *Inspector) StartBulk(ctx context.Context, verb string, sel DeadSelect) (BulkOp, error) {
	var run func(context.Context, DeadSelect, Progress) (BulkResult, error)
	switch verb {
	case "retry":
		run = in.RetryDead
	case "delete":
		run = in.DeleteDead
	default:
		return BulkOp{}, fmt.Errorf("%w: %q", ErrBadVerb, verb)
	}
	if in.bgCtx.Err() != nil {
		return BulkOp{}, ErrClosed
	}
	matched, err := in.countSelect(ctx, sel)
	if err != nil {
		return BulkOp{}, err
	}
	now, err := in.store.Now(ctx)
	if err != nil {
		return BulkOp{}, fmt.Errorf("dq: inspector: bulk: %w", err)
	}
	op := BulkOp{
		ID: randomHex(8), Verb: verb, Select: sel, By: in.actor,
		Started: time.UnixMilli(now), Updated: time.UnixMilli(now), Matched: matched,
	}
	if err := in.putOp(ctx, op.ID, op.fields()...); err != nil {
		return BulkOp{}, err
	}
	began := time.Now()
	// Times written later are Redis time at the start plus what passed here.
	at := func() int64 { return op.Started.Add(time.Since(began)).UnixMilli() }
	started := in.bg.Go(func(<-chan struct{}) {
		ctx := in.bgCtx
		done := 0
		res, err := run(ctx, sel, func(d, total int) {
			done = d
			_ = in.putOp(ctx, op.ID, "done", d, "matched", total, "updated", at())
		})
		in.endOp(op.ID, at(), res, done, err == nil && !sel.DryRun, err)
	})
	if !started {
		in.endOp(op.ID, at(), BulkResult{Matched: matched}, 0, false, ErrClosed)
	}
	return op, nil
}

// countSelect counts the entries sel names: its distinct IDs, or those its
// filter selects (up to its Limit).
func (in *Inspector) countSelect(ctx context.Context, sel DeadSelect) (int, error) {
	if len(sel.IDs) > 0 {
		seen := make(map[string]bool, len(sel.IDs))
		for _, id := range sel.IDs {
			seen[id] = true
		}
		return len(seen), nil
	}
	n, err := in.CountDead(ctx, sel.Filter)
	if err != nil {
		return 0, err
	}
	if sel.Filter.Limit > 0 {
		n = min(n, sel.Filter.Limit)
	}
	return n, nil
}

// endOp records a bulk operation's end: its result, and why it stopped
// early if it did. It is written even when the Inspector is closing.
func (in *Inspector) endOp(id string, atMs int64, res BulkResult, done int, complete bool, err error) {
	if complete {
		done = res.Matched
	}
	why := ""
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) && in.bgCtx.Err() != nil, errors.Is(err, ErrClosed):
		why = "stopped: the inspector that ran it was closed"
	default:
		why = err.Error()
	}
	skips := res.Skipped[:min(len(res.Skipped), maxBulkSkips)]
	sk, _ := json.Marshal(skips) // a slice of flat structs of strings
	fields := []any{"finished", 1, "done", done, "skipped", len(res.Skipped), "skips", sk, "err", why,
		"updated", atMs}
	if res.Matched > 0 || complete {
		fields = append(fields, "matched", res.Matched)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(in.bgCtx), in.conf.RedisTimeout)
	defer cancel()
	_ = in.putOp(ctx, id, fields...)
}

// putOp sets fields of bulk operation id's record.
func (in *Inspector) putOp(ctx context.Context, id string, fields ...any) error {
	if err := in.store.Index().PutOp(ctx, in.tube, id, fields...); err != nil {
		return fmt.Errorf("dq: inspector: bulk operation %s: %w", id, err)
	}
	return nil
}

// fields are op's record as a hash's field/value pairs.
func (op BulkOp) fields() []any {
	sel, _ := json.Marshal(op.Select) // strings, a time and numbers
	sk, _ := json.Marshal(op.Skips)
	return []any{
		"id", op.ID, "verb", op.Verb, "select", sel, "by", op.By,
		"started", op.Started.UnixMilli(), "updated", op.Updated.UnixMilli(),
		"matched", op.Matched, "done", op.Done, "skipped", op.Skipped,
		"finished", boolField(op.Finished), "skips", sk, "err", op.Err,
	}
}

func boolField(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Bulk reads a bulk operation's progress by its ID, whichever process
// started it.
func (in *Inspector) Bulk(ctx context.Context, id string) (BulkOp, error) {
	if len(id) != 16 {
		return BulkOp{}, fmt.Errorf("%w: %q", ErrNoSuchOp, id)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return BulkOp{}, fmt.Errorf("%w: %q", ErrNoSuchOp, id)
	}
	h, err := in.store.Index().Op(ctx, in.tube, id)
	if err != nil {
		return BulkOp{}, fmt.Errorf("dq: inspector: bulk operation %s: %w", id, err)
	}
	if len(h) == 0 {
		return BulkOp{}, fmt.Errorf("%w: %s", ErrNoSuchOp, id)
	}
	num := func(k string) int64 { v, _ := strconv.ParseInt(h[k], 10, 64); return v }
	op := BulkOp{
		ID: id, Verb: h["verb"], By: h["by"],
		Started: time.UnixMilli(num("started")), Updated: time.UnixMilli(num("updated")),
		Matched: int(num("matched")), Done: int(num("done")), Skipped: int(num("skipped")),
		Finished: num("finished") == 1, Err: h["err"],
	}
	_ = json.Unmarshal([]byte(h["select"]), &op.Select)
	_ = json.Unmarshal([]byte(h["skips"]), &op.Skips)
	return op, nil
}
