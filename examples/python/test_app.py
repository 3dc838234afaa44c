"""Drives the example app through real HTTP (uvicorn in a thread): an admin creates a key, the
key creates a session and gets its token, reads it back, and meets its limits."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Iterator

import httpx
import jwt
import pytest
import uvicorn

ADMIN = None


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    import astack

    key = astack.Engine().bootstrap_admin_key()  # a well-formed key to install
    assert key is not None
    os.environ["ASTACK_ADMIN_KEY"] = key
    os.environ["ASTACK_SIGNING_SECRET"] = "an example secret of at least 32 bytes!"
    import app as example

    global ADMIN
    ADMIN = key
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(example.app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_health_needs_no_key(base_url: str) -> None:
    response = httpx.get(f"{base_url}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert "ratelimit" not in response.headers


def test_session_flow(base_url: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    created = httpx.post(
        f"{base_url}/api/v1/keys",
        headers=admin,
        json={"name": "web", "scopes": ["sessions:write", "sessions:read"], "limits": {"requests_per_minute": 4}},
    )
    assert created.status_code == 201, created.text
    assert created.headers["ratelimit-policy"].startswith('"minute";q=100')
    app_key = {"Authorization": f"Bearer {created.json()['key']}"}

    response = httpx.post(f"{base_url}/api/v1/sessions", headers=app_key, json={"end_user_id": "u-1", "quality": "high"})
    assert response.status_code == 201, response.text
    session = response.json()
    assert session["status"] == "PENDING" and session["quality"] == "high"
    assert response.headers["ratelimit"].startswith('"minute";r=3;t=')
    claims = jwt.decode(
        session["session_token"],
        "an example secret of at least 32 bytes!",
        algorithms=["HS256"],
        audience=session["node_id"],
        issuer="astack",
    )
    assert claims["sub"] == session["id"]

    got = httpx.get(f"{base_url}/api/v1/sessions/{session['id']}", headers=app_key)
    assert got.status_code == 200 and got.json()["id"] == session["id"]

    bad = httpx.post(f"{base_url}/api/v1/sessions", headers=app_key, json={"end_user_id": "u", "colour": "red"})
    assert bad.status_code == 400 and bad.json()["error"] == {
        "code": "invalid_request",
        "message": "unknown field `colour`",
        "field": "colour",
    }
    listed = httpx.get(f"{base_url}/api/v1/sessions", headers=app_key)
    assert listed.status_code == 200 and [s["id"] for s in listed.json()["data"]] == [session["id"]]
    limited = httpx.get(f"{base_url}/api/v1/sessions", headers=app_key)  # the fifth in the minute
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 15
    assert limited.json()["error"]["code"] == "rate_limited"

    assert httpx.get(f"{base_url}/api/v1/sessions").json()["error"]["code"] == "missing_api_key"
    forbidden = httpx.post(f"{base_url}/api/v1/keys", headers=app_key, json={})
    assert forbidden.status_code in (403, 429)
