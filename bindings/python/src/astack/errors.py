"""The exceptions of astack: one class per SPEC §9 code, all under :class:`AstackError`.

Every failure of the library comes back as a numeric result code (never reused) plus, on the
cold paths, the SPEC error body ``{"error": {"code", "message", ...details}}``. One helper,
:func:`error_from`, turns the pair into the exception to raise; hosts match on the class or on
``.code``, never on the message.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Mapping, Optional, Type

from . import _native

if TYPE_CHECKING:
    from ._native import Decision

__all__ = [
    "AstackError",
    "MissingApiKey",
    "InvalidApiKey",
    "ApiKeyRevoked",
    "ApiKeyExpired",
    "InsufficientScope",
    "RateLimited",
    "ConcurrentSessionLimit",
    "InvalidRequest",
    "NotFound",
    "Forbidden",
    "AlreadyExists",
    "InvalidTransition",
    "InvalidToken",
    "PayloadTooLarge",
    "NoWorkerAvailable",
    "InvalidConfig",
    "InvalidArgument",
    "Unsupported",
    "Unavailable",
    "InternalError",
    "EngineClosed",
    "error_from",
]


class AstackError(Exception):
    """Any failure reported by astack.

    ``code`` is the stable snake_case code (SPEC §9), ``status`` the HTTP status it maps to,
    ``message`` the human text, ``details`` the machine-readable fields beside them (``field``,
    ``reason``, ``retry_after``...), ``result`` the numeric C ABI result, and ``decision`` the
    :class:`~astack.Decision` when the error is the denial of an ``authorize``.
    """

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    result: int
    message: str
    details: Dict[str, Any]
    decision: Optional["Decision"]

    def __init__(
        self,
        message: str = "",
        *,
        details: Optional[Mapping[str, Any]] = None,
        result: int = 0,
        decision: Optional["Decision"] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})
        self.result = result
        self.decision = decision

    def to_json(self) -> Dict[str, Any]:
        """The SPEC §9 body: ``{"error": {"code", "message", ...details}}``."""
        body: Dict[str, Any] = dict(self.details)
        body["code"] = self.code
        body["message"] = self.message
        return {"error": body}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class MissingApiKey(AstackError):
    """No API key was presented (401)."""

    code = "missing_api_key"
    status = 401


class InvalidApiKey(AstackError):
    """The key is malformed or unknown (401)."""

    code = "invalid_api_key"
    status = 401


class ApiKeyRevoked(AstackError):
    """The key was revoked (401)."""

    code = "api_key_revoked"
    status = 401


class ApiKeyExpired(AstackError):
    """The key is past its expiry (401)."""

    code = "api_key_expired"
    status = 401


class InsufficientScope(AstackError):
    """The key may not perform the operation (403)."""

    code = "insufficient_scope"
    status = 403


class RateLimited(AstackError):
    """A rate-limit window is empty (429); ``retry_after`` seconds until a token is back."""

    code = "rate_limited"
    status = 429

    @property
    def retry_after(self) -> int:
        return int(self.details.get("retry_after", 1))


class ConcurrentSessionLimit(AstackError):
    """The key already holds its maximum of live sessions (429)."""

    code = "concurrent_session_limit"
    status = 429


class InvalidRequest(AstackError, ValueError):
    """A field is missing, of the wrong type or out of range (400); ``field`` names it."""

    code = "invalid_request"
    status = 400

    @property
    def field(self) -> Optional[str]:
        value = self.details.get("field")
        return str(value) if value is not None else None


class NotFound(AstackError, LookupError):
    """No such resource in the key's account (404)."""

    code = "not_found"
    status = 404


class Forbidden(AstackError):
    """The key may not act on that account or resource (403)."""

    code = "forbidden"
    status = 403


class AlreadyExists(AstackError):
    """A resource with that identity exists (409)."""

    code = "already_exists"
    status = 409


class InvalidTransition(AstackError):
    """The session's state does not allow the event (409)."""

    code = "invalid_transition"
    status = 409


class InvalidToken(AstackError):
    """A session token was refused (401); ``reason`` says why (SPEC §7)."""

    code = "invalid_token"
    status = 401

    @property
    def reason(self) -> Optional[str]:
        value = self.details.get("reason")
        return str(value) if value is not None else None


class PayloadTooLarge(AstackError):
    """A request document is over 64 KiB (413)."""

    code = "payload_too_large"
    status = 413


class NoWorkerAvailable(AstackError):
    """No worker has room for a new session (503)."""

    code = "no_worker_available"
    status = 503


class InvalidConfig(AstackError, ValueError):
    """The configuration is invalid (400); ``field`` names the offending field."""

    code = "invalid_config"
    status = 400

    @property
    def field(self) -> Optional[str]:
        value = self.details.get("field")
        return str(value) if value is not None else None


class InvalidArgument(AstackError, ValueError):
    """An argument cannot cross the C ABI: a string with NUL or lone surrogates, a number out
    of range, an unknown operation name (400)."""

    code = "invalid_argument"
    status = 400


class Unsupported(AstackError):
    """The engine cannot do this, such as setting the clock of an engine on the system clock."""

    code = "unsupported"
    status = 400


class Unavailable(AstackError):
    """The state store cannot be reached (503)."""

    code = "unavailable"
    status = 503


class InternalError(AstackError):
    """A bug in the library, caught at its boundary (500)."""

    code = "internal_error"
    status = 500


class EngineClosed(AstackError):
    """The engine was closed; make a new one."""

    code = "engine_closed"
    status = 500


_BY_RESULT: Dict[int, Type[AstackError]] = {
    101: MissingApiKey,
    102: InvalidApiKey,
    103: ApiKeyRevoked,
    104: ApiKeyExpired,
    105: InsufficientScope,
    106: RateLimited,
    107: ConcurrentSessionLimit,
    201: InvalidRequest,
    202: NotFound,
    203: Forbidden,
    204: AlreadyExists,
    205: InvalidTransition,
    206: InvalidToken,
    207: PayloadTooLarge,
    208: NoWorkerAvailable,
    301: InvalidConfig,
    401: InvalidArgument,  # null_argument: a None where a value is required
    402: InvalidArgument,  # invalid_utf8
    403: InternalError,  # buffer_too_small: never returned by the calls this package makes
    404: Unsupported,
    405: InvalidArgument,
    501: Unavailable,
    502: InternalError,
    _native.ENGINE_CLOSED: EngineClosed,
}

#: Every exception class by its SPEC code.
BY_CODE: Dict[str, Type[AstackError]] = {cls.code: cls for cls in _BY_RESULT.values()}


#: The scope each operation needs (SPEC §3), named in ``insufficient_scope`` errors.
REQUIRED_SCOPE = {
    "session.create": "sessions:write",
    "session.read": "sessions:read",
    "session.terminate": "sessions:write",
    "user.read": "users:read",
    "user.write": "users:write",
    "billing.read": "billing:read",
    "billing.write": "billing:write",
    "worker.read": "workers:read",
    "worker.write": "workers:write",
    "admin": "admin:all",
}


def error_from(
    result: int,
    body: Optional[str] = None,
    decision: Optional["Decision"] = None,
    operation: Optional[str] = None,
) -> AstackError:
    """The exception for a result code, with the error body of a cold path (JSON text), or the
    decision and operation of a denied ``authorize``."""
    cls = _BY_RESULT.get(result, InternalError)
    message = ""
    details: Dict[str, Any] = {}
    if body:
        try:
            error = json.loads(body).get("error", {})
        except (ValueError, AttributeError):
            error = {}
        if isinstance(error, dict):
            message = str(error.pop("message", ""))
            error.pop("code", None)
            details = error
    if decision is not None and decision.requests_per_minute:
        if result == 106:
            details.setdefault("window", decision.window)
            details.setdefault("limit", decision.limit)
            details.setdefault("retry_after", decision.retry_after)
        elif result == 107:
            details.setdefault("limit", decision.concurrent_sessions)
    if result == 105 and operation in REQUIRED_SCOPE and "required_scopes" not in details:
        details["required_scopes"] = [REQUIRED_SCOPE[str(operation)]]
        message = message or f"this operation requires the `{REQUIRED_SCOPE[str(operation)]}` scope"
    if result == 405 and operation is not None and not message:
        message = f"unknown operation {operation!r}"
    if not message:
        if result == _native.ENGINE_CLOSED:
            message = "the engine is closed"
        elif result == 106 and "retry_after" in details:
            message = f"rate limit exceeded for the {details.get('window')} window; retry in {details['retry_after']} s"
        else:
            message = _native.result_message(result)
    return cls(message, details=details, result=result, decision=decision)


_native._set_error_factory(error_from)
