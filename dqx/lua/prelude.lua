-- prelude: prepended to every cron state script.
-- Redis < 7 replicates a script itself unless told otherwise, and then
-- refuses a write after TIME; from Redis 7 this is the default and a no-op.
if redis.replicate_commands then redis.replicate_commands() end

-- tagOf returns the entry's tag of a fire ID of either form
-- (cron-<name>-<hash>-<ms> or cron-<name>-<hash>.<gen>-<ms>), nameOf the
-- entry name of a tag.
local function tagOf(id)
  local base = string.match(id, '^(.*)%-%d+$')
  if not base then return nil end
  return string.match(base, '^(.*)%.%d+$') or base
end
local function nameOf(tag)
  return tag and string.match(tag, '^cron%-(.*)%-%x+$')
end
