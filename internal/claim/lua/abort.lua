-- abort: the producer missed its quorum; stop the job unless a consumer has it.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] due ms, [3] n
-- reply {'ABORTED', 0, 0} (it will never run) | {'STARTED', 0, 0}
local due = tonumber(ARGV[2])
local n = tonumber(ARGV[3])

local st = redis.call('HGET', key, 'st')
if not st then
  redis.call('HSET', key, 'st', 'V', 'why', 'abort', 'due', due)
  if n > 0 then redis.call('HSET', key, 'n', n) end
  expire(clock())
  return {'ABORTED', 0, 0}
end
if st == 'P' then
  redis.call('HSET', key, 'st', 'V', 'why', 'abort')
  expire(clock())
  return {'ABORTED', 0, 0}
end
-- A revoked job stays revoked: an abort must not turn it into one that a
-- retried WithID enqueue may reserve again.
if st == 'V' then return {'ABORTED', 0, 0} end
return {'STARTED', 0, 0}
