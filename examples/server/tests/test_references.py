"""The benchmark's references (`benches/server/run.sh`), hidden flags of the same binary:
`--no-engine` (the HTTP stack alone, canned answers) and `--no-checks` (the engine with its
checks switched off, every request run as the admin key)."""

from conftest import Server, make_key
from test_process import run_expecting_failure

SEED_BODY = {"end_user_id": "user_123", "connection_type": "websocket", "quality": "high",
             "features": ["vision", "transcription"]}
RATE_HEADERS = ("RateLimit-Policy", "RateLimit")


def start(*args):
    return Server(args=("--memory", *args), config={"limits": {"requests_per_minute": 100000}})


def test_no_checks_runs_any_bearer_as_the_admin_key_and_does_the_whole_work():
    s = start("--no-checks")
    try:
        assert "BENCHMARK MODE (--no-checks)" in s.stderr()
        admin_key_id = s.admin("GET", "/api/v1/keys").json()["data"][0]["id"]
        stranger = make_key()  # never created: no key is looked up
        created = s.request("POST", "/api/v1/sessions", key=stranger, json=SEED_BODY)
        assert created.status_code == 201, created.text
        assert all(h in created.headers for h in RATE_HEADERS)
        session = created.json()
        assert session["key_id"] == admin_key_id and session["account_id"] == "default"
        assert session["session_token"].count(".") == 2
        # Stored, audited and connectable with its signed token: the handlers' work is all done.
        read = s.request("GET", f"/api/v1/sessions/{session['id']}", key="anything")
        assert read.status_code == 200 and read.json()["status"] == "PENDING"
        audit = s.admin("GET", "/api/v1/audit").json()["data"]
        assert any(r["action"] == "session.created" and r["target"] == session["id"] for r in audit)
        connected = s.request("POST", f"/api/v1/sessions/{session['id']}/connect", key="x",
                              json={"session_token": session["session_token"]})
        assert connected.status_code == 200 and connected.json()["status"] == "ACTIVE"
        # A route that needs a key still wants a bearer; open routes pass.
        missing = s.request("POST", "/api/v1/sessions", json=SEED_BODY)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
        assert s.request("GET", "/healthz").status_code == 200
    finally:
        s.stop()


def test_no_engine_answers_canned_sessions_of_the_real_shape():
    s = start("--no-engine")
    try:
        assert "BENCHMARK CEILING MODE (--no-engine)" in s.stderr()
        created = s.request("POST", "/api/v1/sessions", key="anything", json=SEED_BODY)
        assert created.status_code == 201 and all(h in created.headers for h in RATE_HEADERS)
        body = created.json()
        assert body["end_user_id"] == "user_123" and body["features"] == SEED_BODY["features"]
        read = s.request("GET", "/api/v1/sessions/sess_0123", key="anything")
        assert read.status_code == 200 and read.json()["id"] == "sess_0123"
        assert s.request("POST", "/api/v1/sessions", json=SEED_BODY).status_code == 401
        # Only the benchmark's routes are served.
        assert s.request("GET", "/api/v1/users", key="anything").status_code == 404
    finally:
        s.stop()


def test_the_two_references_do_not_combine():
    proc = run_expecting_failure(args=["--memory", "--no-engine", "--no-checks"])
    assert proc.returncode == 2 and "--no-checks" in proc.stderr
