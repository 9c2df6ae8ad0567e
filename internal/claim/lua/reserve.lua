-- reserve: a WithID producer asks to own the job's ID before it puts copies.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] wid (writer id), [3] due ms, [4] put window ms
-- reply {'FRESH', 0, 0} (put now) | {'BUSY', 0, ms} (another writer is putting
--   it: retry then) | {'DUP', 0, 0} (already enqueued) | {'REVOKED', 0, 0}
local wid = ARGV[2]
local due = tonumber(ARGV[3])
local window = tonumber(ARGV[4])

local now = clock()
local h = redis.call('HMGET', key, 'st', 'why', 'ok', 'w', 'pw')
local st = h[1]
local take = false
if not st then
  take = true
elseif st == 'V' then
  -- Only an aborted enqueue may be tried again; a revoked ID stays revoked.
  if h[2] ~= 'abort' then return {'REVOKED', 0, 0} end
  take = true
elseif st == 'P' and h[3] ~= '1' then
  -- Unconfirmed: ours again (a retry), or the writer's window has passed
  -- (it died between reserve and its puts).
  local pw = num(h[5])
  if h[4] ~= wid and pw >= now then return {'BUSY', 0, math.max(pw - now, 1)} end
  take = true
end
if not take then return {'DUP', 0, 0} end
-- tk marks a reservation taken over from another writer whose window passed
-- unconfirmed: that writer may have put copies and returned the ID to its
-- caller (its confirm did not reach Redis), so an abort of this one must not
-- revoke the ID (abort.lua).
local tk = st == 'P' and h[4] and h[4] ~= wid
redis.call('HSET', key, 'st', 'P', 'w', wid, 'pw', now + window, 'due', due)
if tk then redis.call('HSET', key, 'tk', 1) elseif st ~= 'P' then redis.call('HDEL', key, 'tk') end
redis.call('HDEL', key, 'ok', 'why')
expire(now)
return {'FRESH', 0, 0}
