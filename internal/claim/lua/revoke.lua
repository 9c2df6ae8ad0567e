-- revoke: stop a job that has not run; copies are deleted when they come due.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] due ms (0 unknown)
-- reply {'REVOKED', 0, 0} | {'RUNNING', 0, 0} | {'DONE', 0, 0} |
--   {'DEAD', 0, 0} | {'MAYBEDONE', 0, 0} (no record, and it may have run
--   and been collected)
local due = tonumber(ARGV[2])

local now = clock()
local h = redis.call('HMGET', key, 'st', 'md')
local st = h[1]
if st == 'R' then return {'RUNNING', 0, 0} end
if st == 'D' then return {'DONE', 0, 0} end
if st == 'X' then return {'DEAD', 0, 0} end
if not st then
  -- md remembers the doubt, so that asking again answers the same.
  local maybe = due <= now
  redis.call('HSET', key, 'st', 'V', 'why', 'revoke')
  if due > 0 then redis.call('HSET', key, 'due', due) end
  if maybe then redis.call('HSET', key, 'md', 1) end
  expire(now)
  if maybe then return {'MAYBEDONE', 0, 0} end
  return {'REVOKED', 0, 0}
end
if st ~= 'V' then
  redis.call('HSET', key, 'st', 'V', 'why', 'revoke')
  expire(now)
elseif redis.call('HGET', key, 'why') ~= 'revoke' then
  redis.call('HSET', key, 'why', 'revoke')
  expire(now)
end
if h[2] == '1' then return {'MAYBEDONE', 0, 0} end
return {'REVOKED', 0, 0}
