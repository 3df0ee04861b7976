"""Fixtures of the LangGraph adapter tests: an org namespace, ledger stores, an OpenAI server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk.stores import MemoryStore, SQLiteStore, open_store
from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings, echo_fallback


@pytest.fixture(autouse=True)
def org_namespace(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with ORG_NAMESPACE=test-org."""
    monkeypatch.setenv("ORG_NAMESPACE", "test-org")
    return "test-org"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A ledger in a temporary SQLite file."""
    opened = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert isinstance(opened, SQLiteStore)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def openai_server() -> Iterator[OpenAIProtocolServer]:
    """The local OpenAI-protocol server: bundled recordings, an echo for anything else."""
    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
        yield server
