#!/usr/bin/env bash
# End-to-end throughput against Redis' own ceiling, measured in one run:
#   1. tickwire replay --max of N synthetic ticks over M instruments
#   2. redis-benchmark -P 64 XADD of the same count and entry shape
# on one private redis-server (persistence off), and the ratio of the two.
# For the replay it also prints what each tick cost: Redis commands per tick
# (INFO commandstats, reset just before the replay: total and per command),
# tickwire's CPU per tick (user + system, /usr/bin/time or /proc/<pid>/stat)
# and redis-server's CPU per tick (/proc/<pid>/stat before and after).
#
#   benches/throughput.sh [TICKS] [INSTRUMENTS]     (defaults: 1000000 100)
#   benches/throughput.sh 1000000 "100 10000"      (each, then ticks/s by count)
#   SESSIONS=100 benches/throughput.sh 300000 100   (the ticks over 100 sessions)
#   UNIVERSE=zipf benches/throughput.sh 1000000 10000   (a realistic universe: the
#                                                   ticks spread by Zipf's law,
#                                                   exponent ZIPF_S, 1.1)
#
# TICKWIRE_BIN=path runs that binary instead of building target/release
# (a before/after comparison against a binary built elsewhere).
# ENGINE=lua replays with the Lua indicator engine ([indicators] engine), after
# an inline replay of the same ticks: it prints the ratio of the two and the
# Redis time per call of the engine's own scripts (EVALSHA beyond the inline
# run's). Commands per tick are given as tickwire sent them (its summary's
# `redis commands`) and as Redis ran them (commandstats, script calls inside).
set -euo pipefail
cd "$(dirname "$0")/.."
ticks=${1:-1000000}
instruments=${2:-100}

# Several instrument counts ("100 10000"): one run each, then how ticks/s at
# each count compares with the first (issue 14: the cost of a tick should not
# depend on how many other instruments exist).
if [[ $instruments == *" "* ]]; then
  self=$(pwd)/benches/throughput.sh
  out=$(mktemp)
  first=""
  for m in $instruments; do
    "$self" "$ticks" "$m" | tee "$out"
    tps=$(awk '/^  ticks\/s/ {print $2}' "$out" | tail -1)
    echo "$m $tps" >>"$out.all"
  done
  echo "== ticks/s by instruments (the same $ticks ticks):"
  awk 'NR == 1 {base = $2} {printf "   %6d instruments %9d ticks/s  %.2f of the first\n", $1, $2, $2 / base}' "$out.all"
  rm -f "$out" "$out.all"
  exit 0
fi
# synth's --ticks-per-session is per instrument and session. SESSIONS=n
# spreads the ticks over n sessions: 100 instruments over 100 sessions have
# as few ticks per bar as 10,000 over one (nearly every tick closes a bar),
# which tells the cost of an instrument count from the cost of bar closes.
sessions=${SESSIONS:-1}
per=$(( (ticks + instruments * sessions - 1) / (instruments * sessions) ))
ticks=$((per * instruments * sessions))

if [[ -n "${TICKWIRE_BIN:-}" ]]; then
  bin=$TICKWIRE_BIN
else
  cargo build --release -q -p tickwire
  bin=target/release/tickwire
fi
# shellcheck source=benches/private_redis.sh
source benches/private_redis.sh
private_redis
engine=${ENGINE:-inline}
printf '[indicators]\nengine = "%s"\n' "$engine" >"$work/tickwire.toml"
redis_pid=$(redis-cli -p "$port" info server | tr -d '\r' | awk -F: '/^process_id:/ {print $2}')
hz=$(getconf CLK_TCK)
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

"$bin" synth --instruments "$instruments" --sessions "$sessions" --ticks-per-session "$per" \
  --universe "${UNIVERSE:-uniform}" --zipf-s "${ZIPF_S:-1.1}" --out "$work/ticks.jsonl" 2>/dev/null
printf '[indicators]\nengine = "inline"\n' >"$work/inline.toml"

# replay_once CONFIG NAME: one replay with CPU and commandstats into $work/NAME.*
replay_once() {
  local config=$1 name=$2
  redis-cli -p "$port" flushall >/dev/null
  redis-cli -p "$port" config resetstat >/dev/null
  local before
  before=$(cpu_ticks "$redis_pid")
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -o "$work/$name.cpu" -f '%U %S' \
      "$bin" --config "$config" --redis "redis://127.0.0.1:$port" replay --max "$work/ticks.jsonl" | tee "$work/$name.txt"
    tw_cpu_s=$(awk '{print $1 + $2}' "$work/$name.cpu")
  else
    # Sample /proc/<pid>/stat every 50 ms; the last sample before exit counts.
    "$bin" --config "$config" --redis "redis://127.0.0.1:$port" replay --max "$work/ticks.jsonl" >"$work/$name.txt" &
    local tw_pid=$! last=0 s
    while s=$(cpu_ticks "$tw_pid" 2>/dev/null); do last=$s; sleep 0.05; done
    wait "$tw_pid"
    cat "$work/$name.txt"
    tw_cpu_s=$(python3 -c "print($last / $hz)")
  fi
  redis_before=$before
  redis_after=$(cpu_ticks "$redis_pid")
  redis-cli -p "$port" info commandstats | tr -d '\r' >"$work/$name.stats"
}

if [[ $engine == lua ]]; then
  # The inline engine first, on the same ticks: what the Lua engine adds is
  # the difference (its ticks/s ratio, its scripts' Redis time per call).
  echo "== tickwire replay --max: $ticks ticks, $instruments instruments, inline engine (for the Lua engine's ratio)"
  replay_once "$work/inline.toml" inline >/dev/null
  inline_tw=$(awk '/ticks\/s/ {print $2}' "$work/inline.txt")
  echo "   ticks/s $inline_tw"
fi
echo "== tickwire replay --max: $ticks ticks, $instruments instruments, $engine engine"
replay_once "$work/tickwire.toml" replay
cp "$work/replay.stats" "$work/commandstats.txt"
tw=$(awk '/ticks\/s/ {print $2}' "$work/replay.txt")
sent=$(awk '/redis commands/ {print $3}' "$work/replay.txt")

redis-cli -p "$port" flushall >/dev/null
echo "== redis-benchmark -P 64 XADD: $ticks entries over $instruments streams, same fields"
redis-benchmark -p "$port" -P 64 -n "$ticks" -r "$instruments" -q \
  XADD ticks:__rand_int__ MAXLEN '~' 100000 '*' ltp 2600.05 qty 36 ts 1704080713828 vol 36 bid 2600.00 ask 2600.10 \
  | tr '\r' '\n' | tail -1 | tee "$work/bench.txt"
rb=$(grep -oE '[0-9.]+ requests per second' "$work/bench.txt" | awk '{print $1}')

python3 - "$work/commandstats.txt" "$ticks" "$tw" "$rb" "$tw_cpu_s" "$redis_before" "$redis_after" "$hz" \
  "${sent:-0}" "$work/inline.stats" "${inline_tw:-0}" <<'EOF'
import os, re, sys
path, ticks, tw, rb, tw_cpu, r0, r1, hz, sent, inline_path, inline_tw = sys.argv[1:]
ticks, tw, rb, tw_cpu = int(ticks), float(tw), float(rb), float(tw_cpu)
sent, inline_tw = int(sent), float(inline_tw)
redis_cpu = (int(r1) - int(r0)) / int(hz)

def stats(path):
    calls, usec = {}, {}
    for line in open(path):
        m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line)
        if m:
            calls[m.group(1).upper()] = int(m.group(2))
            usec[m.group(1).upper()] = int(m.group(3))
    # The INFO that read them counts itself; CONFIG is the reset.
    for own in ("INFO", "CONFIG|RESETSTAT"):
        calls.pop(own, None)
    return calls, usec

calls, usec = stats(path)
total = sum(calls.values())
print(f"== ratio tickwire/redis-benchmark: {tw / rb:.2f} ({tw:,.0f} vs {rb:,.0f} per second)")
print(f"== Redis commands per tick: {sent / ticks:.3f} sent by tickwire ({sent:,}, its summary's "
      f"'redis commands': a script call is one), {total / ticks:.3f} run by Redis "
      f"(INFO commandstats: {total:,}, the commands scripts run included)")
# Per command: calls per tick and Redis' own time per call (commandstats'
# usec: executing it, not reading or answering it; an EVALSHA's includes the
# commands its script runs, which are counted on their own rows as well).
def row(name):
    n = calls.get(name, 0)
    per_call = f"{usec[name] / n:6.2f} us per call" if n else ""
    print(f"   {name:<8} {n / ticks:.3f}  {per_call}")
for name in ("XADD", "EXPIRE", "HSET", "EVALSHA", "PING"):
    row(name)
others = sorted((n for n in calls if n not in ("XADD", "EXPIRE", "HSET", "EVALSHA", "PING")),
                key=lambda n: -calls[n])
for name in others[:6]:
    row(name)
if calls.get("EVALSHA"):
    n = calls["EVALSHA"]
    print(f"== EVALSHA: {n:,} calls, Redis time {usec['EVALSHA'] / n:.1f} us per call")
if inline_tw and os.path.exists(inline_path):
    # The Lua engine's own scripts: its EVALSHAs beyond the inline run's
    # (tick appends and alerts, the same in both).
    icalls, iusec = stats(inline_path)
    n = calls.get("EVALSHA", 0) - icalls.get("EVALSHA", 0)
    t = usec.get("EVALSHA", 0) - iusec.get("EVALSHA", 0)
    if n > 0:
        print(f"== Lua engine: {n:,} indicator script calls, Redis time {t / n:.1f} us per call; "
              f"{tw:,.0f} ticks/s against {inline_tw:,.0f} inline: {tw / inline_tw:.2f}")
print(f"== CPU per tick: tickwire {tw_cpu * 1e6 / ticks:.2f} us, "
      f"redis-server {redis_cpu * 1e6 / ticks:.2f} us "
      f"(tickwire {tw_cpu:.2f} s, redis-server {redis_cpu:.2f} s)")
# What Redis alone allows for the commands this build sends: its one main
# thread busy all the time on what this replay's ticks cost it, with a client
# that cost nothing. Sending fewer, fuller commands can lower it; a faster
# client alone cannot.
if redis_cpu > 0:
    bound = ticks / redis_cpu
    print(f"== Redis' own bound for these commands: {bound:,.0f} ticks/s "
          f"({redis_cpu * 1e6 / ticks:.2f} us of redis-server CPU a tick), "
          f"a ratio of at most {bound / rb:.2f} against redis-benchmark")
EOF
