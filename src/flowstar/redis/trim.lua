-- Trim a stream below the oldest entry that some consumer group still needs.
--
-- KEYS[1]  the stream
-- Returns  {removed, floor_id or nil, length_after}
--
-- A group still needs an entry while it is pending there (delivered, not acknowledged) or
-- not yet delivered (newer than the group's last-delivered-id).  So a group's floor is its
-- oldest pending id, or the id just after last-delivered-id when nothing is pending.
-- Everything below the smallest floor of all groups was acknowledged by every group, and
-- XTRIM MINID removes exactly that.  With no group at all nothing is trimmed: nobody has
-- acknowledged anything.  Running as one script, no delivery, acknowledgement or new group
-- can slip in between reading the floors and trimming.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, false, 0}
end

local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then
  return {0, false, redis.call('XLEN', KEYS[1])}
end

local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms, seq
end

-- Stream ids compare numerically part by part; milliseconds fit a double exactly.
local function less(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  if am ~= bm then
    return tonumber(am) < tonumber(bm)
  end
  return tonumber(as) < tonumber(bs)
end

local floor = nil
for _, group in ipairs(groups) do
  local info = {}
  for i = 1, #group, 2 do
    info[group[i]] = group[i + 1]
  end
  local candidate
  if tonumber(info['pending']) > 0 then
    candidate = redis.call('XPENDING', KEYS[1], info['name'])[2]
  else
    local ms, seq = split(info['last-delivered-id'])
    candidate = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
  end
  if floor == nil or less(candidate, floor) then
    floor = candidate
  end
end

local removed = redis.call('XTRIM', KEYS[1], 'MINID', floor)
return {removed, floor, redis.call('XLEN', KEYS[1])}
