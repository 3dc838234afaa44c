#!/usr/bin/env bash
# Throughput of the reference server beside two references, in one run, on loopback.
#
# For each workload (authenticated GET /api/v1/sessions/:id, POST /api/v1/sessions), wrk runs
# against three release servers in turn:
# - `ceiling`: `--no-engine`, the same axum stack, layers and JSON answering canned sessions
#   (the HTTP stack's own ceiling: none of the engine's work);
# - `engine`: the server as it serves (keys, scopes, limits, sessions, tokens);
# - `no-checks`: `--no-checks`, the same server with the engine's checks switched off (every
#   request runs as the admin key: no key looked up, no scope, rate limit or request count; a
#   session created is still stored, audited and signed).
# Prints requests/s of each and the engine's ratio to each reference, then the same as BENCH
# lines for `make bench`'s table (benches/table.py).
#
#   DURATION=4s ROUNDS=9 THREADS=2 CONNECTIONS=32 bash benches/server/run.sh
#
# PIN=1 gives the servers half the cores and wrk the other half (benches/server/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

# Nine rounds of 4 s rather than five of 5 s (a minute more): the bare stack's rate jumps
# between two levels from round to round, and five rounds left POST's ratio a draw between
# runs (0.78x-0.82x within half an hour; BENCHMARKS.md, "Thirteenth pass").
DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-9}
source benches/server/lib.sh

# The machine may be shared and its speed drifts: the servers take turns, workload by
# workload, round after round, so that a busy spell weighs on all. The engine runs between its
# two references, so that each ratio is over two runs seconds apart. Each figure is the median
# of its rounds, and each ratio the median of the rounds' ratios.
MODES=(ceiling engine no-checks)
declare -A ALL LAST
for round in $(seq "$ROUNDS"); do
  stop_servers
  start_server ceiling --no-engine
  start_server engine engine
  start_server no-checks engine --no-checks
  line="round $round/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg)):"
  for w in get post; do
    for mode in "${MODES[@]}"; do
      if [ $w = get ]; then
        id=$(curl -fs -X POST "${BASE[$mode]}/api/v1/sessions" -H "Authorization: Bearer $KEY" \
              -H 'Content-Type: application/json' -d '{"end_user_id": "bench"}' \
              | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        r=$(rps "$DURATION" -s "$HERE/get_session.lua" "${BASE[$mode]}/api/v1/sessions/$id")
      else
        r=$(post_rps "$mode" "$DURATION")
      fi
      ALL[$mode,$w]+=" $r"
      line+=" $w $mode $r"
      LAST[$mode]=$r
    done
    for ref in ceiling no-checks; do
      ALL[ratio-$ref,$w]+=" $(python3 -c "print(${LAST[engine]} / ${LAST[$ref]})")"
    done
  done
  echo "$line" >&2
done
declare -A R
for k in "${!ALL[@]}"; do R[$k]=$(median ${ALL[$k]}); done
x() { python3 -c "print(f'{$1:.2f}x')"; }

echo
echo "Reference server throughput: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds, loopback,"
echo "$(nproc) cores${SERVER_CPUS:+ (servers on cores $SERVER_CPUS, wrk on $WRK_CPUS)} ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(ratios: the median of the rounds' ratios of astack to each reference)"
printf '%-26s %12s %14s %15s %13s %15s\n' workload "astack req/s" "ceiling req/s" "no-checks req/s" "to ceiling" "to no-checks"
for w in get post; do
  case $w in get) name="GET /api/v1/sessions/:id";; post) name="POST /api/v1/sessions";; esac
  printf '%-26s %12s %14s %15s %13s %15s\n' "$name" "${R[engine,$w]}" "${R[ceiling,$w]}" "${R[no-checks,$w]}" \
    "$(x "${R[ratio-ceiling,$w]}")" "$(x "${R[ratio-no-checks,$w]}")"
done
# The same for `make bench`'s one table (benches/table.py), which divides ours by the peer's:
# ours is astack's median, the peer is set so that the quotient is the median ratio.
echo
for w in get post; do
  case $w in get) workload=server/get_session;; post) workload=server/post_sessions;; esac
  for ref in ceiling no-checks; do
    case $ref in ceiling) row=$workload;; no-checks) row=${workload}_to_no_checks;; esac
    peer=$(python3 -c "print(round(${R[engine,$w]}/${R[ratio-$ref,$w]}, 2))")
    echo "BENCH $row ours=${R[engine,$w]} peer=$peer unit=ops/s aim=>=0.8x"
  done
done
