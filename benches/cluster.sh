#!/usr/bin/env bash
# Capacity, measured in one run: the same synthetic ticks replayed (--max)
#   1. into one private redis-server, and
#   2. into a private Redis Cluster of 3 primaries (REPLICAS=1: with a
#      replica each, which every batch then waits for, redis.wait_replicas),
# both persistence off, on this machine. Prints ticks/s of each, the ratio,
# the ticks/s per primary, redis-server CPU per tick in each, and the memory
# a tick stream entry takes (used_memory of the cluster's primaries over the
# stream entries held, after the replay; every output included, at the
# default MAXLEN).
#
#   benches/cluster.sh [TICKS] [INSTRUMENTS]      (defaults: 300000 100)
#   REPLICAS=1 benches/cluster.sh                 (3 primaries, 3 replicas)
#
# TICKWIRE_BIN=path runs that binary instead of building target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
ticks=${1:-300000}
instruments=${2:-100}
per=$(( (ticks + instruments - 1) / instruments ))
ticks=$((per * instruments))
replicas=${REPLICAS:-0}
nodes_n=$((3 * (1 + replicas)))

if [[ -n "${TICKWIRE_BIN:-}" ]]; then
  bin=$TICKWIRE_BIN
else
  cargo build --release -q -p tickwire
  bin=target/release/tickwire
fi
# shellcheck source=benches/private_redis.sh
source benches/private_redis.sh
private_redis
single=$port

# Three cluster nodes on free ports whose bus port (+10000) is free too.
ports=$(NODES=$nodes_n python3 - <<'EOF'
import socket
import os
out = []
while len(out) < int(os.environ["NODES"]):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p > 55535 or p in out:
        continue
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 10000))
    except OSError:
        continue
    finally:
        b.close()
    out.append(p)
print(" ".join(map(str, out)))
EOF
)
trap 'for p in $ports; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done;
      redis-cli -p "$single" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
nodes=()
for p in $ports; do
  mkdir -p "$work/node$p"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$work/node$p" --cluster-enabled yes \
    --cluster-config-file nodes.conf --save "" --appendonly no --daemonize yes \
    --logfile "$work/node$p/redis.log" >/dev/null
  nodes+=("127.0.0.1:$p")
done
for p in $ports; do until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done; done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$replicas" --cluster-yes >/dev/null
for p in $ports; do
  until redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
done
# Every replica synced before the replay.
while [[ $(for p in $ports; do redis-cli -p "$p" info replication; done | grep -c 'master_link_status:up') -lt $((3 * replicas)) ]]; do
  sleep 0.1
done
primaries=$(for p in $ports; do if redis-cli -p "$p" info replication | grep -q 'role:master'; then echo "$p"; fi; done | tr '\n' ' ')
first=${nodes[0]}
url="redis-cluster://$first?node=${nodes[1]}&node=${nodes[2]}"

"$bin" synth --instruments "$instruments" --sessions 1 --ticks-per-session "$per" --out "$work/ticks.jsonl" 2>/dev/null

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
pid_of() { redis-cli -p "$1" info server | tr -d '\r' | awk -F: '/^process_id:/ {print $2}'; }
# redis-server CPU (clock ticks) of the given ports, summed.
cpu_of() { local t=0 p; for p in "$@"; do t=$((t + $(cpu_ticks "$(pid_of "$p")"))); done; echo "$t"; }

echo "== one Redis: tickwire replay --max, $ticks ticks, $instruments instruments"
c0=$(cpu_of "$single")
"$bin" --redis "redis://127.0.0.1:$single" replay --max "$work/ticks.jsonl" >"$work/single.txt"
c1=$(cpu_of "$single")
one=$(awk '/ticks\/s/ {print $2}' "$work/single.txt")
echo "   ticks/s $one"

echo "== Redis Cluster, 3 primaries, $replicas replica(s) each: the same replay"
# shellcheck disable=SC2086
k0=$(cpu_of $primaries)
"$bin" --redis "$url" replay --max "$work/ticks.jsonl" >"$work/cluster.txt"
# shellcheck disable=SC2086
k1=$(cpu_of $primaries)
three=$(awk '/ticks\/s/ {print $2}' "$work/cluster.txt")
echo "   ticks/s $three"
grep -q 'ticks written' "$work/cluster.txt"

# Memory: the primaries' used_memory now against the entries their tick
# streams hold (every other output included), and one empty node's baseline.
mem=0
for p in $primaries; do
  m=$(redis-cli -p "$p" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
  mem=$((mem + m))
done
empty=$(redis-cli -p "$single" flushall >/dev/null; redis-cli -p "$single" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
entries=$(awk '/continuous_market/ {print $4}' "$work/cluster.txt" | head -1)

python3 - "$ticks" "$one" "$three" "$c0" "$c1" "$k0" "$k1" "$hz" "$mem" "$empty" "${entries:-0}" <<'EOF'
import sys
ticks, one, three, c0, c1, k0, k1, hz, mem, empty, entries = sys.argv[1:]
ticks, one, three = int(ticks), float(one), float(three)
hz = int(hz)
single_cpu = (int(c1) - int(c0)) / hz
cluster_cpu = (int(k1) - int(k0)) / hz
mem, empty, entries = int(mem), int(empty), int(entries)
print(f"== ratio cluster/one Redis: {three / one:.2f} ({three:,.0f} vs {one:,.0f} ticks/s); "
      f"{three / 3:,.0f} ticks/s per primary")
print(f"== redis-server CPU per tick: one Redis {single_cpu * 1e6 / ticks:.2f} us, "
      f"cluster {cluster_cpu * 1e6 / ticks:.2f} us over its 3 primaries")
# What Redis alone allows: each server's main thread busy all the time on
# what these ticks cost it, with clients that cost nothing (a primary takes
# a third of the instruments).
if single_cpu > 0 and cluster_cpu > 0:
    print(f"== Redis' own bound: one Redis {ticks / single_cpu:,.0f} ticks/s; "
          f"the cluster {ticks / (cluster_cpu / 3):,.0f} ticks/s, "
          f"{ticks / (cluster_cpu / 3) / 3:,.0f} per primary; one tickwire process "
          f"gave {three:,.0f} of it here")
if entries:
    per = (mem - 3 * empty) / entries
    print(f"== memory: {per:,.0f} bytes per stream entry (ticks and bars), every output included "
          f"({mem / 1e6:.1f} MB on the primaries for {entries:,} entries, "
          f"less {3 * empty / 1e6:.1f} MB of empty nodes)")
EOF
