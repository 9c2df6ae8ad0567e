-- legacylock: take go-queue's own lock for a legacy body, as a go-queue
-- consumer would, so a mixed fleet runs the job once.
-- KEYS[1] the lock key (md5hex of the raw body)
-- ARGV[1] zerodq's mark for the job ("zerodq:" + job ID), [2] lock TTL ms
-- reply {1} zerodq's: free, or held by zerodq (this mark, or the 32
--   lowercase hex claim id older versions wrote), an earlier attempt that
--   failed or was cut short, so the job runs | {0} held by a go-queue
--   consumer ("1", or go-zero's 16-character RedisLock id): it ran the job
if redis.replicate_commands then redis.replicate_commands() end
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] and not (#v == 32 and not string.find(v, '[^0-9a-f]')) then
  return {0}
end
-- Renewed on every attempt, so go-queue consumers keep off while zerodq
-- retries.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
