-- buried: the copy of slot i was buried; is it the job's dead letter?
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] i (slot)
-- reply {'KEEP', 0, 0} | {'EXTRA', 0, 0} (another copy is; delete this one);
--   never creates the key
local i = tonumber(ARGV[2])

local h = redis.call('HMGET', key, 'st', 'bur')
-- Without a record keeping the copy visible is the safe side.
if not h[1] then return {'KEEP', 0, 0} end
local bur = tonumber(h[2])
if h[1] ~= 'X' or (bur and bur ~= i) then return {'EXTRA', 0, 0} end
if not bur then
  redis.call('HSET', key, 'bur', i)
  expire(clock())
end
return {'KEEP', 0, 0}
