"""The conformance suite's fixtures: ``store`` on every backend, ``sql_store`` on SQLite and
PostgreSQL (a fresh file or schema each), shared by every ``test_conformance*`` module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk.stores._base import LedgerStore

from .test_conformance import BACKENDS, SQL_BACKENDS, open_backend


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    with open_backend(request.param, request, tmp_path) as s:
        yield s


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    with open_backend(request.param, request, tmp_path) as s:
        yield s
