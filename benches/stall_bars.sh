#!/usr/bin/env bash
# A live feed whose Redis stalls across a minute boundary, at full size: the
# suite's test (tests/live_feeds.rs,
# a_live_run_whose_redis_stalls_across_a_minute_closes_every_bar_as_its_recording_does)
# built optimized with a fast feed and a long stall. A scripted Binance
# @trade feed of 4 symbols sends RATE frames a second to `tickwire run
# --record`, its venue clock set so that a minute ends 3 s in; Redis stops
# taking writes (CLIENT PAUSE WRITE) 1.5 s before that minute's end for STALL
# seconds. Both engines. It asserts every bar the live run closed (and every
# key of DBs 2-5) equals a replay of its own recording, and prints the trades
# of the closed minute, how far frames backed up, and how long until every
# trade was in Redis.
#
#   benches/stall_bars.sh [RATE] [STALL]      (defaults: 5000 15)
set -euo pipefail
cd "$(dirname "$0")/.."
export TICKWIRE_STALL_RATE=${1:-5000}
export TICKWIRE_STALL_S=${2:-15}
cargo test --release -q --test live_feeds -- --exact \
  a_live_run_whose_redis_stalls_across_a_minute_closes_every_bar_as_its_recording_does \
  --nocapture 2>&1 | grep -E -A30 "stall figures|test result|panicked" || true
