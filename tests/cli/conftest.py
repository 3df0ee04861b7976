"""Fixtures for the ``codon`` command-line tests: a fixed org namespace, no ledger URL set."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test (and each ``codon`` it starts) runs with ORG_NAMESPACE=cli-tests and without
    ``CODON_LEDGER_URL`` or a signing key from the environment."""
    monkeypatch.setenv("ORG_NAMESPACE", "cli-tests")
    for name in ("CODON_LEDGER_URL", "CODON_SIGNING_KEY", "CODON_ORGANIZATION_ID"):
        monkeypatch.delenv(name, raising=False)
