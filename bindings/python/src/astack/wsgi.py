"""A WSGI middleware deciding every request with an engine (Flask, Django, Bottle, Falcon...).

    app.wsgi_app = AuthMiddleware(app.wsgi_app, engine)

For each request whose operation is known (``operation_for(method, path)``, by default the
SPEC §3 route table), the middleware reads ``Authorization: Bearer <key>`` and decides it. A
denied request is answered at once with the SPEC §9 JSON error, its status, the rate-limit
headers and ``Retry-After`` on 429. An allowed one reaches the application with
``environ["astack.key_id"]``, ``environ["astack.account_id"]``, ``environ["astack.operation"]``
and ``environ["astack.decision"]`` set, and its response carries ``RateLimit-Policy`` and
``RateLimit``. A request the engine cannot decide (its store away) is answered 503
``unavailable``.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Tuple, Type, Union

from .errors import AstackError
from .http import REASONS, OperationFor, bearer_key, denial, operation_for, refusal

if TYPE_CHECKING:
    from ._native import Engine as _NativeEngine

__all__ = ["AuthMiddleware"]

_ExcInfo = Union[Tuple[Type[BaseException], BaseException, Optional[TracebackType]], Tuple[None, None, None]]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]  # type: ignore[type-arg]


class AuthMiddleware:
    """Authorizes requests to a WSGI application with an :class:`~astack.Engine`."""

    def __init__(self, app: WSGIApp, engine: "_NativeEngine", operation_for: OperationFor = operation_for) -> None:
        self.app = app
        self.engine = engine
        self.operation_for = operation_for

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:  # type: ignore[type-arg]
        operation = self.operation_for(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "") or "/")
        if operation is None:
            return self.app(environ, start_response)
        try:
            decision = self.engine.decide(bearer_key(environ.get("HTTP_AUTHORIZATION")), operation)
        except AstackError as error:  # not decided at all: the store is away (503)
            return self._refuse(start_response, *refusal(error))
        if not decision.allowed:
            return self._refuse(start_response, *denial(decision, operation))
        environ["astack.key_id"] = decision.key_id
        environ["astack.account_id"] = decision.account_id
        environ["astack.operation"] = operation
        environ["astack.decision"] = decision
        rate_headers = list(decision.headers().items())

        def start(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
            names = {name.lower() for name, _ in headers}
            extra = [(n, v) for n, v in rate_headers if n.lower() not in names]
            if exc_info is not None:
                return start_response(status, list(headers) + extra, exc_info)
            return start_response(status, list(headers) + extra)

        return self.app(environ, start)

    @staticmethod
    def _refuse(start_response: StartResponse, status: int, headers: List[Tuple[str, str]], body: bytes) -> List[bytes]:
        start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
        return [body]
