#!/usr/bin/env bash
# Throughput of the reference server beside the bare HTTP stack, in one run, on loopback.
#
# For each workload (authenticated GET /api/v1/sessions/:id, POST /api/v1/sessions), wrk runs
# against the release server twice: with the engine (keys, scopes, limits, sessions, tokens),
# and with `--no-engine` (the same axum stack, layers and JSON, answering canned sessions: the
# stack's own ceiling). Prints requests/s for both and the ratio, then the same as BENCH lines
# for `make bench`'s table (benches/table.py).
#
#   DURATION=5s ROUNDS=5 THREADS=2 CONNECTIONS=32 bash benches/server/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
HERE=benches/server

if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt-get)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p astack-server
BIN=target/release/astack-server

# A key in the SPEC format: ak_ + 30 base62 + base62 CRC32 of those 30.
KEY=$(python3 - <<'PY'
import secrets, zlib
A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
r = "".join(secrets.choice(A) for _ in range(30))
c = zlib.crc32(r.encode()); d = ""
for _ in range(6):
    d = A[c % 62] + d; c //= 62
print(f"ak_{r}{d}")
PY
)
export ASTACK_KEY=$KEY

# Limits high enough that the benchmark measures work, not refusals. The sessions POSTed pile up
# as PENDING: each round starts fresh servers, so that a round's sessions (a few hundred
# thousand) stay far below the slot and worker capacities and rounds start alike.
TMP=$(mktemp -d)
cat > "$TMP/config.json" <<'JSON'
{"limits": {"requests_per_minute": 10000000, "requests_per_hour": 100000000, "concurrent_sessions": 1000000},
 "default_worker": {"node_id": "local", "url": "ws://127.0.0.1:8081", "capacity": 1000000}}
JSON

PIDS=()
stop_servers() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_servers; rm -rf "$TMP"' EXIT

declare -A BASE
start_servers() {
  for mode in engine ceiling; do
    local port args
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    args=(--listen "127.0.0.1:$port")
    # The engine in memory: the comparison is of the engine, not of the disk (SQLite fsyncs each write).
    if [ "$mode" = ceiling ]; then args+=(--no-engine); else args+=(--memory --config "$TMP/config.json"); fi
    # The request log is on, as in production, and goes to /dev/null for both.
    ASTACK_ADMIN_KEY=$KEY "$BIN" "${args[@]}" >/dev/null 2>>"$TMP/$mode.log" &
    PIDS+=($!)
    BASE[$mode]="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -fs "${BASE[$mode]}/healthz" >/dev/null && break; sleep 0.05; done
  done
}

rps() { # rps [wrk args…]: requests/s, after checking that every answer was a success
  local out
  out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" "$@")
  if grep -q "Non-2xx or 3xx responses" <<<"$out"; then
    echo "error answers during the run:" >&2; echo "$out" >&2; exit 1
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The machine may be shared and its speed drifts: the two servers take turns, workload by
# workload, round after round, so that a busy spell weighs on both. Each figure is the median
# of its rounds, and each ratio the median of the rounds' ratios (each taken over two runs
# seconds apart).
declare -A ALL LAST
for round in $(seq "$ROUNDS"); do
  stop_servers
  start_servers
  line="round $round/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg)):"
  for w in get post; do
    for mode in engine ceiling; do
      if [ $w = get ]; then
        id=$(curl -fs -X POST "${BASE[$mode]}/api/v1/sessions" -H "Authorization: Bearer $KEY" \
              -H 'Content-Type: application/json' -d '{"end_user_id": "bench"}' \
              | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        r=$(rps -s "$HERE/get_session.lua" "${BASE[$mode]}/api/v1/sessions/$id")
      else
        r=$(rps -s "$HERE/post_session.lua" "${BASE[$mode]}/api/v1/sessions")
      fi
      ALL[$mode,$w]+=" $r"
      line+=" $w $mode $r"
      LAST[$mode]=$r
    done
    ALL[ratio,$w]+=" $(python3 -c "print(${LAST[engine]} / ${LAST[ceiling]})")"
  done
  echo "$line" >&2
done
declare -A R
for k in "${!ALL[@]}"; do R[$k]=$(median ${ALL[$k]}); done

echo
echo "Reference server throughput: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds, loopback,"
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %14s %15s %7s\n' workload "astack req/s" "ceiling req/s" "ratio (median of rounds' ratios)"
for w in get post; do
  case $w in get) name="GET /api/v1/sessions/:id";; post) name="POST /api/v1/sessions";; esac
  ratio=$(python3 -c "print(f'{${R[ratio,$w]}:.2f}x')")
  printf '%-28s %14s %15s %7s\n' "$name" "${R[engine,$w]}" "${R[ceiling,$w]}" "$ratio"
done
# The same for `make bench`'s one table (benches/table.py), which divides ours by the peer's:
# ours is astack's median, the peer is set so that the quotient is the median ratio.
echo
for w in get post; do
  case $w in get) workload=server/get_session;; post) workload=server/post_sessions;; esac
  peer=$(python3 -c "print(round(${R[engine,$w]}/${R[ratio,$w]}, 2))")
  echo "BENCH $workload ours=${R[engine,$w]} peer=$peer unit=ops/s aim=>=0.8x"
done
