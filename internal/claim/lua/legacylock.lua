-- legacylock: take go-queue's own lock for a legacy body, as a go-queue
-- consumer would, so a mixed fleet runs the job once.
-- KEYS[1] the lock key (md5hex of the raw body)
-- ARGV[1] cid, [2] lock TTL ms
-- reply {1} ours (also when a re-sent SET finds our own cid) | {0} held by
--   someone else
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
if redis.call('GET', KEYS[1]) == ARGV[1] then return {1} end
return {0}
