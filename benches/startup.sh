#!/usr/bin/env bash
# Fixed start-up and shut-down cost of one `tickwire replay`: the release
# binary replays a 3-line tick file N times into one private redis-server
# (persistence off), each run a fresh process as a backtest over many small
# files starts them, and the mean, minimum and maximum wall time are printed.
# Every run is checked: exit 0, 3 ticks written, the heartbeat in Redis.
#
#   benches/startup.sh [RUNS] [BINARY]     (defaults: 50, target/release/tickwire)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
bin=${2:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p tickwire
  bin=${CARGO_TARGET_DIR:-target}/release/tickwire
fi
# shellcheck source=benches/private_redis.sh
source benches/private_redis.sh
private_redis

cat > "$work/three.jsonl" <<'TICKS'
{"exchange":"NSE","symbol":"SBIN","ts":1704169800000,"ltp":600.5,"qty":1}
{"exchange":"NSE","symbol":"SBIN","ts":1704169801000,"ltp":600.55,"qty":2}
{"exchange":"NSE","symbol":"TCS","ts":1704169802000,"ltp":3600,"qty":3}
TICKS
# Metrics on a free port per run, as a real replay serves them.
cat > "$work/startup.toml" <<CONF
[metrics]
listen = "127.0.0.1:0"
CONF

echo "== $runs x tickwire replay of a 3-line file ($bin)"
python3 - "$bin" "$port" "$work" "$runs" <<'PY'
import statistics, subprocess, sys, time
bin, port, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
url = f"redis://127.0.0.1:{port}"
cli = ["redis-cli", "-p", port]
times = []
for i in range(runs):
    subprocess.run(cli + ["flushall"], check=True, capture_output=True)
    t0 = time.perf_counter()
    p = subprocess.run([bin, "--config", f"{work}/startup.toml", "--redis", url,
                        "replay", f"{work}/three.jsonl"], capture_output=True, text=True)
    times.append(time.perf_counter() - t0)
    if p.returncode != 0:
        sys.exit(f"run {i}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    written = [l.split()[-1] for l in p.stdout.splitlines() if l.strip().startswith("ticks written")]
    if written != ["3"]:
        sys.exit(f"run {i}: the summary does not say 3 ticks written:\n{p.stdout}")
    n = sum(int(subprocess.run(cli + ["-n", "4", "xlen", k], capture_output=True, text=True).stdout)
            for k in ("ticks:SBIN", "ticks:TCS"))
    hb = subprocess.run(cli + ["-n", "0", "hget", "tickwire:heartbeat", "ticks_total"],
                        capture_output=True, text=True).stdout.strip()
    if n != 3 or hb != "3":
        sys.exit(f"run {i}: {n} ticks in Redis, heartbeat ticks_total {hb!r}")
ms = [t * 1000 for t in times]
print(f"== wall time per run: mean {statistics.mean(ms):.1f} ms, "
      f"median {statistics.median(ms):.1f} ms, min {min(ms):.1f} ms, max {max(ms):.1f} ms")
PY
