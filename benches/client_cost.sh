#!/usr/bin/env bash
# The client side of a Redis command: CPU per pipelined HSET for fred (driven
# as tickwire's lanes drive it) against the `redis` crate, ROUNDS times each,
# interleaved, on one private redis-server (persistence off). A stand-alone
# crate in benches/client_cost (not a workspace member; it fetches its own
# dependencies on first run).
#
#   benches/client_cost.sh [COMMANDS] [PIPELINE] [ROUNDS]   (defaults: 200000 500 3)
set -euo pipefail
cd "$(dirname "$0")/client_cost"
n=${1:-200000}
p=${2:-500}
rounds=${3:-3}
cargo build --release -q
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no --daemonize yes \
  --logfile "$work/redis.log" >/dev/null
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
for _ in $(seq "$rounds"); do
  for client in fred redis; do
    redis-cli -p "$port" flushall >/dev/null
    target/release/client-cost "redis://127.0.0.1:$port" "$client" "$n" "$p"
  done
done
