"""Shared fixtures: an engine on a manual clock, its admin key, and keys made to measure."""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Tuple

import pytest

import astack

START_MS = 1_700_000_000_000
SECRET = "s" * 40


@pytest.fixture
def engine() -> Iterator[astack.Engine]:
    with astack.Engine({"signing_keys": [{"kid": "k1", "secret": SECRET}]}, manual_clock=START_MS) as engine:
        yield engine


@pytest.fixture
def admin(engine: astack.Engine) -> Tuple[str, str]:
    """The operator's admin key and its id."""
    key = engine.bootstrap_admin_key()
    assert key is not None
    return key, engine.authorize(key, "admin").key_id or ""


class Keys:
    """Makes keys with the admin key; returns (plaintext, key_id)."""

    def __init__(self, engine: astack.Engine, admin_id: str) -> None:
        self.engine = engine
        self.admin_id = admin_id

    def make(self, scopes: List[str], *, account_id: Optional[str] = None, **fields: Any) -> Tuple[str, str]:
        if account_id is not None:
            fields["account_id"] = account_id
        created = self.engine.create_key(self.admin_id, name="test", scopes=scopes, **fields)
        return created["key"], created["id"]


@pytest.fixture
def keys(engine: astack.Engine, admin: Tuple[str, str]) -> Keys:
    return Keys(engine, admin[1])
