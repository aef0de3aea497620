#!/usr/bin/env bash
# A live feed through a Redis outage at full size: the suite's spool test
# (crates/tickwire/tests/spool.rs) built optimized and run with a fast feed
# and a long outage. A scripted Binance @trade feed sends RATE frames a
# second to `tickwire run`; after BEFORE seconds the test SIGKILLs its
# redis-server (AOF `always`), keeps it down DOWN seconds and starts it
# again. It asserts every frame is in Redis once, in order, none dropped, the
# feed never reconnected and answered the venue's pings meanwhile, the spool
# empty at the end, and prints the figures (spool peak, frames spooled, how
# long until everything was in Redis).
#
#   benches/spool.sh [RATE] [DOWN] [BEFORE]      (defaults: 20000 30 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export TICKWIRE_SPOOL_RATE=${1:-20000}
export TICKWIRE_SPOOL_DOWN_S=${2:-30}
export TICKWIRE_SPOOL_BEFORE_S=${3:-5}
cargo test --release -q -p tickwire --test spool -- --exact \
  a_live_feed_through_a_redis_outage_spools_and_drops_nothing --nocapture 2>&1 \
  | grep -E -A40 "spool figures|test result|panicked" || true
