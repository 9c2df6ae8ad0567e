-- abort: the producer missed its quorum; stop the job unless a consumer has
-- it or another writer's enqueue of its ID stands.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] wid (writer id; '' for a generated ID),
--   [3] due ms, [4] n
-- reply {'ABORTED', 0, 0} (it will never run) | {'STARTED', 0, 0} (a
--   consumer has it) | {'TAKEN', 0, 0} (another enqueue of the ID was
--   confirmed: it stands) | {'OTHER', 0, 0} (another writer reserved the ID
--   after this one's put window and is putting it: its outcome, not ours)
local wid = ARGV[2]
local due = tonumber(ARGV[3])
local n = tonumber(ARGV[4])

local h = redis.call('HMGET', key, 'st', 'w', 'ok', 'tk', 'wx')
local st = h[1]
if not st then
  redis.call('HSET', key, 'st', 'V', 'why', 'abort', 'due', due)
  if n > 0 then redis.call('HSET', key, 'n', n) end
  expire(clock())
  return {'ABORTED', 0, 0}
end
if st == 'P' then
  if h[3] == '1' then return {'TAKEN', 0, 0} end
  if h[2] and h[2] ~= wid then return {'OTHER', 0, 0} end
  if h[4] == '1' then
    -- This writer took the ID over from one whose confirm may have been
    -- lost after its puts: only this writer's copies are struck (wx), and
    -- its window ends now, so the earlier writer's copies may run.
    local wx = h[5]
    if not wx then wx = wid
    elseif not string.find(' ' .. wx .. ' ', ' ' .. wid .. ' ', 1, true) then wx = wx .. ' ' .. wid end
    redis.call('HSET', key, 'wx', wx, 'pw', clock())
    expire(clock())
    return {'ABORTED', 0, 0}
  end
  redis.call('HSET', key, 'st', 'V', 'why', 'abort')
  expire(clock())
  return {'ABORTED', 0, 0}
end
-- A revoked job stays revoked: an abort must not turn it into one that a
-- retried WithID enqueue may reserve again.
if st == 'V' then return {'ABORTED', 0, 0} end
return {'STARTED', 0, 0}
