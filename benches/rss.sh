#!/usr/bin/env bash
# Memory over a long replay: the release binary replays TICKS synthetic ticks
# (INSTRUMENTS instruments, SESSIONS sessions) with --max into a private
# redis-server (persistence off, streams capped at the default MAXLEN), while
# its RSS is sampled from /proc every 0.2 s. Prints the RSS at each tenth of
# the ticks written (read off the replay's progress lines) and the peak, so
# growth per million ticks reads off one run.
#
#   benches/rss.sh [TICKS] [INSTRUMENTS] [SESSIONS]   (defaults: 10000000 100 5)
set -euo pipefail
cd "$(dirname "$0")/.."
ticks=${1:-10000000}
instruments=${2:-100}
sessions=${3:-5}
per=$((ticks / instruments / sessions))

cargo build --release -q -p tickwire
bin=$PWD/target/release/tickwire
# shellcheck source=benches/private_redis.sh
source benches/private_redis.sh
private_redis
"$bin" synth --instruments "$instruments" --sessions "$sessions" --ticks-per-session "$per" \
  --out "$work/ticks.jsonl" 2>/dev/null
echo "== tickwire replay --max: $((per * instruments * sessions)) ticks, $instruments instruments, $sessions sessions"
"$bin" --redis "redis://127.0.0.1:$port" replay --max "$work/ticks.jsonl" >"$work/summary.txt" 2>"$work/progress.txt" &
pid=$!
: >"$work/rss.txt"
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  done_ticks=$(grep -oE '[0-9]+ ticks,' "$work/progress.txt" 2>/dev/null | tail -1 | grep -oE '[0-9]+' || echo 0)
  [ -n "$rss" ] && echo "$done_ticks $rss" >>"$work/rss.txt"
  sleep 0.2
done
wait "$pid" || echo "replay exit code $?"
grep -E "ticks written|ticks/s" "$work/summary.txt" || true
python3 - "$work/rss.txt" "$ticks" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
total = int(sys.argv[2])
if not rows:
    sys.exit("no samples")
peak = max(r[1] for r in rows)
for tenth in range(1, 11):
    at = total * tenth // 10
    seen = [r for r in rows if r[0] <= at]
    if seen:
        print(f"  {seen[-1][0]:>10,} ticks: RSS {seen[-1][1] / 1024:7.1f} MB")
print(f"  peak RSS {peak / 1024:.1f} MB")
PY
