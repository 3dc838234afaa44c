"""The server as a process: configuration, bootstrap, the seed's curl line, logs, shutdown."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import BINARY, Server, free_port, make_key

SEED_CURL = ('curl -X POST http://127.0.0.1:8080/api/v1/sessions -H "Authorization: Bearer $ASTACK_KEY" '
             '-H "Content-Type: application/json" -d \'{"end_user_id": "user_123", "connection_type": "websocket", '
             '"quality": "high", "features": ["vision", "transcription"]}\'')


def run_expecting_failure(args=(), env=None, config_text=None, tmp_path=None):
    cmd = [str(BINARY), "--listen", f"127.0.0.1:{free_port()}", *args]
    if config_text is not None:
        path = tmp_path / "config.json"
        path.write_text(config_text)
        cmd += ["--config", str(path)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASTACK_")}
    full_env.update(env or {})
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=10)
    return proc


@pytest.mark.parametrize("config,field", [
    ('{"limits": {"requests_per_minute": 0}}', "limits.requests_per_minute"),
    ('{"sessions": {"pending_ttl_seconds": 0}}', "sessions.pending_ttl_seconds"),
    ('{"signing_keys": [{"kid": "k", "secret": "short"}]}', "signing_keys"),
    ('{"colour": "red"}', "colour"),
    ('{"features": ["Vision!"]}', "features[0]"),
    ('{"limits": ', "body"),
])
def test_bad_config_stops_with_a_message_naming_the_field(tmp_path, config, field):
    proc = run_expecting_failure(config_text=config, tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"`{field}`" in proc.stderr, proc.stderr


def test_missing_config_file(tmp_path):
    proc = run_expecting_failure(args=["--config", str(tmp_path / "absent.json")])
    assert proc.returncode == 2 and "absent.json" in proc.stderr


def test_malformed_admin_key_stops_the_server():
    proc = run_expecting_failure(env={"ASTACK_ADMIN_KEY": "ak_not-a-key"})
    assert proc.returncode == 2
    assert "ASTACK_ADMIN_KEY" in proc.stderr and "ak_not-a-key" not in proc.stderr


def test_short_signing_secret_stops_the_server():
    proc = run_expecting_failure(env={"ASTACK_SIGNING_SECRET": "too-short"})
    assert proc.returncode == 2 and "ASTACK_SIGNING_SECRET" in proc.stderr and "too-short" not in proc.stderr


def test_bad_listen_address():
    proc = run_expecting_failure(args=["--listen", "not-an-address"])
    assert proc.returncode == 2 and "--listen" in proc.stderr


def test_generated_admin_key_is_printed_once_with_curl_lines():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTACK_")}
    proc = subprocess.Popen([str(BINARY), "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        key = None
        requests.get(base + "/api/v1/usage", timeout=2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    keys = re.findall(r"ak_[0-9A-Za-z]{36}", err)
    assert len(keys) == 1
    key = keys[0]
    assert "curl -X POST " + base + "/api/v1/sessions" in err
    assert key not in out  # the request log never shows it


def test_signing_secret_from_environment_signs_tokens(server):
    import jwt

    from conftest import SIGNING_SECRET
    client = server.create_key(scopes=["sessions:write"])["key"]
    s = server.request("POST", "/api/v1/sessions", key=client, json={"end_user_id": "sig"}).json()
    jwt.decode(s["session_token"], SIGNING_SECRET, algorithms=["HS256"], audience="local")


def test_the_seeds_curl_example_verbatim(server):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    key = server.create_key(scopes=["sessions:write"])["key"]
    command = SEED_CURL.replace("http://127.0.0.1:8080", server.base)
    assert command.count(server.base) == 1
    proc = subprocess.run(["bash", "-c", command + " -s -w '\\n%{http_code}'"], env={**os.environ, "ASTACK_KEY": key},
                          capture_output=True, text=True, timeout=10)
    body, status = proc.stdout.rsplit("\n", 1)
    assert status == "201", proc.stdout
    session = json.loads(body)
    assert session["session_token"].count(".") == 2
    assert session["worker_url"].startswith("ws")
    assert session["status"] == "PENDING" and session["quality"] == "high"


def test_one_log_line_per_request_without_secrets(fresh_server):
    s = fresh_server()
    created = s.create_key(scopes=["sessions:write", "sessions:read"])
    session = s.request("POST", "/api/v1/sessions", key=created["key"], json={"end_user_id": "log-me"}).json()
    s.request("GET", f"/api/v1/sessions/{session['id']}", key=created["key"])
    s.request("GET", "/api/v1/sessions", key="ak_garbage")
    s.request("GET", "/nowhere")
    s.request("PUT", "/api/v1/sessions/x", key=created["key"])
    time.sleep(0.2)
    lines = [json.loads(line) for line in s.stdout().splitlines() if line.strip()]
    # /healthz probes at start, then: create key, create session, get session, garbage key, 404,
    # a wrong method (405: its route is the template all the same).
    tail = lines[-6:]
    assert [(l["method"], l["route"], l["status"]) for l in tail] == [
        ("POST", "/api/v1/keys", 201),
        ("POST", "/api/v1/sessions", 201),
        ("GET", "/api/v1/sessions/{id}", 200),
        ("GET", "/api/v1/sessions", 401),
        ("GET", None, 404),
        ("PUT", "/api/v1/sessions/{id}", 405),
    ]
    assert tail[0]["key_prefix"] == s.admin_key[:7]
    assert tail[1]["key_prefix"] == created["key"][:7]
    assert tail[3]["key_prefix"] is None
    assert tail[5]["key_prefix"] == created["key"][:7]
    for line in tail:
        assert set(line) == {"ts", "method", "route", "status", "key_prefix", "latency_ms"}
        assert line["latency_ms"] >= 0
    everything = s.stdout() + s.stderr()
    for secret in [s.admin_key, created["key"], session["session_token"], session["id"], "log-me"]:
        assert secret not in everything


def test_graceful_shutdown_on_sigterm():
    s = Server()
    assert s.request("GET", "/healthz").status_code == 200
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0
    assert "shutting down" in s.stderr()


def test_head_is_authorized_like_get(server):
    assert server.request("HEAD", "/api/v1/sessions").status_code == 401
    response = server.request("HEAD", "/api/v1/usage", key=server.admin_key)
    assert response.status_code == 200 and "RateLimit" in response.headers
