"""Every exception: one class per SPEC code under AstackError, each reached for real where the
engine can produce it, and all of them built by the one helper from code + body."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Tuple, Type

import pytest

import astack
from astack import _native
from astack.errors import BY_CODE
from conftest import START_MS, Keys

EXPECTED: list[Tuple[int, Type[astack.AstackError], str, int]] = [
    (101, astack.MissingApiKey, "missing_api_key", 401),
    (102, astack.InvalidApiKey, "invalid_api_key", 401),
    (103, astack.ApiKeyRevoked, "api_key_revoked", 401),
    (104, astack.ApiKeyExpired, "api_key_expired", 401),
    (105, astack.InsufficientScope, "insufficient_scope", 403),
    (106, astack.RateLimited, "rate_limited", 429),
    (107, astack.ConcurrentSessionLimit, "concurrent_session_limit", 429),
    (201, astack.InvalidRequest, "invalid_request", 400),
    (202, astack.NotFound, "not_found", 404),
    (203, astack.Forbidden, "forbidden", 403),
    (204, astack.AlreadyExists, "already_exists", 409),
    (205, astack.InvalidTransition, "invalid_transition", 409),
    (206, astack.InvalidToken, "invalid_token", 401),
    (207, astack.PayloadTooLarge, "payload_too_large", 413),
    (208, astack.NoWorkerAvailable, "no_worker_available", 503),
    (301, astack.InvalidConfig, "invalid_config", 400),
    (405, astack.InvalidArgument, "invalid_argument", 400),
    (404, astack.Unsupported, "unsupported", 400),
    (501, astack.Unavailable, "unavailable", 503),
    (502, astack.InternalError, "internal_error", 500),
    (1000, astack.EngineClosed, "engine_closed", 500),
]


@pytest.mark.parametrize("result,cls,code,status", EXPECTED)
def test_every_code_maps_to_its_class(result: int, cls: Type[astack.AstackError], code: str, status: int) -> None:
    body = json.dumps({"error": {"code": code, "message": "boom", "field": "x"}})
    error = astack.error_from(result, body)
    assert type(error) is cls and isinstance(error, astack.AstackError)
    assert (error.code, error.status, error.result, error.message) == (code, status, result, "boom")
    assert error.details == {"field": "x"}
    assert error.to_json() == {"error": {"code": code, "message": "boom", "field": "x"}}
    assert BY_CODE[code] is cls
    # Without a body the message is the library's generic one.
    assert astack.error_from(result).message


#: The C ABI's results, read from the generated header: name (as `astack_result_code` spells
#: it) by number.
HEADER_RESULTS = {
    int(number): name.lower()
    for name, number in re.findall(
        r"^\s*ASTACK_([A-Z_]+) = (\d+),$",
        (Path(__file__).resolve().parents[3] / "include" / "astack.h").read_text().split("enum astack_result")[1].split("}")[0],
        re.M,
    )
}
#: Results the package answers with another class: misuse of an argument, and a buffer it sizes.
MAPPED_ELSEWHERE = {"null_argument": "invalid_argument", "invalid_utf8": "invalid_argument", "buffer_too_small": "internal_error"}


def test_every_result_of_the_header_has_its_class() -> None:
    # A result added to the C ABI and not here would surface as a generic internal error.
    assert len(HEADER_RESULTS) > 20 and HEADER_RESULTS[0] == "ok"
    for result, name in HEADER_RESULTS.items():
        assert _native.result_code(result) == name
        if result == 0:
            continue
        error = astack.error_from(result)
        assert error.code == MAPPED_ELSEWHERE.get(name, name), (result, name)
    assert {r for r, _, _, _ in EXPECTED if r < 1000} <= set(HEADER_RESULTS)


def test_unknown_result_is_internal() -> None:
    assert type(astack.error_from(9999)) is astack.InternalError


def test_pythonic_bases() -> None:
    assert issubclass(astack.InvalidRequest, ValueError)
    assert issubclass(astack.InvalidConfig, ValueError)
    assert issubclass(astack.NotFound, LookupError)


def test_authentication_denials(engine: astack.Engine, keys: Keys) -> None:
    with pytest.raises(astack.MissingApiKey) as missing:
        engine.authorize("", "session.read")
    assert missing.value.status == 401 and missing.value.decision is not None
    with pytest.raises(astack.InvalidApiKey):
        engine.authorize("ak_" + "a" * 36, "session.read")
    key, key_id = keys.make(["sessions:read"], expires_at=START_MS + 1000)
    with pytest.raises(astack.InsufficientScope) as scope:
        engine.authorize(key, "admin")
    assert scope.value.status == 403
    engine.advance_clock(1000)
    with pytest.raises(astack.ApiKeyExpired):
        engine.authorize(key, "session.read")
    revoked, revoked_id = keys.make(["sessions:read"])
    engine.revoke_key(keys.admin_id, revoked_id)
    with pytest.raises(astack.ApiKeyRevoked):
        engine.authorize(revoked, "session.read")


def test_rate_limited_carries_retry_after(engine: astack.Engine, keys: Keys) -> None:
    key, _ = keys.make(["sessions:read"], limits={"requests_per_minute": 1})
    engine.authorize(key, "session.read")
    with pytest.raises(astack.RateLimited) as info:
        engine.authorize(key, "session.read")
    error = info.value
    assert error.retry_after == 60 and error.status == 429
    assert error.details == {"window": "minute", "limit": 1, "retry_after": 60}
    assert error.decision is not None and error.decision.headers()["Retry-After"] == "60"
    assert error.to_json()["error"]["code"] == "rate_limited"


def test_concurrent_session_limit(engine: astack.Engine, keys: Keys) -> None:
    key, key_id = keys.make(["sessions:write"], limits={"concurrent_sessions": 1})
    engine.create_session(engine.authorize(key, "session.create").key_id or "", "u")
    with pytest.raises(astack.ConcurrentSessionLimit) as info:
        engine.authorize(key, "session.create")
    assert info.value.details["limit"] == 1
    with pytest.raises(astack.ConcurrentSessionLimit):
        engine.create_session(key_id, "u")


def test_cold_path_errors(engine: astack.Engine, keys: Keys) -> None:
    _, reader = keys.make(["sessions:read"])
    with pytest.raises(astack.InsufficientScope) as scope:
        engine.create_session(reader, "u")
    assert scope.value.details.get("required_scopes") == ["sessions:write"]
    with pytest.raises(astack.InvalidRequest) as invalid:
        engine.create_session(keys.admin_id, "u", quality="ultra")
    assert invalid.value.field == "quality" and invalid.value.status == 400
    with pytest.raises(astack.NotFound) as missing:
        engine.get_user(keys.admin_id, "usr_nope")
    assert missing.value.details == {"resource": "user"}
    _, acme_admin = keys.make(["admin:all"], account_id="acme")
    with pytest.raises(astack.Forbidden):
        engine.create_key(acme_admin, name="x", scopes=["sessions:read"], account_id="other")
    with pytest.raises(astack.InvalidToken) as token:
        engine.verify_token("not.a.jwt")
    assert token.value.reason == "malformed" and token.value.status == 401
    with pytest.raises(astack.InvalidArgument):
        engine.get_session(keys.admin_id, "bad\x00id")
    with pytest.raises(astack.InvalidArgument):
        engine.connect_session(keys.admin_id, "sess_x", None)  # type: ignore[arg-type]


def test_authorize_denials_name_the_scope_and_the_operation(engine: astack.Engine, keys: Keys) -> None:
    key, _ = keys.make(["sessions:read"])
    with pytest.raises(astack.InsufficientScope) as info:
        engine.authorize(key, "billing.write")
    assert info.value.details["required_scopes"] == ["billing:write"]
    assert "billing:write" in info.value.message
    with pytest.raises(astack.InvalidArgument) as bad:
        engine.authorize(key, "billing.steal")
    assert "billing.steal" in bad.value.message
