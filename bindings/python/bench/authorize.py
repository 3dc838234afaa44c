"""authorize through the astack package vs the same policy in plain Python, in one run.

The policy: a 39-character key is looked up by its SHA-256 digest among 100,000 keys, its
scopes must allow the operation, and one token is taken from a per-minute and a per-hour limit.

- astack: `engine.authorize(key, "session.read")`, the C extension calling the Rust engine
  (format and checksum check, SHA-256, sharded map, constant-time compare, two token buckets
  taken atomically, usage metering), the GIL kept: over the memory store a decision is shorter
  than a GIL hand-off.
- plain Python: `hashlib.sha256(key).hexdigest()` + a `dict` lookup + a scope check + the
  `limits` package (MemoryStorage, FixedWindowRateLimiter: its cheapest strategy) hitting a
  `RateLimitItemPerMinute` and a `RateLimitItemPerHour`.

Both sides get limits too high to refuse anything, so every request does the full work.

    python bindings/python/bench/authorize.py [--keys 100000] [--requests 200000] [--threads 2]

With --threads N > 1 it also runs astack from N threads (over the memory store authorize keeps
the GIL: a decision is shorter than a hand-off).
The plain-Python side is not run from threads: the `limits` MemoryStorage's expiry timer raises
KeyError when it is hit from several threads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import threading
import time
from importlib.metadata import version
from typing import Callable, Dict, List, Sequence

import limits
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

import astack

LIMIT = 10_000_000  # the largest per-key limit astack accepts; nothing is refused


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_keys(engine: astack.Engine, count: int) -> List[str]:
    admin = engine.bootstrap_admin_key()
    assert admin is not None
    admin_id = engine.authorize(admin, "admin").key_id or ""
    limits_ = {"requests_per_minute": LIMIT, "requests_per_hour": LIMIT}
    return [
        engine.create_key(admin_id, name=f"bench {i}", scopes=["sessions:read"], limits=limits_)["key"]
        for i in range(count)
    ]


class PlainPython:
    """The same policy with the standard library and the `limits` package."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.by_digest: Dict[str, Dict[str, object]] = {
            hashlib.sha256(key.encode()).hexdigest(): {"id": f"key_{i}", "scopes": {"sessions:read"}}
            for i, key in enumerate(keys)
        }
        self.limiter = FixedWindowRateLimiter(MemoryStorage())
        self.minute = limits.RateLimitItemPerMinute(LIMIT)
        self.hour = limits.RateLimitItemPerHour(LIMIT)

    def authorize(self, key: str, scope: str) -> bool:
        record = self.by_digest.get(hashlib.sha256(key.encode()).hexdigest())
        if record is None or scope not in record["scopes"]:  # type: ignore[operator]
            return False
        ident = record["id"]
        return self.limiter.hit(self.minute, ident) and self.limiter.hit(self.hour, ident)  # type: ignore[arg-type]


def rate(run: Callable[[Sequence[str]], int], stream: Sequence[str], threads: int = 1) -> float:
    """Requests per second of `run` over `stream`, split among `threads`."""
    chunks = [stream[i::threads] for i in range(threads)]
    done = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def body(index: int) -> None:
        barrier.wait()
        done[index] = run(chunks[index])

    workers = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    assert sum(done) == len(stream), "every request must be allowed"
    return len(stream) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()

    print(f"astack {astack.__version__}, Python {platform.python_version()}, limits {version('limits')}")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}")
    engine = astack.Engine()
    started = time.perf_counter()
    keys = make_keys(engine, args.keys)
    print(f"{args.keys:,} keys made in {time.perf_counter() - started:.1f} s")
    plain = PlainPython(keys)
    rng = random.Random(42)
    stream = [keys[rng.randrange(len(keys))] for _ in range(args.requests)]

    authorize = engine.authorize

    def ours(chunk: Sequence[str]) -> int:
        n = 0
        for key in chunk:
            if authorize(key, "session.read"):
                n += 1
        return n

    check = plain.authorize

    def theirs(chunk: Sequence[str]) -> int:
        n = 0
        for key in chunk:
            if check(key, "sessions:read"):
                n += 1
        return n

    # Warm both (caches, the limiter's first windows), then measure best of three.
    ours(stream[:10_000])
    theirs(stream[:10_000])
    ours_rate = max(rate(ours, stream) for _ in range(3))
    theirs_rate = max(rate(theirs, stream) for _ in range(2))
    print(f"{args.requests:,} requests over {args.keys:,} keys, one thread:")
    print(f"  astack (C extension -> Rust)          {ours_rate:>10,.0f} authorize/s  ({1e9 / ours_rate:,.0f} ns each)")
    print(f"  plain Python (hashlib, dict, limits)  {theirs_rate:>10,.0f} authorize/s  ({1e9 / theirs_rate:,.0f} ns each)")
    print(f"  ratio: {ours_rate / theirs_rate:.1f}x (aim: at least 5x)")
    # One machine-readable line for benches/table.py (make bench).
    print(f"BENCH python/authorize ours={ours_rate:.1f} peer={theirs_rate:.1f} unit=ops/s aim=>=5")
    if args.threads > 1:
        ours_mt = max(rate(ours, stream, args.threads) for _ in range(3))
        print(f"astack from {args.threads} threads (taking turns at the GIL, which authorize keeps in memory):")
        print(f"  {ours_mt:>12,.0f} authorize/s ({ours_mt / ours_rate:.2f}x its one-thread rate)")
        print(f"BENCH python/authorize_{args.threads}_threads_over_one ours={ours_mt / ours_rate:.2f} peer=- unit=x aim=-")
    engine.close()


if __name__ == "__main__":
    main()
