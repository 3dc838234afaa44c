#!/usr/bin/env bash
# One key's flood of denials: how many 429s a second the reference server answers over SQLite
# (the default store) and over Redis (a redis-server of its own, on a free port) beside the
# memory store, in one run. Each denial is audited; both stores write those records behind:
# were each written at once, every 429 would cost an fsync, or a Redis round trip more.
#
#   DURATION=4s ROUNDS=3 bash benches/server/denials.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-3}
source benches/server/lib.sh

REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; stop_servers; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

# The admin key, limited to 5 requests a minute: after the first five, every answer is a 429.
cat > "$TMP/limited.json" <<'JSON'
{"limits": {"requests_per_minute": 5, "requests_per_hour": 100}}
JSON

# denial_rps NAME: 429s a second on server NAME (every answer past the first five is one).
denial_rps() {
  local out
  out=$("${ON_WRK[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -H "Authorization: Bearer $KEY" "${BASE[$1]}/api/v1/sessions")
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

declare -A ALL
for round in $(seq "$ROUNDS"); do
  line="round $round/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg)):"
  for name in sqlite redis memory; do
    stop_servers
    case $name in
      sqlite) mkdir -p "$TMP/data-$round"; start_server "$name" --data "$TMP/data-$round" --config "$TMP/limited.json" ;;
      redis)
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        start_server "$name" --redis "redis://127.0.0.1:$REDIS_PORT/0" --config "$TMP/limited.json" ;;
      memory) start_server "$name" --memory --config "$TMP/limited.json" ;;
    esac
    r=$(denial_rps "$name")
    ALL[$name]+=" $r"
    line+=" $name=$r"
  done
  echo "$line" >&2
done
sqlite=$(median ${ALL[sqlite]})
redis=$(median ${ALL[redis]})
memory=$(median ${ALL[memory]})
echo
echo "One key's flood of 429s: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds"
printf '%-30s %12s\n' store "429s/s"
printf '%-30s %12s\n' "SQLite (denials written behind)" "$sqlite"
printf '%-30s %12s\n' "Redis (denials written behind)" "$redis"
printf '%-30s %12s\n' "memory" "$memory"
echo
echo "BENCH server/denials_sqlite_vs_memory ours=$sqlite peer=$memory unit=ops/s aim=-"
echo "BENCH server/denials_redis_vs_memory ours=$redis peer=$memory unit=ops/s aim=-"
