-- tickwire profile_write v1
-- One key of a key profile, written in one call (one command per key per batch):
-- the value, its TTL and, when asked, a PUBLISH of it.
--
-- KEYS[1]  the key
-- ARGV[1]  hash | string | list | stream
-- ARGV[2]  TTL, seconds
-- ARGV[3]  list: entries kept (newest first); otherwise ignored
-- ARGV[4]  channel to PUBLISH the written value on ("" for none)
-- ARGV[5]  list: the JSON field holding each entry's order key (e.g. "ts")
-- ARGV[6..]
--   hash:   field, value, field, value, ...
--   string: the value
--   list:   order key, entry, order key, entry, ... oldest first. Entries at
--           or before the newest one already in the list are skipped, so a
--           resent batch or a second replay adds nothing.
--   stream: ID, field count n, n field/value pairs, ... (ARGV[3] = MAXLEN ~).
--           An ID at or below the stream's top was written before (a resend,
--           a replay): Redis refuses it and it is skipped.
local key = KEYS[1]
local kind, ttl, cap, channel = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local last
if kind == 'hash' then
  redis.call('HSET', key, unpack(ARGV, 6))
elseif kind == 'string' then
  last = ARGV[6]
  redis.call('SET', key, last)
elseif kind == 'list' then
  local head = redis.call('LINDEX', key, 0)
  local newest = nil
  if head then
    local ok, decoded = pcall(cjson.decode, head)
    if ok and type(decoded) == 'table' then
      newest = tonumber(decoded[ARGV[5]])
    end
  end
  for i = 6, #ARGV - 1, 2 do
    local order = tonumber(ARGV[i])
    if newest == nil or order > newest then
      redis.call('LPUSH', key, ARGV[i + 1])
      newest = order
      last = ARGV[i + 1]
    end
  end
  redis.call('LTRIM', key, 0, cap - 1)
elseif kind == 'stream' then
  local i = 6
  while i <= #ARGV do
    local n = tonumber(ARGV[i + 1])
    local args = {'XADD', key, 'MAXLEN', '~', cap, ARGV[i]}
    for j = 0, 2 * n - 1 do
      args[#args + 1] = ARGV[i + 2 + j]
    end
    pcall(redis.call, unpack(args))
    i = i + 2 + 2 * n
  end
end
redis.call('EXPIRE', key, ttl)
if channel ~= '' and last then
  redis.call('PUBLISH', channel, last)
end
return 1
