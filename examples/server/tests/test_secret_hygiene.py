"""Secret hygiene of the server (issue 10, SPEC §2, §7): during a scripted run that uses a known
admin key, created keys and session tokens, through successes and every kind of refusal, the
server's stdout and stderr and every error body it sent hold none of them, nor any 20-character
piece of one."""

from conftest import SIGNING_SECRET, make_key, one_off


def pieces(secret, size=20):
    return {secret[i:i + size] for i in range(0, max(1, len(secret) - size + 1))}


def test_no_key_or_token_in_logs_or_errors(fresh_server):
    server = fresh_server(config={"limits": {"requests_per_minute": 1000, "concurrent_sessions": 2}})
    secrets = [server.admin_key, SIGNING_SECRET]
    bodies = []

    def call(method, path, key=None, **kwargs):
        response = server.request(method, path, key=key, **kwargs)
        if response.status_code >= 400:
            bodies.append(response.text)
        return response

    created = server.create_key(scopes=["sessions:write", "sessions:read", "workers:write"], name="app",
                                )
    app = created["key"]
    secrets.append(app)
    limited = server.create_key(scopes=["billing:read"], limits={"requests_per_minute": 2})["key"]
    secrets.append(limited)
    session = call("POST", "/api/v1/sessions", key=app, json={"end_user_id": "u1"}).json()
    token = session["session_token"]
    secrets.append(token)
    sid = session["id"]

    # Refused tokens: tampered, truncated, foreign, for another session.
    other = call("POST", "/api/v1/sessions", key=app, json={"end_user_id": "u2"}).json()
    secrets.append(other["session_token"])
    for bad in [token[:-2] + ("AA" if not token.endswith("AA") else "BB"), token[:-10], token + "x",
                other["session_token"], "a.b.c", token.replace(".", "")]:
        call("POST", f"/api/v1/sessions/{sid}/connect", key=app, json={"session_token": bad})
    assert call("POST", f"/api/v1/sessions/{sid}/connect", key=app, json={"session_token": token}).status_code == 200
    call("POST", f"/api/v1/sessions/{sid}/connect", key=app, json={"session_token": token})
    call("POST", "/api/v1/sessions", key=app, json={"end_user_id": "u3"})  # concurrent limit
    call("POST", f"/api/v1/sessions/{sid}/end", key=app, json={"outcome": "failed", "reason": "r"})

    # Refused keys: well-formed unknown, one character off, revoked, wrong scope, rate limited.
    for key in [make_key(), one_off(app), app[:20], app + app, one_off(server.admin_key)]:
        call("GET", "/api/v1/sessions", key=key)
        call("GET", "/api/v1/sessions", headers={"Authorization": f"Basic {key}"})
    call("GET", "/api/v1/keys", key=app)
    for _ in range(4):
        call("GET", "/api/v1/usage", key=limited)
    rotated = call("POST", f"/api/v1/keys/{created['id']}/rotate", key=server.admin_key,
                   json={"grace_period_seconds": 0}).json()
    secrets.append(rotated["key"])
    call("GET", "/api/v1/sessions", key=app)
    call("DELETE", f"/api/v1/keys/{rotated['id']}", key=server.admin_key)
    call("GET", "/api/v1/sessions", key=rotated["key"])
    # Secrets in places they do not belong: a body, a path, a query.
    call("POST", "/api/v1/users", key=server.admin_key, json={"name": 1, "token": token})
    call("GET", f"/api/v1/sessions/{token}", key=server.admin_key)
    call("GET", f"/api/v1/sessions?limit={app}", key=server.admin_key)
    audit = call("GET", "/api/v1/audit?limit=1000", key=server.admin_key)
    assert audit.status_code == 200
    bodies.append(audit.text)
    bodies.append(call("GET", "/api/v1/keys?limit=1000", key=server.admin_key).text)

    server.stop()
    logs = server.stdout() + server.stderr()
    assert logs.count("\n") > 30, "the request log was captured"
    statuses = {401, 403, 429, 409}
    assert all(f'"status":{s}' in logs for s in statuses), "the refusals were logged"
    assert len(bodies) > 20
    for secret in secrets:
        for piece in pieces(secret):
            assert piece not in logs, f"a piece of a secret is in the server's output: {piece}"
            for body in bodies:
                if secret == token and "/api/v1/sessions/" + token in body:
                    continue
                assert piece not in body, f"a piece of a secret is in an answer: {piece}: {body[:200]}"
