-- tickwire vwap v2
--
-- Session VWAP, sum(price * qty) / sum(qty) over the trades of the current
-- trading day, exactly as tickwire's inline engine computes it.
--
-- KEYS[1]  state hash (shared with bar_indicators; consumers never read it)
-- KEYS[2]  indicator:vwap:{symbol}   value, ts, period (0: session-anchored)
-- ARGV[1]  ttl (s; unused since v2: the writer sends each key's EXPIRE when
--          due, as for the keys it writes itself)
-- ARGV[2..] runs of trades of one session, oldest first; per run two
--          arguments: the session (YYYY-MM-DD), then its trades packed as
--          little-endian doubles, four per trade: ts_ms, seq, price * qty,
--          qty (both 0 for a trade without a price and a quantity above 0).
--          The product is the one the inline engine adds; the doubles are
--          read with struct.unpack, not parsed from text.
--
-- Idempotent: a trade whose (ts_ms, seq) is not after the last applied one is
-- skipped. Returns the number of trades applied.

local function fmt(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then
    return string.format('%d', v)
  end
  -- The shortest text that reads back as v: %g strips trailing zeros, so
  -- %.15g is it whenever 15 digits or fewer do (the first of p = 1..15 that
  -- reads back would print the same), else 16 or 17 digits.
  local s = string.format('%.15g', v)
  if tonumber(s) == v then return s end
  s = string.format('%.16g', v)
  if tonumber(s) == v then return s end
  return string.format('%.17g', v)
end

local st = redis.call('HMGET', KEYS[1], 'vwap_ms', 'vwap_seq', 'vwap_day', 'pv', 'v')
local last_ms = tonumber(st[1]) or -1
local last_seq = tonumber(st[2]) or -1
local day = st[3] or ''
local pv = tonumber(st[4]) or 0
local vol = tonumber(st[5]) or 0
local applied = 0
local ts

for i = 2, #ARGV, 2 do
  local d = ARGV[i]
  local trades = ARGV[i + 1]
  local pos = 1
  local ms, seq, pq, q
  while pos <= #trades do
    ms, seq, pq, q, pos = struct.unpack('<dddd', trades, pos)
    if ms > last_ms or (ms == last_ms and seq > last_seq) then
      last_ms = ms
      last_seq = seq
      if q > 0 then
        if d ~= day then
          day = d
          pv = 0
          vol = 0
        end
        pv = pv + pq
        vol = vol + q
        ts = ms
        applied = applied + 1
      end
    end
  end
end

if applied > 0 then
  redis.call('HSET', KEYS[1], 'vwap_ms', string.format('%d', last_ms), 'vwap_seq', string.format('%d', last_seq),
    'vwap_day', day, 'pv', string.format('%.17g', pv), 'v', string.format('%.17g', vol))
  redis.call('HSET', KEYS[2], 'value', fmt(pv / vol), 'ts', string.format('%d', ts), 'period', '0')
end
return applied
