-- note: a put of this job is uncertain (it may still land), so its record
-- must not be collected by counting deleted copies.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] due ms, [3] n
-- reply {'OK', 0, 0}
local due = tonumber(ARGV[2])
local n = tonumber(ARGV[3])

if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'st', 'P', 'due', due)
  if n > 0 then redis.call('HSET', key, 'n', n) end
end
redis.call('HSET', key, 'unc', 1)
expire(clock())
return {'OK', 0, 0}
