package dqx

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/zeromicro/go-zero/core/stores/redis"
)

// cronState is a scheduler's shared record in Redis: which config owns the
// schedule, which job ID each tick (an entry's fire time) was given, and each
// entry's latest recorded fire. Four keys under one hash tag, so that a
// script may touch them all on a Redis Cluster:
//
//	<prefix>:cron:{<tubes>:<name>}          hash: cfg (owning config digest),
//	                                        cfgt (ms of its last top-up),
//	                                        cfgs ("<digest> <ms>": how long
//	                                        the owner may be idle, by its own
//	                                        Refresh),
//	                                        gen (the last generation of IDs),
//	                                        l:<entry> (ms of the latest fire recorded
//	                                        and not doomed)
//	<prefix>:cron:{<tubes>:<name>}:fires    zset: fire ID → fire ms, the ID
//	                                        that each recorded tick holds
//	<prefix>:cron:{<tubes>:<name>}:doomed   zset: fire ID → fire ms, fires of
//	                                        changed or removed entries that are
//	                                        being revoked (or that ran already)
//	<prefix>:cron:{<tubes>:<name>}:pending  zset: fire ID → fire ms, fires no
//	                                        replica has written yet
//
// A fire ID is "cron-<name>-<hash>.<gen>-<ms>": <name>-<hash> is the entry's
// tag (its version), <gen> the generation that gave the tick this ID. The
// recording script hands out IDs: a tick keeps the ID it was given while its
// entry keeps its version, whichever config owns the schedule meanwhile, and
// a tick whose ID was revoked gets one of a new generation, never an ID that
// was revoked. Fires written by schedulers before generations existed are
// "cron-<name>-<hash>-<ms>": they are kept as their tick's ID the same way.
type cronState struct {
	rds        *redis.Redis
	keys       []string
	staleAfter time.Duration // this config, owning, may be replaced once idle this long
	retention  time.Duration // how long a fire stays past its time (fireRetention at most)
}

// stateTTL is how long a scheduler's record outlives its last top-up; after
// that its entries count as new (no missed fires) and its fires are no
// longer revoked on a config change.
const stateTTL = 30 * 24 * time.Hour

// fireRetention is how long a fire stays in the state past its time at
// most: a changed entry's fires that are overdue by more (their consumers
// were down) are not revoked, and a fire that no replica could write for that
// long is given up. A fire left pending may have been written (its replica
// died before noting it), and writing it again is safe only while dq.WithID
// still collapses it, i.e. while the record of that write lives: DedupeTTL
// past the fire's time at least. The retention is therefore also DedupeTTL
// minus recordMargin at most, and every late write checks it again.
const fireRetention = 10 * time.Minute

// recordMargin covers the time from a top-up's reading of the time to the end
// of its writes (a state call, the revokes, the recording call, the write
// budget), during which a record must still live.
const recordMargin = 10 * time.Second

// retentionFor returns the fire retention for a queue whose job records live
// dedupe past their due time.
func retentionFor(dedupe time.Duration) time.Duration {
	return max(min(fireRetention, dedupe-recordMargin), 0)
}

func newCronState(rds *redis.Redis, prefix, tubes, name string, staleAfter, retention time.Duration) *cronState {
	base := prefix + ":cron:{" + tubes + ":" + name + "}"
	return &cronState{rds: rds, staleAfter: staleAfter, retention: retention,
		keys: []string{base, base + ":fires", base + ":doomed", base + ":pending"}}
}

// The cron state's scripts, each the prelude (the replicate_commands guard
// and the fire ID readers) followed by its own file, whose header gives its
// KEYS, ARGV and reply. sync.lua makes the caller's config the owner if it
// may be and reports what a top-up needs; record.lua gives ticks their IDs.
var (
	//go:embed lua/prelude.lua
	preludeLua string
	//go:embed lua/sync.lua
	syncLua string
	//go:embed lua/record.lua
	recordLua string

	syncScript   = redis.NewScript(preludeLua + syncLua)
	recordScript = redis.NewScript(preludeLua + recordLua)
)

// stateFire is a fire ID with its fire time.
type stateFire struct {
	id string
	ms int64
}

// syncResult is the answer of sync.
type syncResult struct {
	busy   bool
	now    time.Time
	doomed []stateFire          // stale fires to revoke
	due    []stateFire          // the caller's fires that came due unwritten
	last   map[string]time.Time // entry name → latest recorded fire; absent when none
}

// sync claims or checks ownership for the config cfg with the given entries.
// now zero means Redis time.
func (s *cronState) sync(ctx context.Context, cfg string, now time.Time, takeOver bool,
	entries []*entry) (syncResult, error) {
	var nowMs int64
	if !now.IsZero() {
		nowMs = max(now.UnixMilli(), 1)
	}
	force := "0"
	if takeOver {
		force = "1"
	}
	args := make([]any, 0, 6+2*len(entries))
	args = append(args, cfg, nowMs, s.staleAfter.Milliseconds(), s.retention.Milliseconds(),
		force, stateTTL.Milliseconds())
	for _, e := range entries {
		args = append(args, e.tag, e.Name)
	}
	rep, err := s.rds.ScriptRunCtx(ctx, syncScript, s.keys, args...)
	if err != nil {
		return syncResult{}, fmt.Errorf("dqx: cron state sync: %w", err)
	}

	parts, ok := rep.([]any)
	if !ok || len(parts) < 2 {
		return syncResult{}, fmt.Errorf("dqx: cron state sync: unexpected reply %v", rep)
	}
	status, _ := parts[0].(string)
	ms, _ := parts[1].(int64)
	res := syncResult{now: time.UnixMilli(ms)}
	if status == "BUSY" {
		res.busy = true
		return res, nil
	}
	if status != "OK" || len(parts) != 5 {
		return syncResult{}, fmt.Errorf("dqx: cron state sync: unexpected reply %v", rep)
	}
	res.doomed = readFires(parts[2])
	res.due = readFires(parts[3])
	last, _ := parts[4].([]any)
	res.last = make(map[string]time.Time, len(entries))
	for i, v := range last {
		str, _ := v.(string)
		if i >= len(entries) || str == "" {
			continue
		}
		if n, err := strconv.ParseInt(str, 10, 64); err == nil {
			res.last[entries[i].Name] = time.UnixMilli(n)
		}
	}
	return res, nil
}

// readFires reads a flat list of (fire ID, ms) pairs.
func readFires(v any) []stateFire {
	flat, _ := v.([]any)
	var out []stateFire
	for i := 0; i+1 < len(flat); i += 2 {
		id, _ := flat[i].(string)
		str, _ := flat[i+1].(string)
		ms, err := strconv.ParseInt(str, 10, 64)
		if id != "" && err == nil {
			out = append(out, stateFire{id: id, ms: ms})
		}
	}
	return out
}

// plannedFire is a tick to record and enqueue; id is empty until recorded.
type plannedFire struct {
	e      *entry
	at     time.Time
	id     string
	missed bool // a missed fire run late, at once
	// rewrite: the fire's ID may have been written before (it was pending:
	// its replica may have died between writing it and noting it).
	rewrite bool
}

// record gives the planned ticks their IDs if cfg still owns the schedule,
// after forgetting the doomed IDs now revoked and the fires found revoked;
// it reports false when cfg does not own it. A tick left without an ID
// belongs to a fire of another version of its entry.
func (s *cronState) record(ctx context.Context, cfg string, revoked, lost []string,
	fires []plannedFire) (bool, error) {
	args := make([]any, 0, 5+len(revoked)+len(lost)+3*len(fires))
	args = append(args, cfg, stateTTL.Milliseconds(), len(revoked), len(lost), len(fires))
	for _, id := range revoked {
		args = append(args, id)
	}
	for _, id := range lost {
		args = append(args, id)
	}
	for _, f := range fires {
		args = append(args, f.e.Name, f.e.tag, f.at.UnixMilli())
	}
	rep, err := s.rds.ScriptRunCtx(ctx, recordScript, s.keys, args...)
	if err != nil {
		return false, fmt.Errorf("dqx: cron state record: %w", err)
	}
	parts, ok := rep.([]any)
	if ok && len(parts) == 1 && parts[0] == "STALE" {
		return false, nil
	}
	if !ok || len(parts) != 1+len(fires) || parts[0] != "OK" {
		return false, fmt.Errorf("dqx: cron state record: unexpected reply %v", rep)
	}
	for i := range fires {
		fires[i].id, _ = parts[1+i].(string)
	}
	return true, nil
}

// written forgets the given fires as pending: a replica wrote them.
func (s *cronState) written(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	vals := make([]any, len(ids))
	for i, id := range ids {
		vals[i] = id
	}
	if _, err := s.rds.ZremCtx(ctx, s.keys[3], vals...); err != nil {
		return fmt.Errorf("dqx: cron state: noting written fires: %w", err)
	}
	return nil
}
