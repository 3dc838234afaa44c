#!/usr/bin/env python3
"""Collects every benchmark's figures into one table (`make bench` runs it last).

Reads the `BENCH <workload> ours=<x> peer=<y> unit=<u> aim=<text>` lines from the log files
given as arguments (the Rust benches, the reference server's, and the Node, Python and Go
benches), and the criterion estimates of the `tokens` group from target/criterion. Prints a
Markdown table: workload | ours | peer | ratio | aim | met. For times (ns) the ratio is ours /
peer (below 1: we are faster); for rates (ops/s) it is ours / peer (above 1: we are faster).
`met` says whether this run meets the row's aim (`yes` or `NO`), in parentheses for an aim
given only for reference, and is empty for a row without one.

    python3 benches/table.py target/bench/*.log
"""

import json
import os
import re
import sys

LINE = re.compile(r"^BENCH (\S+) ours=(\S+) peer=(\S+) unit=(\S+) aim=(\S*)\s*$")

# An aim's bound: `<1x time`, `>=0.8x rate`, `1M/1k <=2x`, `<=256 B`, `(>=1.8x)`.
BOUND = re.compile(r"^(\()?(?:\S+ )?(<=|>=|<|>)([\d.]+)(x|B)?")

# Criterion rows: workload, our bench id, the peer's bench id, unit, aim.
CRITERION = [
    ("rust/token_issue (vs jsonwebtoken encode)", "tokens/issue_astack", "tokens/issue_jsonwebtoken", "<1x time"),
    ("rust/token_verify (vs jsonwebtoken decode)", "tokens/verify_astack", "tokens/verify_jsonwebtoken", "<1x time"),
]

AIMS = {
    "rust/authorize_100k_keys": "<=0.7x time",
    "rust/authorize_100k_keys_random_order": "<=0.7x time",
    "scaling/authorize_1M_over_1k": "1M/1k <=2x",
    "scaling/bytes_per_key_1M": "<=256 B",
    "scaling/bytes_per_key_1k": "- (aim is at 1M)",
    "scaling/bytes_per_key_100k": "- (aim is at 1M)",
    "threads/two_over_one_same_account": "(>=1.8x)",
    "python/authorize_2_threads_over_one": "-",
    "threads/two_over_one": ">=1.8x",
    "node/authorize": ">=3x rate",
    "python/authorize": ">=5x rate",
    "server/get_session": ">=0.8x rate",
    "server/post_sessions": ">=0.8x rate",
    "server/get_session_to_no_checks": "(>=0.8x rate)",
    "server/post_sessions_to_no_checks": "(>=0.8x rate)",
}


def criterion_ns(bench_id, root):
    group, name = bench_id.split("/", 1)
    for candidate in (name, name.replace("_", "/", 1)):
        path = os.path.join(root, group, *candidate.split("/"), "new", "estimates.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)["median"]["point_estimate"]
    return None


def fmt(value, unit):
    if value is None:
        return "-"
    if unit == "ops/s":
        return f"{value:,.0f} ops/s"
    if unit == "ns":
        return f"{value:,.1f} ns"
    if unit == "B":
        return f"{value:,.1f} B"
    return f"{value:.2f}{unit}"


def met(aim, ours, ratio, unit):
    """Whether `ours` (a count, bytes or a ratio of its own) or else `ratio` meets `aim`:
    `yes`, `NO`, the same in parentheses for an aim in parentheses, or empty without a bound."""
    m = BOUND.match(aim)
    value = ours if unit in ("B", "x") else ratio
    if not m or value is None:
        return ""
    reference, op, bound = m.group(1), m.group(2), float(m.group(3))
    ok = {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]
    verdict = "yes" if ok else "NO"
    return f"({verdict})" if reference else verdict


def main(paths):
    root = os.environ.get("CRITERION_DIR", "target/criterion")
    rows = []
    for workload, ours_id, peer_id, aim in CRITERION:
        ours, peer = criterion_ns(ours_id, root), criterion_ns(peer_id, root)
        if ours is not None:
            rows.append((workload, ours, peer, "ns", aim))
    seen = {}
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    m = LINE.match(line.strip())
                    if m:
                        workload, ours, peer, unit, aim = m.groups()
                        seen[workload] = (
                            float(ours),
                            None if peer == "-" else float(peer),
                            unit,
                            AIMS.get(workload, aim if aim not in ("", "-") else "-"),
                        )
        except OSError as e:
            print(f"table.py: {e}", file=sys.stderr)
    order = ["rust/", "scaling/", "threads/", "sessions/", "server/", "stores/", "node/", "python/", "go/"]
    rank = lambda w: next((i for i, p in enumerate(order) if w.startswith(p)), len(order))
    rows += sorted(((w, *v) for w, v in seen.items()), key=lambda r: rank(r[0]))

    print("| workload | ours | peer | ratio | aim | met |")
    print("|---|---:|---:|---:|---|---|")
    for workload, ours, peer, unit, aim in rows:
        quotient = ours / peer if unit in ("ns", "ops/s") and peer else None
        ratio = "-" if quotient is None else f"{quotient:.2f}x"
        if unit == "x":
            ours_text, peer_text = f"{ours:.2f}x", ("-" if peer is None else f"{peer:.2f}x")
        else:
            ours_text, peer_text = fmt(ours, unit), fmt(peer, unit)
        print(f"| {workload} | {ours_text} | {peer_text} | {ratio} | {aim} | {met(aim, ours, quotient, unit)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
