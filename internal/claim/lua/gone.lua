-- gone: the copies of slots i (one or more) were deleted (beanstalkd
-- answered DELETED for each).
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2..] i (slots)
-- reply {'OK', 0, 0}; never creates the key

local h = redis.call('HMGET', key, 'st', 'n', 'gone', 'unc', 'w')
if not h[1] then return {'OK', 0, 0} end
local gone = num(h[3])
for a = 2, #ARGV do
  local bit = math.pow(2, tonumber(ARGV[a]))
  -- Set bit i in arithmetic: Lua 5.1 has no bit operators, and doubles hold
  -- every slot mask exactly.
  if math.floor(gone / bit) % 2 == 0 then gone = gone + bit end
end
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
