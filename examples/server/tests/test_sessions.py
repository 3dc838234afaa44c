"""SPEC §6, §7 and §10 over HTTP: a session's whole life, tokens, expiry, limits, isolation."""

import base64
import json
import time

import jwt
import pytest

from conftest import SIGNING_SECRET
from test_auth import assert_error, assert_rate_headers

SEED = {"end_user_id": "user_123", "connection_type": "websocket", "quality": "high",
        "features": ["vision", "transcription"]}


def client_and_worker(server, account=None, **limits):
    extra = {"account_id": account} if account else {}
    client = server.create_key(scopes=["sessions:read", "sessions:write"], limits=limits, **extra)
    worker = server.create_key(scopes=["workers:write"], **extra)
    return client["key"], worker["key"]


def create(server, key, body=SEED):
    response = server.request("POST", "/api/v1/sessions", key=key, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_answers_the_spec_object_and_a_verifiable_token(server):
    client, _ = client_and_worker(server)
    response = server.request("POST", "/api/v1/sessions", key=client, json=SEED)
    assert response.status_code == 201
    assert_rate_headers(response)
    s = response.json()
    assert s["id"].startswith("sess_") and s["status"] == "PENDING"
    for field in ["end_user_id", "connection_type", "quality", "features"]:
        assert s[field] == SEED[field]
    assert s["metadata"] == {} and s["node_id"] == "local" and s["worker_url"] == "ws://127.0.0.1:8081"
    assert s["expires_at"] - s["created_at"] == 300_000
    assert s["connected_at"] is None and s["ended_at"] is None and s["end_reason"] is None
    header = jwt.get_unverified_header(s["session_token"])
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "default"}
    claims = jwt.decode(s["session_token"], SIGNING_SECRET, algorithms=["HS256"], audience="local", issuer="astack")
    assert claims["sub"] == s["id"] and claims["acc"] == "default" and claims["uid"] == "user_123"
    assert claims["features"] == ["vision", "transcription"] and claims["quality"] == "high"
    assert claims["exp"] - claims["iat"] == 300  # capped by the session's own expiry
    assert claims["nbf"] == claims["iat"] and claims["jti"]


def test_defaults(server):
    client, _ = client_and_worker(server)
    s = create(server, client, {"end_user_id": "defaults"})
    assert s["connection_type"] == "websocket" and s["quality"] == "standard" and s["features"] == []


@pytest.mark.parametrize("body,field", [
    ({}, "end_user_id"),
    ({"end_user_id": ""}, "end_user_id"),
    ({"end_user_id": "x" * 129}, "end_user_id"),
    ({"end_user_id": "bad\u0007id"}, "end_user_id"),
    ({"end_user_id": 42}, "end_user_id"),
    ({"end_user_id": "u", "connection_type": "carrier-pigeon"}, "connection_type"),
    ({"end_user_id": "u", "quality": "ultra"}, "quality"),
    ({"end_user_id": "u", "features": ["telepathy"]}, "features[0]"),
    ({"end_user_id": "u", "features": ["vision", "vision"]}, "features[1]"),
    ({"end_user_id": "u", "features": "vision"}, "features"),
    ({"end_user_id": "u", "metadata": [1]}, "metadata"),
    ({"end_user_id": "u", "metadata": {"x": "y" * 5000}}, "metadata"),
    ({"end_user_id": "u", "colour": "red"}, "colour"),
])
def test_create_validation_names_the_field(server, body, field):
    client, _ = client_and_worker(server)
    error = assert_error(server.request("POST", "/api/v1/sessions", key=client, json=body), 400, "invalid_request")
    assert error["field"] == field, error


def test_whole_life_create_connect_end(server):
    client, worker = client_and_worker(server)
    s = create(server, client)
    token = s["session_token"]
    connected = server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker, json={"session_token": token})
    assert connected.status_code == 200, connected.text
    assert_rate_headers(connected)
    c = connected.json()
    assert c["status"] == "ACTIVE" and c["connected_at"] is not None
    assert c["expires_at"] == c["connected_at"] + 3_600_000
    assert "session_token" not in c
    again = server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker, json={"session_token": token})
    error = assert_error(again, 409, "invalid_transition")
    assert error["status"] == "ACTIVE"
    ended = server.request("POST", f"/api/v1/sessions/{s['id']}/end", key=worker, json={"outcome": "completed"})
    assert ended.status_code == 200
    assert ended.json()["status"] == "COMPLETED" and ended.json()["ended_at"] is not None
    assert_error(server.request("POST", f"/api/v1/sessions/{s['id']}/end", key=worker, json={"outcome": "completed"}),
                 409, "invalid_transition")
    assert_error(server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker, json={"session_token": token}),
                 409, "invalid_transition")
    # DELETE of an ended session returns it unchanged.
    deleted = server.request("DELETE", f"/api/v1/sessions/{s['id']}", key=client)
    assert deleted.status_code == 200 and deleted.json() == ended.json()
    got = server.request("GET", f"/api/v1/sessions/{s['id']}", key=client).json()
    assert got == ended.json()


def test_worker_reports_failure(server):
    client, worker = client_and_worker(server)
    s = create(server, client)
    server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker, json={"session_token": s["session_token"]})
    failed = server.request("POST", f"/api/v1/sessions/{s['id']}/end", key=worker,
                            json={"outcome": "failed", "reason": "gpu fell over"})
    assert failed.status_code == 200
    assert failed.json()["status"] == "FAILED" and failed.json()["end_reason"] == "gpu fell over"
    error = assert_error(server.request("POST", f"/api/v1/sessions/{s['id']}/end", key=worker, json={"outcome": "meh"}),
                         400, "invalid_request")
    assert error["field"] == "outcome"


def test_terminate_then_delete_again_is_safe(server):
    client, _ = client_and_worker(server)
    s = create(server, client)
    first = server.request("DELETE", f"/api/v1/sessions/{s['id']}", key=client)
    assert first.status_code == 200
    assert first.json()["status"] == "COMPLETED" and first.json()["end_reason"] == "terminated"
    second = server.request("DELETE", f"/api/v1/sessions/{s['id']}", key=client)
    assert second.status_code == 200 and second.json() == first.json()


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_connect_refuses_bad_tokens_with_a_reason(server):
    client, worker = client_and_worker(server)
    s = create(server, client)
    other = create(server, client, {"end_user_id": "someone-else"})
    claims = jwt.decode(s["session_token"], SIGNING_SECRET, algorithms=["HS256"], audience="local")
    now = int(time.time())
    cases = {
        "malformed": "not-a-jwt",
        "bad_signature": s["session_token"][:-4] + ("AAAA" if not s["session_token"].endswith("AAAA") else "BBBB"),
        "unsupported_algorithm": b64({"alg": "none", "typ": "JWT", "kid": "default"}) + "." + b64(claims) + ".",
        "unknown_kid": jwt.encode(claims, SIGNING_SECRET, algorithm="HS256", headers={"kid": "other"}),
        "expired": jwt.encode({**claims, "iat": now - 100, "nbf": now - 100, "exp": now - 10}, SIGNING_SECRET,
                              algorithm="HS256", headers={"kid": "default"}),
        "not_yet_valid": jwt.encode({**claims, "nbf": now + 100}, SIGNING_SECRET, algorithm="HS256",
                                    headers={"kid": "default"}),
        "wrong_issuer": jwt.encode({**claims, "iss": "mallory"}, SIGNING_SECRET, algorithm="HS256",
                                   headers={"kid": "default"}),
        "wrong_audience": jwt.encode({**claims, "aud": "node-9"}, SIGNING_SECRET, algorithm="HS256",
                                     headers={"kid": "default"}),
        "wrong_session": other["session_token"],
    }
    for reason, token in cases.items():
        response = server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker, json={"session_token": token})
        error = assert_error(response, 401, "invalid_token")
        assert error["reason"] == reason, (reason, error)
        assert token not in response.text
    assert server.request("GET", f"/api/v1/sessions/{s['id']}", key=client).json()["status"] == "PENDING"
    error = assert_error(server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker, json={}),
                         400, "invalid_request")
    assert error["field"] == "session_token"


def test_pending_session_expires(short_server):
    client, worker = client_and_worker(short_server)
    s = create(short_server, client)
    assert s["expires_at"] - s["created_at"] == 1000
    time.sleep(1.3)
    got = short_server.request("GET", f"/api/v1/sessions/{s['id']}", key=client).json()
    assert got["status"] == "EXPIRED" and got["ended_at"] == got["expires_at"]
    response = short_server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker,
                                    json={"session_token": s["session_token"]})
    assert response.status_code in (401, 409)  # the token (capped at the session's expiry) or the state


def test_active_session_expires_and_releases_its_slot(short_server):
    client, worker = client_and_worker(short_server, concurrent_sessions=1)
    s = create(short_server, client)
    assert_error(short_server.request("POST", "/api/v1/sessions", key=client, json=SEED), 429, "concurrent_session_limit")
    c = short_server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker,
                             json={"session_token": s["session_token"]})
    assert c.status_code == 200 and c.json()["expires_at"] - c.json()["connected_at"] == 2000
    # The sweep (every second) expires it without anyone reading it: the slot is free again.
    deadline = time.time() + 5
    while True:
        response = short_server.request("POST", "/api/v1/sessions", key=client, json=SEED)
        if response.status_code == 201 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 201, response.text
    assert time.time() - c.json()["connected_at"] / 1000 >= 2.0
    got = short_server.request("GET", f"/api/v1/sessions/{s['id']}", key=client).json()
    assert got["status"] == "EXPIRED" and got["ended_at"] == got["expires_at"]


def test_concurrent_session_limit(server):
    client, worker = client_and_worker(server, concurrent_sessions=2)
    a = create(server, client)
    b = create(server, client)
    response = server.request("POST", "/api/v1/sessions", key=client, json=SEED)
    error = assert_error(response, 429, "concurrent_session_limit")
    assert error["limit"] == 2
    assert_rate_headers(response)
    # A terminal state releases the slot at once: by DELETE, or by the worker's end.
    server.request("DELETE", f"/api/v1/sessions/{a['id']}", key=client)
    c = create(server, client)
    assert_error(server.request("POST", "/api/v1/sessions", key=client, json=SEED), 429, "concurrent_session_limit")
    server.request("POST", f"/api/v1/sessions/{b['id']}/end", key=worker, json={"outcome": "failed", "reason": "x"})
    create(server, client)
    del c


def test_default_concurrent_limit_is_ten(server):
    client, _ = client_and_worker(server)
    for _ in range(10):
        create(server, client)
    assert_error(server.request("POST", "/api/v1/sessions", key=client, json=SEED), 429, "concurrent_session_limit")


def test_list_sessions_newest_first(server):
    client, _ = client_and_worker(server, account="list-acct")
    ids = [create(server, client, {"end_user_id": f"u{i}"})["id"] for i in range(3)]
    listed = server.request("GET", "/api/v1/sessions", key=client).json()["data"]
    assert [s["id"] for s in listed] == ids[::-1]
    assert all("session_token" not in s for s in listed)
    assert [s["id"] for s in server.request("GET", "/api/v1/sessions?limit=1", key=client).json()["data"]] == [ids[-1]]


def test_tenant_isolation(server):
    acme, acme_worker = client_and_worker(server, account="acme")
    globex, globex_worker = client_and_worker(server, account="globex")
    s = create(server, acme)
    assert s["account_id"] == "acme"
    for method, path, body in [("GET", f"/api/v1/sessions/{s['id']}", None),
                               ("DELETE", f"/api/v1/sessions/{s['id']}", None),
                               ("POST", f"/api/v1/sessions/{s['id']}/connect", {"session_token": s["session_token"]}),
                               ("POST", f"/api/v1/sessions/{s['id']}/end", {"outcome": "completed"})]:
        key = globex_worker if "/connect" in path or "/end" in path else globex
        error = assert_error(server.request(method, path, key=key, json=body), 404, "not_found")
        assert error["resource"] == "session"
    assert all(x["id"] != s["id"] for x in server.request("GET", "/api/v1/sessions", key=globex).json()["data"])
    assert server.request("GET", f"/api/v1/sessions/{s['id']}", key=acme).json()["status"] == "PENDING"
    # The operator's worker keys act on any account's sessions (SPEC §2).
    operator_worker = server.create_key(scopes=["workers:write"])["key"]
    c = server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=operator_worker,
                       json={"session_token": s["session_token"]})
    assert c.status_code == 200 and c.json()["status"] == "ACTIVE"
