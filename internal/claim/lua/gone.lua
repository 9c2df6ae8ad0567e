-- gone: the copy of slot i was deleted (beanstalkd answered DELETED).
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] i (slot)
-- reply {'OK', 0, 0}; never creates the key
local i = tonumber(ARGV[2])

local h = redis.call('HMGET', key, 'st', 'n', 'gone', 'unc', 'w')
if not h[1] then return {'OK', 0, 0} end
local gone, bit = num(h[3]), math.pow(2, i)
-- Set bit i in arithmetic: Lua 5.1 has no bit operators, and doubles hold
-- every slot mask exactly.
if math.floor(gone / bit) % 2 == 0 then gone = gone + bit end
local n = num(h[2])
-- A finished or revoked job whose every copy is confirmed deleted needs no
-- record; unc means a copy may still land, so it stays until its TTL. A
-- WithID record (w set) stays too: it deduplicates until DedupeTTL.
if (h[1] == 'D' or h[1] == 'V') and h[4] ~= '1' and not h[5] and n > 0 and gone == math.pow(2, n) - 1 then
  redis.call('DEL', key)
  return {'OK', 0, 0}
end
redis.call('HSET', key, 'gone', gone)
expire(clock())
return {'OK', 0, 0}
