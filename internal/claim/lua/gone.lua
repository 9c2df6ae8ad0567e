-- gone: the copies of slots i (one or more), with references ref, were
-- deleted (beanstalkd answered DELETED for each).
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] History ms (0: no summary), [3..] pairs of i
--   (slot) and ref (the copy's reference; '' unknown)
-- reply {'OK', 0, 0}; never creates the key

local history = tonumber(ARGV[2])
local h = redis.call('HMGET', key, 'st', 'n', 'gone', 'unc', 'w', 'due', 'lease', 'nb', 'pw')
if not h[1] then return {'OK', 0, 0} end
local st = h[1]
-- Each copy's fate (c:<ref>), named by the state that had it deleted; a copy
-- an attempt ran from is told by its attempt (a<N>) instead. Only a dead
-- job's copies are looked up first: the dead letter ('x') itself deleted is
-- 'd', and a re-sent gone must not turn it into an extra copy.
local fate = 'd'
if st == 'D' then fate = 's' elseif st == 'V' then fate = 'v' elseif st == 'X' then fate = 'e' end
local gone = num(h[3])
local refs = {}
for a = 3, #ARGV, 2 do
  local bit = math.pow(2, tonumber(ARGV[a]))
  -- Set bit i in arithmetic: Lua 5.1 has no bit operators, and doubles hold
  -- every slot mask exactly.
  if math.floor(gone / bit) % 2 == 0 then gone = gone + bit end
  local ref = ARGV[a + 1]
  if ref and ref ~= '' then refs[#refs + 1] = 'c:' .. ref end
end
local n = num(h[2])
-- A finished or revoked job whose every copy is confirmed deleted needs no
-- record; unc means a copy may still land, so it stays until its TTL. A
-- WithID record (w set) stays too: it deduplicates until DedupeTTL.
local last = (st == 'D' or st == 'V') and h[4] ~= '1' and not h[5] and n > 0 and gone == math.pow(2, n) - 1
if last and history <= 0 then
  redis.call('DEL', key)
  return {'OK', 0, 0}
end
local set = {'gone', gone}
if #refs > 0 then
  local was = {}
  if st == 'X' then was = redis.call('HMGET', key, unpack(refs)) end
  for k, c in ipairs(refs) do
    if was[k] == 'x' then
      set[#set + 1], set[#set + 2] = c, 'd'
    elseif not was[k] then
      set[#set + 1], set[#set + 2] = c, fate
    end
  end
end
redis.call('HSET', key, unpack(set))
if last then
  -- Kept for History as a summary: what only the protocol needs goes, and
  -- the TTL only ever shrinks, so a re-sent gone changes nothing. gone stays
  -- (complete), which is what tells a re-sent gone that nothing is left.
  redis.call('HDEL', key, 'own', 'lease', 'nb', 'sp', 'spc', 'unc')
  local left = redis.call('PTTL', key)
  if left < 0 or left > history then redis.call('PEXPIRE', key, history) end
  return {'OK', 0, 0}
end
-- Nothing written here moves the TTL's times: they were read above.
expireAt(clock(), math.max(num(h[6]), num(h[7]), num(h[8]), num(h[9])))
return {'OK', 0, 0}
