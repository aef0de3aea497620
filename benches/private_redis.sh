# Sourced by the bench scripts: `private_redis` starts a redis-server of its
# own (persistence off) on a free port, in a new temporary directory that it
# sets as $work, with $port; both go on exit (the EXIT trap is set here).
private_redis() {
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no --daemonize yes \
    --logfile "$work/redis.log" >/dev/null
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
}
