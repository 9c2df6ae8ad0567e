-- route: what a copy of slot i does when its holder may not run the job
-- (claim, or finish from a claim that is no longer the owner). Shared by
-- claim.lua and finish.lua, after common.lua.

-- spareMaxExp bounds the spare back-off exponent (2^30 s is past any lease).
local spareMaxExp = 30

-- deadLetter reports whether the copy of slot i with reference ref (false
-- when unknown) is the job's recorded dead letter: by reference where buried
-- recorded one (bid), by slot in a record an older version wrote. Other
-- copies may share the slot (a spill after an uncertain put, every legacy
-- copy), never the reference.
local function deadLetter(r, i, ref)
  if r.bid then return r.bid == ref end
  return r.bur == i
end

-- route answers for a record r (fields st own lease nb bur bid sp spc w) that
-- the caller cid, holding the copy of slot i with reference ref (false when
-- unknown), may not run now. States the caller could claim answer SPARE 0:
-- claim again at once and let claim decide (finish never takes a claim).
local function route(now, cid, i, r, ref)
  local st = r.st
  if st == 'R' then
    local left = r.lease - now
    if left <= 0 then return {'SPARE', 0, 0} end
    -- sp doubles the wait of each spare copy; spc remembers who was answered
    -- last, so a re-sent claim gets the same wait instead of a doubled one.
    local sp = r.sp
    if r.spc ~= cid then
      redis.call('HSET', key, 'sp', sp + 1, 'spc', cid)
      expire(now)
    elseif sp > 0 then
      sp = sp - 1
    end
    return {'SPARE', 0, math.min(math.pow(2, math.min(sp, spareMaxExp)) * 1000, left)}
  elseif st == 'W' then
    return {'SPARE', 0, math.max(r.nb - now, 0)}
  elseif st == 'X' then
    -- claim takes the dead letter (kicked) before routing; a finisher
    -- holding it keeps it buried rather than run it.
    if not r.bur or deadLetter(r, i, ref) then return {'BURY', 0, 0} end
    return {'DELETE', 0, 0}
  elseif st == 'D' then
    return {'DELETE', 0, 0}
  elseif st == 'V' then
    -- The third element tells a revoked job's copy from a finished one's.
    return {'DELETE', 0, 1}
  elseif st == 'P' then
    return {'SPARE', 0, 0}
  end
  -- A state this version does not know: keep the copy, never run it.
  return {'SPARE', 0, 1000}
end

-- record reads the fields route and the run scripts need, and due, so that
-- with lease, nb and pw a script knows what expire would read back; false
-- when the key is missing.
local function record()
  local h = redis.call('HMGET', key, 'st', 'own', 'att', 'fail', 'lease', 'nb', 'bur', 'sp', 'spc', 'bid', 'w',
    'ok', 'pw', 'wx', 'due')
  if not h[1] then return false end
  return {st = h[1], own = h[2], att = num(h[3]), fail = num(h[4]), lease = num(h[5]), nb = num(h[6]),
    bur = tonumber(h[7]), sp = num(h[8]), spc = h[9] or nil, bid = h[10] or nil, w = h[11] or nil,
    ok = h[12] == '1', pw = num(h[13]), wx = h[14] or nil, due = num(h[15])}
end
