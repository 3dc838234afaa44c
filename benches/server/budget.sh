#!/usr/bin/env bash
# How much of a POST /api/v1/sessions the engine's work costs, in the stack's own terms.
#
# The ceiling (`--no-engine`) can spin a fixed time in each session it creates
# (`--ceiling-work-ns`): a stand-in for the engine's work that costs what CPU time costs on this
# machine, wakeups and all. With KEEP=N it also keeps N bytes per session created
# (`--ceiling-keep-bytes`), as the engine keeps each session and its audit record: memory the
# kernel must fault in and zero. Each round starts fresh servers and measures the engine and the
# ceiling spinning 0, 2, 4, 6 and 8 µs (and, with KEEP, the bare ceiling), in turn. Prints each
# one's median rate and its ratio to the bare ceiling, and the engine's resident memory growth
# per POST; then the spin whose rate matches the engine's (what the engine's work costs per
# POST, as the stack sees it) and the spin at 0.8x of the bare ceiling (what issue 7's aim
# leaves for it).
#
#   DURATION=4s ROUNDS=3 KEEP=0 bash benches/server/budget.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-3}
KEEP=${KEEP:-0}
SPINS=(0 2000 4000 6000 8000)
source benches/server/lib.sh

rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }

declare -A ALL
STAND_INS=("${SPINS[@]}")
if [ "$KEEP" != 0 ]; then STAND_INS=(bare "${SPINS[@]}"); fi
for round in $(seq "$ROUNDS"); do
  line="round $round/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg)):"
  for name in engine "${STAND_INS[@]}"; do
    stop_servers
    case $name in
      engine) start_server "$name" engine ;;
      bare) start_server "$name" --no-engine ;;
      *) start_server "$name" --no-engine --ceiling-work-ns "$name" --ceiling-keep-bytes "$KEEP" ;;
    esac
    post_rps "$name" 2s >/dev/null # warm-up
    before=$(rss "${PIDS[-1]}")
    r=$(post_rps "$name" "$DURATION")
    if [ "$name" = engine ]; then
      ALL[kept]+=" $(python3 -c "print(round(($(rss "${PIDS[-1]}") - $before) / ($r * ${DURATION%s})))")"
    fi
    ALL[$name]+=" $r"
    line+=" $name=$r"
  done
  echo "$line" >&2
done

args=("kept=$(median ${ALL[kept]})" "keep=$KEEP")
for name in engine "${STAND_INS[@]}"; do args+=("$name=$(median ${ALL[$name]})"); done
python3 - "${args[@]}" <<'PY'
import sys
rates = dict(a.split("=") for a in sys.argv[1:])
kept, keep = int(rates.pop("kept")), int(rates.pop("keep"))
engine = float(rates.pop("engine"))
bare = rates.pop("bare", None)
spins = sorted((int(ns) / 1000, float(r)) for ns, r in rates.items())
# Time per request grows linearly with the spin: fit 1/rate = base + slope * spin (least squares).
n = len(spins)
mx = sum(u for u, _ in spins) / n
my = sum(1 / r for _, r in spins) / n
slope = sum((u - mx) * (1 / r - my) for u, r in spins) / sum((u - mx) ** 2 for u, _ in spins)
base = my - slope * mx
# The bare ceiling: measured when the stand-ins keep memory, else the fit at no spin.
ceiling = float(bare) if bare else 1 / base
kept_by = f" + {keep} B kept" if keep else ""
print(f"\nPOST /api/v1/sessions, median of the rounds (req/s, ratio to the bare ceiling {ceiling:.0f}):")
print(f"  {'astack (the engine)':30} {engine:10.0f}  {engine / ceiling:.2f}x   (resident memory +{kept} B a POST)")
for us, r in spins:
    print(f"  {f'ceiling + {us:g} µs spin{kept_by}':30} {r:10.0f}  {r / ceiling:.2f}x")
spin_at = lambda rate: (1 / rate - base) / slope
print(f"the engine's work costs the stack about {spin_at(engine):.1f} µs of spin{kept_by} per POST;"
      f" 0.8x of the bare ceiling allows {spin_at(0.8 * ceiling):.1f} µs")
PY
