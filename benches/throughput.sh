#!/usr/bin/env bash
# End-to-end throughput against Redis' own ceiling, measured in one run:
#   1. tickwire replay --max of N synthetic ticks over M instruments
#   2. redis-benchmark -P 64 XADD of the same count and entry shape
# on one private redis-server (persistence off), and the ratio of the two.
#
#   benches/throughput.sh [TICKS] [INSTRUMENTS]     (defaults: 1000000 100)
set -euo pipefail
cd "$(dirname "$0")/.."
ticks=${1:-1000000}
instruments=${2:-100}
per=$((ticks / instruments))

cargo build --release -q -p tickwire
bin=target/release/tickwire
work=$(mktemp -d)
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no --daemonize yes \
  --logfile "$work/redis.log" >/dev/null
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done

"$bin" synth --instruments "$instruments" --sessions 1 --ticks-per-session "$per" --out "$work/ticks.jsonl" 2>/dev/null
echo "== tickwire replay --max: $ticks ticks, $instruments instruments"
"$bin" --redis "redis://127.0.0.1:$port" replay --max "$work/ticks.jsonl" | tee "$work/replay.txt"
tw=$(awk '/ticks\/s/ {print $2}' "$work/replay.txt")

redis-cli -p "$port" flushall >/dev/null
echo "== redis-benchmark -P 64 XADD: $ticks entries over $instruments streams, same fields"
redis-benchmark -p "$port" -P 64 -n "$ticks" -r "$instruments" -q \
  XADD ticks:__rand_int__ MAXLEN '~' 100000 '*' ltp 2600.05 qty 36 ts 1704080713828 vol 36 bid 2600.00 ask 2600.10 \
  | tr '\r' '\n' | tail -1 | tee "$work/bench.txt"
rb=$(grep -oE '[0-9.]+ requests per second' "$work/bench.txt" | awk '{print $1}')

python3 -c "print(f'== ratio tickwire/redis-benchmark: {float($tw)/float($rb):.2f} ({float($tw):,.0f} vs {float($rb):,.0f} per second)')"
