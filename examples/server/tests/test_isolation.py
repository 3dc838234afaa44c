"""Isolation (issue 10, SPEC §2, §3): a key never reads nor changes another account's resources,
a key without a route's scope is refused on that route, and no key grants scopes to an account
it does not administer.

Two tenant accounts, A and B, each get an admin key from the operator (`account_id`); A then
fills its account with a key, a session, a user, usage, an alert and audit records. B's keys,
holding every scope, try every route against A's ids.
"""

import secrets
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

SCOPES = ["sessions:read", "sessions:write", "users:read", "users:write", "billing:read", "billing:write",
          "workers:read", "workers:write"]
FLAGS = ["session_create", "session_manage", "usage_read"]

# Every authenticated route (SPEC §3, §10): method, path, the scope it needs, the legacy flags that
# also allow it, and a body a well-scoped key could send.
ROUTES = [
    ("POST", "/api/v1/sessions", "sessions:write", ["session_create"], {"end_user_id": "u"}),
    ("GET", "/api/v1/sessions", "sessions:read", ["session_manage"], None),
    ("GET", "/api/v1/sessions/{id}", "sessions:read", ["session_manage"], None),
    ("DELETE", "/api/v1/sessions/{id}", "sessions:write", ["session_manage"], None),
    ("POST", "/api/v1/sessions/{id}/connect", "workers:write", [], {"session_token": "x.y.z"}),
    ("POST", "/api/v1/sessions/{id}/end", "workers:write", [], {"outcome": "completed"}),
    ("GET", "/api/v1/users", "users:read", [], None),
    ("POST", "/api/v1/users", "users:write", [], {"name": "n"}),
    ("GET", "/api/v1/users/{id}", "users:read", [], None),
    ("PATCH", "/api/v1/users/{id}", "users:write", [], {"name": "n"}),
    ("DELETE", "/api/v1/users/{id}", "users:write", [], None),
    ("GET", "/api/v1/usage", "billing:read", ["usage_read"], None),
    ("POST", "/api/v1/usage", "billing:write", [], {"metric": "m", "quantity": 1}),
    ("GET", "/api/v1/usage/alerts", "billing:read", ["usage_read"], None),
    ("POST", "/api/v1/usage/alerts", "billing:write", [], {"metric": "m", "threshold": 1}),
    ("GET", "/api/v1/workers", "workers:read", [], None),
    ("POST", "/api/v1/workers", "workers:write", [], {"node_id": "n", "url": "ws://n", "capacity": 1}),
    ("PATCH", "/api/v1/workers/{node_id}", "workers:write", [], {"draining": True}),
    ("GET", "/api/v1/keys", "admin:all", [], None),
    ("POST", "/api/v1/keys", "admin:all", [], {"scopes": ["sessions:read"]}),
    ("GET", "/api/v1/keys/{id}", "admin:all", [], None),
    ("DELETE", "/api/v1/keys/{id}", "admin:all", [], None),
    ("POST", "/api/v1/keys/{id}/rotate", "admin:all", [], {}),
    ("GET", "/api/v1/audit", "admin:all", [], None),
    ("GET", "/api/v1/metrics", "admin:all", [], None),
]


def test_the_route_table_covers_the_openapi_document():
    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete") and path != "/healthz"}
    assert documented == {(method, path) for method, path, *_ in ROUTES}


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]


class Tenant:
    """An account with its admin key and a worker key of its own."""

    def __init__(self, server, name):
        self.server = server
        self.account = f"{name}-{secrets.token_hex(4)}"
        self.admin = server.create_key(account_id=self.account, scopes=["admin:all"], name=f"{name} admin")
        self.full = self.call("POST", "/api/v1/keys", json={"scopes": SCOPES, "permissions": FLAGS}).json()

    def call(self, method, path, key=None, **kwargs):
        return self.server.request(method, path, key=key or self.admin["key"], **kwargs)

    def as_full(self, method, path, **kwargs):
        return self.call(method, path, key=self.full["key"], **kwargs)


@pytest.fixture(scope="module")
def tenants(server):
    a, b = Tenant(server, "acct-a"), Tenant(server, "acct-b")
    a.session = a.as_full("POST", "/api/v1/sessions", json={"end_user_id": "alice"}).json()
    a.live_session = a.as_full("POST", "/api/v1/sessions", json={"end_user_id": "alice-2"}).json()
    a.user = a.as_full("POST", "/api/v1/users", json={"name": "Alice", "email": "a@example.com"}).json()
    a.key = a.call("POST", "/api/v1/keys", json={"scopes": ["sessions:read"], "name": "a reader"}).json()
    assert a.as_full("POST", "/api/v1/usage", json={"metric": "a-secret-metric", "quantity": 7}).status_code == 201
    a.alert = a.as_full("POST", "/api/v1/usage/alerts", json={"metric": "a-secret-metric", "threshold": 100}).json()
    b.session = b.as_full("POST", "/api/v1/sessions", json={"end_user_id": "bob"}).json()
    return a, b


def a_ids(a):
    return [a.session["id"], a.live_session["id"], a.user["id"], a.key["id"], a.full["id"], a.admin["id"], a.alert["id"]]


# ------------------------------------------------------------------------------- reads


@pytest.mark.parametrize("who", ["admin", "full"])
def test_another_accounts_resources_are_not_found(tenants, who):
    a, b = tenants
    key = b.admin["key"] if who == "admin" else b.full["key"]
    for path in [f"/api/v1/sessions/{a.session['id']}", f"/api/v1/users/{a.user['id']}"]:
        assert_error(b.call("GET", path, key=key), 404, "not_found")
    if who == "admin":
        for key_id in [a.key["id"], a.admin["id"], a.full["id"]]:
            assert_error(b.call("GET", f"/api/v1/keys/{key_id}"), 404, "not_found")


def test_lists_show_only_the_callers_account(tenants):
    a, b = tenants
    for path in ["/api/v1/sessions?limit=1000", "/api/v1/users?limit=1000", "/api/v1/usage/alerts"]:
        response = b.as_full("GET", path)
        assert response.status_code == 200
        for item in response.json()["data"]:
            assert item.get("account_id", b.account) == b.account, item
        for resource_id in a_ids(a):
            assert resource_id not in response.text
    keys = b.call("GET", "/api/v1/keys?limit=1000").json()["data"]
    assert keys and all(k["account_id"] == b.account for k in keys)
    audit = b.call("GET", "/api/v1/audit?limit=1000").json()["data"]
    assert audit and all(r["account_id"] == b.account for r in audit)
    text = b.call("GET", "/api/v1/audit?limit=1000").text
    for resource_id in a_ids(a):
        assert resource_id not in text


def test_usage_and_metrics_are_per_account(tenants):
    a, b = tenants
    usage = b.as_full("GET", "/api/v1/usage").json()
    assert usage["account_id"] == b.account and "a-secret-metric" not in usage["metrics"]
    assert b.as_full("POST", "/api/v1/usage", json={"metric": "a-secret-metric", "quantity": 1000}).status_code == 201
    assert a.as_full("GET", "/api/v1/usage").json()["metrics"]["a-secret-metric"] == 7
    assert a.as_full("GET", "/api/v1/usage/alerts").json()["data"][0]["fired_at"] is None
    metrics = b.call("GET", "/api/v1/metrics").json()
    keys_of_b = len(b.call("GET", "/api/v1/keys?limit=1000").json()["data"])
    assert metrics["keys"] == keys_of_b
    assert sum(metrics["sessions"].values()) == len(b.as_full("GET", "/api/v1/sessions?limit=1000").json()["data"])


# ------------------------------------------------------------------------------- changes


def test_another_accounts_resources_cannot_be_changed(tenants, server):
    a, b = tenants
    sid, uid = a.session["id"], a.user["id"]
    assert_error(b.as_full("DELETE", f"/api/v1/sessions/{sid}"), 404, "not_found")
    assert_error(b.as_full("POST", f"/api/v1/sessions/{sid}/end", json={"outcome": "failed", "reason": "x"}),
                 404, "not_found")
    assert_error(b.as_full("POST", f"/api/v1/sessions/{sid}/connect",
                           json={"session_token": a.session["session_token"]}), 404, "not_found")
    assert_error(b.as_full("PATCH", f"/api/v1/users/{uid}", json={"name": "Mallory"}), 404, "not_found")
    assert_error(b.as_full("DELETE", f"/api/v1/users/{uid}"), 404, "not_found")
    assert_error(b.call("DELETE", f"/api/v1/keys/{a.key['id']}"), 404, "not_found")
    assert_error(b.call("POST", f"/api/v1/keys/{a.key['id']}/rotate", json={"grace_period_seconds": 0}),
                 404, "not_found")
    # A's resources are as they were.
    assert a.as_full("GET", f"/api/v1/sessions/{sid}").json()["status"] == "PENDING"
    assert a.as_full("GET", f"/api/v1/users/{uid}").json()["name"] == "Alice"
    record = a.call("GET", f"/api/v1/keys/{a.key['id']}").json()
    assert record["revoked_at"] is None and record["expires_at"] is None
    assert server.request("GET", "/api/v1/sessions", key=a.key["key"]).status_code == 200


def test_a_token_of_one_account_does_not_connect_another_accounts_session(tenants):
    a, b = tenants
    response = b.as_full("POST", f"/api/v1/sessions/{b.session['id']}/connect",
                         json={"session_token": a.live_session["session_token"]})
    error = assert_error(response, 401, "invalid_token")
    assert error["reason"] == "wrong_session"
    assert b.as_full("GET", f"/api/v1/sessions/{b.session['id']}").json()["status"] == "PENDING"


def test_the_operators_worker_keys_reach_every_account(tenants, server):
    a, _ = tenants
    worker = server.create_key(scopes=["workers:write"])["key"]
    sid = a.live_session["id"]
    connected = server.request("POST", f"/api/v1/sessions/{sid}/connect", key=worker,
                               json={"session_token": a.live_session["session_token"]})
    assert connected.status_code == 200 and connected.json()["status"] == "ACTIVE"


# ------------------------------------------------------------------------------- granting


def test_a_tenant_admin_cannot_create_keys_for_another_account(tenants):
    a, b = tenants
    for account in [a.account, "default", b.account + " ", b.account.upper()]:
        for scopes in (["admin:all"], ["sessions:read"]):
            assert_error(b.call("POST", "/api/v1/keys", json={"account_id": account, "scopes": scopes}),
                         403, "forbidden")
    # In its own account it may, naming it or not.
    mine = b.call("POST", "/api/v1/keys", json={"account_id": b.account, "scopes": ["admin:all"]})
    assert mine.status_code == 201 and mine.json()["account_id"] == b.account


def test_a_key_without_admin_cannot_create_rotate_or_revoke_keys(tenants, server):
    _, b = tenants
    everything_else = b.call("POST", "/api/v1/keys", json={"scopes": SCOPES, "permissions": FLAGS}).json()["key"]
    for method, path, body in [("POST", "/api/v1/keys", {"scopes": ["admin:all"]}),
                               ("POST", "/api/v1/keys", {"scopes": ["sessions:read"], "account_id": b.account}),
                               ("POST", f"/api/v1/keys/{b.full['id']}/rotate", {}),
                               ("DELETE", f"/api/v1/keys/{b.full['id']}", None),
                               ("GET", "/api/v1/keys", None)]:
        response = server.request(method, path, key=everything_else, json=body)
        error = assert_error(response, 403, "insufficient_scope")
        assert error["required_scopes"] == ["admin:all"]
    assert b.call("GET", f"/api/v1/keys/{b.full['id']}").json()["revoked_at"] is None


def test_unknown_scopes_and_flags_are_refused(tenants):
    _, b = tenants
    for body in [{"scopes": ["admin:*"]}, {"scopes": ["ADMIN:ALL"]}, {"scopes": ["admin:all "]},
                 {"permissions": ["admin"]}, {"scopes": ["sessions:read", "root"]}]:
        assert_error(b.call("POST", "/api/v1/keys", json=body), 400, "invalid_request")


# ------------------------------------------------------------------------------- scopes


def path_of(template):
    return template.replace("{id}", "some_id").replace("{node_id}", "some-node")


@pytest.mark.parametrize("method,template,scope,flags,body", ROUTES,
                         ids=[f"{m} {p}" for m, p, *_ in ROUTES])
def test_a_key_without_the_routes_scope_is_refused(server, tenants, method, template, scope, flags, body):
    _, b = tenants
    others = [s for s in SCOPES if s != scope]
    other_flags = [f for f in FLAGS if f not in flags]
    key = b.call("POST", "/api/v1/keys", json={"scopes": others, "permissions": other_flags}).json()["key"]
    response = server.request(method, path_of(template), key=key, json=body)
    error = assert_error(response, 403, "insufficient_scope")
    assert error["required_scopes"] == [scope]
    # The same key with the scope passes the check (whatever the handler then answers).
    allowed = b.call("POST", "/api/v1/keys", json={"scopes": others + [scope]}).json()["key"]
    assert server.request(method, path_of(template), key=allowed, json=body).status_code != 403 or \
        template.startswith("/api/v1/workers") and method != "GET"


@pytest.mark.parametrize("method,template,scope,flags,body", [r for r in ROUTES if r[3]],
                         ids=[f"{m} {p}" for m, p, _, f, _ in ROUTES if f])
def test_a_legacy_flag_alone_allows_its_routes(server, tenants, method, template, scope, flags, body):
    _, b = tenants
    for flag in flags:
        key = b.call("POST", "/api/v1/keys", json={"permissions": [flag]}).json()["key"]
        assert server.request(method, path_of(template), key=key, json=body).status_code != 403


def test_a_key_with_no_matching_scope_is_refused_on_every_route(server, tenants):
    _, b = tenants
    # A key whose only grant is one that no route of the table needs but its own.
    for scope in SCOPES:
        key = b.call("POST", "/api/v1/keys", json={"scopes": [scope]}).json()["key"]
        for method, template, needed, _, body in ROUTES:
            response = server.request(method, path_of(template), key=key, json=body)
            if needed == scope:
                assert response.status_code != 403 or template.startswith("/api/v1/workers")
            else:
                assert_error(response, 403, "insufficient_scope")
