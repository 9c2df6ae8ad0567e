// Package claim is the Redis side of zerodq's claim protocol: one hash per
// job, changed only by Lua scripts that read Redis time, so that of the many
// copies of a job on the beanstalkd nodes exactly one runs at a time, a
// finished job never runs again, and every other copy learns what to do.
//
// Every script touches one key, answers with a table (never an error reply,
// which go-zero's breaker would count against real claims), gives the same
// answer when go-redis re-sends it after a lost reply, and leaves the key
// with a TTL of DedupeTTL past the latest of its due time, lease and
// not-before time.
package claim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/stores/redis"
)

// Store runs the claim scripts on one Redis (node or cluster). It is safe for
// concurrent use.
type Store struct {
	rds    *redis.Redis
	prefix string
	ttlMs  int64
	// histMs is how long a finished or revoked job's summary outlives its
	// last copy (0: its record goes with it).
	histMs int64
	// callTimeout bounds one pipelined round trip of many callers' scripts.
	callTimeout time.Duration
	// loaded marks scripts known to be in Redis's script cache, so that the
	// first EVALSHA does not draw a NOSCRIPT error reply, which go-zero's
	// breaker would count as a failure.
	loaded map[*redis.Script]*atomic.Bool
	pipe   *pipe
}

// MaxSlots bounds a job's copy count n and slot i: the gone mask is kept in a
// Lua double, exact up to 2^53.
const MaxSlots = 52

// legacyLockMs is how long go-queue's own lock holds a legacy body (1 h).
const legacyLockMs = 3600000

// Option configures a Store.
type Option func(*Store)

// WithHistory keeps the record of a finished or revoked job, once every copy
// of it is gone, as a summary for up to d (never past its own TTL) instead of
// deleting it. Zero, the default, deletes it.
func WithHistory(d time.Duration) Option {
	return func(s *Store) { s.histMs = max(d.Milliseconds(), 0) }
}

// DefaultCallTimeout bounds one Redis round trip of the claim store unless
// WithCallTimeout says otherwise; dq's RedisTimeout defaults to it.
const DefaultCallTimeout = 3 * time.Second

// WithCallTimeout bounds one pipelined round trip that carries many callers'
// scripts (each caller also stops waiting when its own ctx ends).
func WithCallTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.callTimeout = d
		}
	}
}

// New returns a store for jobs under keys keyPrefix:tube:id whose records
// live dedupeTTL past their due time. A dedupeTTL under 1 ms counts as 1 ms:
// a record always gets a TTL.
func New(rds *redis.Redis, keyPrefix string, dedupeTTL time.Duration, opts ...Option) *Store {
	s := &Store{
		callTimeout: DefaultCallTimeout,
		rds:         rds,
		prefix:      keyPrefix,
		ttlMs:       max(dedupeTTL.Milliseconds(), 1),
		loaded:      make(map[*redis.Script]*atomic.Bool, len(sources)),
	}
	for sc := range sources {
		s.loaded[sc] = new(atomic.Bool)
	}
	for _, o := range opts {
		o(s)
	}
	s.pipe = newPipe(s)
	return s
}

// Key returns the Redis key of a job's record: keyPrefix:tube:id. It has no
// hash tag, so records spread over a Redis Cluster.
func (s *Store) Key(tube, id string) string {
	return s.prefix + ":" + tube + ":" + id
}

// Now reads Redis time in Unix milliseconds, the time base of the scripts.
func (s *Store) Now(ctx context.Context) (int64, error) {
	us, err := s.NowMicros(ctx)
	return us / 1000, err
}

// NowMicros reads Redis time in Unix microseconds.
func (s *Store) NowMicros(ctx context.Context) (int64, error) {
	v, err := s.run(ctx, nowScript, nil)
	if err != nil {
		return 0, err
	}
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return 0, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	sec, ok1 := a[0].(int64)
	us, ok2 := a[1].(int64)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	return sec*1_000_000 + us, nil
}

// Copy is the copy of a job a claim is made from, as its envelope and its
// node tell.
type Copy struct {
	N    int    // the job's slot count; 0 when unknown
	Slot int    // this copy's slot
	Ref  string // the copy's own reference (CopyRef); required
	Unc  bool   // a put of the job was uncertain
	// Writer is the WithID writer that put the copy ("" when unknown): a
	// copy of a writer whose reservation of the ID another writer took over
	// is deleted, never run.
	Writer string
	// By is the claimant's consumer ID ("" when unknown), recorded with the
	// attempt a successful claim starts (b<N>); the latest is the job's
	// owner.
	By string
}

// Claim asks whether the holder of copy cp may run the job due at dueMs. It
// answers Run (with the attempt number: the claim id cid now owns the job for
// leaseMs), Early, Spare, Delete or Bury. A job with more than maxFail
// failures is buried instead of run. A dead job runs again only from the copy
// Buried kept, once an operator kicks it, never from another copy of its slot.
func (s *Store) Claim(ctx context.Context, tube, id, cid string, dueMs int64, cp Copy,
	leaseMs int64, maxFail int) (Reply, error) {
	args, err := claimArgs(s.ttlMs, ClaimReq{Tube: tube, ID: id, Cid: cid, DueMs: dueMs, Copy: cp, LeaseMs: leaseMs, MaxFail: maxFail})
	if err != nil {
		return Reply{}, err
	}
	return s.call(ctx, claimScript, tube, id, args)
}

// ClaimReq is one claim of ClaimAll, with Claim's arguments.
type ClaimReq struct {
	Tube, ID, Cid string
	DueMs         int64
	Copy          Copy
	LeaseMs       int64
	MaxFail       int
}

// ClaimResult is the answer to one claim of ClaimAll.
type ClaimResult struct {
	Reply Reply
	Err   error
}

// ClaimAll makes several claims, each as Claim would, together: they go out
// in one pipelined batch (of at most pipeMax calls), so that copies of
// different jobs due at the same moment wait for one round trip, not one
// after the other. A claim with bad arguments gets its ErrBadArg and is not
// sent; the others are.
func (s *Store) ClaimAll(ctx context.Context, reqs []ClaimReq) []ClaimResult {
	res := make([]ClaimResult, len(reqs))
	calls := make([]*pipeCall, 0, len(reqs))
	sent := make([]int, 0, len(reqs))
	for i, r := range reqs {
		args, err := claimArgs(s.ttlMs, r)
		if err != nil {
			res[i].Err = err
			continue
		}
		calls = append(calls, newPipeCall(ctx, claimScript, []string{s.Key(r.Tube, r.ID)}, args))
		sent = append(sent, i)
	}
	if len(calls) == 0 {
		return res
	}
	err := s.pipe.start(ctx, claimScript, calls)
	for j, c := range calls {
		i := sent[j]
		if err != nil {
			res[i].Err = err
			continue
		}
		v, err := c.wait(ctx)
		if err == nil {
			res[i].Reply, err = parseReply(v)
		}
		res[i].Err = err
	}
	return res
}

// claimArgs checks a claim's arguments and spells them for the claim
// script, DedupeTTL first.
func claimArgs(ttlMs int64, r ClaimReq) ([]any, error) {
	cp := r.Copy
	if err := checkSlots(cp.N, cp.Slot); err != nil {
		return nil, err
	}
	if cp.Ref == "" {
		return nil, fmt.Errorf("%w: no copy reference", ErrBadArg)
	}
	if r.LeaseMs <= 0 {
		return nil, fmt.Errorf("%w: lease %d ms", ErrBadArg, r.LeaseMs)
	}
	u := 0
	if cp.Unc {
		u = 1
	}
	return []any{ttlMs, r.Cid, r.DueMs, cp.N, cp.Slot, u, r.LeaseMs, r.MaxFail, cp.Ref, cp.Writer, cp.By}, nil
}

// Extend renews the lease of claim cid for leaseMs from now. It answers OK, or
// Lost when the job is no longer that claim's (its handler must stop). A
// record Redis lost is written back for cid.
func (s *Store) Extend(ctx context.Context, tube, id, cid string, leaseMs int64) (Reply, error) {
	if leaseMs <= 0 {
		return Reply{}, fmt.Errorf("%w: lease %d ms", ErrBadArg, leaseMs)
	}
	return s.job(ctx, extendScript, tube, id, cid, leaseMs)
}

// Finish records how claim cid's run ended and answers what to do with the
// copy in slot i: Delete (succeeded), Release with a delay (failed with
// retries left: backoffMs; yielded: 0), Bury (dead, or more than maxFail
// failures), each with Reply.Own set, or, when cid no longer owns the job,
// what Claim would route, without it. A re-sent Finish answers the same
// without counting the failure twice. The first send also ends the run's
// attempt in the record and, for OutcomeFail and OutcomeDead, makes why the
// job's last error (a zero Failure records none).
func (s *Store) Finish(ctx context.Context, tube, id, cid string, i int, o Outcome, backoffMs int64,
	maxFail int, why Failure) (Reply, error) {
	if err := checkSlots(0, i); err != nil {
		return Reply{}, err
	}
	if !o.valid() {
		return Reply{}, fmt.Errorf("%w: outcome %v", ErrBadArg, o)
	}
	if backoffMs < 0 {
		return Reply{}, fmt.Errorf("%w: back-off %d ms", ErrBadArg, backoffMs)
	}
	return s.job(ctx, finishScript, tube, id, cid, i, o.String(), backoffMs, maxFail, why.Class, CutMessage(why.Message))
}

// Gone records that the copy in slot i with reference ref (CopyRef; ""
// unknown) was deleted, and its fate; call it only after beanstalkd answered
// DELETED. Once every copy of a finished or revoked job with a known count
// and no uncertain put is gone, its record is deleted, or with WithHistory
// cut down to a summary that expires within the history window.
func (s *Store) Gone(ctx context.Context, tube, id string, i int, ref string) error {
	if err := checkSlots(0, i); err != nil {
		return err
	}
	_, err := s.job(ctx, goneScript, tube, id, s.histMs, i, ref)
	return err
}

// Buried records that the copy in slot i with reference ref (CopyRef) was
// buried and answers Keep when it is the job's one dead letter, Extra when
// another copy is (delete this one).
func (s *Store) Buried(ctx context.Context, tube, id string, i int, ref string) (Reply, error) {
	if err := checkSlots(0, i); err != nil {
		return Reply{}, err
	}
	if ref == "" {
		return Reply{}, fmt.Errorf("%w: no copy reference", ErrBadArg)
	}
	return s.job(ctx, buriedScript, tube, id, i, ref)
}

// CopyRef is the reference of one copy of a job: its node (host:port in one
// spelling for the whole fleet) and beanstalkd's job number there. No other
// copy shares it, while slots may be shared (a spill after an uncertain put
// reuses its slot, every go-queue body decodes as slot 0); an operator's kick
// keeps it.
func CopyRef(node string, jobNum uint64) string {
	return node + "/" + strconv.FormatUint(jobNum, 10)
}

// Note records that a put of the job was uncertain (it may land later), so
// the record is kept until its TTL rather than collected when the known copies
// are gone.
func (s *Store) Note(ctx context.Context, tube, id string, dueMs int64, n int) error {
	if err := checkSlots(n, 0); err != nil {
		return err
	}
	_, err := s.job(ctx, noteScript, tube, id, dueMs, n)
	return err
}

// Abort stops a job whose writer wid ("" for a generated ID) missed its
// quorum: Aborted when it will never run, Started when a consumer already
// has it. For a WithID job whose reservation another writer took over (wid's
// put window had passed) it changes nothing and answers Taken when that
// writer's enqueue was confirmed (it stands), Other while that writer is
// still putting (its outcome decides).
func (s *Store) Abort(ctx context.Context, tube, id, wid string, dueMs int64, n int) (Reply, error) {
	if err := checkSlots(n, 0); err != nil {
		return Reply{}, err
	}
	return s.job(ctx, abortScript, tube, id, wid, dueMs, n)
}

// Reserve asks for a caller-chosen job ID before writer wid puts its copies:
// Fresh (put it within windowMs, then Confirm), Busy (another writer is putting
// it: retry in Reply.Ms), Dup (already enqueued) or Revoked.
func (s *Store) Reserve(ctx context.Context, tube, id, wid string, dueMs int64, windowMs int64) (Reply, error) {
	if windowMs <= 0 {
		return Reply{}, fmt.Errorf("%w: put window %d ms", ErrBadArg, windowMs)
	}
	return s.job(ctx, reserveScript, tube, id, wid, dueMs, windowMs)
}

// Confirm marks writer wid's reserved ID as enqueued once its copies are
// written, and says whether that enqueue stands: OK; Taken when another
// writer's enqueue stands (it took the ID over after wid's put window:
// delete wid's copies, the ID is enqueued); Other when no enqueue stands yet
// (another writer holds the ID unconfirmed, or an abort freed it: delete
// wid's copies and reserve again); MaybeDone when there is no record (it
// expired after the job ran, or Redis lost it: the enqueue stands, keep the
// copies); Revoked. It never creates a record and leaves another writer's
// reservation alone.
func (s *Store) Confirm(ctx context.Context, tube, id, wid string) (Reply, error) {
	return s.job(ctx, confirmScript, tube, id, wid)
}

// Revoke stops a job that has not run: Revoked, or Running, Done or Dead when
// it is past stopping. With no record it still revokes, and answers MaybeDone
// when dueMs (0 = unknown) is not in the future: the job may have run and
// been collected.
func (s *Store) Revoke(ctx context.Context, tube, id string, dueMs int64) (Reply, error) {
	return s.job(ctx, revokeScript, tube, id, dueMs)
}

// LegacyLock takes go-queue's own lock for a legacy body: lockKey set to
// mark (LegacyLockMark of the job) for an hour. It reports true when the
// lock was free or held by zerodq, this mark or the claim id older versions
// wrote: an earlier attempt that failed or was cut short, so the job runs
// again. It reports false when a go-queue consumer holds it: that consumer
// ran the job, so treat it as done.
func (s *Store) LegacyLock(ctx context.Context, lockKey, mark string) (bool, error) {
	v, err := s.run(ctx, legacyLockScript, []string{lockKey}, mark, legacyLockMs)
	if err != nil {
		return false, err
	}
	a, ok := v.([]any)
	if !ok || len(a) != 1 {
		return false, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	got, ok := a[0].(int64)
	if !ok {
		return false, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	return got == 1, nil
}

// LegacyLockMark is the value zerodq writes into go-queue's lock for job id:
// go-queue writes "1" or a 16-character random id there, so zerodq's own
// earlier attempts are told apart from a go-queue consumer's run.
func LegacyLockMark(id string) string { return "zerodq:" + id }

// LegacyRevokeMark is the value a revoke writes into go-queue's lock for job
// id: neither zerodq's attempts nor go-queue's consumer take it for their
// own, so both skip the job while the lock lives.
func LegacyRevokeMark(id string) string { return "zerodq-revoked:" + id }

// NewClaimID returns a random 128-bit claim id in hex: the fencing token that
// tells a claim's own writes from a stale claimant's.
func NewClaimID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return hex.EncodeToString(b[:])
}

// GoneItem is one copy whose delete beanstalkd confirmed: slot Slot of job
// ID in tube Tube, with its reference Ref (CopyRef; "" unknown).
type GoneItem struct {
	Tube, ID string
	Slot     int
	Ref      string
}

// GoneMany runs gone for many copies in one pipelined round trip, which
// matters on the hot path (every copy of every job ends with one): one script
// call per job, with the slots of all its copies in items. It is best effort,
// like gone itself: on error, records are left to their TTL.
func (s *Store) GoneMany(ctx context.Context, items []GoneItem) error {
	type job struct {
		key      string
		args     []any
		tube, id string
	}
	var jobs []*job
	byKey := make(map[string]*job, len(items))
	for _, it := range items {
		if err := checkSlots(0, it.Slot); err != nil {
			return err
		}
		key := s.Key(it.Tube, it.ID)
		j := byKey[key]
		if j == nil {
			j = &job{key: key, args: []any{s.ttlMs, s.histMs}, tube: it.Tube, id: it.ID}
			byKey[key] = j
			jobs = append(jobs, j)
		}
		j.args = append(j.args, it.Slot, it.Ref)
	}
	if err := s.load(ctx, goneScript); err != nil {
		return err
	}
	var cmds []*goredis.Cmd
	err := s.rds.PipelinedCtx(ctx, func(p redis.Pipeliner) error {
		cmds = make([]*goredis.Cmd, len(jobs))
		for i, j := range jobs {
			cmds[i] = p.EvalSha(ctx, goneScript.Hash(), []string{j.key}, j.args...)
		}
		return nil
	})
	if err == nil {
		return nil
	}
	// A Redis that restarted has forgotten the script: redo the ones that
	// failed one by one, which falls back to EVAL. A pipeline refused whole
	// (go-zero's breaker) or never started sent none of them.
	if cmds == nil {
		return err
	}
	for i, cmd := range cmds {
		if unsent(cmd) {
			return err
		}
		if cmd.Err() != nil {
			if _, err := s.job(ctx, goneScript, jobs[i].tube, jobs[i].id, jobs[i].args[1:]...); err != nil {
				return err
			}
		}
	}
	return nil
}

// RoundTrips counts the round trips the job scripts (claims, extends,
// finishes, gones) took so far: calls made together share one.
func (s *Store) RoundTrips() int64 { return s.pipe.trips.Load() }

// job runs a script on a job's record with DedupeTTL as the first argument.
func (s *Store) job(ctx context.Context, sc *redis.Script, tube, id string, args ...any) (Reply, error) {
	return s.call(ctx, sc, tube, id, append([]any{s.ttlMs}, args...))
}

// call runs a script on a job's record with args as they are.
func (s *Store) call(ctx context.Context, sc *redis.Script, tube, id string, args []any) (Reply, error) {
	v, err := s.pipe.do(ctx, sc, []string{s.Key(tube, id)}, args)
	if err != nil {
		return Reply{}, err
	}
	return parseReply(v)
}

func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) (any, error) {
	if err := s.load(ctx, sc); err != nil {
		return nil, err
	}
	return s.rds.ScriptRunCtx(ctx, sc, keys, args...)
}

// load puts a script into the script cache (of every master, on a cluster)
// once. A server that refuses SCRIPT LOAD is not asked again: EVALSHA falls
// back to EVAL there. A Redis that restarts forgets its scripts; the fallback
// covers that too, at one NOSCRIPT reply per script.
func (s *Store) load(ctx context.Context, sc *redis.Script) error {
	done := s.loaded[sc]
	if done.Load() {
		return nil
	}
	if _, err := s.rds.ScriptLoadCtx(ctx, sources[sc]); err != nil {
		var rerr goredis.Error
		if !errors.As(err, &rerr) {
			return err
		}
	}
	done.Store(true)
	return nil
}

// CheckSlots reports, as an error matching ErrBadArg, a slot count n or a
// slot i that the scripts cannot take: a copy carrying them can never be
// claimed, so a consumer treats it as malformed.
func CheckSlots(n, i int) error { return checkSlots(n, i) }

func checkSlots(n, i int) error {
	if n < 0 || n > MaxSlots || i < 0 || i >= MaxSlots {
		return fmt.Errorf("%w: n %d, slot %d (at most %d slots)", ErrBadArg, n, i, MaxSlots)
	}
	return nil
}
