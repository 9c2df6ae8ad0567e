-- finish: record how a run ended and say what to do with its copy.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] cid, [3] i (slot), [4] outcome (ok fail dead
--   yield unrun), [5] back-off ms, [6] maxFail
-- unrun is a yield of a claim whose handler never started (no worker came,
-- or its reply was lost): the attempt it counted is taken back.
-- reply {kind, 0, ms}: {'DELETE', 0, 0} | {'RELEASE', 0, delay} |
--   {'BURY', 0, 0} | {'SPARE', 0, ms} (not our claim: as claim routes)
local cid = ARGV[2]
local i = tonumber(ARGV[3])
local outcome = ARGV[4]
local backoff = tonumber(ARGV[5])
local maxFail = tonumber(ARGV[6])

local now = clock()
local r = record()
if not r then
  -- Redis lost the record: write down the end so that other copies follow it.
  -- A yield has nothing to record (the claim may never have happened).
  if outcome == 'ok' then
    redis.call('HSET', key, 'st', 'D', 'own', cid)
    expire(now)
    return {'DELETE', 0, 0}
  elseif outcome == 'yield' or outcome == 'unrun' then
    return {'RELEASE', 0, 0}
  end
  r = {st = 'R', own = cid, fail = 0}
end

if r.own ~= cid then return route(now, cid, i, r, false) end

if r.st ~= 'R' then
  -- A re-sent finish: answer as the first did, counting nothing again.
  if r.st == 'W' then return {'RELEASE', 0, math.max(r.nb - now, 0)} end
  if r.st == 'X' then
    if not r.bur or r.bur == i then return {'BURY', 0, 0} end
    return {'DELETE', 0, 0}
  end
  if r.st == 'D' or r.st == 'V' then return {'DELETE', 0, 0} end
  return route(now, cid, i, r, false)
end

if outcome == 'ok' then
  redis.call('HSET', key, 'st', 'D', 'own', cid)
  expire(now)
  return {'DELETE', 0, 0}
elseif outcome == 'yield' then
  redis.call('HSET', key, 'st', 'W', 'own', cid, 'nb', now)
  expire(now)
  return {'RELEASE', 0, 0}
elseif outcome == 'unrun' then
  redis.call('HSET', key, 'st', 'W', 'own', cid, 'nb', now, 'att', math.max(num(r.att) - 1, 0))
  expire(now)
  return {'RELEASE', 0, 0}
end
local fail = r.fail + 1
if outcome == 'dead' or fail > maxFail then
  redis.call('HSET', key, 'st', 'X', 'own', cid, 'fail', fail)
  redis.call('HDEL', key, 'bur', 'bid')
  expire(now)
  return {'BURY', 0, 0}
end
redis.call('HSET', key, 'st', 'W', 'own', cid, 'fail', fail, 'nb', now + backoff)
expire(now)
return {'RELEASE', 0, backoff}
