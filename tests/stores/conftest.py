"""The SQL backends' fixture ``sql_store`` (a fresh SQLite file or PostgreSQL schema each), for
the checks only they make; every backend's conformance suite is ``test_conformance.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk.stores._base import LedgerStore

from .test_conformance import SQL_BACKENDS, open_backend


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    with open_backend(request.param, request, tmp_path) as s:
        yield s
