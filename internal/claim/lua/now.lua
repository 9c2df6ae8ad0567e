-- now: Redis time, the one time base of the claim protocol. Reads nothing,
-- writes nothing.
-- KEYS none; ARGV none
-- reply {seconds, microseconds}
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
return {tonumber(t[1]), tonumber(t[2])}
