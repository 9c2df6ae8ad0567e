package dqx

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/zeromicro/go-zero/core/stores/redis"
)

// cronState is a scheduler's shared record in Redis: which config owns the
// schedule, the fires written so far, and each entry's latest written fire.
// Two keys under one hash tag, so that a script may touch both on a Redis
// Cluster:
//
//	<prefix>:cron:{<tubes>:<name>}        hash: cfg (owning config digest),
//	                                      cfgt (ms of its last top-up),
//	                                      l:<entry> (ms of the latest fire written)
//	<prefix>:cron:{<tubes>:<name>}:fires  zset: fire ID → fire ms
//
// The fires set is what lets a changed or removed entry's pre-written fires
// be found and revoked; the latest fire per entry is what tells a restart
// which fires no replica wrote.
type cronState struct {
	rds        *redis.Redis
	keys       []string
	staleAfter time.Duration // an owner idle this long may be replaced
}

// stateTTL is how long a scheduler's record outlives its last top-up; after
// that its entries count as new (no missed fires) and its fires are no
// longer revoked on a config change.
const stateTTL = 30 * 24 * time.Hour

// fireRetention is how long a fire stays in the fires set past its time: a
// changed entry's fires that are overdue by more (their consumers were down)
// are not revoked.
const fireRetention = 10 * time.Minute

func newCronState(rds *redis.Redis, prefix, tubes, name string, staleAfter time.Duration) *cronState {
	base := prefix + ":cron:{" + tubes + ":" + name + "}"
	return &cronState{rds: rds, keys: []string{base, base + ":fires"}, staleAfter: staleAfter}
}

// syncScript makes the caller's config the owner if it may be, and reports
// what the caller needs for a top-up.
//
// KEYS[1] the state hash, KEYS[2] the fires zset.
// ARGV[1] the caller's config digest; ARGV[2] now in ms, or 0 for Redis time;
// ARGV[3] how long an owner may be idle before another config takes over, ms;
// ARGV[4] fire retention, ms; ARGV[5] "1" to take over unconditionally (a
// scheduler starting: the config started last wins); ARGV[6] the keys' TTL,
// ms; ARGV[7..] a (tag, name) pair for each of the caller's entries.
// Returns {"BUSY", now} when another config owns the schedule and is alive,
// else {"OK", now, {fire IDs of entries not in the caller's config}, {latest
// fire ms of each entry in ARGV order, "" when none}}. The latest fire is
// kept per entry name, not per tag, so that a changed entry still knows which
// fires no replica wrote.
// Re-running it gives the same answer: it removes nothing that the caller has
// not acted on (stale fires leave the set only after they were revoked).
var syncScript = redis.NewScript(`
local now = tonumber(ARGV[2])
if now == 0 then
  redis.replicate_commands()
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cur = redis.call('HGET', KEYS[1], 'cfg')
if cur ~= ARGV[1] then
  local at = tonumber(redis.call('HGET', KEYS[1], 'cfgt') or '0')
  if cur and ARGV[5] ~= '1' and now - at <= tonumber(ARGV[3]) then
    return {'BUSY', now}
  end
  redis.call('HSET', KEYS[1], 'cfg', ARGV[1])
end
redis.call('HSET', KEYS[1], 'cfgt', string.format('%d', now))

local tags, names = {}, {}
for i = 7, #ARGV, 2 do
  tags[ARGV[i]] = true
  names[ARGV[i + 1]] = true
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%d', now - tonumber(ARGV[4])))
local stale = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local tag = string.match(id, '^(.*)%-%d+$')
  if not tag or not tags[tag] then stale[#stale + 1] = id end
end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'l:' and not names[string.sub(f, 3)] then
    redis.call('HDEL', KEYS[1], f)
  end
end
local last = {}
for i = 8, #ARGV, 2 do
  last[#last + 1] = redis.call('HGET', KEYS[1], 'l:' .. ARGV[i]) or ''
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {'OK', now, stale, last}
`)

// recordScript notes fires before they are enqueued, and forgets revoked
// ones, if the caller's config still owns the schedule. Recording first is
// what makes a takeover safe: every fire an outgoing config may still put is
// in the set when the new owner reads it, and a put after the revoke is
// refused.
//
// KEYS as syncScript. ARGV[1] the caller's config digest; ARGV[2] the TTL, ms;
// ARGV[3] the number r of revoked IDs, ARGV[4] the number f of fires; then r
// IDs; then f triples (fire ID, fire ms, entry name).
// Returns "OK", or "STALE" (nothing written) when another config owns it.
var recordScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'cfg') ~= ARGV[1] then return 'STALE' end
local r = tonumber(ARGV[3])
local f = tonumber(ARGV[4])
for i = 5, 4 + r do redis.call('ZREM', KEYS[2], ARGV[i]) end
local base = 5 + r
for i = 0, f - 1 do
  local id, ms, name = ARGV[base + 3 * i], ARGV[base + 3 * i + 1], ARGV[base + 3 * i + 2]
  redis.call('ZADD', KEYS[2], ms, id)
  local cur = redis.call('HGET', KEYS[1], 'l:' .. name)
  if not cur or tonumber(cur) < tonumber(ms) then
    redis.call('HSET', KEYS[1], 'l:' .. name, ms)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 'OK'
`)

// syncResult is the answer of sync.
type syncResult struct {
	busy  bool
	now   time.Time
	stale []string
	last  map[string]time.Time // entry name → latest written fire; absent when none
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
	args = append(args, cfg, nowMs, s.staleAfter.Milliseconds(), fireRetention.Milliseconds(),
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
	if status != "OK" || len(parts) != 4 {
		return syncResult{}, fmt.Errorf("dqx: cron state sync: unexpected reply %v", rep)
	}
	stale, _ := parts[2].([]any)
	for _, id := range stale {
		if s, ok := id.(string); ok {
			res.stale = append(res.stale, s)
		}
	}
	last, _ := parts[3].([]any)
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

// plannedFire is a fire to record and enqueue.
type plannedFire struct {
	e      *entry
	at     time.Time
	id     string
	missed bool // a missed fire run late, at once
}

// record notes fires and forgets revoked IDs if cfg still owns the schedule;
// it reports false when it does not.
func (s *cronState) record(ctx context.Context, cfg string, revoked []string,
	fires []plannedFire) (bool, error) {
	args := make([]any, 0, 4+len(revoked)+3*len(fires))
	args = append(args, cfg, stateTTL.Milliseconds(), len(revoked), len(fires))
	for _, id := range revoked {
		args = append(args, id)
	}
	for _, f := range fires {
		args = append(args, f.id, f.at.UnixMilli(), f.e.Name)
	}
	rep, err := s.rds.ScriptRunCtx(ctx, recordScript, s.keys, args...)
	if err != nil {
		return false, fmt.Errorf("dqx: cron state record: %w", err)
	}
	switch rep {
	case "OK":
		return true, nil
	case "STALE":
		return false, nil
	}
	return false, fmt.Errorf("dqx: cron state record: unexpected reply %v", rep)
}
