package dqx

import (
	"context"
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

// fireIDLua reads fire IDs in the scripts: tagOf returns the entry's tag of
// a fire ID of either form, nameOf the entry name of a tag.
const fireIDLua = `
local function tagOf(id)
  local base = string.match(id, '^(.*)%-%d+$')
  if not base then return nil end
  return string.match(base, '^(.*)%.%d+$') or base
end
local function nameOf(tag)
  return tag and string.match(tag, '^cron%-(.*)%-%x+$')
end
`

// syncScript makes the caller's config the owner if it may be, and reports
// what the caller needs for a top-up.
//
// KEYS the four keys. ARGV[1] the caller's config digest; ARGV[2] now in ms,
// or 0 for Redis time; ARGV[3] how long the caller may be idle, as owner,
// before another config takes over, ms (an owner is judged by the value it
// stored, or, if another config stored it, by the caller's); ARGV[4] fire retention, ms; ARGV[5] "1" to take
// over unconditionally (a scheduler starting: the config started last wins);
// ARGV[6] the keys' TTL, ms; ARGV[7..] a (tag, name) pair for each of the
// caller's entries.
// Returns {"BUSY", now} when another config owns the schedule and is alive,
// else {"OK", now, {doomed fire ID, ms, ...} of the fires to revoke,
// {fire ID, ms, ...} of the caller's fires that came due unwritten, {latest
// fire ms of each entry in ARGV order, "" when none}}.
//
// The fires of entries not in the caller's config move to the doomed set if
// they are not due yet or no replica wrote them (the caller revokes them,
// and then gives their ticks IDs of its own), and are forgotten if they are
// due and written (they belong to the config of their time and run).
// Dooming happens here, atomically with the ownership check, so that a
// scheduler revokes only IDs that no later owner may take up again.
// The latest fire is kept per entry name, not per tag, so that a changed
// entry still knows which fires no replica wrote; when the fires ahead of an
// entry are doomed, its latest fire becomes the latest that stays, so that
// the new version misses no fire that the old one will no longer run.
// Re-running it gives the same answer.
var syncScript = redis.NewScript(fireIDLua + `
local now = tonumber(ARGV[2])
if now == 0 then
  redis.replicate_commands()
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cur = redis.call('HGET', KEYS[1], 'cfg')
if cur ~= ARGV[1] then
  local at = tonumber(redis.call('HGET', KEYS[1], 'cfgt') or '0')
  -- The owner is judged by its own stale-after; one written by another
  -- config (a release before cfgs took over since) does not count.
  local stale = tonumber(ARGV[3])
  local sc, sms = string.match(redis.call('HGET', KEYS[1], 'cfgs') or '', '^(%x+) (%d+)$')
  if cur and sc == cur then stale = tonumber(sms) end
  if cur and ARGV[5] ~= '1' and now - at <= stale then
    return {'BUSY', now}
  end
  redis.call('HSET', KEYS[1], 'cfg', ARGV[1])
end
redis.call('HSET', KEYS[1], 'cfgt', string.format('%d', now), 'cfgs', ARGV[1] .. ' ' .. ARGV[3])

local tags, names = {}, {}
for i = 7, #ARGV, 2 do
  tags[ARGV[i]] = true
  names[ARGV[i + 1]] = true
end
local old = '(' .. string.format('%d', now - tonumber(ARGV[4]))
for k = 2, 4 do redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', old) end

local fires = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local lowered = {}
for i = 1, #fires, 2 do
  local id, ms = fires[i], tonumber(fires[i + 1])
  if not tags[tagOf(id) or ''] then
    redis.call('ZREM', KEYS[2], id)
    local unwritten = redis.call('ZREM', KEYS[4], id) == 1
    if ms >= now or unwritten then redis.call('ZADD', KEYS[3], fires[i + 1], id) end
    local name = nameOf(tagOf(id))
    if name and ms >= now then lowered[name] = true end
  end
end
-- An entry whose fires ahead are doomed has, as its latest fire, the latest
-- one that stays (no later than now): the doomed ones will not run.
for name in pairs(lowered) do
  local latest = math.min(tonumber(redis.call('HGET', KEYS[1], 'l:' .. name) or now), now)
  for i = 1, #fires, 2 do
    local ms = tonumber(fires[i + 1])
    if ms > latest and nameOf(tagOf(fires[i])) == name and redis.call('ZSCORE', KEYS[2], fires[i]) then
      latest = ms
    end
  end
  redis.call('HSET', KEYS[1], 'l:' .. name, string.format('%d', latest))
end
local doomed = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
local due = {}
local pend = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. string.format('%d', now), 'WITHSCORES')
for i = 1, #pend, 2 do
  if tags[tagOf(pend[i]) or ''] then
    due[#due + 1] = pend[i]
    due[#due + 1] = pend[i + 1]
  end
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
for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ARGV[6]) end
return {'OK', now, doomed, due, last}
`)

// recordScript gives ticks their IDs, if the caller's config still owns the
// schedule. Recording before enqueueing is what makes a takeover safe: every
// fire an outgoing config may still put is in the fires set when the new
// owner dooms the stale ones, and a put after the revoke is refused.
//
// KEYS as syncScript. ARGV[1] the caller's config digest; ARGV[2] the TTL, ms;
// ARGV[3] the number r of doomed IDs now revoked, ARGV[4] the number x of
// IDs found revoked, ARGV[5] the number f of ticks; then r IDs; then x IDs;
// then f triples (entry name, entry tag, fire ms).
// Returns {"OK", ID or "" for each tick}, or {"STALE"} (nothing written) when
// another config owns the schedule.
//
// A tick keeps the ID it holds in the fires set if that ID has the caller's
// tag. It gets none ("") while a fire of the same entry and time is doomed
// (not revoked yet, or it ran) or recorded under another tag: that fire is
// the tick's. Otherwise it gets a new ID, of a generation no ID had before:
// a revoked ID is never handed out again. The x IDs found revoked (an
// enqueue answered ErrRevoked) leave the fires set first, so that their
// ticks get new IDs.
// Re-running it gives the same answer.
var recordScript = redis.NewScript(fireIDLua + `
if redis.call('HGET', KEYS[1], 'cfg') ~= ARGV[1] then return {'STALE'} end
local r, x, f = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 6, 5 + r do redis.call('ZREM', KEYS[3], ARGV[i]) end
for i = 6 + r, 5 + r + x do
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[4], ARGV[i])
end

local gen
local ids = {'OK'}
local base = 6 + r + x
for i = 0, f - 1 do
  local name, tag, ms = ARGV[base + 3 * i], ARGV[base + 3 * i + 1], ARGV[base + 3 * i + 2]
  local id
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], ms, ms)) do
    if nameOf(tagOf(d)) == name then id = '' end
  end
  if not id then
    for _, c in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ms, ms)) do
      local t = tagOf(c)
      if t == tag then
        id = c
        break
      elseif nameOf(t) == name then
        id = ''
      end
    end
  end
  if not id then
    if not gen then gen = redis.call('HINCRBY', KEYS[1], 'gen', 1) end
    id = tag .. '.' .. gen .. '-' .. ms
    redis.call('ZADD', KEYS[2], ms, id)
    redis.call('ZADD', KEYS[4], ms, id)
  end
  if id ~= '' then
    local cur = redis.call('HGET', KEYS[1], 'l:' .. name)
    if not cur or tonumber(cur) < tonumber(ms) then
      redis.call('HSET', KEYS[1], 'l:' .. name, ms)
    end
  end
  ids[#ids + 1] = id
end
for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
return ids
`)

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
