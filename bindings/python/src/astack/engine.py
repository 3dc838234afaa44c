"""The engine: keys, scopes, limits, sessions, tokens, workers, users, usage and audit."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union, cast

from . import _native
from .errors import error_from
from .types import (
    Alert,
    AuditRecord,
    CreatedKey,
    CreatedSession,
    KeyLimits,
    KeyRecord,
    Metrics,
    Session,
    TokenClaims,
    Usage,
    UsageRecorded,
    User,
    Worker,
)

__all__ = ["Engine", "Config", "config_check"]

#: An engine configuration (SPEC §11): a mapping, or its JSON text.
Config = Union[Mapping[str, Any], str, None]

_INDEX: Dict[str, int] = {name: i for i, name in enumerate(_native.CALLS)}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks an argument left out (so that ``None`` can mean "clear it").
UNSET: Any = _Unset()


def _config_text(config: Config) -> Optional[str]:
    if config is None or isinstance(config, str):
        return config
    return json.dumps(config, separators=(",", ":"))


def _document(**fields: Any) -> str:
    return json.dumps({k: v for k, v in fields.items() if v is not UNSET}, separators=(",", ":"))


def _list(value: Any) -> Any:
    return list(value) if value is not UNSET and value is not None else value


def config_check(config: Config = None) -> Dict[str, Any]:
    """Checks a configuration without making an engine: returns it with every default filled in
    (secrets redacted), or raises :class:`~astack.InvalidConfig` naming the field."""
    code, body = _native.config_check(_config_text(config))
    if code:
        raise error_from(code, body)
    return cast(Dict[str, Any], json.loads(body or "{}"))


class Engine(_native.Engine):
    """One engine serves any number of threads. Every call releases the GIL while it runs,
    except :meth:`authorize` and :meth:`decide` over the memory store: a decision there takes
    less time than handing the GIL to another thread, so threads take turns faster with it held
    (as :mod:`hashlib` holds it for short inputs). Over SQLite or Redis, where a decision may
    wait on the disk or the network, they release it too.

    ``Engine(config)`` reads the system clock; ``Engine(config, manual_clock=start_ms)`` reads a
    clock that moves only with :meth:`set_clock` and :meth:`advance_clock` (for tests). The
    engine frees itself when collected; :meth:`close` (or ``with Engine() as engine:``) frees it
    at once, after which every call raises :class:`~astack.EngineClosed`.

    The hot path is :meth:`authorize` (or :meth:`decide`, which returns denials instead of
    raising them). The cold paths take the acting key's id (``decision.key_id``) first and
    return the SPEC's records; failures raise the :class:`~astack.AstackError` of their code.
    """

    def __init__(self, config: Config = None, *, manual_clock: Optional[int] = None) -> None:
        text = _config_text(config)
        code = self._open(text, manual_clock)
        if code:
            check, body = _native.config_check(text)
            raise error_from(code, body if check == code else None)
        # The configuration was valid: its `store`, when given, is an object.
        self._store: str = json.loads(text or "{}").get("store", {}).get("kind", "memory")
        self._authorize_waits = self._store != "memory"

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<astack.Engine {'closed' if self.closed else 'open'}>"

    def _run(self, name: str, *args: Any) -> Any:
        code, body = self._call(_INDEX[name], *args)
        if code:
            raise error_from(code, body)
        return json.loads(body or "null")

    # -- configuration ------------------------------------------------------------------------

    @property
    def store(self) -> str:
        """The store the configuration chose: ``"memory"``, ``"sqlite"`` or ``"redis"``. Over
        SQLite and Redis a call may wait on the disk or the network (releasing the GIL)."""
        return self._store

    @property
    def config(self) -> Dict[str, Any]:
        """The configuration in force, every default filled in (secrets redacted)."""
        return cast(Dict[str, Any], self._run("engine_config"))

    # -- keys -----------------------------------------------------------------------------------

    def bootstrap_admin_key(self, key: Optional[str] = None) -> Optional[str]:
        """Creates the operator's first admin key (``admin:all``, account ``default``).

        Without ``key`` one is generated and returned (shown this once); with a well-formed
        ``key`` that key is installed and ``None`` is returned."""
        answer = self._run("bootstrap_admin_key", key)
        return cast(Optional[str], answer.get("key"))

    def create_key(
        self,
        key_id: str,
        *,
        name: Optional[str] = UNSET,
        scopes: Optional[Sequence[str]] = UNSET,
        permissions: Optional[Sequence[str]] = UNSET,
        limits: Optional[KeyLimits] = UNSET,
        expires_at: Optional[int] = UNSET,
        account_id: Optional[str] = UNSET,
    ) -> CreatedKey:
        """Creates a key (``admin``); the answer's ``key`` is the plaintext, shown this once."""
        doc = _document(
            account_id=account_id,
            name=name,
            scopes=_list(scopes),
            permissions=_list(permissions),
            limits=limits,
            expires_at=expires_at,
        )
        return cast(CreatedKey, self._run("key_create", key_id, doc))

    def list_keys(self, key_id: str, limit: int = 50) -> List[KeyRecord]:
        """Keys, newest first (``admin``); at most 1,000."""
        return cast(List[KeyRecord], self._run("key_list", key_id, limit)["data"])

    def get_key(self, key_id: str, id: str) -> KeyRecord:
        """The record of key ``id`` (``admin``)."""
        return cast(KeyRecord, self._run("key_get", key_id, id))

    def revoke_key(self, key_id: str, id: str) -> KeyRecord:
        """Revokes key ``id`` (``admin``); revoking it again changes nothing."""
        return cast(KeyRecord, self._run("key_revoke", key_id, id))

    def rotate_key(self, key_id: str, id: str, grace_period_seconds: int = 0) -> CreatedKey:
        """A new key like ``id``; the old one expires after the grace period (``admin``)."""
        return cast(CreatedKey, self._run("key_rotate", key_id, id, grace_period_seconds))

    # -- sessions and tokens --------------------------------------------------------------------

    def create_session(
        self,
        key_id: str,
        end_user_id: str,
        *,
        connection_type: str = UNSET,
        quality: str = UNSET,
        features: Sequence[str] = UNSET,
        metadata: Mapping[str, Any] = UNSET,
    ) -> CreatedSession:
        """Creates a PENDING session (``session.create``), placed on a worker, with its token."""
        doc = _document(
            end_user_id=end_user_id,
            connection_type=connection_type,
            quality=quality,
            features=list(features) if features is not UNSET else UNSET,
            metadata=dict(metadata) if metadata is not UNSET else UNSET,
        )
        return cast(CreatedSession, self._run("session_create", key_id, doc))

    def get_session(self, key_id: str, id: str) -> Session:
        """Session ``id`` of the key's account (``session.read``), expiry applied."""
        return cast(Session, self._run("session_get", key_id, id))

    def list_sessions(self, key_id: str, limit: int = 50) -> List[Session]:
        """The account's sessions, newest first (``session.read``)."""
        return cast(List[Session], self._run("session_list", key_id, limit)["data"])

    def terminate_session(self, key_id: str, id: str) -> Session:
        """PENDING/ACTIVE → COMPLETED (``session.terminate``); an ended session comes back as is."""
        return cast(Session, self._run("session_terminate", key_id, id))

    def connect_session(self, key_id: str, id: str, session_token: str) -> Session:
        """A worker connects session ``id`` with the token its client presented
        (``worker.write``): PENDING → ACTIVE, once."""
        return cast(Session, self._run("session_connect", key_id, id, session_token))

    def end_session(self, key_id: str, id: str, outcome: str = "completed", reason: Optional[str] = UNSET) -> Session:
        """A worker reports the end of session ``id`` (``worker.write``): ``outcome``
        ``"completed"`` or ``"failed"`` (with ``reason``)."""
        return cast(Session, self._run("session_end", key_id, id, _document(outcome=outcome, reason=reason)))

    def issue_token(self, key_id: str, session_id: str) -> str:
        """A new session token for a live session (``session.create``)."""
        return cast(str, self._run("token_issue", key_id, session_id)["session_token"])

    def verify_token(
        self, session_token: str, *, audience: Optional[str] = None, session_id: Optional[str] = None
    ) -> TokenClaims:
        """Verifies a session token at the engine's time (SPEC §7) and returns its claims;
        raises :class:`~astack.InvalidToken` with ``reason`` when it is refused."""
        return cast(TokenClaims, self._run("token_verify", session_token, audience, session_id))

    # -- workers --------------------------------------------------------------------------------

    def register_worker(
        self, key_id: str, node_id: str, url: str, capacity: int, *, draining: bool = False
    ) -> Worker:
        """Registers a worker (``worker.write``, the operator's keys only)."""
        doc = _document(node_id=node_id, url=url, capacity=capacity, draining=draining)
        return cast(Worker, self._run("worker_register", key_id, doc))

    def update_worker(
        self, key_id: str, node_id: str, *, url: str = UNSET, capacity: int = UNSET, draining: bool = UNSET
    ) -> Worker:
        """Changes a worker (``worker.write``, the operator's keys only); left-out fields stay."""
        doc = _document(url=url, capacity=capacity, draining=draining)
        return cast(Worker, self._run("worker_update", key_id, node_id, doc))

    def list_workers(self, key_id: str) -> List[Worker]:
        """Registered workers with their live sessions (``worker.read``)."""
        return cast(List[Worker], self._run("worker_list", key_id)["data"])

    # -- users ----------------------------------------------------------------------------------

    def create_user(
        self, key_id: str, name: str, *, email: Optional[str] = UNSET, metadata: Mapping[str, Any] = UNSET
    ) -> User:
        """Creates an end user in the key's account (``user.write``)."""
        doc = _document(name=name, email=email, metadata=dict(metadata) if metadata is not UNSET else UNSET)
        return cast(User, self._run("user_create", key_id, doc))

    def get_user(self, key_id: str, id: str) -> User:
        """User ``id`` of the key's account (``user.read``)."""
        return cast(User, self._run("user_get", key_id, id))

    def list_users(self, key_id: str, limit: int = 50) -> List[User]:
        """The account's users, newest first (``user.read``)."""
        return cast(List[User], self._run("user_list", key_id, limit)["data"])

    def update_user(
        self,
        key_id: str,
        id: str,
        *,
        name: str = UNSET,
        email: Optional[str] = UNSET,
        metadata: Mapping[str, Any] = UNSET,
    ) -> User:
        """Changes user ``id`` (``user.write``): left-out fields stay, ``email=None`` clears it."""
        doc = _document(name=name, email=email, metadata=dict(metadata) if metadata is not UNSET else UNSET)
        return cast(User, self._run("user_update", key_id, id, doc))

    def delete_user(self, key_id: str, id: str) -> User:
        """Deletes user ``id`` (``user.write``) and returns it."""
        return cast(User, self._run("user_delete", key_id, id))

    # -- usage, alerts, audit -------------------------------------------------------------------

    def record_usage(
        self, key_id: str, metric: str, quantity: int, *, idempotency_key: Optional[str] = UNSET
    ) -> UsageRecorded:
        """Records a custom metric (``billing.write``); the same ``idempotency_key`` counts once."""
        doc = _document(metric=metric, quantity=quantity, idempotency_key=idempotency_key)
        return cast(UsageRecorded, self._run("usage_record", key_id, doc))

    def get_usage(self, key_id: str) -> Usage:
        """The account's usage (``billing.read``)."""
        return cast(Usage, self._run("usage_get", key_id))

    def create_alert(self, key_id: str, metric: str, threshold: int) -> Alert:
        """An alert firing once when ``metric`` reaches ``threshold`` (``billing.write``)."""
        return cast(Alert, self._run("alert_create", key_id, _document(metric=metric, threshold=threshold)))

    def list_alerts(self, key_id: str) -> List[Alert]:
        """The account's alerts, newest first (``billing.read``)."""
        return cast(List[Alert], self._run("alert_list", key_id)["data"])

    def list_audit(self, key_id: str, limit: int = 50) -> List[AuditRecord]:
        """The audit log, newest first (``admin``; the operator's admins see every account)."""
        return cast(List[AuditRecord], self._run("audit_list", key_id, limit)["data"])

    def metrics(self, key_id: str) -> Metrics:
        """Engine-wide figures for the key's view (``admin``)."""
        return cast(Metrics, self._run("metrics", key_id))
