#!/usr/bin/env bash
# Tick-to-Redis latency of a live run, as an operator reads it off the
# `tickwire_tick_to_redis_latency_seconds` histogram: a local Binance trade
# feed (the test kit's scripted WebSocket server, one connection, two
# symbols) at RATE frames a second for SECONDS into `tickwire run` (release
# build) writing to a private redis-server; once every tick is in Redis the
# histogram is scraped and its p50 / p99 / p99.9 printed (interpolated within
# the buckets, as Prometheus' histogram_quantile does). The suite's test of
# the same name runs it small and unoptimized.
#
#   benches/latency.sh [SECONDS] [RATE ...]      (defaults: 10 1000 50000)
#   EVERY_US=200 benches/latency.sh              (the source sends what is due
#                                                 every 200 µs, not every 2 ms)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(1000 50000)
for rate in "${rates[@]}"; do
  TICKWIRE_LATENCY_RATE=$rate TICKWIRE_LATENCY_SECONDS=$seconds \
    TICKWIRE_LATENCY_EVERY_US=${EVERY_US:-2000} \
    cargo test --release -q -p tickwire --test latency -- --nocapture 2>&1 \
    | grep -E "latency figures|panicked|FAILED" || true
done
