-- finish: record how a run ended and say what to do with its copy.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] cid, [3] i (slot), [4] outcome (ok fail dead
--   yield unrun), [5] back-off ms, [6] maxFail, [7] error class and [8]
--   message of a fail or dead ('' none)
-- unrun is a yield of a claim whose handler never started (no worker came,
-- or its reply was lost): the attempt it counted is taken back.
-- reply {kind, 0, ms, 1} for the caller's own claim (its outcome recorded
--   now, or by an earlier send of this finish): {'DELETE', 0, 0, 1} |
--   {'RELEASE', 0, delay, 1} | {'BURY', 0, 0, 1};
--   {kind, 0, ms} as claim routes when the job is another claim's (or
--   pending): SPARE, DELETE (done, an extra dead copy, revoked), BURY. A
--   DELETE without the 4th element says nothing about this run: the job may
--   be a dead letter another run made.
local cid = ARGV[2]
local i = tonumber(ARGV[3])
local outcome = ARGV[4]
local backoff = tonumber(ARGV[5])
local maxFail = tonumber(ARGV[6])
local errClass = ARGV[7] or ''
local errMsg = ARGV[8] or ''

-- own marks an answer about the caller's own claim.
local function own(reply)
  reply[4] = 1
  return reply
end

local now = clock()
local r = record()
if not r then
  -- Redis lost the record: write down the end so that other copies follow it.
  -- A yield has nothing to record (the claim may never have happened).
  if outcome == 'ok' then
    redis.call('HSET', key, 'st', 'D', 'own', cid)
    expireAt(now, now)
    return own({'DELETE', 0, 0})
  elseif outcome == 'yield' or outcome == 'unrun' then
    return own({'RELEASE', 0, 0})
  end
  r = {st = 'R', own = cid, fail = 0, att = 0, due = 0, lease = 0, nb = 0, pw = 0}
end

if r.own ~= cid then return route(now, cid, i, r, false) end

if r.st ~= 'R' then
  -- A re-sent finish: answer as the first did, counting nothing again. Only
  -- a state this outcome writes can be its own: an ok finding X met a record
  -- that claim buried over maxFail after this run's lease lapsed (claim
  -- leaves own as it was), and is answered as any other claim's copy.
  if (outcome == 'ok') ~= (r.st == 'D') then return route(now, cid, i, r, false) end
  if r.st == 'W' then return own({'RELEASE', 0, math.max(r.nb - now, 0)}) end
  if r.st == 'X' then
    if not r.bur or r.bur == i then return own({'BURY', 0, 0}) end
    return own({'DELETE', 0, 0})
  end
  if r.st == 'D' or r.st == 'V' then return own({'DELETE', 0, 0}) end
  return route(now, cid, i, r, false)
end

-- The first send of this finish: its attempt gets its end and outcome
-- (e<N>), and a failure is the last error; mark holds those fields, written
-- with the state in one HSET.
local mark = {}
if r.att > 0 then mark = {'e' .. r.att, now .. ' ' .. outcome} end
if (outcome == 'fail' or outcome == 'dead') and errClass ~= '' then
  local k = #mark
  mark[k + 1], mark[k + 2], mark[k + 3], mark[k + 4], mark[k + 5], mark[k + 6] = 'err', errClass, 'em', errMsg, 'et', now
end

-- The TTL is counted from the record read and what is written here, as
-- expire would read it back.
if outcome == 'ok' then
  redis.call('HSET', key, 'st', 'D', 'own', cid, unpack(mark))
  expireAt(now, math.max(r.due, r.lease, r.nb, r.pw))
  return own({'DELETE', 0, 0})
elseif outcome == 'yield' then
  redis.call('HSET', key, 'st', 'W', 'own', cid, 'nb', now, unpack(mark))
  expireAt(now, math.max(r.due, r.lease, now, r.pw))
  return own({'RELEASE', 0, 0})
elseif outcome == 'unrun' then
  redis.call('HSET', key, 'st', 'W', 'own', cid, 'nb', now, 'att', math.max(num(r.att) - 1, 0), unpack(mark))
  expireAt(now, math.max(r.due, r.lease, now, r.pw))
  return own({'RELEASE', 0, 0})
end
local fail = r.fail + 1
if outcome == 'dead' or fail > maxFail then
  redis.call('HSET', key, 'st', 'X', 'own', cid, 'fail', fail, unpack(mark))
  redis.call('HDEL', key, 'bur', 'bid')
  expireAt(now, math.max(r.due, r.lease, r.nb, r.pw))
  return own({'BURY', 0, 0})
end
redis.call('HSET', key, 'st', 'W', 'own', cid, 'fail', fail, 'nb', now + backoff, unpack(mark))
expireAt(now, math.max(r.due, r.lease, now + backoff, r.pw))
return own({'RELEASE', 0, backoff})
