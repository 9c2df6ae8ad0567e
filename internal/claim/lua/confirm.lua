-- confirm: a WithID producer reached its quorum; does its enqueue stand?
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] wid (writer id)
-- reply {'OK', 0, 0} (the writer's reservation stands: the ID is enqueued) |
--   {'TAKEN', 0, 0} (another writer's enqueue stands, confirmed or taken up
--   by a consumer: delete this writer's copies, the ID is enqueued) |
--   {'OTHER', 0, 0} (another writer holds the reservation unconfirmed, or an
--   abort freed it: delete this writer's copies and reserve again) |
--   {'MAYBEDONE', 0, 0} (no record: it expired after the job ran from this
--   writer's copies, or Redis lost it; the enqueue stands and the copies
--   stay, since writing the job again could run it twice) | {'REVOKED', 0, 0};
--   never creates the key
local wid = ARGV[2]

local h = redis.call('HMGET', key, 'st', 'w', 'ok', 'why')
local st, w = h[1], h[2]
if st == 'V' then
  if h[4] == 'abort' then return {'OTHER', 0, 0} end
  return {'REVOKED', 0, 0}
end
if not st then return {'MAYBEDONE', 0, 0} end
if w == wid then
  if st == 'P' and h[3] ~= '1' then
    redis.call('HSET', key, 'ok', 1)
    expire(clock())
  end
  return {'OK', 0, 0}
end
if st == 'P' and h[3] ~= '1' then return {'OTHER', 0, 0} end
return {'TAKEN', 0, 0}
