"""SPEC §4, §5, §9: deciding a request, the rate-limit headers, the error shape."""

import re
import time

import pytest

from conftest import Server, make_key, one_off

ALL_SCOPES = ["sessions:read", "sessions:write", "users:read", "users:write", "billing:read",
              "billing:write", "workers:read", "workers:write"]


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def assert_rate_headers(response):
    assert re.fullmatch(r'"minute";q=\d+;w=60, "hour";q=\d+;w=3600', response.headers["RateLimit-Policy"])
    assert re.fullmatch(r'"(minute|hour)";r=\d+;t=\d+', response.headers["RateLimit"])


def test_healthz_needs_no_key(server):
    response = server.request("GET", "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_missing_key(server):
    error = assert_error(server.request("GET", "/api/v1/sessions"), 401, "missing_api_key")
    assert "Bearer" in error["message"]


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "ak_x", "Token ak_abc",
                                   "Bearer two words"])
def test_malformed_authorization_is_invalid_api_key(server, value):
    response = server.request("GET", "/api/v1/sessions", headers={"Authorization": value})
    assert_error(response, 401, "invalid_api_key")


def test_malformed_key_and_unknown_key(server):
    bad_checksum = one_off(make_key())
    for key in ["ak_short", "sk_" + make_key()[3:], bad_checksum, make_key()]:
        response = server.request("GET", "/api/v1/sessions", key=key)
        assert_error(response, 401, "invalid_api_key")
        assert "RateLimit" not in response.headers


def test_bearer_scheme_is_case_insensitive(server):
    response = server.request("GET", "/api/v1/usage", headers={"Authorization": f"bearer {server.admin_key}"})
    assert response.status_code == 200


def test_revoked_key(server):
    created = server.create_key(scopes=["sessions:read"])
    assert server.request("GET", "/api/v1/sessions", key=created["key"]).status_code == 200
    revoked = server.admin("DELETE", f"/api/v1/keys/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_error(server.request("GET", "/api/v1/sessions", key=created["key"]), 401, "api_key_revoked")


def test_expired_key(server):
    expires = int(time.time() * 1000) + 1200
    created = server.create_key(scopes=["sessions:read"], expires_at=expires)
    assert server.request("GET", "/api/v1/sessions", key=created["key"]).status_code == 200
    time.sleep(max(0, expires / 1000 - time.time()) + 0.1)
    assert_error(server.request("GET", "/api/v1/sessions", key=created["key"]), 401, "api_key_expired")


def test_insufficient_scope_names_the_scope_and_sends_rate_headers(server):
    created = server.create_key(scopes=["sessions:read"])
    response = server.request("POST", "/api/v1/sessions", key=created["key"], json={"end_user_id": "u"})
    error = assert_error(response, 403, "insufficient_scope")
    assert error["required_scopes"] == ["sessions:write"]
    assert_rate_headers(response)


SCOPE_OF_ROUTE = [
    ("POST", "/api/v1/sessions", "sessions:write"),
    ("GET", "/api/v1/sessions", "sessions:read"),
    ("GET", "/api/v1/sessions/sess_x", "sessions:read"),
    ("DELETE", "/api/v1/sessions/sess_x", "sessions:write"),
    ("POST", "/api/v1/sessions/sess_x/connect", "workers:write"),
    ("POST", "/api/v1/sessions/sess_x/end", "workers:write"),
    ("GET", "/api/v1/users", "users:read"),
    ("POST", "/api/v1/users", "users:write"),
    ("GET", "/api/v1/users/user_x", "users:read"),
    ("PATCH", "/api/v1/users/user_x", "users:write"),
    ("DELETE", "/api/v1/users/user_x", "users:write"),
    ("GET", "/api/v1/usage", "billing:read"),
    ("POST", "/api/v1/usage", "billing:write"),
    ("GET", "/api/v1/usage/alerts", "billing:read"),
    ("POST", "/api/v1/usage/alerts", "billing:write"),
    ("GET", "/api/v1/workers", "workers:read"),
    ("POST", "/api/v1/workers", "workers:write"),
    ("PATCH", "/api/v1/workers/node-x", "workers:write"),
    ("GET", "/api/v1/keys", "admin:all"),
    ("POST", "/api/v1/keys", "admin:all"),
    ("GET", "/api/v1/keys/key_x", "admin:all"),
    ("DELETE", "/api/v1/keys/key_x", "admin:all"),
    ("POST", "/api/v1/keys/key_x/rotate", "admin:all"),
    ("GET", "/api/v1/audit", "admin:all"),
    ("GET", "/api/v1/metrics", "admin:all"),
]


@pytest.mark.parametrize("method,path,scope", SCOPE_OF_ROUTE)
def test_every_route_requires_its_scope(server, method, path, scope):
    assert_error(server.request(method, path), 401, "missing_api_key")
    others = [s for s in ALL_SCOPES if s != scope]
    wrong = server.create_key(scopes=others)
    error = assert_error(server.request(method, path, key=wrong["key"], json={}), 403, "insufficient_scope")
    assert error["required_scopes"] == [scope]
    right = server.create_key(scopes=[scope])
    response = server.request(method, path, key=right["key"], json={})
    assert response.status_code not in (401, 403) or response.json()["error"]["code"] == "forbidden", response.text
    assert_rate_headers(response)


@pytest.mark.parametrize("flag,allowed,denied", [
    ("session_create", [("POST", "/api/v1/sessions")], [("GET", "/api/v1/sessions"), ("GET", "/api/v1/usage")]),
    ("session_manage", [("GET", "/api/v1/sessions"), ("DELETE", "/api/v1/sessions/sess_x")],
     [("POST", "/api/v1/sessions"), ("GET", "/api/v1/usage")]),
    ("usage_read", [("GET", "/api/v1/usage"), ("GET", "/api/v1/usage/alerts")],
     [("POST", "/api/v1/usage"), ("GET", "/api/v1/sessions")]),
])
def test_legacy_flags(server, flag, allowed, denied):
    created = server.create_key(permissions=[flag])
    assert created["permissions"] == [flag] and created["scopes"] == []
    for method, path in allowed:
        response = server.request(method, path, key=created["key"], json={"end_user_id": "legacy-user"})
        assert response.status_code in (200, 201, 404), (method, path, response.text)
    for method, path in denied:
        assert_error(server.request(method, path, key=created["key"], json={}), 403, "insufficient_scope")


@pytest.mark.parametrize("body,field", [
    ({"scopes": ["sessions:everything"]}, "scopes[0]"),
    ({"permissions": ["session_destroy"]}, "permissions[0]"),
    ({}, "scopes"),
    ({"scopes": ["sessions:read"], "limits": {"requests_per_minute": 0}}, "limits.requests_per_minute"),
    ({"scopes": ["sessions:read"], "limits": {"per_day": 5}}, "limits.per_day"),
    ({"scopes": ["sessions:read"], "expires_at": 1000}, "expires_at"),
    ({"scopes": ["sessions:read"], "colour": "red"}, "colour"),
])
def test_unknown_scope_flag_or_field_is_invalid_request(server, body, field):
    error = assert_error(server.admin("POST", "/api/v1/keys", json=body), 400, "invalid_request")
    assert error["field"].startswith(field.split("[")[0]), error


def test_admin_all_allows_every_operation(server):
    for method, path, _ in SCOPE_OF_ROUTE:
        response = server.admin(method, path, json={})
        assert response.status_code not in (401, 403), (method, path, response.text)


def test_seed_default_limits_in_headers(fresh_server):
    s = fresh_server()
    response = s.admin("GET", "/api/v1/usage")
    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == '"minute";q=100;w=60, "hour";q=1000;w=3600'
    assert re.fullmatch(r'"minute";r=99;t=\d+', response.headers["RateLimit"])


def test_rate_limit_headers_then_429_with_retry_after(server):
    created = server.create_key(scopes=["billing:read"], limits={"requests_per_minute": 3})
    remaining = []
    for _ in range(3):
        response = server.request("GET", "/api/v1/usage", key=created["key"])
        assert response.status_code == 200
        assert response.headers["RateLimit-Policy"] == '"minute";q=3;w=60, "hour";q=1000000;w=3600'
        remaining.append(int(re.search(r";r=(\d+);", response.headers["RateLimit"]).group(1)))
    assert remaining == [2, 1, 0]
    response = server.request("GET", "/api/v1/usage", key=created["key"])
    error = assert_error(response, 429, "rate_limited")
    assert error["window"] == "minute" and error["limit"] == 3
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 20 and error["retry_after"] == retry
    assert_rate_headers(response)
    assert re.fullmatch(r'"minute";r=0;t=\d+', response.headers["RateLimit"])
    # A denied request consumes nothing: still denied, still r=0, no crash on a burst.
    for _ in range(5):
        assert server.request("GET", "/api/v1/usage", key=created["key"]).status_code == 429


def test_hourly_window_is_enforced_too(server):
    created = server.create_key(scopes=["billing:read"], limits={"requests_per_minute": 100, "requests_per_hour": 2})
    for _ in range(2):
        assert server.request("GET", "/api/v1/usage", key=created["key"]).status_code == 200
    response = server.request("GET", "/api/v1/usage", key=created["key"])
    assert assert_error(response, 429, "rate_limited")["window"] == "hour"
    assert int(response.headers["Retry-After"]) >= 1


def test_rate_headers_on_every_authenticated_response(server):
    key = server.create_key(scopes=ALL_SCOPES)["key"]
    for method, path, body in [
        ("GET", "/api/v1/sessions", None),
        ("GET", "/api/v1/sessions/sess_missing", None),       # 404
        ("POST", "/api/v1/sessions", {"bogus": 1}),             # 400
        ("GET", "/api/v1/users?limit=0", None),                 # 400
        ("GET", "/api/v1/keys", None),                          # 403
        ("GET", "/api/v1/workers", None),
        ("GET", "/api/v1/usage/alerts", None),
    ]:
        response = server.request(method, path, key=key, json=body)
        assert_rate_headers(response)


def test_unknown_route_and_wrong_method(server):
    assert_error(server.admin("GET", "/api/v1/nothing"), 404, "not_found")
    assert_error(server.request("GET", "/"), 404, "not_found")
    response = server.admin("PUT", "/api/v1/sessions")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_malformed_json_and_content_type(server):
    key = server.create_key(scopes=["sessions:write"])["key"]
    error = assert_error(server.request("POST", "/api/v1/sessions", key=key, data='{"end_user_id": ',
                                        headers={"Content-Type": "application/json"}), 400, "invalid_request")
    assert error["field"] == "body"
    error = assert_error(server.request("POST", "/api/v1/sessions", key=key, data='end_user_id=x',
                                        headers={"Content-Type": "application/x-www-form-urlencoded"}),
                         400, "invalid_request")
    assert error["field"] == "content-type"
    error = assert_error(server.request("POST", "/api/v1/sessions", key=key, data='[1,2]',
                                        headers={"Content-Type": "application/json"}), 400, "invalid_request")
    assert error["field"] == "body"
    ok = server.request("POST", "/api/v1/sessions", key=key, data='{"end_user_id": "charset-user"}',
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 201


def test_body_over_64_kib_is_refused(server):
    key = server.create_key(scopes=["sessions:write", "users:write"])["key"]
    big = '{"end_user_id": "u", "metadata": {"x": "' + "a" * (64 * 1024) + '"}}'
    headers = {"Content-Type": "application/json"}
    assert_error(server.request("POST", "/api/v1/sessions", key=key, data=big, headers=headers), 413, "payload_too_large")
    # Without a Content-Length (chunked), the streamed size is checked.
    chunks = (piece.encode() for piece in [big[:30000], big[30000:]])
    response = server.request("POST", "/api/v1/users", key=key, data=chunks, headers=headers)
    assert_error(response, 413, "payload_too_large")
    assert_rate_headers(response)
    # Just under the limit is read (and refused for what it says, not for its size).
    under = '{"name": "n", "metadata": {"x": "' + "a" * (60 * 1024) + '"}}'
    error = assert_error(server.request("POST", "/api/v1/users", key=key, data=under, headers=headers), 400, "invalid_request")
    assert error["field"] == "metadata"


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-1", "limit="])
def test_bad_limit(server, query):
    error = assert_error(server.admin("GET", f"/api/v1/keys?{query}"), 400, "invalid_request")
    assert error["field"] == "limit"


def test_limit_bounds_lists(server):
    for _ in range(3):
        server.create_key(scopes=["users:read"])
    for path in ["/api/v1/keys", "/api/v1/audit", "/api/v1/sessions", "/api/v1/users", "/api/v1/workers",
                 "/api/v1/usage/alerts"]:
        response = server.admin("GET", path + "?limit=2")
        assert response.status_code == 200, path
        assert set(response.json()) == {"data"} and len(response.json()["data"]) <= 2
    assert len(server.admin("GET", "/api/v1/keys?limit=1000").json()["data"]) >= 3


def test_another_key_cannot_be_created_for_another_account_by_a_tenant_admin(server):
    tenant_admin = server.create_key(scopes=["admin:all"], account_id="tenant-admin-acct")
    assert tenant_admin["account_id"] == "tenant-admin-acct"
    response = server.request("POST", "/api/v1/keys", key=tenant_admin["key"],
                              json={"scopes": ["sessions:read"], "account_id": "someone-else"})
    assert_error(response, 403, "forbidden")
    own = server.request("POST", "/api/v1/keys", key=tenant_admin["key"], json={"scopes": ["sessions:read"]})
    assert own.status_code == 201 and own.json()["account_id"] == "tenant-admin-acct"
    listed = server.request("GET", "/api/v1/keys", key=tenant_admin["key"]).json()["data"]
    assert {k["account_id"] for k in listed} == {"tenant-admin-acct"}
