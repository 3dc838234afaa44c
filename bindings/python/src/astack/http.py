"""What the WSGI and ASGI middlewares share: the SPEC §3 route table, the bearer key, and the
SPEC §9 error answer of a refused request, with the §5 rate-limit headers of a denial."""

from __future__ import annotations

import json
import re
from typing import Callable, List, Optional, Tuple

from ._native import Decision
from .errors import REQUIRED_SCOPE, AstackError, error_from

__all__ = ["OperationFor", "operation_for", "bearer_key", "denial", "refusal", "REQUIRED_SCOPE", "REASONS"]

#: ``operation_for(method, path)``: the SPEC §3 operation of a request, or ``None`` to let it
#: through without a key (``/healthz``, static files...).
OperationFor = Callable[[str, str], Optional[str]]


#: HTTP reason phrases of the statuses astack answers.
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_ID = r"[^/]+"
_ROUTES: List[Tuple[str, "re.Pattern[str]", str]] = [
    (method, re.compile(f"^/api/v1/{pattern}/?$"), op)
    for method, pattern, op in [
        ("POST", "sessions", "session.create"),
        ("GET", "sessions", "session.read"),
        ("GET", f"sessions/{_ID}", "session.read"),
        ("DELETE", f"sessions/{_ID}", "session.terminate"),
        ("POST", f"sessions/{_ID}/connect", "worker.write"),
        ("POST", f"sessions/{_ID}/end", "worker.write"),
        ("GET", "users", "user.read"),
        ("GET", f"users/{_ID}", "user.read"),
        ("POST", "users", "user.write"),
        ("PATCH", f"users/{_ID}", "user.write"),
        ("DELETE", f"users/{_ID}", "user.write"),
        ("GET", "usage", "billing.read"),
        ("GET", "usage/alerts", "billing.read"),
        ("POST", "usage", "billing.write"),
        ("POST", "usage/alerts", "billing.write"),
        ("GET", "workers", "worker.read"),
        ("POST", "workers", "worker.write"),
        ("PATCH", f"workers/{_ID}", "worker.write"),
        ("GET", "audit", "admin"),
        ("GET", "metrics", "admin"),
    ]
]


def operation_for(method: str, path: str) -> Optional[str]:
    """The SPEC §3 route table: the operation of ``method path``; every ``/api/v1/keys…`` route
    is ``admin``; anything else is ``None`` (let through without a key)."""
    method = method.upper()
    if path == "/api/v1/keys" or path.startswith("/api/v1/keys/"):
        return "admin"
    for route_method, pattern, op in _ROUTES:
        if route_method == method and pattern.match(path):
            return op
    return None


def bearer_key(authorization: Optional[str]) -> str:
    """The key of an ``Authorization: Bearer <key>`` header; ``""`` when there is none (then
    ``missing_api_key``); a header of another form is passed on whole, so that it is refused
    as ``invalid_api_key``."""
    if not authorization:
        return ""
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return key.strip()
    return authorization


def refusal(error: AstackError, decision: Optional[Decision] = None) -> Tuple[int, List[Tuple[str, str]], bytes]:
    """The answer to a refused request: status, headers (JSON; with a decision, its rate-limit
    headers and Retry-After on 429) and the SPEC §9 body. Without one, a request the engine
    could not decide (``unavailable`` while the store is away, 503)."""
    body = json.dumps(error.to_json(), separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if decision is not None:
        headers.extend(decision.headers().items())
    return error.status, headers, body


def denial(decision: Decision, operation: str) -> Tuple[int, List[Tuple[str, str]], bytes]:
    """The answer to a denied request (see :func:`refusal`)."""
    return refusal(error_from(decision.result, None, decision, operation), decision)
