-- claim: may the holder of the copy of slot i run the job now?
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] cid (claim id), [3] due ms, [4] n (0 unknown),
--   [5] i (slot), [6] unc (1 or 0), [7] lease ms, [8] maxFail, [9] ref (the
--   copy's own reference: node and beanstalkd job number), [10] writer (the
--   WithID writer that put the copy; '' unknown), [11] by (the claimant's
--   consumer ID; '' unknown)
-- reply {kind, attempt, ms}: {'RUN', att, 0} | {'EARLY', 0, due - now} |
--   {'SPARE', 0, ms} | {'DELETE', 0, 0} | {'DELETE', 0, 1} (revoked) | {'BURY', 0, 0}
local cid = ARGV[2]
local due = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local i = tonumber(ARGV[5])
local unc = ARGV[6] == '1'
local leaseMs = tonumber(ARGV[7])
local maxFail = tonumber(ARGV[8])
local ref = ARGV[9]
local writer = ARGV[10]
local by = ARGV[11] or ''

local now = clock()
if due > now then return {'EARLY', 0, due - now} end

local r = record()
if r and r.st == 'R' and r.own == cid then
  -- A re-sent claim that already won.
  return {'RUN', r.att, 0}
end
if r and writer ~= '' and r.w then
  if r.wx and string.find(' ' .. r.wx .. ' ', ' ' .. writer .. ' ', 1, true) then
    -- A copy of a writer that missed its quorum and aborted.
    return {'DELETE', 0, 0}
  end
  if r.w ~= writer then
    if r.st ~= 'P' or r.ok then
      -- The reservation of the ID was taken over from this copy's writer
      -- (its put window had passed) and that enqueue stands.
      return {'DELETE', 0, 0}
    end
    -- Another writer holds the ID unconfirmed: wait for its outcome while
    -- its window lasts; once it has passed unconfirmed, no other enqueue
    -- stands, and this copy's writer may have returned the ID to its caller.
    if r.pw >= now then return {'SPARE', 0, math.max(r.pw - now, 1)} end
  end
end

local claimable, fail, att, lapsed = false, 0, 0, false
if not r then
  claimable = true
else
  fail, att = r.fail, r.att
  if r.st == 'P' then
    claimable = true
  elseif r.st == 'W' and r.nb <= now then
    claimable = true
  elseif r.st == 'R' and r.lease <= now then
    -- The owner neither finished nor renewed: that run counts as failed.
    claimable, fail, lapsed = true, fail + 1, true
  elseif r.st == 'X' and r.bur and deadLetter(r, i, ref) then
    -- An operator kicked the dead letter: it gets a fresh set of retries.
    claimable, fail = true, 0
  end
end
if not claimable then return route(now, cid, i, r, ref) end

if lapsed then
  -- The last error is the lapsed lease, named after the consumer that held
  -- it (its attempt keeps no end: it never finished).
  local who = redis.call('HGET', key, 'b' .. r.att)
  local msg = 'lease lapsed'
  if who then msg = msg .. ' on consumer ' .. who end
  redis.call('HSET', key, 'err', 'lease', 'em', msg, 'et', now)
end

if fail > maxFail then
  -- bur and bid are cleared so that the first copy buried now becomes the
  -- dead letter.
  redis.call('HSET', key, 'st', 'X', 'fail', fail, 'due', due)
  redis.call('HDEL', key, 'bur', 'bid')
  expire(now)
  return {'BURY', 0, 0}
end
att = att + 1
-- The attempt's start and copy (a<N>: the copy's fate is to have run) and
-- its consumer (b<N>; that of the latest attempt is the job's owner) are
-- fields of their own, each short enough for Redis to keep a small hash
-- compact (hash-max-listpack-value, 64 bytes). Every field is written in
-- one HSET, and the TTL is counted from what this script read and wrote, so
-- that a first claim, the common one, makes four calls: TIME, HMGET, HSET,
-- PEXPIRE.
local lease = now + leaseMs
local set = {'st', 'R', 'own', cid, 'att', att, 'fail', fail, 'lease', lease, 'sp', 0, 'due', due,
  'a' .. att, now .. ' ' .. ref}
if by ~= '' then
  set[#set + 1], set[#set + 2] = 'b' .. att, by
end
if n > 0 then
  set[#set + 1], set[#set + 2] = 'n', n
end
if unc then
  set[#set + 1], set[#set + 2] = 'unc', 1
end
redis.call('HSET', key, unpack(set))
if att > maxAttempts then
  -- The story keeps the latest attempts only.
  local old = att - maxAttempts
  redis.call('HDEL', key, 'spc', 'a' .. old, 'b' .. old, 'e' .. old)
elseif r and r.spc then
  redis.call('HDEL', key, 'spc')
end
local nb, pw = 0, 0
if r then nb, pw = r.nb, r.pw end
expireAt(now, math.max(due, lease, nb, pw))
return {'RUN', att, 0}
