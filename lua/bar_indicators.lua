-- tickwire bar_indicators v2
--
-- RSI and ATR with Wilder smoothing on closed bars, exactly as TA-Lib and
-- tickwire's inline engine compute them (same operations, same order, same
-- doubles): RSI's first value after `rsi_period` changes, seeded with the plain
-- averages of gains and losses, then avg = (avg * (n - 1) + x) / n, and 0 when
-- gain + loss is within 1e-8; ATR skips bar 0 (no previous close), seeds with
-- the mean true range of bars 1..n, then Wilder.
--
-- KEYS[1]  state hash (the engine's own; consumers never read it)
-- KEYS[2]  indicator:rsi:{symbol}   value, ts, period
-- KEYS[3]  indicator:atr:{symbol}   value, ts, period
-- ARGV[1]  ttl (s; unused since v2: the writer sends each key's EXPIRE when
--          due, as for the keys it writes itself)   ARGV[2] rsi period   ARGV[3] atr period
-- ARGV[4..] per bar, oldest first: open_ms, high, low, close
--
-- Idempotent: a bar whose open time is not after the last applied one is
-- skipped, so a resent batch or a second replay changes nothing.
-- Returns the number of bars applied.

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

local function exact(v)
  return string.format('%.17g', v)
end

local rp = tonumber(ARGV[2])
local ap = tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'bar_ms', 'bars', 'prev', 'gain', 'loss', 'atr_sum', 'atr')
local bar_ms = tonumber(st[1]) or -1
local bars = tonumber(st[2]) or 0
local prev = tonumber(st[3]) or 0
local gain = tonumber(st[4]) or 0
local loss = tonumber(st[5]) or 0
local atr_sum = tonumber(st[6]) or 0
local atr = tonumber(st[7])
local rsi
local applied = 0

for i = 4, #ARGV, 4 do
  local ms = tonumber(ARGV[i])
  local h = tonumber(ARGV[i + 1])
  local l = tonumber(ARGV[i + 2])
  local c = tonumber(ARGV[i + 3])
  if ms > bar_ms then
    bar_ms = ms
    applied = applied + 1
    bars = bars + 1
    if bars > 1 then
      local change = c - prev
      local tr = math.max(math.max(h - l, math.abs(h - prev)), math.abs(l - prev))
      local k = bars - 1
      if k <= rp then
        if change < 0 then loss = loss - change else gain = gain + change end
        if k == rp then
          loss = loss / rp
          gain = gain / rp
        end
      else
        loss = loss * (rp - 1)
        gain = gain * (rp - 1)
        if change < 0 then loss = loss - change else gain = gain + change end
        loss = loss / rp
        gain = gain / rp
      end
      if k >= rp then
        local total = gain + loss
        if -0.00000001 < total and total < 0.00000001 then rsi = 0 else rsi = 100 * (gain / total) end
      end
      if k < ap then
        atr_sum = atr_sum + tr
      elseif k == ap then
        atr_sum = atr_sum + tr
        atr = atr_sum / ap
      else
        local v = atr * (ap - 1)
        v = v + tr
        atr = v / ap
      end
    end
    prev = c
  end
end

if applied > 0 then
  if atr then
    redis.call('HSET', KEYS[1], 'bar_ms', string.format('%d', bar_ms), 'bars', string.format('%d', bars),
      'prev', exact(prev), 'gain', exact(gain), 'loss', exact(loss), 'atr_sum', exact(atr_sum),
      'atr', exact(atr))
  else
    redis.call('HSET', KEYS[1], 'bar_ms', string.format('%d', bar_ms), 'bars', string.format('%d', bars),
      'prev', exact(prev), 'gain', exact(gain), 'loss', exact(loss), 'atr_sum', exact(atr_sum))
  end
  local ts = string.format('%d', bar_ms)
  if rsi then
    redis.call('HSET', KEYS[2], 'value', fmt(rsi), 'ts', ts, 'period', string.format('%d', rp))
  end
  if atr and bars - 1 >= ap then
    redis.call('HSET', KEYS[3], 'value', fmt(atr), 'ts', ts, 'period', string.format('%d', ap))
  end
end
return applied
