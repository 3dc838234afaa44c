"""Users, usage and alerts, workers, keys, audit and metrics over HTTP (SPEC §8, §10)."""

import time

from conftest import make_key
from test_auth import assert_error, assert_rate_headers


def test_users_crud(server):
    key = server.create_key(scopes=["users:read", "users:write"], account_id="users-acct")["key"]
    created = server.request("POST", "/api/v1/users", key=key,
                             json={"name": "Ada", "email": "ada@example.com", "metadata": {"plan": "pro"}})
    assert created.status_code == 201
    assert_rate_headers(created)
    user = created.json()
    assert user["id"].startswith("user_") and user["account_id"] == "users-acct"
    assert user["created_at"] == user["updated_at"]
    assert server.request("GET", f"/api/v1/users/{user['id']}", key=key).json() == user
    second = server.request("POST", "/api/v1/users", key=key, json={"name": "Grace"}).json()
    listed = server.request("GET", "/api/v1/users", key=key).json()["data"]
    assert [u["id"] for u in listed] == [second["id"], user["id"]]
    patched = server.request("PATCH", f"/api/v1/users/{user['id']}", key=key, json={"email": None, "name": "Ada L."})
    assert patched.status_code == 200
    assert patched.json()["email"] is None and patched.json()["name"] == "Ada L."
    assert patched.json()["metadata"] == {"plan": "pro"}
    error = assert_error(server.request("PATCH", f"/api/v1/users/{user['id']}", key=key, json={"email": "nope"}),
                         400, "invalid_request")
    assert error["field"] == "email"
    error = assert_error(server.request("POST", "/api/v1/users", key=key, json={"email": "a@b.c"}), 400, "invalid_request")
    assert error["field"] == "name"
    deleted = server.request("DELETE", f"/api/v1/users/{user['id']}", key=key)
    assert deleted.status_code == 200 and deleted.json()["id"] == user["id"]
    assert_error(server.request("GET", f"/api/v1/users/{user['id']}", key=key), 404, "not_found")
    assert_error(server.request("DELETE", f"/api/v1/users/{user['id']}", key=key), 404, "not_found")
    other = server.create_key(scopes=["users:read", "users:write"], account_id="other-users-acct")["key"]
    assert_error(server.request("GET", f"/api/v1/users/{second['id']}", key=other), 404, "not_found")
    assert_error(server.request("PATCH", f"/api/v1/users/{second['id']}", key=other, json={"name": "x"}), 404, "not_found")
    assert server.request("GET", "/api/v1/users", key=other).json()["data"] == []


def test_usage_and_alerts(server):
    key = server.create_key(scopes=["billing:read", "billing:write"], account_id="billing-acct")["key"]
    alert = server.request("POST", "/api/v1/usage/alerts", key=key, json={"metric": "gpu_seconds", "threshold": 10})
    assert alert.status_code == 201 and alert.json()["fired_at"] is None
    first = server.request("POST", "/api/v1/usage", key=key,
                           json={"metric": "gpu_seconds", "quantity": 6, "idempotency_key": "job-1"})
    assert first.status_code == 201 and first.json() == {"metric": "gpu_seconds", "total": 6, "counted": True}
    again = server.request("POST", "/api/v1/usage", key=key,
                           json={"metric": "gpu_seconds", "quantity": 6, "idempotency_key": "job-1"})
    assert again.status_code == 200 and again.json() == {"metric": "gpu_seconds", "total": 6, "counted": False}
    assert server.request("GET", "/api/v1/usage/alerts", key=key).json()["data"][0]["fired_at"] is None
    server.request("POST", "/api/v1/usage", key=key, json={"metric": "gpu_seconds", "quantity": 4})
    alerts = server.request("GET", "/api/v1/usage/alerts", key=key).json()["data"]
    assert len(alerts) == 1 and alerts[0]["fired_at"] is not None
    usage = server.request("GET", "/api/v1/usage", key=key).json()
    assert usage["account_id"] == "billing-acct" and usage["metrics"]["gpu_seconds"] == 10
    assert usage["requests"] >= 5 and usage["requests"] == usage["metrics"]["requests"]
    error = assert_error(server.request("POST", "/api/v1/usage", key=key, json={"metric": "requests", "quantity": 1}),
                         400, "invalid_request")
    assert error["field"] == "metric"
    error = assert_error(server.request("POST", "/api/v1/usage", key=key, json={"metric": "x", "quantity": -1}),
                         400, "invalid_request")
    assert error["field"] == "quantity"
    error = assert_error(server.request("POST", "/api/v1/usage/alerts", key=key, json={"metric": "x", "threshold": 0}),
                         400, "invalid_request")
    assert error["field"] == "threshold"


def test_session_seconds_are_metered(server):
    client = server.create_key(scopes=["sessions:write", "billing:read"], account_id="meter-acct")["key"]
    worker = server.create_key(scopes=["workers:write"], account_id="meter-acct")["key"]
    s = server.request("POST", "/api/v1/sessions", key=client, json={"end_user_id": "m"}).json()
    server.request("POST", f"/api/v1/sessions/{s['id']}/connect", key=worker, json={"session_token": s["session_token"]})
    time.sleep(1.1)
    server.request("POST", f"/api/v1/sessions/{s['id']}/end", key=worker, json={"outcome": "completed"})
    assert server.request("GET", "/api/v1/usage", key=client).json()["session_seconds"] >= 1


def test_workers_placement_and_no_worker_available(fresh_server):
    s = fresh_server()
    ops = s.create_key(scopes=["workers:read", "workers:write", "sessions:write"])["key"]
    assert s.request("GET", "/api/v1/workers", key=ops).json() == {"data": []}
    w1 = s.request("POST", "/api/v1/workers", key=ops, json={"node_id": "gpu-1", "url": "wss://gpu-1.example", "capacity": 1})
    assert w1.status_code == 201 and w1.json() == {"node_id": "gpu-1", "url": "wss://gpu-1.example", "capacity": 1,
                                                   "draining": False}
    assert_error(s.request("POST", "/api/v1/workers", key=ops, json={"node_id": "gpu-1", "url": "ws://x", "capacity": 1}),
                 409, "already_exists")
    error = assert_error(s.request("POST", "/api/v1/workers", key=ops, json={"node_id": "gpu-2", "url": "ftp://x", "capacity": 1}),
                         400, "invalid_request")
    assert error["field"] == "url"
    session = s.request("POST", "/api/v1/sessions", key=ops, json={"end_user_id": "w"})
    assert session.status_code == 201
    assert session.json()["node_id"] == "gpu-1" and session.json()["worker_url"] == "wss://gpu-1.example"
    listed = s.request("GET", "/api/v1/workers", key=ops).json()["data"]
    assert listed == [{"node_id": "gpu-1", "url": "wss://gpu-1.example", "capacity": 1, "draining": False,
                       "active_sessions": 1}]
    assert_error(s.request("POST", "/api/v1/sessions", key=ops, json={"end_user_id": "w2"}), 503, "no_worker_available")
    patched = s.request("PATCH", "/api/v1/workers/gpu-1", key=ops, json={"capacity": 5, "draining": True})
    assert patched.status_code == 200 and patched.json()["draining"] is True and patched.json()["capacity"] == 5
    assert_error(s.request("POST", "/api/v1/sessions", key=ops, json={"end_user_id": "w3"}), 503, "no_worker_available")
    s.request("PATCH", "/api/v1/workers/gpu-1", key=ops, json={"draining": False})
    assert s.request("POST", "/api/v1/sessions", key=ops, json={"end_user_id": "w4"}).status_code == 201
    assert_error(s.request("PATCH", "/api/v1/workers/gpu-9", key=ops, json={"draining": True}), 404, "not_found")
    tenant = s.create_key(scopes=["workers:write"], account_id="tenant")["key"]
    assert_error(s.request("POST", "/api/v1/workers", key=tenant, json={"node_id": "t", "url": "ws://t", "capacity": 1}),
                 403, "forbidden")


def test_keys_create_get_list_revoke(server):
    created = server.admin("POST", "/api/v1/keys", json={
        "name": "ci", "scopes": ["sessions:read"], "permissions": ["usage_read"],
        "limits": {"requests_per_minute": 7}, "expires_at": int(time.time() * 1000) + 3_600_000})
    assert created.status_code == 201
    assert_rate_headers(created)
    k = created.json()
    assert len(k["key"]) == 39 and k["key"].startswith("ak_") and k["prefix"] == k["key"][:7]
    assert k["limits"] == {"requests_per_minute": 7} and k["account_id"] == "default" and k["name"] == "ci"
    record = server.admin("GET", f"/api/v1/keys/{k['id']}").json()
    assert "key" not in record and record["id"] == k["id"]
    listed = server.admin("GET", "/api/v1/keys").json()["data"]
    assert listed[0]["id"] == k["id"] and all("key" not in r for r in listed)
    assert k["key"] not in server.admin("GET", "/api/v1/keys?limit=1000").text
    assert server.request("GET", "/api/v1/sessions", key=k["key"]).status_code == 200
    revoked = server.admin("DELETE", f"/api/v1/keys/{k['id']}").json()
    assert revoked["revoked_at"] is not None
    assert server.admin("DELETE", f"/api/v1/keys/{k['id']}").json()["revoked_at"] == revoked["revoked_at"]
    assert_error(server.request("GET", "/api/v1/sessions", key=k["key"]), 401, "api_key_revoked")
    assert_error(server.admin("POST", f"/api/v1/keys/{k['id']}/rotate", json={}), 400, "invalid_request")
    assert_error(server.admin("GET", "/api/v1/keys/key_nope"), 404, "not_found")
    assert_error(server.admin("DELETE", "/api/v1/keys/key_nope"), 404, "not_found")


def test_rotation(server):
    old = server.create_key(scopes=["billing:read"], limits={"requests_per_minute": 50}, name="rot")
    rotated = server.admin("POST", f"/api/v1/keys/{old['id']}/rotate", json={"grace_period_seconds": 3600})
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["key"] != old["key"] and new["id"] != old["id"]
    assert new["scopes"] == old["scopes"] and new["limits"] == old["limits"] and new["account_id"] == old["account_id"]
    assert server.request("GET", "/api/v1/usage", key=new["key"]).status_code == 200
    assert server.request("GET", "/api/v1/usage", key=old["key"]).status_code == 200  # within grace
    old_record = server.admin("GET", f"/api/v1/keys/{old['id']}").json()
    assert old_record["expires_at"] is not None
    # No grace (empty body): the old key stops at once.
    newer = server.admin("POST", f"/api/v1/keys/{new['id']}/rotate")
    assert newer.status_code == 201
    assert_error(server.request("GET", "/api/v1/usage", key=new["key"]), 401, "api_key_expired")
    assert server.request("GET", "/api/v1/usage", key=newer.json()["key"]).status_code == 200
    error = assert_error(server.admin("POST", f"/api/v1/keys/{newer.json()['id']}/rotate",
                                      json={"grace_period_seconds": -5}), 400, "invalid_request")
    assert error["field"] == "grace_period_seconds"
    error = assert_error(server.admin("POST", f"/api/v1/keys/{newer.json()['id']}/rotate", json={"grace": 5}),
                         400, "invalid_request")
    assert error["field"] == "grace"


def test_audit_and_metrics(server):
    created = server.create_key(scopes=["users:read"])
    server.request("GET", "/api/v1/keys", key=created["key"])  # denied: audited
    audit = server.admin("GET", "/api/v1/audit?limit=1000")
    assert audit.status_code == 200
    records = audit.json()["data"]
    actions = {r["action"] for r in records}
    assert {"key.created", "request.denied"} <= actions
    denied = next(r for r in records if r["action"] == "request.denied" and r["actor_key_id"] == created["id"])
    assert denied["actor_prefix"] == created["key"][:7]
    assert denied["detail"]["code"] == "insufficient_scope"
    assert created["key"] not in audit.text
    metrics = server.admin("GET", "/api/v1/metrics")
    assert metrics.status_code == 200
    m = metrics.json()
    assert m["keys"] >= 2 and set(m["sessions"]) == {"PENDING", "ACTIVE", "COMPLETED", "FAILED", "EXPIRED"}
    tenant = server.create_key(scopes=["admin:all"], account_id="audit-tenant")["key"]
    tenant_audit = server.request("GET", "/api/v1/audit", key=tenant).json()["data"]
    assert all(r["account_id"] == "audit-tenant" for r in tenant_audit)
    assert server.request("GET", "/api/v1/metrics", key=tenant).json()["keys"] == 1


def test_admin_key_from_environment_is_the_bootstrap_admin(server):
    keys = server.admin("GET", "/api/v1/keys?limit=1000").json()["data"]
    bootstrap = [k for k in keys if k["name"] == "bootstrap admin"]
    assert len(bootstrap) == 1
    assert bootstrap[0]["scopes"] == ["admin:all"] and bootstrap[0]["account_id"] == "default"
    assert bootstrap[0]["prefix"] == server.admin_key[:7]
    assert make_key() != server.admin_key
