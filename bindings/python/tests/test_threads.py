"""Threads: the limits stay exact under contention, over the memory store (where authorize keeps
the GIL) and over SQLite (where it releases it), and authorize releases the GIL only over a
store that may wait."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

import astack
from conftest import SECRET, START_MS, Keys

THREADS = 8


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[astack.Engine]:
    store = {"kind": "sqlite", "path": str(tmp_path / "astack.db")} if request.param == "sqlite" else {"kind": "memory"}
    config = {"signing_keys": [{"kid": "k1", "secret": SECRET}], "store": store}
    with astack.Engine(config, manual_clock=START_MS) as engine:
        assert engine._authorize_waits == (request.param == "sqlite")
        yield engine


def test_eight_threads_hammering_keep_the_limits_exact(engine: astack.Engine, keys: Keys) -> None:
    limit = 1000
    key, _ = keys.make(["sessions:read"], limits={"requests_per_minute": limit, "requests_per_hour": 100_000})
    per_thread = 2000  # 16,000 attempts for 1,000 tokens
    barrier = threading.Barrier(THREADS)

    def hammer() -> tuple[int, int]:
        allowed = denied = 0
        barrier.wait()
        for _ in range(per_thread):
            decision = engine.decide(key, "session.read")
            if decision.allowed:
                allowed += 1
            else:
                assert decision.code == "rate_limited"
                denied += 1
        return allowed, denied

    with ThreadPoolExecutor(THREADS) as pool:
        results = [f.result() for f in [pool.submit(hammer) for _ in range(THREADS)]]
    assert sum(a for a, _ in results) == limit
    assert sum(d for _, d in results) == THREADS * per_thread - limit
    # The clock has not moved: still exactly none left; a minute later, exactly `limit` again.
    assert not engine.decide(key, "session.read").allowed
    engine.advance_clock(60_000)
    with ThreadPoolExecutor(THREADS) as pool:
        results = [f.result() for f in [pool.submit(hammer) for _ in range(THREADS)]]
    assert sum(a for a, _ in results) == limit


def test_threads_across_many_keys_and_the_hour(engine: astack.Engine, keys: Keys) -> None:
    made = [keys.make(["sessions:write"], limits={"requests_per_minute": 50, "requests_per_hour": 60}) for _ in range(8)]
    allowed = [0] * len(made)
    lock = threading.Lock()

    def hammer(index: int) -> None:
        for _round in range(3):
            for i, (key, _) in enumerate(made):
                for _ in range(40):
                    if engine.decide(key, "session.create").allowed:
                        with lock:
                            allowed[i] += 1

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(hammer, range(THREADS)))
    # Each key: at most 50 in the minute (the clock never moved).
    assert allowed == [50] * len(made)
    engine.advance_clock(60_000)
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(hammer, range(THREADS)))
    # Then the hour is the tighter window: its 10 left plus the one token a minute refilled
    # (60 per hour, continuously), 11 more each.
    assert allowed == [61] * len(made)


def test_cold_paths_from_threads(engine: astack.Engine, keys: Keys) -> None:
    _, key_id = keys.make(["users:write", "users:read"], account_id="threads")

    def create(i: int) -> str:
        return engine.create_user(key_id, f"user {i}")["id"]

    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(create, range(200)))
    assert len(set(ids)) == 200
    assert len(engine.list_users(key_id, limit=1000)) == 200


def test_close_while_threads_are_inside_never_crashes() -> None:
    for _ in range(20):
        engine = astack.Engine(manual_clock=START_MS)
        key = engine.bootstrap_admin_key()
        assert key is not None
        errors: list[BaseException] = []
        go = threading.Event()

        def worker() -> None:
            go.wait()
            try:
                while True:
                    engine.decide(key, "admin")
            except astack.EngineClosed:
                return
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        go.set()
        engine.close()
        for t in threads:
            t.join(5)
        assert not errors and not any(t.is_alive() for t in threads)


def test_authorize_releases_the_gil_only_over_a_store_that_may_wait(tmp_path: Path) -> None:
    """In memory a decision takes less time than a GIL hand-off, so authorize keeps the GIL; over
    SQLite or Redis (the disk, the network) it releases it, as every other call does."""
    assert astack.Engine()._authorize_waits is False
    assert astack.Engine({"store": {"kind": "memory"}})._authorize_waits is False
    assert astack.Engine({"store": {"kind": "sqlite", "path": str(tmp_path / "a.db")}})._authorize_waits is True
    # The Redis store sends nothing until its first call: no server is needed here.
    assert astack.Engine({"store": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}})._authorize_waits is True
