"""The records astack returns, as TypedDicts with the SPEC's field names.

They are the JSON documents of the C ABI, parsed: plain dicts at run time (no copying), typed
for mypy and editors. Times are Unix epoch milliseconds.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Literal, Optional, TypedDict

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover
    from typing_extensions import NotRequired

__all__ = [
    "Operation",
    "Scope",
    "Permission",
    "SessionStatus",
    "KeyLimits",
    "KeyRecord",
    "CreatedKey",
    "Session",
    "CreatedSession",
    "TokenClaims",
    "Worker",
    "User",
    "Usage",
    "UsageRecorded",
    "Alert",
    "AuditRecord",
    "Metrics",
]

Operation = Literal[
    "session.create",
    "session.read",
    "session.terminate",
    "user.read",
    "user.write",
    "billing.read",
    "billing.write",
    "worker.read",
    "worker.write",
    "admin",
]
Scope = Literal[
    "sessions:read",
    "sessions:write",
    "users:read",
    "users:write",
    "billing:read",
    "billing:write",
    "workers:read",
    "workers:write",
    "admin:all",
]
Permission = Literal["session_create", "session_manage", "usage_read"]
SessionStatus = Literal["PENDING", "ACTIVE", "COMPLETED", "FAILED", "EXPIRED"]


class KeyLimits(TypedDict, total=False):
    """A key's own limits; a field left out takes the engine default (SPEC §5, §11)."""

    requests_per_minute: int
    requests_per_hour: int
    concurrent_sessions: int


class KeyRecord(TypedDict):
    """An API key as stored (SPEC §2): never the key itself."""

    id: str
    account_id: str
    name: str
    prefix: str
    scopes: List[str]
    permissions: List[str]
    limits: KeyLimits
    created_at: int
    expires_at: Optional[int]
    revoked_at: Optional[int]
    last_used_at: Optional[int]


class CreatedKey(KeyRecord):
    """A new key: its record plus ``key``, the plaintext, shown this once."""

    key: str


class Session(TypedDict):
    """A session (SPEC §6)."""

    id: str
    account_id: str
    status: SessionStatus
    end_user_id: str
    connection_type: Literal["websocket", "webrtc"]
    quality: Literal["low", "standard", "high"]
    features: List[str]
    metadata: Dict[str, Any]
    key_id: str
    node_id: str
    worker_url: str
    created_at: int
    expires_at: int
    connected_at: Optional[int]
    ended_at: Optional[int]
    end_reason: Optional[str]


class CreatedSession(Session):
    """A new session plus ``session_token``, the JWT its client presents to the worker."""

    session_token: str


class TokenClaims(TypedDict):
    """The claims of a verified session token (SPEC §7)."""

    iss: str
    sub: str
    aud: str
    acc: str
    uid: str
    features: List[str]
    quality: str
    iat: int
    nbf: int
    exp: int
    jti: str


class Worker(TypedDict):
    """A worker node (SPEC §6); lists add ``active_sessions``."""

    node_id: str
    url: str
    capacity: int
    draining: bool
    active_sessions: NotRequired[int]


class User(TypedDict):
    """An end user of the account (SPEC §8)."""

    id: str
    account_id: str
    name: str
    email: Optional[str]
    metadata: Dict[str, Any]
    created_at: int
    updated_at: int


class Usage(TypedDict):
    """An account's metered usage (SPEC §8)."""

    account_id: str
    requests: int
    session_seconds: int
    metrics: Dict[str, int]


class UsageRecorded(TypedDict):
    """The answer to recording a metric: its new total, and whether this call counted."""

    metric: str
    total: int
    counted: bool


class Alert(TypedDict):
    """A usage alert: fires once when ``metric`` reaches ``threshold`` (``fired_at``)."""

    id: str
    account_id: str
    metric: str
    threshold: int
    created_at: int
    fired_at: Optional[int]


class AuditRecord(TypedDict):
    """One audited event (SPEC §8): actors by key id and prefix, never the key."""

    id: str
    account_id: str
    at: int
    action: str
    actor_key_id: Optional[str]
    actor_prefix: Optional[str]
    target: Optional[str]
    detail: Any


class Metrics(TypedDict):
    """Engine-wide figures for the key's view."""

    keys: int
    sessions: Dict[str, int]
    workers: int
