-- sync: makes the caller's config the owner if it may be, and reports
-- what the caller needs for a top-up.
--
-- KEYS the four keys of the state (state.go). ARGV[1] the caller's config
-- digest; ARGV[2] now in ms, or 0 for Redis time; ARGV[3] how long the
-- caller may be idle, as owner, before another config takes over, ms (an
-- owner is judged by the value it stored, or, if another config stored it,
-- by the caller's); ARGV[4] fire retention, ms; ARGV[5] "1" to take
-- over unconditionally (a scheduler starting: the config started last wins);
-- ARGV[6] the keys' TTL, ms; ARGV[7..] a (tag, name) pair for each of the
-- caller's entries.
-- Returns {"BUSY", now} when another config owns the schedule and is alive,
-- else {"OK", now, {doomed fire ID, ms, ...} of the fires to revoke,
-- {fire ID, ms, ...} of the caller's fires that came due unwritten, {latest
-- fire ms of each entry in ARGV order, "" when none}}.
--
-- The fires of entries not in the caller's config move to the doomed set if
-- they are not due yet or no replica wrote them (the caller revokes them,
-- and then gives their ticks IDs of its own), and are forgotten if they are
-- due and written (they belong to the config of their time and run).
-- Dooming happens here, atomically with the ownership check, so that a
-- scheduler revokes only IDs that no later owner may take up again.
-- The latest fire is kept per entry name, not per tag, so that a changed
-- entry still knows which fires no replica wrote; when the fires ahead of an
-- entry are doomed, its latest fire becomes the latest that stays, so that
-- the new version misses no fire that the old one will no longer run.
-- Re-running it gives the same answer.
local now = tonumber(ARGV[2])
if now == 0 then
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
