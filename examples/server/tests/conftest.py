"""Fixtures for the reference server's tests: each starts the real binary on a free port.

The binary is `target/debug/astack-server` unless `ASTACK_SERVER_BIN` names another; `make
test-server` builds it first.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]
BINARY = Path(os.environ.get("ASTACK_SERVER_BIN", ROOT / "target" / "debug" / "astack-server"))
OPENAPI = ROOT / "docs" / "openapi.yaml"
SIGNING_SECRET = "test-signing-secret-of-at-least-32-bytes!"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def make_key() -> str:
    """A key in the SPEC §2 format: ak_ + 30 base62 + base62 CRC32 (zlib) of those 30."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(30))
    crc = zlib.crc32(random_part.encode())
    digits = ""
    for _ in range(6):
        digits = ALPHABET[crc % 62] + digits
        crc //= 62
    return f"ak_{random_part}{digits}"


def one_off(key: str) -> str:
    """`key` with its last character changed: its checksum no longer holds."""
    return key[:-1] + ("0" if key[-1] != "0" else "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running astack-server with its admin key, base URL and captured output."""

    def __init__(self, config=None, env=None, args=(), admin_key=None, port=None, directory=None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin_key = admin_key or make_key()
        self.dir = directory or tempfile.mkdtemp(prefix="astack-server-test-")
        if not {"--data", "--redis", "--memory"} & set(args):
            # Each server keeps its state in a SQLite file of its own (the server's default store).
            args = ("--data", str(Path(self.dir) / "data"), *args)
        cmd = [str(BINARY), "--listen", f"127.0.0.1:{self.port}", *args]
        if config is not None:
            path = Path(self.dir) / "config.json"
            path.write_text(json.dumps(config))
            cmd += ["--config", str(path)]
        full_env = dict(os.environ)
        full_env.pop("ASTACK_ADMIN_KEY", None)
        full_env.pop("ASTACK_SIGNING_SECRET", None)
        full_env.update({"ASTACK_ADMIN_KEY": self.admin_key, "ASTACK_SIGNING_SECRET": SIGNING_SECRET})
        full_env.update(env or {})
        self.stdout_path = Path(self.dir) / "stdout.log"
        self.stderr_path = Path(self.dir) / "stderr.log"
        self.proc = subprocess.Popen(
            cmd,
            env=full_env,
            stdout=open(self.stdout_path, "wb"),
            stderr=open(self.stderr_path, "wb"),
        )
        deadline = time.time() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.stderr()}")
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("server did not answer /healthz")
            time.sleep(0.05)
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.base + path

    def request(self, method, path, key=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.request(method, self.base + path, headers=headers, timeout=10, **kwargs)

    def admin(self, method, path, **kwargs):
        return self.request(method, path, key=self.admin_key, **kwargs)

    def create_key(self, **body):
        response = self.admin("POST", "/api/v1/keys", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL: no graceful shutdown, nothing flushed."""
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def server():
    """The shared server: default configuration but for roomy request limits, so that the many
    admin calls of the suite are not rate limited (tests of limits give their keys their own)."""
    s = Server(config={"limits": {"requests_per_minute": 100000, "requests_per_hour": 1000000}})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def short_server():
    """A server with short session lifetimes, for expiry."""
    s = Server(config={"sessions": {"pending_ttl_seconds": 1, "max_duration_seconds": 2, "token_ttl_seconds": 600}})
    yield s
    s.stop()


@pytest.fixture
def fresh_server():
    """A server of its own, for tests that change shared state (workers)."""
    started = []

    def start(**kwargs):
        s = Server(**kwargs)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
