#!/usr/bin/env bash
# One key's flood of denials: how many 429s a second the reference server answers over SQLite
# (the default store, which writes denials' audit records behind) beside the memory store, in
# one run. Each denial is audited; were each written at once, every 429 would cost an fsync.
#
#   DURATION=4s ROUNDS=3 bash benches/server/denials.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-3}
source benches/server/lib.sh

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
  for name in sqlite memory; do
    stop_servers
    case $name in
      sqlite) mkdir -p "$TMP/data-$round"; start_server "$name" --data "$TMP/data-$round" --config "$TMP/limited.json" ;;
      memory) start_server "$name" --memory --config "$TMP/limited.json" ;;
    esac
    r=$(denial_rps "$name")
    ALL[$name]+=" $r"
    line+=" $name=$r"
  done
  echo "$line" >&2
done
sqlite=$(median ${ALL[sqlite]})
memory=$(median ${ALL[memory]})
echo
echo "One key's flood of 429s: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds"
printf '%-30s %12s\n' store "429s/s"
printf '%-30s %12s\n' "SQLite (denials written behind)" "$sqlite"
printf '%-30s %12s\n' "memory" "$memory"
echo
echo "BENCH server/denials_sqlite_vs_memory ours=$sqlite peer=$memory unit=ops/s aim=-"
