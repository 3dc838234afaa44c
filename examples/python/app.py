"""An app on FastAPI guarded by astack's ASGI middleware.

    pip install ./bindings/python fastapi uvicorn
    uvicorn --app-dir examples/python app:app

Every /api/v1 route is decided by the middleware (SPEC §3 route table): a missing or bad key, a
missing scope or an empty rate-limit window is answered with the SPEC JSON error and the
rate-limit headers before the handler runs. Handlers read the caller from the ASGI scope
(`astack.key_id`, `astack.account_id`) and call the engine's cold paths with it. The records
are TypedDicts, returned as plain dicts (pydantic cannot model typing.TypedDict before 3.12).

ASTACK_ADMIN_KEY installs a known admin key; otherwise one is generated and printed once.
"""

from __future__ import annotations

import os
from typing import Any, Dict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import astack
from astack.asgi import AuthMiddleware

engine = astack.Engine(
    {"signing_keys": [{"kid": "default", "secret": os.environ.get("ASTACK_SIGNING_SECRET", "change me: " + "x" * 32)}]}
)
if os.environ.get("ASTACK_ADMIN_KEY"):
    engine.bootstrap_admin_key(os.environ["ASTACK_ADMIN_KEY"])
else:
    print(f"admin key (shown once): {engine.bootstrap_admin_key()}", flush=True)

app = FastAPI(title="astack example")
app.add_middleware(AuthMiddleware, engine=engine)


@app.exception_handler(astack.AstackError)
async def astack_error(request: Request, error: astack.AstackError) -> JSONResponse:
    """Errors of the cold paths, as SPEC §9 JSON."""
    return JSONResponse(error.to_json(), status_code=error.status)


def caller(request: Request) -> str:
    key_id: str = request.scope["astack.key_id"]
    return key_id


async def document(request: Request) -> Dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise astack.InvalidRequest("the body is not JSON", details={"field": "body"}) from None
    if not isinstance(body, dict):
        raise astack.InvalidRequest("the body must be a JSON object", details={"field": "body"})
    return body


@app.get("/healthz")
def healthz() -> Dict[str, Any]:
    return {"status": "ok", "version": astack.__version__}


@app.post("/api/v1/keys", status_code=201)
async def create_key(request: Request) -> Dict[str, Any]:
    body = await document(request)
    allowed = {"name", "scopes", "permissions", "limits", "expires_at", "account_id"}
    for field in body:
        if field not in allowed:
            raise astack.InvalidRequest(f"unknown field `{field}`", details={"field": field})
    return dict(engine.create_key(caller(request), **body))


@app.post("/api/v1/sessions", status_code=201)
async def create_session(request: Request) -> Dict[str, Any]:
    body = await document(request)
    allowed = {"end_user_id", "connection_type", "quality", "features", "metadata"}
    for field in body:
        if field not in allowed:
            raise astack.InvalidRequest(f"unknown field `{field}`", details={"field": field})
    end_user_id = body.pop("end_user_id", "")
    return dict(engine.create_session(caller(request), end_user_id, **body))


@app.get("/api/v1/sessions/{session_id}")
def get_session(session_id: str, request: Request) -> Dict[str, Any]:
    return dict(engine.get_session(caller(request), session_id))


@app.delete("/api/v1/sessions/{session_id}")
def terminate_session(session_id: str, request: Request) -> Dict[str, Any]:
    return dict(engine.terminate_session(caller(request), session_id))


@app.get("/api/v1/sessions")
def list_sessions(request: Request, limit: int = 50) -> Dict[str, Any]:
    return {"data": engine.list_sessions(caller(request), limit)}
