-- extend: renew the lease of a running claim.
-- KEYS[1] the job's hash
-- ARGV[1] DedupeTTL ms, [2] cid, [3] lease ms
-- reply {kind, 0, 0}: {'OK'} | {'LOST'} (the claim is not ours any more)
local cid = ARGV[2]
local leaseMs = tonumber(ARGV[3])

local now = clock()
local h = redis.call('HMGET', key, 'st', 'own')
if not h[1] then
  -- Redis lost the record while the handler runs: write it back, marked
  -- uncertain, since what it held (n, gone) is unknown.
  redis.call('HSET', key, 'st', 'R', 'own', cid, 'lease', now + leaseMs, 'unc', 1)
  expire(now)
  return {'OK', 0, 0}
end
if h[1] ~= 'R' or h[2] ~= cid then return {'LOST', 0, 0} end
redis.call('HSET', key, 'lease', now + leaseMs)
expire(now)
return {'OK', 0, 0}
