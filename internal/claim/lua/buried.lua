-- buried: the copy of slot i, reference ref, was buried; is it the job's
-- dead letter?
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] i (slot), [3] ref (the copy's own reference:
--   node and beanstalkd job number)
-- reply {'KEEP', 0, 0} | {'EXTRA', 0, 0} (another copy is; delete this one);
--   never creates the key
local i = tonumber(ARGV[2])
local ref = ARGV[3]

local h = redis.call('HMGET', key, 'st', 'bur', 'bid')
-- Without a record keeping the copy visible is the safe side.
if not h[1] then return {'KEEP', 0, 0} end
if h[1] ~= 'X' then return {'EXTRA', 0, 0} end
local bur = tonumber(h[2])
if not bur then
  -- The first copy buried is the dead letter; its reference tells it from
  -- other copies of its slot, so that only it, kicked, runs again.
  redis.call('HSET', key, 'bur', i, 'bid', ref, 'c:' .. ref, 'x')
  expire(clock())
  return {'KEEP', 0, 0}
end
-- A dead letter recorded by an older version has no reference: by slot.
if (h[3] and h[3] == ref) or (not h[3] and bur == i) then return {'KEEP', 0, 0} end
return {'EXTRA', 0, 0}
