"""Both middlewares through real HTTP requests: the WSGI one on a wsgiref server, the ASGI one on
uvicorn, each in a thread, driven by http.client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import uvicorn

import astack
import astack.asgi
import astack.wsgi
from astack.http import bearer_key, operation_for
from conftest import SECRET, START_MS


def _identity(get: Any) -> bytes:
    return json.dumps(
        {"key_id": get("astack.key_id"), "account_id": get("astack.account_id"), "operation": get("astack.operation")}
    ).encode()


def wsgi_app(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = _identity(environ.get)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = _identity(scope.get)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _custom_ops(method: str, path: str) -> Optional[str]:
    if path == "/private":
        return "user.read"
    return operation_for(method, path)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class Server:
    def __init__(self, engine: astack.Engine, port: int, kind: str) -> None:
        self.engine = engine
        self.port = port
        self.kind = kind

    def request(
        self, method: str, path: str, key: Optional[str] = None, authorization: Optional[str] = None
    ) -> Tuple[int, Dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if authorization is not None:
            headers["Authorization"] = authorization
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw) if raw else None


def _wsgi_server(engine: astack.Engine) -> Iterator[int]:
    app = astack.wsgi.AuthMiddleware(wsgi_app, engine, operation_for=_custom_ops)
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _asgi_server(engine: astack.Engine) -> Iterator[int]:
    app = astack.asgi.AuthMiddleware(asgi_app, engine, operation_for=_custom_ops)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with astack.Engine({"signing_keys": [{"kid": "k1", "secret": SECRET}]}, manual_clock=START_MS) as engine:
        start = _wsgi_server if request.param == "wsgi" else _asgi_server
        for port in start(engine):
            yield Server(engine, port, request.param)


def _key(engine: astack.Engine, scopes: List[str], **fields: Any) -> Tuple[str, str]:
    admin = engine.bootstrap_admin_key()
    if admin is None:  # pragma: no cover - one bootstrap per engine here
        raise AssertionError
    admin_id = engine.authorize(admin, "admin").key_id or ""
    created = engine.create_key(admin_id, name="http", scopes=scopes, account_id="acme", **fields)
    return created["key"], created["id"]


def test_unprotected_routes_pass_through(server: Server) -> None:
    status, headers, body = server.request("GET", "/healthz")
    assert status == 200 and body == {"key_id": None, "account_id": None, "operation": None}
    assert "ratelimit" not in headers


def test_allowed_request_reaches_the_app_with_identity_and_headers(server: Server) -> None:
    key, key_id = _key(server.engine, ["sessions:read"], limits={"requests_per_minute": 5})
    status, headers, body = server.request("GET", "/api/v1/sessions", key)
    assert status == 200
    assert body == {"key_id": key_id, "account_id": "acme", "operation": "session.read"}
    assert headers["ratelimit-policy"] == '"minute";q=5;w=60, "hour";q=1000;w=3600'
    assert headers["ratelimit"] == '"minute";r=4;t=12'
    assert "retry-after" not in headers
    status, _, body = server.request("GET", "/private", key)  # a custom operation_for
    assert status == 403 and body["error"]["required_scopes"] == ["users:read"]


def test_authentication_errors_are_spec_json(server: Server) -> None:
    status, headers, body = server.request("GET", "/api/v1/sessions")
    assert status == 401 and headers["content-type"] == "application/json"
    assert body["error"]["code"] == "missing_api_key" and body["error"]["message"]
    assert "ratelimit" not in headers
    status, _, body = server.request("GET", "/api/v1/sessions/sess_1", "ak_" + "x" * 36)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, _, body = server.request("GET", "/api/v1/sessions", authorization="Basic dXNlcjpwdw==")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"


def test_insufficient_scope_is_403_with_rate_headers(server: Server) -> None:
    key, _ = _key(server.engine, ["sessions:read"])
    status, headers, body = server.request("POST", "/api/v1/keys", key)
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope" and body["error"]["required_scopes"] == ["admin:all"]
    assert "ratelimit" in headers and "ratelimit-policy" in headers


def test_rate_limited_is_429_with_retry_after(server: Server) -> None:
    key, _ = _key(server.engine, ["sessions:write"], limits={"requests_per_minute": 2})
    assert server.request("POST", "/api/v1/sessions", key)[0] == 200
    assert server.request("POST", "/api/v1/sessions", key)[0] == 200
    status, headers, body = server.request("POST", "/api/v1/sessions", key)
    assert status == 429
    assert headers["retry-after"] == "30"
    assert headers["ratelimit"] == '"minute";r=0;t=60'
    assert body["error"] == {
        "code": "rate_limited",
        "message": "rate limit exceeded for the minute window; retry in 30 s",
        "window": "minute",
        "limit": 2,
        "retry_after": 30,
    }
    server.engine.advance_clock(30_000)
    assert server.request("POST", "/api/v1/sessions", key)[0] == 200


def test_route_table_and_bearer() -> None:
    assert operation_for("POST", "/api/v1/sessions") == "session.create"
    assert operation_for("GET", "/api/v1/sessions/sess_1") == "session.read"
    assert operation_for("DELETE", "/api/v1/sessions/sess_1") == "session.terminate"
    assert operation_for("POST", "/api/v1/sessions/sess_1/connect") == "worker.write"
    assert operation_for("POST", "/api/v1/sessions/sess_1/end") == "worker.write"
    assert operation_for("PATCH", "/api/v1/users/u") == "user.write"
    assert operation_for("GET", "/api/v1/usage/alerts") == "billing.read"
    assert operation_for("POST", "/api/v1/usage") == "billing.write"
    assert operation_for("GET", "/api/v1/workers") == "worker.read"
    assert operation_for("PATCH", "/api/v1/workers/gpu-1") == "worker.write"
    assert operation_for("POST", "/api/v1/keys/key_1/rotate") == "admin"
    assert operation_for("GET", "/api/v1/audit") == "admin"
    assert operation_for("GET", "/api/v1/metrics") == "admin"
    assert operation_for("GET", "/healthz") is None
    assert bearer_key(None) == "" and bearer_key("Bearer ak_1") == "ak_1" and bearer_key("bearer  ak_2 ") == "ak_2"
    assert bearer_key("Token x") == "Token x"


def test_asgi_websocket_and_lifespan() -> None:
    """A denied WebSocket handshake is closed (1008) before the app sees it; an allowed one and
    the lifespan protocol reach the app."""
    import asyncio

    seen: List[Dict[str, Any]] = []

    async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    def ops(method: str, path: str) -> Optional[str]:
        return "session.read" if path == "/ws" else None

    with astack.Engine(manual_clock=START_MS) as engine:
        admin = engine.bootstrap_admin_key()
        middleware = astack.asgi.AuthMiddleware(app, engine, operation_for=ops)
        sent: List[Dict[str, Any]] = []

        async def send(message: Dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> Dict[str, Any]:
            return {"type": "websocket.connect"}

        async def run() -> None:
            await middleware({"type": "lifespan"}, receive, send)
            await middleware({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
            headers = [(b"authorization", f"Bearer {admin}".encode())]
            await middleware({"type": "websocket", "path": "/ws", "headers": headers}, receive, send)

        asyncio.run(run())
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert [s["type"] for s in seen] == ["lifespan", "websocket"]
    assert seen[1]["astack.account_id"] == "default" and seen[1]["astack.operation"] == "session.read"
