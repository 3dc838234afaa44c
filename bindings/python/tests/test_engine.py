"""Every method of astack.Engine, through the package as installed."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Tuple

import pytest

import astack
from conftest import SECRET, START_MS, Keys


def test_version_and_constants() -> None:
    assert astack.__version__.count(".") == 2
    assert astack.MAX_REQUEST_BYTES == 64 * 1024
    assert astack._native.result_code(106) == "rate_limited"


def test_config_check_and_config() -> None:
    filled = astack.config_check({"limits": {"requests_per_minute": 5}})
    assert filled["limits"] == {"requests_per_minute": 5, "requests_per_hour": 1000, "concurrent_sessions": 10}
    assert astack.config_check(None)["features"] == ["vision", "transcription", "recording"]
    assert astack.config_check('{"features": ["vision"]}')["features"] == ["vision"]
    with pytest.raises(astack.InvalidConfig) as info:
        astack.config_check({"limits": {"bogus": 1}})
    assert info.value.field is not None and "bogus" in info.value.field
    with astack.Engine({"signing_keys": [{"kid": "k1", "secret": SECRET}]}) as engine:
        config = engine.config
        assert SECRET not in json.dumps(config)
        assert config["limits"]["requests_per_minute"] == 100


def test_invalid_config_raises() -> None:
    with pytest.raises(astack.InvalidConfig) as info:
        astack.Engine({"signing_keys": [{"kid": "k", "secret": "short"}]})
    assert info.value.status == 400 and info.value.field
    with pytest.raises(astack.InvalidConfig):
        astack.Engine("{not json")


def test_context_manager_close_and_collection() -> None:
    with astack.Engine() as engine:
        assert not engine.closed
        assert "open" in repr(engine)
    assert engine.closed
    engine.close()  # idempotent
    with pytest.raises(astack.EngineClosed) as info:
        engine.authorize("ak_x", "admin")
    assert info.value.code == "engine_closed"
    for call in (engine.now_ms, engine.sweep_sessions, lambda: engine.list_keys("key_x"), lambda: engine.config):
        with pytest.raises(astack.EngineClosed):
            call()
    # An engine nobody holds is freed by the collector.
    other = astack.Engine()
    ref = weakref.ref(other)
    del other
    gc.collect()
    assert ref() is None


def test_manual_clock() -> None:
    with astack.Engine(manual_clock=START_MS) as engine:
        assert engine.now_ms() == START_MS
        engine.advance_clock(1500)
        assert engine.now_ms() == START_MS + 1500
        engine.set_clock(START_MS - 10)
        assert engine.now_ms() == START_MS - 10
        with pytest.raises(astack.InvalidArgument):
            engine.advance_clock(-1)
    with astack.Engine() as system:
        assert system.now_ms() > START_MS
        with pytest.raises(astack.Unsupported):
            system.set_clock(0)
        with pytest.raises(astack.Unsupported):
            system.advance_clock(1)


def test_authorize_and_decide(engine: astack.Engine, keys: Keys) -> None:
    key, key_id = keys.make(["sessions:read"], limits={"requests_per_minute": 3, "requests_per_hour": 50})
    decision = engine.authorize(key, "session.read")
    assert decision and decision.allowed and decision.code == "ok" and decision.result == 0
    assert decision.key_id == key_id and decision.account_id == "default"
    assert (decision.window, decision.limit, decision.remaining) == ("minute", 3, 2)
    assert decision.requests_per_minute == 3 and decision.requests_per_hour == 50
    assert decision.concurrent_sessions == 10 and decision.retry_after == 0 and decision.reset >= 1
    assert decision.headers() == {
        "RateLimit-Policy": '"minute";q=3;w=60, "hour";q=50;w=3600',
        "RateLimit": f'"minute";r=2;t={decision.reset}',
    }
    assert "ok" in repr(decision)
    engine.authorize(key, "session.read")
    engine.authorize(key, "session.read")
    denied = engine.decide(key, "session.read")
    assert not denied and denied.code == "rate_limited" and denied.key_id is None
    assert denied.retry_after == 20 and denied.headers()["Retry-After"] == "20"
    engine.advance_clock(20_000)
    assert engine.authorize(key, "session.read").allowed
    # Unauthenticated decisions carry no rate.
    missing = engine.decide("", "session.read")
    assert missing.code == "missing_api_key" and missing.window is None and missing.headers() == {}
    assert engine.decide("ak_nope", "admin").code == "invalid_api_key"
    # Strings that cannot cross the ABI are refused as invalid keys, not crashes.
    assert engine.decide("ak_\x00bad", "admin").code == "invalid_api_key"
    assert engine.decide("\udc80", "admin").code == "invalid_api_key"
    with pytest.raises(astack.InvalidArgument):
        engine.decide(key, "no.such.operation")
    with pytest.raises(TypeError):
        engine.authorize(key)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        engine.authorize(b"ak", "admin")  # type: ignore[arg-type]


def test_keys(engine: astack.Engine, admin: Tuple[str, str]) -> None:
    admin_key, admin_id = admin
    assert engine.bootstrap_admin_key(admin_key) is None  # installing an existing key keeps it
    created = engine.create_key(
        admin_id,
        name="app",
        scopes=["sessions:write"],
        permissions=["usage_read"],
        limits={"requests_per_minute": 7},
        expires_at=START_MS + 3_600_000,
        account_id="acme",
    )
    assert created["key"].startswith("ak_") and len(created["key"]) == 39
    assert created["prefix"] == created["key"][:7]
    assert created["account_id"] == "acme" and created["permissions"] == ["usage_read"]
    assert created["limits"] == {"requests_per_minute": 7} and created["expires_at"] == START_MS + 3_600_000
    got = engine.get_key(admin_id, created["id"])
    assert "key" not in got and got["id"] == created["id"]
    listed = engine.list_keys(admin_id)
    assert [k["id"] for k in listed][:1] == [created["id"]]
    assert len(engine.list_keys(admin_id, limit=1)) == 1
    rotated = engine.rotate_key(admin_id, created["id"], grace_period_seconds=60)
    assert rotated["key"] != created["key"] and rotated["scopes"] == ["sessions:write"]
    assert engine.get_key(admin_id, created["id"])["expires_at"] == START_MS + 60_000
    revoked = engine.revoke_key(admin_id, rotated["id"])
    assert revoked["revoked_at"] == START_MS
    assert engine.revoke_key(admin_id, rotated["id"])["revoked_at"] == START_MS
    with pytest.raises(astack.ApiKeyRevoked):
        engine.authorize(rotated["key"], "session.create")
    with pytest.raises(astack.NotFound):
        engine.get_key(admin_id, "key_00000000000000000000000000000000")
    with pytest.raises(astack.InvalidRequest) as info:
        engine.create_key(admin_id, name="x", scopes=["nope:nope"])
    assert info.value.field is not None and info.value.field.startswith("scopes")
    with pytest.raises(astack.InvalidArgument):
        engine.list_keys(admin_id, limit=-1)
    with pytest.raises(astack.InvalidArgument):
        engine.get_key(admin_id, "key_\x00")


def test_sessions_and_tokens(engine: astack.Engine, keys: Keys) -> None:
    app_key, app_id = keys.make(["sessions:write", "sessions:read"], account_id="acme")
    _, worker_id = keys.make(["workers:write", "workers:read"])
    created = engine.create_session(
        app_id,
        "user-1",
        connection_type="webrtc",
        quality="high",
        features=["vision"],
        metadata={"room": 7},
    )
    assert created["status"] == "PENDING" and created["connection_type"] == "webrtc"
    assert created["metadata"] == {"room": 7} and created["account_id"] == "acme"
    assert created["expires_at"] == START_MS + 300_000
    session_id = created["id"]
    assert engine.get_session(app_id, session_id)["id"] == session_id
    assert [s["id"] for s in engine.list_sessions(app_id, limit=10)] == [session_id]
    assert engine.slots_in_use(app_id) == 1
    claims = engine.verify_token(created["session_token"], audience="local", session_id=session_id)
    assert claims["sub"] == session_id and claims["acc"] == "acme" and claims["uid"] == "user-1"
    assert claims["features"] == ["vision"] and claims["quality"] == "high" and claims["iss"] == "astack"
    token = engine.issue_token(app_id, session_id)
    with pytest.raises(astack.InvalidToken) as info:
        engine.verify_token(token, session_id="sess_other")
    assert info.value.reason == "wrong_session"
    with pytest.raises(astack.InvalidToken) as info:
        engine.verify_token(token, audience="elsewhere")
    assert info.value.reason == "wrong_audience"
    connected = engine.connect_session(worker_id, session_id, token)
    assert connected["status"] == "ACTIVE" and connected["connected_at"] == START_MS
    with pytest.raises(astack.InvalidTransition):
        engine.connect_session(worker_id, session_id, token)
    engine.advance_clock(30_000)
    ended = engine.end_session(worker_id, session_id, "failed", "codec crashed")
    assert ended["status"] == "FAILED" and ended["end_reason"] == "codec crashed"
    assert engine.slots_in_use(app_id) == 0
    with pytest.raises(astack.InvalidTransition):
        engine.end_session(worker_id, session_id)
    with pytest.raises(astack.InvalidTransition):
        engine.issue_token(app_id, session_id)
    # Terminate, and terminate again (unchanged).
    second = engine.create_session(app_id, "user-2")
    assert engine.terminate_session(app_id, second["id"])["status"] == "COMPLETED"
    assert engine.terminate_session(app_id, second["id"])["status"] == "COMPLETED"
    third = engine.create_session(app_id, "user-3")
    assert engine.end_session(worker_id, third["id"])["status"] == "COMPLETED"
    # Expiry by sweep.
    fourth = engine.create_session(app_id, "user-4")
    engine.advance_clock(301_000)
    assert engine.sweep_sessions() == 1
    assert engine.get_session(app_id, fourth["id"])["status"] == "EXPIRED"
    with pytest.raises(astack.InvalidRequest) as info:
        engine.create_session(app_id, "")
    assert info.value.field == "end_user_id"
    with pytest.raises(astack.InvalidRequest) as info:
        engine.create_session(app_id, "u", features=["teleport"])
    assert info.value.field is not None and info.value.field.startswith("features")
    # Another account's session does not exist for this key.
    _, other_id = keys.make(["sessions:read"], account_id="other")
    with pytest.raises(astack.NotFound):
        engine.get_session(other_id, session_id)


def test_workers(engine: astack.Engine, keys: Keys) -> None:
    _, worker_id = keys.make(["workers:write", "workers:read"])
    _, app_id = keys.make(["sessions:write"], account_id="acme")
    worker = engine.register_worker(worker_id, "gpu-1", "wss://gpu-1.example", 1)
    assert worker == {"node_id": "gpu-1", "url": "wss://gpu-1.example", "capacity": 1, "draining": False}
    with pytest.raises(astack.AlreadyExists):
        engine.register_worker(worker_id, "gpu-1", "wss://gpu-1.example", 1)
    session = engine.create_session(app_id, "u")
    assert session["node_id"] == "gpu-1" and session["worker_url"] == "wss://gpu-1.example"
    with pytest.raises(astack.NoWorkerAvailable) as info:
        engine.create_session(app_id, "u")
    assert info.value.status == 503
    updated = engine.update_worker(worker_id, "gpu-1", capacity=2, draining=False, url="wss://gpu-1b.example")
    assert updated["capacity"] == 2 and updated["url"] == "wss://gpu-1b.example"
    listed = engine.list_workers(worker_id)
    assert listed[0]["node_id"] == "gpu-1" and listed[0]["active_sessions"] == 1
    with pytest.raises(astack.NotFound):
        engine.update_worker(worker_id, "gpu-9", capacity=1)
    # Only the operator's keys manage workers.
    _, foreign_id = keys.make(["workers:write"], account_id="acme")
    with pytest.raises(astack.Forbidden) as forbidden:
        engine.register_worker(foreign_id, "gpu-2", "wss://gpu-2.example", 1)
    assert forbidden.value.status == 403


def test_users(engine: astack.Engine, keys: Keys) -> None:
    _, key_id = keys.make(["users:read", "users:write"], account_id="acme")
    user = engine.create_user(key_id, "Ada", email="ada@example.com", metadata={"tier": "gold"})
    assert user["name"] == "Ada" and user["email"] == "ada@example.com" and user["metadata"] == {"tier": "gold"}
    assert engine.get_user(key_id, user["id"]) == user
    assert [u["id"] for u in engine.list_users(key_id)] == [user["id"]]
    engine.advance_clock(1000)
    renamed = engine.update_user(key_id, user["id"], name="Ada L.")
    assert renamed["name"] == "Ada L." and renamed["email"] == "ada@example.com"
    assert renamed["updated_at"] == START_MS + 1000
    cleared = engine.update_user(key_id, user["id"], email=None, metadata={})
    assert cleared["email"] is None and cleared["metadata"] == {}
    assert engine.delete_user(key_id, user["id"])["id"] == user["id"]
    with pytest.raises(astack.NotFound):
        engine.get_user(key_id, user["id"])
    with pytest.raises(astack.PayloadTooLarge) as info:
        engine.create_user(key_id, "Big", metadata={"blob": "x" * 70_000})
    assert info.value.status == 413


def test_usage_alerts_audit_metrics(engine: astack.Engine, keys: Keys, admin: Tuple[str, str]) -> None:
    app_key, key_id = keys.make(["billing:read", "billing:write", "sessions:write"], account_id="acme")
    alert = engine.create_alert(key_id, "minutes", 10)
    assert alert["metric"] == "minutes" and alert["threshold"] == 10 and alert["fired_at"] is None
    assert engine.record_usage(key_id, "minutes", 4, idempotency_key="a") == {
        "metric": "minutes",
        "total": 4,
        "counted": True,
    }
    assert engine.record_usage(key_id, "minutes", 4, idempotency_key="a")["counted"] is False
    engine.advance_clock(5)
    assert engine.record_usage(key_id, "minutes", 6)["total"] == 10
    assert engine.list_alerts(key_id)[0]["fired_at"] == START_MS + 5
    engine.authorize(app_key, "billing.read")
    usage = engine.get_usage(key_id)
    assert usage["account_id"] == "acme" and usage["metrics"]["minutes"] == 10 and usage["requests"] >= 1
    assert usage["session_seconds"] == 0
    # Audit and metrics need admin; the operator sees every account.
    _, admin_id = admin
    actions = [record["action"] for record in engine.list_audit(admin_id, limit=1000)]
    assert "key.created" in actions
    for record in engine.list_audit(admin_id):
        assert app_key not in json.dumps(record)
    metrics = engine.metrics(admin_id)
    assert metrics["keys"] >= 2 and isinstance(metrics["sessions"], dict)
    with pytest.raises(astack.InvalidRequest) as info:
        engine.record_usage(key_id, "minutes", -1)
    assert info.value.field == "quantity"
