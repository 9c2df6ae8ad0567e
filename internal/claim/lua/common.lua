-- common: prepended to every script that works on a job's record.
-- KEYS[1] is the job's hash; ARGV[1] is DedupeTTL in ms, the other ARGV
-- belong to the script.

-- Redis < 7 replicates the script itself unless told otherwise, and then
-- refuses a write after TIME; from Redis 7 this is the default and a no-op.
if redis.replicate_commands then redis.replicate_commands() end

local key = KEYS[1]
local ttl = tonumber(ARGV[1])

-- clock is Redis time in ms: a Lua number is a double, so ms stay exact
-- where ns would be rounded.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- num reads a numeric field; HMGET gives false for a missing one.
local function num(v)
  return tonumber(v) or 0
end

-- expire ends every write (expireAt with the latest of those times, for a
-- script that knows them): the record outlives the latest of its due time,
-- lease, not-before and WithID put-window end by DedupeTTL, and is never left
-- without a TTL. The put window counts so that a writer whose last put
-- answers late still finds the record it reserved when it confirms.
local function expireAt(now, m)
  if m < now then m = now end
  redis.call('PEXPIRE', key, m - now + ttl)
end

local function expire(now)
  local f = redis.call('HMGET', key, 'due', 'lease', 'nb', 'pw')
  local m = now
  for j = 1, 4 do
    local x = tonumber(f[j])
    if x and x > m then m = x end
  end
  expireAt(now, m)
end

-- maxAttempts is how many attempts (fields a<N>, b<N>, e<N>) a record keeps:
-- the latest.
local maxAttempts = 20
