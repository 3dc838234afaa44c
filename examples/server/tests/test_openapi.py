"""docs/openapi.yaml describes the server, and the live server keeps to it (schemathesis)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import OPENAPI, Server
from test_auth import SCOPE_OF_ROUTE

ROUTES = {(m, p.replace("sess_x", "{id}").replace("user_x", "{id}").replace("key_x", "{id}")
           .replace("node-x", "{node_id}")) for m, p, _ in SCOPE_OF_ROUTE} | {("GET", "/healthz")}


def load():
    return yaml.safe_load(OPENAPI.read_text())


def test_document_is_openapi_3_1_and_lists_exactly_the_routes():
    doc = load()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in doc["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    assert documented == ROUTES


def test_every_operation_documents_its_errors_and_bodies():
    doc = load()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "patch", "delete"):
                continue
            codes = set(op["responses"])
            assert codes & {"200", "201"}, (method, path)
            if path == "/healthz":
                continue
            assert {"401", "403", "429"} <= codes, (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code, response in op["responses"].items():
                ref = response.get("$ref", "")
                target = doc["components"]["responses"][ref.rsplit("/", 1)[-1]] if ref else response
                assert "application/json" in target["content"], (method, path, code)


def schemathesis_bin():
    local = Path(sys.executable).parent / "schemathesis"
    return str(local) if local.exists() else shutil.which("schemathesis")


def run_schemathesis(server, *filters, examples=15):
    cmd = [schemathesis_bin(), "run", str(OPENAPI), "--url", server.base,
           "-H", f"Authorization: Bearer {server.admin_key}",
           "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                       "response_headers_conformance,response_schema_conformance",
           "--phases", "examples,coverage,fuzzing", "--max-examples", str(examples), "--seed", "7",
           "--workers", "2", "--no-color", "--suppress-health-check", "all", *filters]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-12000:]
    return output


@pytest.fixture(scope="module")
def roomy_server():
    s = Server(config={"limits": {"requests_per_minute": 10000000, "requests_per_hour": 100000000,
                                  "concurrent_sessions": 1000000},
                       "default_worker": {"node_id": "local", "url": "ws://127.0.0.1:8081", "capacity": 1000000}})
    yield s
    s.stop()


@pytest.mark.skipif(schemathesis_bin() is None, reason="schemathesis is not installed")
def test_schemathesis_everything_but_workers(roomy_server):
    # Registering a draining worker would make later session creation a (documented) 503, which
    # `not_a_server_error` counts as a failure: the worker routes run on a server of their own.
    run_schemathesis(roomy_server, "--exclude-path-regex", "/workers")


@pytest.mark.skipif(schemathesis_bin() is None, reason="schemathesis is not installed")
def test_schemathesis_workers(fresh_server):
    s = fresh_server(config={"limits": {"requests_per_minute": 10000000, "requests_per_hour": 100000000}})
    run_schemathesis(s, "--include-path-regex", "/workers")
