"""The package ships its types: py.typed, stubs of the extension, and mypy --strict is clean on
the package and on typical user code."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = '''
import astack

def run() -> None:
    with astack.Engine({"limits": {"requests_per_minute": 10}}, manual_clock=0) as engine:
        admin = engine.bootstrap_admin_key()
        assert admin is not None
        decision: astack.Decision = engine.authorize(admin, "admin")
        key_id: str | None = decision.key_id
        assert key_id is not None
        created: astack.CreatedKey = engine.create_key(key_id, name="app", scopes=["sessions:write"])
        session: astack.CreatedSession = engine.create_session(key_id, "user-1", features=["vision"])
        token: str = session["session_token"]
        claims: astack.TokenClaims = engine.verify_token(token, audience=session["node_id"])
        exp: int = claims["exp"]
        headers: dict[str, str] = decision.headers()
        try:
            engine.authorize(created["key"], "admin")
        except astack.RateLimited as error:
            seconds: int = error.retry_after
        except astack.AstackError as error:
            status: int = error.status
'''


def test_py_typed_and_stubs_are_installed() -> None:
    files = importlib.resources.files("astack")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_native.pyi").is_file()


def test_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    user = tmp_path / "user_code.py"
    user.write_text(USER_CODE)
    for target in (["-p", "astack"], [str(user)]):
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *target],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout + result.stderr
