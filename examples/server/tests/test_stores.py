"""The server's stores: SQLite by default (`--data`), surviving kill -9; Redis (`--redis`) shared
by two servers; `--memory` forgetting everything at exit."""

import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import Server, free_port

SEED_BODY = {"end_user_id": "user_123", "connection_type": "websocket", "quality": "high",
             "features": ["vision", "transcription"]}


def create_session(server, key):
    response = server.request("POST", "/api/v1/sessions", key=key, json=SEED_BODY)
    assert response.status_code == 201, response.text
    return response.json()


def test_default_store_is_sqlite_and_survives_kill_9():
    first = Server()
    try:
        assert "SQLite at" in first.stderr()
        key = first.create_key(name="app", scopes=["sessions:read", "sessions:write"])
        session = create_session(first, key["key"])
        ended = first.request("DELETE", f"/api/v1/sessions/{session['id']}", key=key["key"])
        assert ended.json()["status"] == "COMPLETED"
        live = create_session(first, key["key"])
    finally:
        first.kill()
    again = Server(admin_key=first.admin_key, directory=first.dir, args=("--data", str(Path(first.dir) / "data")))
    try:
        # The key made before the crash still authenticates; both sessions are there as acknowledged.
        got = again.request("GET", f"/api/v1/sessions/{session['id']}", key=key["key"])
        assert got.status_code == 200, got.text
        assert got.json()["status"] == "COMPLETED"
        assert again.request("GET", f"/api/v1/sessions/{live['id']}", key=key["key"]).json()["status"] == "PENDING"
        listed = again.admin("GET", "/api/v1/keys").json()["data"]
        assert key["id"] in {k["id"] for k in listed}
        assert all("key" not in k for k in listed)
    finally:
        again.stop()


def test_sigterm_writes_what_was_held_back():
    """`last_used_at` is written behind; a graceful stop writes it before the process exits."""
    first = Server()
    try:
        key = first.create_key(name="app", scopes=["sessions:read"])
        assert first.request("GET", "/api/v1/sessions", key=key["key"]).status_code == 200
    finally:
        first.stop()
    assert first.proc.returncode == 0
    again = Server(admin_key=first.admin_key, directory=first.dir, args=("--data", str(Path(first.dir) / "data")))
    try:
        got = again.admin("GET", f"/api/v1/keys/{key['id']}").json()
        assert got["last_used_at"] is not None
    finally:
        again.stop()


def written_behind(server, key_id):
    """Whether the server's file holds the key's `last_used_at` and one denial's audit record."""
    db = sqlite3.connect(f"file:{Path(server.dir) / 'data' / 'astack.db'}?mode=ro", uri=True)
    try:
        used = db.execute("SELECT at FROM key_use WHERE id = ?", (key_id,)).fetchone()
        denied = db.execute("SELECT COUNT(*) FROM audit WHERE json_extract(json, '$.action') = 'request.denied'").fetchone()[0]
        return used is not None and denied == 1
    finally:
        db.close()


def use_and_deny(server):
    """A key of one request a minute, used once and denied once; its id."""
    key = server.create_key(name="app", scopes=["sessions:read"], limits={"requests_per_minute": 1})
    assert server.request("GET", "/api/v1/sessions", key=key["key"]).status_code == 200
    assert server.request("GET", "/api/v1/sessions", key=key["key"]).status_code == 429
    return key


def test_what_is_held_back_is_written_by_the_engines_thread_while_serving():
    """Request counts, `last_used_at` and denials' audit records are written behind by the
    engine's flush thread (every half second), with no further request and no stop."""
    server = Server()
    try:
        key = use_and_deny(server)
        deadline = time.monotonic() + 10
        while not written_behind(server, key["id"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert written_behind(server, key["id"])
    finally:
        server.stop()


def test_without_the_flush_thread_a_request_writes_behind():
    """`flush_ms: 0` in the file's store, kept under `--data`: no thread writes; the first
    request a second after the last write does."""
    config = {"store": {"kind": "sqlite", "path": "replaced-by-data", "flush_ms": 0}}
    server = Server(config=config)
    try:
        key = use_and_deny(server)
        time.sleep(1.5)
        assert not written_behind(server, key["id"])
        assert server.admin("GET", "/api/v1/keys").status_code == 200
        assert written_behind(server, key["id"])
    finally:
        server.stop()


def test_memory_flag_forgets_everything_at_exit():
    first = Server(args=("--memory",))
    try:
        assert "memory" in first.stderr()
        key = first.create_key(name="app", scopes=["sessions:read", "sessions:write"])
    finally:
        first.stop()
    again = Server(admin_key=first.admin_key, args=("--memory",))
    try:
        response = again.request("GET", "/api/v1/sessions", key=key["key"])
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    finally:
        again.stop()


class Redis:
    """A redis-server of the test's own on a free port, which the test may stop and restart."""

    def __init__(self, directory):
        self.binary = shutil.which("redis-server")
        assert self.binary, "redis-server is required (make test-server installs it)"
        self.port = free_port()
        self.dir = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--save", "", "--appendonly", "no",
                                      "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def redis(tmp_path):
    server = Redis(tmp_path)
    yield server
    server.stop()


def test_two_servers_share_state_and_limits_through_redis(redis):
    config = {"limits": {"requests_per_minute": 10, "requests_per_hour": 1000}}
    a = Server(config=config, args=("--redis", redis.url))
    b = Server(config=config, admin_key=a.admin_key, args=("--redis", redis.url))
    try:
        key = a.create_key(name="shared", scopes=["sessions:read", "sessions:write"],
                           limits={"requests_per_minute": 6})
        session = create_session(a, key["key"])
        # Created through one, read and terminated through the other.
        got = b.request("GET", f"/api/v1/sessions/{session['id']}", key=key["key"])
        assert got.status_code == 200, got.text
        assert got.json()["id"] == session["id"]
        assert b.request("DELETE", f"/api/v1/sessions/{session['id']}", key=key["key"]).json()["status"] == "COMPLETED"
        assert a.request("GET", f"/api/v1/sessions/{session['id']}", key=key["key"]).json()["status"] == "COMPLETED"
        # Four requests so far; the key's 6 per minute hold across both servers together.
        statuses = [(a if i % 2 else b).request("GET", "/api/v1/sessions", key=key["key"]).status_code
                    for i in range(8)]
        assert statuses.count(200) == 2 and statuses.count(429) == 6, statuses
    finally:
        a.stop()
        b.stop()


def test_redis_stopped_mid_run_is_a_clear_503_and_the_server_recovers(redis):
    server = Server(args=("--redis", redis.url))
    try:
        assert server.admin("GET", "/api/v1/sessions").status_code == 200
        redis.stop()
        response = server.admin("GET", "/api/v1/sessions")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
        assert requests.get(server.url("/healthz"), timeout=5).status_code == 200
        redis.start()
        # A fresh Redis: the admin key is gone from it, so the server answers, and answers 401.
        response = server.admin("GET", "/api/v1/sessions")
        assert response.status_code in (200, 401), response.text
    finally:
        server.stop()
