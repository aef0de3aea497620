#!/usr/bin/env bash
# Redis outages during a replay: how soon writing resumes, and whether every
# tick lands once.
#   1. tickwire replay --max of N synthetic ticks into a private redis-server
#      with AOF `appendfsync always`
#   2. KILLS times: SIGKILL that server, keep it down DOWN seconds, start it
#      again on its AOF; then once more kept down LONG seconds (0: not at
#      all); after each, print how long after it answered PONG (its AOF
#      loaded) writes resumed
#   3. the replay's summary and exit code, and the stream entries in Redis
#
#   benches/outage.sh [TICKS] [KILLS] [DOWN] [LONG]   (defaults: 1000000 3 5 60)
#
# The replay's log (RUST_LOG passes through), then the times Redis was killed
# and answered again, are left in /tmp/outage-log.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ticks=${1:-1000000}
kills=${2:-3}
down=${3:-5}
long=${4:-60}
instruments=50

cargo build --release -q -p tickwire
bin=$PWD/target/release/tickwire
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; cat "$work/log.txt" "$work/marks.txt" >/tmp/outage-log.txt 2>/dev/null; rm -rf "$work"' EXIT
up() {
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync always \
    --save "" --daemonize yes --logfile "$work/redis.log" >/dev/null
  until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do sleep 0.02; done
}
processed() { redis-cli -p "$port" info stats | awk -F: '/total_commands_processed/ {print $2+0}'; }
now() { python3 -c 'import time; print(f"{time.time():.3f}")'; }

# One outage: SIGKILL, DOWN seconds down, start again on the AOF, and time
# the first writes after it answered PONG.
outage() {
  local what=$1 secs=$2
  sleep 2
  kill -0 "$replay" 2>/dev/null || { echo "the replay ended before $what: use more ticks"; return 1; }
  kill -9 "$(redis-cli -p "$port" info server | awk -F: '/^process_id/ {print $2+0}')"
  echo "$(now) $what: Redis killed" >>"$work/marks.txt"
  sleep "$secs"
  up
  local back before
  back=$(now)
  echo "$back $what: Redis answers PONG" >>"$work/marks.txt"
  before=$(processed)
  while kill -0 "$replay" 2>/dev/null; do
    sleep 0.02
    # More than the PINGs of the heartbeat and the pools: the writer is writing.
    if [ $(($(processed) - before)) -gt 100 ]; then
      echo "$what: Redis down ${secs} s; writing resumed $(python3 -c "import time; print(f'{time.time() - $back:.2f}')") s after it was back"
      return 0
    fi
  done
  echo "$what: the replay ended before writing resumed"
}

up
"$bin" synth --instruments "$instruments" --sessions 1 --ticks-per-session $((ticks / instruments)) \
  --out "$work/ticks.jsonl" 2>/dev/null
"$bin" --redis "redis://127.0.0.1:$port" replay --max "$work/ticks.jsonl" >"$work/summary.txt" 2>"$work/log.txt" &
replay=$!
for k in $(seq "$kills"); do
  outage "kill $k" "$down" || break
done
if [ "$long" -gt 0 ]; then
  outage "kill $((kills + 1)) (long)" "$long" || true
fi
set +e
wait "$replay"
rc=$?
set -e
grep -E "ticks read|ticks written|duplicates|write errors|retries|waited|restarts|NOT WRITTEN" "$work/summary.txt" || true
echo "exit code $rc"
entries=0
for key in $(redis-cli -p "$port" -n 4 --scan --pattern 'ticks:*'); do
  entries=$((entries + $(redis-cli -p "$port" -n 4 xlen "$key")))
done
echo "stream entries in Redis: $entries of $ticks"
