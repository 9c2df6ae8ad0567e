-- confirm: a WithID producer reached its quorum; the ID is now enqueued.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] wid (writer id)
-- reply {'OK', 0, 0}; never creates the key, and confirms only the writer's
--   own reservation
local wid = ARGV[2]

local h = redis.call('HMGET', key, 'st', 'w', 'ok')
if h[1] == 'P' and h[2] == wid and h[3] ~= '1' then
  redis.call('HSET', key, 'ok', 1)
  expire(clock())
end
return {'OK', 0, 0}
