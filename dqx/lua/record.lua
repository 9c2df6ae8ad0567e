-- record: gives ticks their IDs, if the caller's config still owns the
-- schedule. Recording before enqueueing is what makes a takeover safe: every
-- fire an outgoing config may still put is in the fires set when the new
-- owner dooms the stale ones, and a put after the revoke is refused.
--
-- KEYS as sync.lua. ARGV[1] the caller's config digest; ARGV[2] the TTL, ms;
-- ARGV[3] the number r of doomed IDs now revoked, ARGV[4] the number x of
-- IDs found revoked, ARGV[5] the number f of ticks; then r IDs; then x IDs;
-- then f triples (entry name, entry tag, fire ms).
-- Returns {"OK", ID or "" for each tick}, or {"STALE"} (nothing written) when
-- another config owns the schedule.
--
-- A tick keeps the ID it holds in the fires set if that ID has the caller's
-- tag. It gets none ("") while a fire of the same entry and time is doomed
-- (not revoked yet, or it ran) or recorded under another tag: that fire is
-- the tick's. Otherwise it gets a new ID, of a generation no ID had before:
-- a revoked ID is never handed out again. The x IDs found revoked (an
-- enqueue answered ErrRevoked) leave the fires set first, so that their
-- ticks get new IDs.
-- Re-running it gives the same answer.
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
