#!/usr/bin/env bash
# How much of a POST /api/v1/sessions the engine's work costs, in the stack's own terms.
#
# The ceiling (`--no-engine`) can spin a fixed time in each session it creates
# (`--ceiling-work-ns`): a stand-in for the engine's work that costs what CPU time costs on this
# machine, wakeups and all. Each round starts fresh servers and measures the engine and the
# ceiling spinning 0, 2, 4, 6 and 8 µs, in turn. Prints each one's median rate and its ratio to
# the bare ceiling; then the spin whose rate matches the engine's (what the engine's work costs
# per POST, as the stack sees it) and the spin at 0.8x (what issue 7's aim leaves for it).
#
#   DURATION=4s ROUNDS=3 bash benches/server/budget.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-4s}
ROUNDS=${ROUNDS:-3}
SPINS=(0 2000 4000 6000 8000)
source benches/server/lib.sh

declare -A ALL
for round in $(seq "$ROUNDS"); do
  line="round $round/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg)):"
  for name in engine "${SPINS[@]}"; do
    stop_servers
    if [ "$name" = engine ]; then start_server "$name" engine; else start_server "$name" --no-engine --ceiling-work-ns "$name"; fi
    post_rps "$name" 2s >/dev/null # warm-up
    r=$(post_rps "$name" "$DURATION")
    ALL[$name]+=" $r"
    line+=" $name=$r"
  done
  echo "$line" >&2
done

args=()
for name in engine "${SPINS[@]}"; do args+=("$name=$(median ${ALL[$name]})"); done
python3 - "${args[@]}" <<'PY'
import sys
rates = dict(a.split("=") for a in sys.argv[1:])
engine = float(rates.pop("engine"))
spins = sorted((int(ns) / 1000, float(r)) for ns, r in rates.items())
# Time per request grows linearly with the spin: fit 1/rate = base + slope * spin (least squares).
n = len(spins)
mx = sum(u for u, _ in spins) / n
my = sum(1 / r for _, r in spins) / n
slope = sum((u - mx) * (1 / r - my) for u, r in spins) / sum((u - mx) ** 2 for u, _ in spins)
base = my - slope * mx
ceiling = 1 / base
print(f"\nPOST /api/v1/sessions, median of the rounds (req/s, ratio to the fitted bare ceiling {ceiling:.0f}):")
print(f"  {'astack (the engine)':24} {engine:10.0f}  {engine / ceiling:.2f}x")
for us, r in spins:
    print(f"  {f'ceiling + {us:g} µs spin':24} {r:10.0f}  {r / ceiling:.2f}x")
spin_at = lambda rate: (1 / rate - base) / slope
print(f"the engine's work costs the stack about {spin_at(engine):.1f} µs of spin per POST;"
      f" 0.8x of the ceiling allows {spin_at(0.8 * ceiling):.1f} µs")
PY
