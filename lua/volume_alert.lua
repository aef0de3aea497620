-- tickwire volume_alert v1
--
-- Appends one volume-surge alert per instrument and bucket, never more: a
-- marker key set with NX guards the XADD, so a resent batch, a second replay
-- or a second crossing in the same bucket appends nothing.
--
-- KEYS[1]  marker (alert:sent:{symbol}:{session}:{HH}:{MM})
-- KEYS[2]  alerts stream
-- ARGV[1]  marker ttl (s)   ARGV[2] stream ttl (s)   ARGV[3] stream MAXLEN (~)
-- ARGV[4..] the alert's field/value pairs
-- Returns 1 if the alert was appended, 0 if it was already there.

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
local entry = {}
for i = 4, #ARGV do
  entry[#entry + 1] = ARGV[i]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(entry))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
