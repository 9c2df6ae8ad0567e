package dq

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/envelope"
	"github.com/zerodq/zerodq/internal/node"
)

// RevokeCtx revokes the job with the given ID.
func (p *producer) RevokeCtx(ctx context.Context, id string) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if strings.Contains(id, "/") {
		return p.revokeLegacy(ctx, id)
	}
	if err := envelope.ValidID(id); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrBadID, id, err)
	}

	due, _ := envelope.IDDue(id) // 0 when not a generated ID: unknown
	rctx, cancel := p.redisCtx(ctx, false)
	rep, err := p.store.Revoke(rctx, p.tube, id, due)
	cancel()
	if err != nil {
		return fmt.Errorf("dq: revoking job %s in Redis: %w", id, err)
	}
	rerr := revokeOutcome(rep.Kind, id)
	if rerr == nil || errors.Is(rerr, ErrMaybeDone) {
		p.deleteRecent(ctx, id)
	}
	return rerr
}

// revokeOutcome turns the claim store's answer to a revoke into the error
// Revoke returns.
func revokeOutcome(k claim.Kind, id string) error {
	switch k {
	case claim.Revoked:
		return nil
	case claim.Running:
		return fmt.Errorf("%w: %s", ErrRunning, id)
	case claim.Done:
		return fmt.Errorf("%w: %s", ErrDone, id)
	case claim.Dead:
		return fmt.Errorf("%w: %s", ErrDead, id)
	case claim.MaybeDone:
		return fmt.Errorf("%w: %s", ErrMaybeDone, id)
	}
	return fmt.Errorf("dq: revoking job %s: unexpected reply %v", id, k)
}

// deleteRecent deletes, best effort, the copies of id this producer put
// recently: a revoked job's copies otherwise wait on the nodes until they
// come due and a consumer deletes them. It waits for the deletes until ctx
// ends: one sent to a node that froze is bounded only by IOTimeout, and
// queues behind the puts in flight on its connection.
func (p *producer) deleteRecent(ctx context.Context, id string) {
	copies, ok := p.recent.take(id)
	if !ok {
		return
	}
	// A copy reserved by a consumer, on a node that is down, or on a
	// connection since replaced answers an error: the revoked record still
	// keeps it from running.
	_ = p.deleteCopies(ctx, copies.all())
}

// revokeLegacy revokes a job enqueued by go-queue's dq producer, whose ID
// lists its copies as host:port/tube/id separated by commas. beanstalkd can
// show a copy's body, which names the job: the record of that job is revoked
// and the copies are deleted. A number that now names anything but a go-queue
// body in that tube is left alone (see goQueueCopy).
func (p *producer) revokeLegacy(ctx context.Context, ids string) error {
	var errs []error
	revoked := false
	done := make(map[string]error) // job ID → outcome, for copies of one job
	for _, ref := range strings.Split(ids, ",") {
		n, jid, err := p.legacyCopy(ref)
		if err != nil {
			return err
		}
		body, env, found, err := goQueueCopy(ctx, n, jid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !found {
			continue // run and deleted, revoked already, or lost in a restart
		}

		outcome, seen := done[env.ID]
		if !seen {
			outcome = p.revokeRecord(ctx, env, body)
			done[env.ID] = outcome
		}
		if outcome != nil && !errors.Is(outcome, ErrMaybeDone) {
			return outcome // started or finished: its copies are the consumers' now
		}
		revoked = true
		if err := n.DeleteID(ctx, jid); err != nil && !errors.Is(err, node.ErrNotFound) {
			errs = append(errs, err)
		}
	}

	switch {
	case revoked:
		// The record keeps every copy from running, including one on a
		// node that could not be reached.
		return nil
	case len(errs) > 0:
		return errors.Join(errs...)
	default:
		return fmt.Errorf("%w: no copy of %s is left", ErrMaybeDone, ids)
	}
}

// goQueueCopy reads job jid on n if it can still be the copy a go-queue ID
// named: a go-queue body in the node's tube. beanstalkd numbers jobs per
// server life: after a restart without a binlog it counts from 1 again, and
// the old number may name a job of another tube, or a zerodq envelope, which
// the ID never named; those count as gone, like a number nothing has.
func goQueueCopy(ctx context.Context, n *node.Node, jid uint64) ([]byte, envelope.Envelope, bool, error) {
	tube, err := n.JobTube(ctx, jid)
	if errors.Is(err, node.ErrNotFound) {
		return nil, envelope.Envelope{}, false, nil
	}
	if err != nil {
		return nil, envelope.Envelope{}, false, err
	}
	if tube != n.Tube() {
		return nil, envelope.Envelope{}, false, nil
	}
	// Numbers are never reused within a server life: unless the node
	// restarted in between, the job peeked is the one just looked at.
	body, err := n.Peek(ctx, jid)
	if errors.Is(err, node.ErrNotFound) {
		return nil, envelope.Envelope{}, false, nil
	}
	if err != nil {
		return nil, envelope.Envelope{}, false, err
	}
	env, err := envelope.Decode(body, nil, envelope.Accept{Legacy: true})
	if err != nil || !env.Legacy {
		return nil, envelope.Envelope{}, false, nil
	}
	return body, env, true, nil
}

// revokeRecord revokes the record of a job read from one of its copies. For a
// go-queue body it also takes go-queue's own lock, so that go-queue consumers
// still in the fleet skip the job too.
func (p *producer) revokeRecord(ctx context.Context, env envelope.Envelope, raw []byte) error {
	rctx, cancel := p.redisCtx(ctx, false)
	defer cancel()
	rep, err := p.store.Revoke(rctx, p.tube, env.ID, env.DueMs)
	if err != nil {
		return fmt.Errorf("dq: revoking job %s in Redis: %w", env.ID, err)
	}
	outcome := revokeOutcome(rep.Kind, env.ID)
	if env.Legacy && (outcome == nil || errors.Is(outcome, ErrMaybeDone)) {
		if _, err := p.store.LegacyLock(rctx, envelope.LegacyLockKey(raw), claim.LegacyRevokeMark(env.ID)); err != nil {
			return fmt.Errorf("dq: revoking job %s: taking go-queue's lock: %w", env.ID, err)
		}
	}
	return outcome
}

// legacyCopy parses one host:port/tube/id reference of a go-queue ID and
// finds its node among the configured ones. A tube name may itself hold '/',
// so the tube is whatever lies between the first and the last '/'.
func (p *producer) legacyCopy(ref string) (*node.Node, uint64, error) {
	endpoint, rest, ok1 := strings.Cut(ref, "/")
	i := strings.LastIndexByte(rest, '/')
	if !ok1 || i <= 0 {
		return nil, 0, fmt.Errorf("%w: %q is not host:port/tube/id", ErrBadID, ref)
	}
	tube, num := rest[:i], rest[i+1:]
	jid, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %q: job number %q", ErrBadID, ref, num)
	}
	key, reason := endpointKey(endpoint)
	if reason != "" {
		return nil, 0, fmt.Errorf("%w: %q: endpoint %s", ErrBadID, ref, reason)
	}
	n, ok := p.legacy[key+"/"+tube]
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q: no such node and tube in the config", ErrBadID, ref)
	}
	return n, jid, nil
}

// recentPuts remembers the copies of the jobs this producer enqueued last,
// so that revoking one of them can delete its copies at once. It is sharded
// by ID, so that concurrent enqueues seldom share a lock, and keyed by the
// ID's 64-bit hash, which every enqueue hashes and compares faster than the
// ID; the entry keeps the ID, so a hash two IDs share costs the slower path,
// never another job's copies.
type recentPuts struct {
	seed   maphash.Seed
	shards [recentShards]*recent[uint64, recentCopies]
}

const (
	recentShards   = 16
	recentPerShard = 256 // 4096 jobs in all
	inlineCopies   = 3
)

// recentCopies keeps a job's usual few copies without a separate allocation.
type recentCopies struct {
	id    string
	n     int
	first [inlineCopies]writtenCopy
	more  []writtenCopy
}

func (c recentCopies) all() []writtenCopy {
	if c.n <= inlineCopies {
		return c.first[:c.n]
	}
	return append(c.first[:], c.more...)
}

func (r *recentPuts) init() {
	r.seed = maphash.MakeSeed()
	for i := range r.shards {
		r.shards[i] = newRecent[uint64, recentCopies](recentPerShard)
	}
}

func (r *recentPuts) key(id string) (*recent[uint64, recentCopies], uint64) {
	h := maphash.String(r.seed, id)
	return r.shards[h%recentShards], h
}

// add records the copies of id, forgetting the oldest job of its shard.
func (r *recentPuts) add(id string, copies []writtenCopy) {
	c := recentCopies{id: id, n: len(copies)}
	k := copy(c.first[:], copies)
	if k < len(copies) {
		c.more = append([]writtenCopy(nil), copies[k:]...)
	}
	s, h := r.key(id)
	s.add(h, c, true) // an ID enqueued again: its latest copies
}

// take returns and forgets the copies of id.
func (r *recentPuts) take(id string) (recentCopies, bool) {
	s, h := r.key(id)
	return s.takeIf(h, func(c recentCopies) bool { return c.id == id })
}
