-- tickwire tick_append v2
--
-- Appends a run of one instrument's ticks to its tick stream in one call:
-- Redis runs the XADDs inside the script for less than it costs a client to
-- send them one by one (and far less than it costs tickwire's client).
-- Every entry has its explicit ID, so the call is idempotent: an entry whose
-- ID the stream already has is refused by XADD and reported as there.
--
-- KEYS[1]  tick stream (ticks:{symbol})
-- ARGV[1]  MAXLEN (~), trimmed once after the run
-- ARGV[2]  n: the number of fields of each entry
-- ARGV[3 .. 2+n]  the field names
-- ARGV[3+n]  the entries, oldest first, as one MessagePack array of strings:
--            per entry its ID and its n values. One argument instead of
--            n + 1 per entry: a client encodes (and Redis parses) one bulk
--            string per run, and cmsgpack unpacks it in C.
--
-- Returns one element per entry: 1 appended, 0 already there, or the error
-- text Redis gave (OOM, NOPERM, WRONGTYPE...) for that entry.

local key = KEYS[1]
local n = tonumber(ARGV[2])
local f1, f2, f3, f4, f5, f6 = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local a = cmsgpack.unpack(ARGV[3 + n])
local pcall = redis.pcall
-- An XADD of any field count; the counts a tick has (3 to 6) are spelled out
-- in the loop below, which costs Redis a fifth less than a table unpacked.
local function append(i)
  local entry = {}
  for j = 1, n do
    entry[2 * j - 1] = ARGV[2 + j]
    entry[2 * j] = a[i + j]
  end
  return pcall('XADD', key, a[i], unpack(entry))
end

local out = {}
local added = 0
for i = 1, #a, n + 1 do
  local r
  if n == 6 then
    r = pcall('XADD', key, a[i], f1, a[i + 1], f2, a[i + 2], f3, a[i + 3],
      f4, a[i + 4], f5, a[i + 5], f6, a[i + 6])
  elseif n == 3 then
    r = pcall('XADD', key, a[i], f1, a[i + 1], f2, a[i + 2], f3, a[i + 3])
  elseif n == 4 then
    r = pcall('XADD', key, a[i], f1, a[i + 1], f2, a[i + 2], f3, a[i + 3],
      f4, a[i + 4])
  elseif n == 5 then
    r = pcall('XADD', key, a[i], f1, a[i + 1], f2, a[i + 2], f3, a[i + 3],
      f4, a[i + 4], f5, a[i + 5])
  else
    r = append(i)
  end
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'equal or smaller', 1, true) then
      out[#out + 1] = 0
    else
      out[#out + 1] = r.err
    end
  else
    out[#out + 1] = 1
    added = added + 1
  end
end
if added > 0 then
  redis.call('XTRIM', key, 'MAXLEN', '~', ARGV[1])
end
return out
