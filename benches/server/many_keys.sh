#!/usr/bin/env bash
# Many keys at once: the latency of GET /api/v1/sessions when every request comes with another
# of KEYS keys, over SQLite (the default store, whose engine writes each key's use behind on a
# thread of its own twice a second, all the keys used since at once) beside the memory store
# (which writes nothing), in one run: wrk's 99th percentile and maximum, and the rate.
#
#   KEYS=20000 DURATION=10s ROUNDS=2 bash benches/server/many_keys.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

KEYS=${KEYS:-20000}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
source benches/server/lib.sh

# make_keys NAME: KEYS keys allowed session.read on server NAME, one per line in $TMP/NAME.keys.
make_keys() {
  python3 - "${BASE[$1]}" "$KEY" "$KEYS" > "$TMP/$1.keys" <<'PY'
import json, sys, urllib.request
base, admin, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    body = json.dumps({"name": f"k{i}", "scopes": ["sessions:read"]}).encode()
    req = urllib.request.Request(base + "/api/v1/keys", data=body, headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
    print(json.load(urllib.request.urlopen(req))["key"])
PY
}

# latency NAME: "p99 max rate" of one run on server NAME, in ms, ms and requests/s.
latency() {
  local out
  out=$(KEYS_FILE="$TMP/$1.keys" "${ON_WRK[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency \
    -s "$HERE/rotate_keys.lua" "${BASE[$1]}/api/v1/sessions")
  if grep -q "Non-2xx or 3xx responses" <<<"$out"; then
    echo "error answers during the run:" >&2; echo "$out" >&2; exit 1
  fi
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^    Latency/ { max = ms($4) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec:/ { rate = $2 }
    END { printf "%.1f %.1f %.0f\n", p99, max, rate }' <<<"$out"
}

mkdir -p "$TMP/data"
start_server sqlite --data "$TMP/data" --config "$TMP/config.json"
start_server memory engine
echo "making $KEYS keys on each server..." >&2
make_keys sqlite
make_keys memory

echo "$(nproc) cores, $KEYS keys, wrk -t$THREADS -c$CONNECTIONS, $ROUNDS rounds of $DURATION, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-8s %-7s %10s %10s %12s\n' round store "p99 ms" "max ms" "req/s"
for round in $(seq "$ROUNDS"); do
  for name in sqlite memory; do
    read -r p99 max rate < <(latency "$name")
    printf '%-8s %-7s %10s %10s %12s\n' "$round" "$name" "$p99" "$max" "$rate"
  done
done
