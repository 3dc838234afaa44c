"""astack: the control plane of a realtime voice/vision AI session service (API keys, scopes,
rate limits, sessions, tokens, workers, users, usage, audit), from Python.

    import astack

    with astack.Engine() as engine:
        admin = engine.bootstrap_admin_key()
        decision = engine.authorize(admin, "admin")          # raises on denial
        app = engine.create_key(decision.key_id, name="app", scopes=["sessions:write"])
        ...

The engine is a Rust library reached through its C ABI by a small CPython extension; one engine
serves any number of threads (see :class:`Engine` for when a call releases the GIL).
"""

from . import _native
from ._native import Decision
from .engine import UNSET, Config, Engine, config_check
from .errors import (
    AlreadyExists,
    ApiKeyExpired,
    ApiKeyRevoked,
    AstackError,
    ConcurrentSessionLimit,
    EngineClosed,
    Forbidden,
    InsufficientScope,
    InternalError,
    InvalidApiKey,
    InvalidArgument,
    InvalidConfig,
    InvalidRequest,
    InvalidToken,
    InvalidTransition,
    MissingApiKey,
    NoWorkerAvailable,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    Unsupported,
    error_from,
)
from .types import (
    Alert,
    AuditRecord,
    CreatedKey,
    CreatedSession,
    KeyLimits,
    KeyRecord,
    Metrics,
    Operation,
    Session,
    TokenClaims,
    Usage,
    UsageRecorded,
    User,
    Worker,
)

#: The version of the Rust library inside this package.
__version__: str = _native.version()

#: Largest request document a cold path accepts (SPEC §9).
MAX_REQUEST_BYTES: int = _native.MAX_REQUEST_BYTES

__all__ = [
    "Engine",
    "Decision",
    "Config",
    "config_check",
    "UNSET",
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
    "Alert",
    "AuditRecord",
    "CreatedKey",
    "CreatedSession",
    "KeyLimits",
    "KeyRecord",
    "Metrics",
    "Operation",
    "Session",
    "TokenClaims",
    "Usage",
    "UsageRecorded",
    "User",
    "Worker",
    "MAX_REQUEST_BYTES",
    "__version__",
]
