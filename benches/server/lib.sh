# What the server benchmarks share (sourced by run.sh and budget.sh): wrk, the release server,
# a key, a configuration, starting and stopping servers, and measuring a rate.
#
# After sourcing: $BIN is the server, $KEY (also exported as ASTACK_KEY, read by the wrk
# scripts) an admin key, $TMP a scratch folder removed on exit with every server started.

CONNECTIONS=${CONNECTIONS:-32}
HERE=benches/server

# PIN=1: the servers on the first half of the cores ($SERVER_CPUS) and wrk on the rest
# ($WRK_CPUS), with `taskset`, so that neither takes a core from the other; wrk then runs a
# thread per core of its own. Otherwise all share every core, and wrk runs two threads.
if [ "${PIN:-0}" = 1 ]; then
  CORES=$(nproc)
  if [ "$CORES" -lt 2 ]; then echo "PIN=1 needs two cores or more" >&2; exit 2; fi
  SERVER_CPUS=0-$((CORES / 2 - 1))
  WRK_CPUS=$((CORES / 2))-$((CORES - 1))
  ON_SERVER=(taskset -c "$SERVER_CPUS")
  ON_WRK=(taskset -c "$WRK_CPUS")
  THREADS=${THREADS:-$((CORES - CORES / 2))}
else
  ON_SERVER=()
  ON_WRK=()
  THREADS=${THREADS:-2}
fi

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
# as PENDING: callers start fresh servers each round, so that a round's sessions (a few hundred
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

# start_server NAME [ARGS…]: starts the server with ARGS on a free port; its URL is ${BASE[NAME]}.
# `engine` as the first ARG means the engine in memory (the comparison is of the engine, not of
# the disk: SQLite fsyncs each write), the other ARGS after it. The request log is on, as in
# production, to /dev/null.
declare -A BASE
start_server() {
  local name=$1 port; shift
  local args=("$@")
  if [ "${args[0]:-}" = engine ]; then args=(--memory --config "$TMP/config.json" "${args[@]:1}"); fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ASTACK_ADMIN_KEY=$KEY "${ON_SERVER[@]}" "$BIN" --listen "127.0.0.1:$port" "${args[@]}" >/dev/null 2>>"$TMP/$name.log" &
  PIDS+=($!)
  BASE[$name]="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -fs "${BASE[$name]}/healthz" >/dev/null && break; sleep 0.05; done
}

rps() { # rps DURATION [wrk args…]: requests/s, after checking that every answer was a success
  local out duration=$1; shift
  out=$("${ON_WRK[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "$duration" "$@")
  if grep -q "Non-2xx or 3xx responses" <<<"$out"; then
    echo "error answers during the run:" >&2; echo "$out" >&2; exit 1
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

# post_rps NAME DURATION: requests/s of POST /api/v1/sessions (the seed's body) on server NAME.
post_rps() { rps "$2" -s "$HERE/post_session.lua" "${BASE[$1]}/api/v1/sessions"; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
