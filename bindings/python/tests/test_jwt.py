"""Session tokens interoperate with PyJWT: ours verify with the secret, forged ones are refused
with the SPEC §7 reason."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, Tuple

import jwt
import pytest

import astack
from conftest import SECRET, START_MS, Keys

NOW = START_MS // 1000


@pytest.fixture
def issued(engine: astack.Engine, keys: Keys) -> Tuple[astack.CreatedSession, str, str]:
    _, app_id = keys.make(["sessions:write", "sessions:read"], account_id="acme")
    _, worker_id = keys.make(["workers:write"])
    session = engine.create_session(app_id, "user-7", features=["vision", "recording"], quality="low")
    return session, engine.issue_token(app_id, session["id"]), worker_id


def test_our_token_verifies_with_pyjwt(issued: Tuple[astack.CreatedSession, str, str]) -> None:
    session, token, _ = issued
    for candidate in (token, session["session_token"]):
        assert jwt.get_unverified_header(candidate) == {"alg": "HS256", "typ": "JWT", "kid": "k1"}
        claims = jwt.decode(
            candidate,
            SECRET,
            algorithms=["HS256"],
            audience=session["node_id"],
            issuer="astack",
            options={"verify_iat": False, "verify_exp": False, "verify_nbf": False},
        )
        assert claims["sub"] == session["id"] and claims["acc"] == "acme" and claims["uid"] == "user-7"
        assert claims["features"] == ["vision", "recording"] and claims["quality"] == "low"
        assert claims["iat"] == NOW and claims["nbf"] == NOW and claims["exp"] == NOW + 300
        assert isinstance(claims["jti"], str) and claims["jti"]
        # At the token's own time, PyJWT checks exp/nbf too and accepts it.
        assert jwt.decode(
            candidate, SECRET, algorithms=["HS256"], audience=session["node_id"], issuer="astack",
            options={"verify_exp": False},
        )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "x" * 40, algorithms=["HS256"], audience=session["node_id"])


def _claims(session: astack.Session, **changes: Any) -> Dict[str, Any]:
    claims: Dict[str, Any] = {
        "iss": "astack",
        "sub": session["id"],
        "aud": session["node_id"],
        "acc": session["account_id"],
        "uid": session["end_user_id"],
        "features": session["features"],
        "quality": session["quality"],
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 60,
        "jti": "forged",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_forged_with_pyjwt_and_our_secret_is_accepted(
    engine: astack.Engine, issued: Tuple[astack.CreatedSession, str, str]
) -> None:
    session, _, worker_id = issued
    token = jwt.encode(_claims(session), SECRET, algorithm="HS256", headers={"kid": "k1"})
    assert engine.verify_token(token, audience=session["node_id"], session_id=session["id"])["jti"] == "forged"
    assert engine.connect_session(worker_id, session["id"], token)["status"] == "ACTIVE"


@pytest.mark.parametrize(
    "reason,make",
    [
        ("unsupported_algorithm", lambda s: jwt.encode(_claims(s), SECRET, algorithm="HS512", headers={"kid": "k1"})),
        (
            "unsupported_algorithm",
            lambda s: _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
            + "."
            + _b64(json.dumps(_claims(s)).encode())
            + ".",
        ),
        ("bad_signature", lambda s: jwt.encode(_claims(s), "o" * 40, algorithm="HS256", headers={"kid": "k1"})),
        ("unknown_kid", lambda s: jwt.encode(_claims(s), SECRET, algorithm="HS256", headers={"kid": "k2"})),
        ("unknown_kid", lambda s: jwt.encode(_claims(s), SECRET, algorithm="HS256")),
        ("expired", lambda s: jwt.encode(_claims(s, exp=NOW - 1), SECRET, algorithm="HS256", headers={"kid": "k1"})),
        (
            "not_yet_valid",
            lambda s: jwt.encode(_claims(s, nbf=NOW + 30), SECRET, algorithm="HS256", headers={"kid": "k1"}),
        ),
        ("wrong_issuer", lambda s: jwt.encode(_claims(s, iss="evil"), SECRET, algorithm="HS256", headers={"kid": "k1"})),
        ("wrong_audience", lambda s: jwt.encode(_claims(s, aud="gpu-9"), SECRET, algorithm="HS256", headers={"kid": "k1"})),
        ("wrong_session", lambda s: jwt.encode(_claims(s, sub="sess_other"), SECRET, algorithm="HS256", headers={"kid": "k1"})),
        ("malformed", lambda s: jwt.encode(_claims(s, exp=None), SECRET, algorithm="HS256", headers={"kid": "k1"})),
        ("malformed", lambda s: "a.b"),
    ],
)
def test_forged_tokens_are_refused(
    engine: astack.Engine, keys: Keys, issued: Tuple[astack.CreatedSession, str, str], reason: str, make: Any
) -> None:
    session, _, worker_id = issued
    token = make(session)
    with pytest.raises(astack.InvalidToken) as verified:
        engine.verify_token(token, audience=session["node_id"], session_id=session["id"])
    assert verified.value.reason == reason
    assert token not in verified.value.message
    with pytest.raises(astack.InvalidToken) as connected:
        engine.connect_session(worker_id, session["id"], token)
    assert connected.value.reason == reason
    assert engine.get_session(session["key_id"], session["id"])["status"] == "PENDING"


def test_our_token_expires(engine: astack.Engine, issued: Tuple[astack.CreatedSession, str, str]) -> None:
    session, token, worker_id = issued
    engine.advance_clock(301_000)
    with pytest.raises(astack.InvalidToken) as info:
        engine.verify_token(token)
    assert info.value.reason == "expired"
