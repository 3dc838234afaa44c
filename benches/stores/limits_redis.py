"""The peer of benches/stores.rs: the `limits` package on Redis doing the same two windows
(per minute and per hour) on the same number of keys, cycled, single-threaded.

Each authorization tests both windows and then hits both (so that a denial takes nothing, as
astack's all-or-nothing take does): `limits` has no multi-window atomic hit.

    python limits_redis.py redis://127.0.0.1:6379/0 KEYS SECONDS
prints `limits_redis ops/s <n>`.
"""

import sys
import time

from limits import RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter


def main() -> None:
    url, keys, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    storage = RedisStorage(url)
    storage.reset()
    limiter = SlidingWindowCounterRateLimiter(storage)
    minute = RateLimitItemPerMinute(10_000_000)
    hour = RateLimitItemPerHour(100_000_000)
    names = [f"key-{i}" for i in range(keys)]
    for name in names:  # warm up: every key known
        limiter.hit(minute, name) and limiter.hit(hour, name)
    done = 0
    allowed = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for name in names[done % keys : done % keys + 100]:
            if limiter.test(minute, name) and limiter.test(hour, name):
                limiter.hit(minute, name)
                limiter.hit(hour, name)
                allowed += 1
            done += 1
    elapsed = time.perf_counter() - start
    print(f"limits_redis ops/s {done / elapsed:.0f} (allowed {allowed} of {done})")


if __name__ == "__main__":
    main()
