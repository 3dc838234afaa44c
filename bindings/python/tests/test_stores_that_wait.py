"""The middlewares over a store that waits: the ASGI one lets the event loop go on while Redis
answers and keeps the limits exact over SQLite with many requests decided at once; both answer
503 `unavailable` when the store is away."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import astack
import astack.asgi
import astack.wsgi
from astack.http import operation_for

#: Nothing listens there: every call that needs Redis fails at once.
UNREACHABLE = {"store": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}}


def read_command(buffer: bytes) -> Optional[Tuple[List[bytes], int]]:
    """The first RESP command in `buffer` (its words, and its length in bytes), or None if it is
    not all there yet."""
    if not buffer.startswith(b"*") or b"\r\n" not in buffer:
        return None
    at = buffer.index(b"\r\n")
    words = []
    for _ in range(int(buffer[1:at])):
        end = buffer.find(b"\r\n", at + 2)
        if end < 0:
            return None
        length = int(buffer[at + 3 : end])
        if len(buffer) < end + 2 + length + 2:
            return None
        words.append(buffer[end + 2 : end + 2 + length])
        at = end + 2 + length
    return words, at + 2


async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["astack.key_id"].encode()})


async def request(middleware: astack.asgi.AuthMiddleware, key: str, kind: str = "http") -> List[Dict[str, Any]]:
    """What the middleware sends for one request to GET /api/v1/sessions (or a WebSocket
    handshake there) with `key`."""
    sent: List[Dict[str, Any]] = []

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b""}

    headers = [(b"authorization", f"Bearer {key}".encode())]
    scope = {"type": kind, "method": "GET", "path": "/api/v1/sessions", "headers": headers}
    await middleware(scope, receive, send)
    return sent


def well_formed_key() -> str:
    """A key that passes the format check, so that the store is asked for it."""
    key = astack.Engine().bootstrap_admin_key()
    assert key is not None
    return key


def test_the_event_loop_turns_while_redis_answers() -> None:
    """A stand-in for Redis on the same event loop answers `CLIENT SETINFO` with +OK and every
    other command with an error. Decided on the loop, the request would hold it until the
    client's timeout, with nothing answered; decided off it, the stand-in answers the key's
    lookup and the request is refused as `unavailable` (503)."""
    answered: List[bytes] = []

    async def stand_in(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        while data := await reader.read(4096):
            buffer += data
            while (command := read_command(buffer)) is not None:
                words, length = command
                buffer = buffer[length:]
                answered.append(b" ".join(words))
                writer.write(b"+OK\r\n" if words[0] == b"CLIENT" else b"-ERR not really redis\r\n")
        writer.close()

    async def main() -> List[Dict[str, Any]]:
        server = await asyncio.start_server(stand_in, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        key = well_formed_key()
        with astack.Engine({"store": {"kind": "redis", "url": f"redis://127.0.0.1:{port}/0"}}) as engine:
            assert engine.store == "redis"
            sent = await request(astack.asgi.AuthMiddleware(app, engine), key)
        server.close()
        return sent

    sent = asyncio.run(main())
    assert sent[0]["status"] == 503, sent
    assert b'"unavailable"' in sent[1]["body"]
    assert any(not command.startswith(b"CLIENT") for command in answered), answered


def test_limits_stay_exact_with_requests_decided_at_once_over_sqlite(tmp_path: Path) -> None:
    config = {"store": {"kind": "sqlite", "path": str(tmp_path / "astack.db")}}
    with astack.Engine(config, manual_clock=1_700_000_000_000) as engine:
        assert engine.store == "sqlite"
        admin = engine.bootstrap_admin_key()
        assert admin is not None
        admin_id = engine.authorize(admin, "admin").key_id or ""
        limits = {"requests_per_minute": 25}
        created = engine.create_key(admin_id, name="burst", scopes=["sessions:read"], limits=limits)
        middleware = astack.asgi.AuthMiddleware(app, engine, operation_for=operation_for)

        async def main() -> List[List[Dict[str, Any]]]:
            return await asyncio.gather(*(request(middleware, created["key"]) for _ in range(60)))

        statuses = sorted(sent[0]["status"] for sent in asyncio.run(main()))
    assert statuses == [200] * 25 + [429] * 35


def test_a_request_that_cannot_be_decided_is_503_unavailable() -> None:
    key = well_formed_key()
    with astack.Engine(UNREACHABLE) as engine:
        sent = asyncio.run(request(astack.asgi.AuthMiddleware(app, engine), key))
        assert sent[0]["status"] == 503 and (b"content-type", b"application/json") in sent[0]["headers"]
        assert json.loads(sent[1]["body"])["error"]["code"] == "unavailable"
        assert asyncio.run(request(astack.asgi.AuthMiddleware(app, engine), key, "websocket")) == [
            {"type": "websocket.close", "code": 1011}
        ]

        started: List[Tuple[str, List[Tuple[str, str]]]] = []
        wsgi = astack.wsgi.AuthMiddleware(lambda environ, start: [b"not reached"], engine)
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/sessions", "HTTP_AUTHORIZATION": f"Bearer {key}"}
        body = b"".join(wsgi(environ, lambda status, headers: started.append((status, headers))))
    assert started[0][0] == "503 Service Unavailable"
    assert json.loads(body)["error"]["code"] == "unavailable"


def test_store_names_the_store(tmp_path: Path) -> None:
    assert astack.Engine().store == "memory"
    assert astack.Engine({"store": {"kind": "sqlite", "path": str(tmp_path / "a.db")}}).store == "sqlite"
    assert astack.Engine({"store": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}}).store == "redis"


def test_flush_writes_what_the_store_holds_back_at_once(tmp_path: Path) -> None:
    # No flush thread: only a call that falls due, or flush(), writes.
    config = {"store": {"kind": "sqlite", "path": str(tmp_path / "astack.db"), "flush_ms": 0}}
    opened = time.monotonic()
    with astack.Engine(config) as engine:
        admin = engine.bootstrap_admin_key()
        assert admin is not None
        admin_id = engine.authorize(admin, "admin").key_id or ""
        key = engine.create_key(admin_id, name="k", scopes=["sessions:read"])
        engine.authorize(key["key"], "session.read")

        def written() -> Optional[int]:
            """What another engine on the file reads of the key's last use."""
            with astack.Engine(config) as other:
                return other.get_key(other.authorize(admin or "", "admin").key_id or "", key["id"])["last_used_at"]

        # Held back for a second after the store opened (a machine slower than that wrote it).
        if time.monotonic() - opened < 0.9:
            assert written() is None
        engine.flush()
        assert isinstance(written(), int)
    with pytest.raises(astack.EngineClosed):
        engine.flush()


def test_the_engines_flush_thread_writes_without_a_call(tmp_path: Path) -> None:
    config = {"store": {"kind": "sqlite", "path": str(tmp_path / "astack.db"), "flush_ms": 50}}
    with astack.Engine(config) as engine:
        admin = engine.bootstrap_admin_key() or ""
        admin_id = engine.authorize(admin, "admin").key_id or ""

        def written() -> Optional[int]:
            """What another engine on the file reads of the key's last use."""
            with astack.Engine({"store": {"kind": "sqlite", "path": config["store"]["path"], "flush_ms": 0}}) as other:
                return other.get_key(admin_id, admin_id)["last_used_at"]

        deadline = time.monotonic() + 20
        while written() is None:
            assert time.monotonic() < deadline, "the engine's thread wrote the key's use"
            time.sleep(0.05)
    with pytest.raises(astack.InvalidConfig) as refused:
        astack.Engine({"store": {"kind": "sqlite", "path": str(tmp_path / "b.db"), "flush_ms": 5}})
    assert refused.value.field == "store.flush_ms"


def test_a_forked_child_may_close_its_copy_of_the_engine(tmp_path: Path) -> None:
    """The child has no flush thread to stop: closing must not wait for one, nor write."""
    engine = astack.Engine({"store": {"kind": "sqlite", "path": str(tmp_path / "astack.db")}})
    engine.bootstrap_admin_key()
    pid = os.fork()
    if pid == 0:  # the child
        engine.close()
        os._exit(0)
    status = None
    try:
        deadline = time.monotonic() + 20
        while status is None and time.monotonic() < deadline:
            reaped, code = os.waitpid(pid, os.WNOHANG)
            status = code if reaped else None
            time.sleep(0.05)
        assert status is not None, "the child hung closing its engine"
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if status is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        engine.close()
