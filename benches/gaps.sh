#!/usr/bin/env bash
# Gaps filled through drops and a kill: a local Binance trade feed (the test
# kit's flood server) at RATE frames a second for SECONDS, its connection
# dropped every DROP_S seconds and trading on meanwhile, its REST history
# served by the test kit's REST server; `tickwire run` (release build) is
# SIGKILLed half-way and started again DOWN_S seconds later. Checks that
# every trade is in Redis once, in order, and prints the gaps and the time
# from the first trade after each gap to its trades applied (p50, max). The
# suite's test of the same name runs it small and unoptimized.
#
#   benches/gaps.sh [RATE] [SECONDS] [DROP_S] [DOWN_S]   (defaults: 20000 60 10 3)
set -euo pipefail
cd "$(dirname "$0")/.."
TICKWIRE_GAPS_RATE=${1:-20000} TICKWIRE_GAPS_SECONDS=${2:-60} \
  TICKWIRE_GAPS_DROP_S=${3:-10} TICKWIRE_GAPS_DOWN_S=${4:-3} \
  cargo test --release -q -p tickwire --test gaps -- --exact \
  a_fast_feed_dropped_and_killed_keeps_every_trade_once --nocapture 2>&1 \
  | grep -E "gaps figures|panicked|FAILED|left|right" || true
