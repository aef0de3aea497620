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
# shellcheck source=benches/private_redis.sh
source ../private_redis.sh
private_redis
for _ in $(seq "$rounds"); do
  for client in fred redis; do
    redis-cli -p "$port" flushall >/dev/null
    target/release/client-cost "redis://127.0.0.1:$port" "$client" "$n" "$p"
  done
done
