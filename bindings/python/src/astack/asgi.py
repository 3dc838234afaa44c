"""An ASGI middleware deciding every request with an engine (FastAPI, Starlette, Quart...).

    app.add_middleware(AuthMiddleware, engine=engine)     # Starlette / FastAPI
    app = AuthMiddleware(app, engine)                      # any ASGI application

As the WSGI one: for each HTTP request (or WebSocket handshake) whose operation is known
(``operation_for(method, path)``, by default the SPEC §3 route table), it decides the
``Authorization: Bearer <key>`` header. A denied HTTP request gets the SPEC §9 JSON error, its
status, the rate-limit headers and ``Retry-After`` on 429; a denied WebSocket is closed with
code 1008 before it is accepted. An allowed request reaches the application with
``scope["astack.key_id"]``, ``scope["astack.account_id"]``, ``scope["astack.operation"]`` and
``scope["astack.decision"]``, and its response carries ``RateLimit-Policy`` and ``RateLimit``. A
request the engine cannot decide (its store away) is answered 503 ``unavailable``, and a
WebSocket closed with 1011.

Over the memory store a decision takes about a microsecond, so it runs on the event loop. Over
SQLite or Redis it may wait on the disk or the network: it runs in asyncio's default executor
(``asyncio.to_thread``, the call releasing the GIL while it waits), and the loop goes on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, MutableMapping, Optional, Tuple

from .errors import AstackError
from .http import OperationFor, bearer_key, denial, operation_for, refusal

if TYPE_CHECKING:
    from ._native import Engine as _NativeEngine

__all__ = ["AuthMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> Optional[str]:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _refuse(kind: str, send: Send, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
    """Answers a refused HTTP request; closes a refused WebSocket before it is accepted (1008, or
    1011 when the request could not be decided)."""
    if kind == "websocket":
        await send({"type": "websocket.close", "code": 1008 if status < 500 else 1011})
        return
    raw_headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Authorizes requests to an ASGI application with an :class:`~astack.Engine`."""

    def __init__(self, app: ASGIApp, engine: "_NativeEngine", operation_for: OperationFor = operation_for) -> None:
        self.app = app
        self.engine = engine
        self.operation_for = operation_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        operation = self.operation_for(scope.get("method", "GET"), scope.get("path", "/"))
        if operation is None:
            await self.app(scope, receive, send)
            return
        key = bearer_key(_header(scope, b"authorization"))
        try:
            if self.engine._authorize_waits:
                decision = await asyncio.to_thread(self.engine.decide, key, operation)
            else:
                decision = self.engine.decide(key, operation)
        except AstackError as error:  # not decided at all: the store is away (503)
            await _refuse(kind, send, *refusal(error))
            return
        if not decision.allowed:
            await _refuse(kind, send, *denial(decision, operation))
            return
        scope = dict(scope)
        scope["astack.key_id"] = decision.key_id
        scope["astack.account_id"] = decision.account_id
        scope["astack.operation"] = operation
        scope["astack.decision"] = decision
        rate_headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in decision.headers().items()]

        async def send_with_headers(message: Message) -> None:
            if message.get("type") == "http.response.start":
                present = {bytes(n).lower() for n, _ in message.get("headers", ())}
                message = dict(message)
                message["headers"] = list(message.get("headers", ())) + [
                    (n, v) for n, v in rate_headers if n not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
