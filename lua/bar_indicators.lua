-- tickwire bar_indicators v3
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

-- fmt begin: the same in bar_indicators.lua and vwap.lua; a test runs it
-- against Rust's f64 Display over many doubles.
--
-- A value's text exactly as the inline engine writes it (Rust's f64
-- Display): the shortest digits that read back as v (of two as near, the
-- one away from zero), in plain notation, never an exponent
-- (0.0000013275169386783574, 1000000000000000).

-- The digits one unit up in their last place (a carry may add a place to
-- the exponent).
local function fmt_up(digits, exp)
  local i = #digits
  while i > 0 and string.sub(digits, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #digits - 1), exp + 1 end
  return string.sub(digits, 1, i - 1) .. string.char(string.byte(digits, i) + 1)
    .. string.rep('0', #digits - i), exp
end

-- The digits and exponent of an %e text.
local function fmt_split(s)
  local lead, rest, e = string.match(s, '^-?(%d)%.?(%d*)e([-+]?%d+)$')
  return lead .. rest, tonumber(e)
end

local function fmt_full(v)
  if v ~= v then return 'NaN' end
  if v == math.huge then return 'inf' end
  if v == -math.huge then return '-inf' end
  if v == 0 then
    if 1 / v < 0 then return '-0' end
    return '0'
  end
  if v == math.floor(v) and math.abs(v) < 1e15 then
    return string.format('%d', v)
  end
  local sign = ''
  if v < 0 then sign = '-' end
  -- The shortest digits. %.{p}e rounds to p + 1 digits and keeps their
  -- trailing zeros; for a normal double the first of 15, 16, 17 digits
  -- that reads back holds its shortest text (a shorter text that reads
  -- back is what 15 digits round to). A subnormal has fewer significant
  -- bits, so its digits are counted up from one.
  local first = 14
  if math.abs(v) < 2.2250738585072014e-308 then first = 0 end
  -- A power of two has half the gap below it than above: the digits
  -- rounded to may lie just below its range while those one up read back.
  local m = math.frexp(v)
  local pow2 = m == 0.5 or m == -0.5
  local s, p, digits, exp
  for q = first, 16 do
    p = q
    s = string.format('%.' .. q .. 'e', v)
    if tonumber(s) == v then break end
    if pow2 and math.abs(tonumber(s)) < math.abs(v) then
      local up, upexp = fmt_up(fmt_split(s))
      local t = sign .. string.sub(up, 1, 1) .. '.' .. string.sub(up, 2) .. 'e' .. upexp
      if tonumber(t) == v then
        s = t
        break
      end
    end
  end
  digits, exp = fmt_split(s)
  -- Exactly halfway between two texts of p + 1 digits (its exact digits
  -- go on with a 5, then zeros): %e rounds to the even one, Rust away from
  -- zero. Two 15-digit texts that far apart cannot both read back as a
  -- normal double; and a double whose exact digits end within 18 has at
  -- most 25 bits after its binary point.
  local w = v * 33554432
  if (p >= 15 or first == 0) and w == math.floor(w) then
    local lead, x = string.match(string.format('%.' .. (p + 41) .. 'e', v), '^-?(%d)%.(%d+)e')
    if lead .. string.sub(x, 1, p) == digits and string.sub(x, p + 1, p + 1) == '5'
        and not string.find(string.sub(x, p + 2), '[1-9]') then
      digits, exp = fmt_up(digits, exp)
    end
  end
  digits = (string.gsub(digits, '0+$', ''))
  local n = #digits
  if exp < 0 then
    return sign .. '0.' .. string.rep('0', -exp - 1) .. digits
  end
  if n <= exp + 1 then
    return sign .. digits .. string.rep('0', exp + 1 - n)
  end
  return sign .. string.sub(digits, 1, exp + 1) .. '.' .. string.sub(digits, exp + 2)
end

local function fmt(v)
  -- Most values: %g is plain notation between 1e-4 and 1e15, and the first
  -- of 15, 16, 17 digits that reads back is the text, unless v is a power
  -- of two or could lie halfway between two texts (at most 25 bits after
  -- its binary point): those, and the rest, take the long way.
  local a = math.abs(v)
  if a >= 1e-4 and a < 1e15 and v ~= math.floor(v) then
    local m = math.frexp(v)
    local w = v * 33554432
    if m ~= 0.5 and m ~= -0.5 and w ~= math.floor(w) then
      local s = string.format('%.15g', v)
      if tonumber(s) == v then return s end
      s = string.format('%.16g', v)
      if tonumber(s) == v then return s end
      return string.format('%.17g', v)
    end
  end
  return fmt_full(v)
end
-- fmt end

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
