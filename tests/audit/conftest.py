"""Fixtures of the audit suite: real stores with a notary, a real HTTP service, a tamper handle.

``ledger`` is parametrised over SQLite (a fresh file) and PostgreSQL (a fresh
schema of the session's throwaway database): each test gets an
:class:`AuditLedger` whose store signs a checkpoint every 5 events (and at the
end) and exports every signed note to a directory, as a deployment would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.ledger._note import Ed25519Signer
from codon_sdk.ledger._verify import VerificationReport
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._workload import CodonWorkload
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._notary import FileCheckpointSink, Notary
from codon_sdk.stores._open import open_store
from codon_sdk.stores._verify import verify_run

from ._tamper import Database
from ._workloads import QuoteService, build_v1

CHECKPOINT_EVERY = 5
LEDGER_NAME = "test/ledger"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient signing key, ledger URL or verifier keys leak into a test."""
    monkeypatch.setenv("ORG_NAMESPACE", "audit-tests")
    for name in (
        "CODON_SIGNING_KEY",
        "CODON_LEDGER_URL",
        "CODON_LEDGER_NAME",
        "CODON_VERIFIER_KEYS",
        "CODON_CHECKPOINT_DIR",
        "CODON_CHECKPOINT_EVERY",
        "CODON_ORGANIZATION_ID",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def quote_service() -> Iterator[QuoteService]:
    service = QuoteService()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate(LEDGER_NAME)


def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL of ``pg_url``'s database whose ``search_path`` is a new schema (dropped after)."""
    import psycopg

    name = f"audit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{pg_url}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@dataclass
class AuditLedger:
    """A ledger store with a notary, the directory its checkpoints are exported to, and the
    attacker's direct handle on its database."""

    kind: str
    url: str
    signer: Ed25519Signer
    sink_dir: Path
    store: LedgerStore
    db: Database
    service: QuoteService
    reports: dict[str, ExecutionReport] = field(default_factory=dict)

    @property
    def vkey(self) -> str:
        return self.signer.vkey

    def record(
        self,
        run_id: str,
        *,
        limit: int = 4,
        workload: CodonWorkload | None = None,
        **options: Any,
    ) -> ExecutionReport:
        """Record one run of ``workload`` (v1 by default) looping ``limit`` times."""
        wl = workload or build_v1()
        report = wl.execute(
            {"topic": run_id, "limit": limit},
            deployment_id="audit",
            store=self.store,
            run_id=run_id,
            quote_url=self.service.url,
            **options,
        )
        self.reports[run_id] = report
        return report

    def exported(self, run_id: str) -> list[Path]:
        """The checkpoint notes the sink exported for ``run_id``, by size."""
        folder = self.sink_dir / (run_id or "runs")
        return sorted(folder.glob("*.note"), key=lambda p: int(p.stem))

    def final_note(self, run_id: str) -> Path:
        return self.exported(run_id)[-1]

    def verify(self, run_id: str, *, anchored: bool = True, **kwargs: Any) -> VerificationReport:
        """``verify_run`` as an auditor would call it: trusted key, exported final checkpoint."""
        kwargs.setdefault("vkeys", [self.vkey])
        if anchored:
            kwargs.setdefault("checkpoints", [self.final_note(run_id)])
        return verify_run(self.store, run_id, **kwargs)


def make_ledger(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    signer: Ed25519Signer,
    service: QuoteService,
    *,
    every: int = CHECKPOINT_EVERY,
) -> Iterator[AuditLedger]:
    sink_dir = tmp_path / "exported-checkpoints"
    notary = Notary(signer=signer, every=every, sinks=(FileCheckpointSink(sink_dir),))
    if kind == "sqlite":
        path = tmp_path / "ledger.db"
        url = f"sqlite:///{path}"
        target: Any = path
        urls: Iterator[str] = iter([url])
    else:
        urls = pg_schema_url(request.getfixturevalue("pg_url"))
        url = next(urls)
        target = url
    store = open_store(url, notary=notary)
    db = Database(kind, target)
    try:
        yield AuditLedger(kind, url, signer, sink_dir, store, db, service)
    finally:
        db.close()
        store.close()
        for _ in urls:  # drops the PostgreSQL schema
            pass


@pytest.fixture(params=BACKENDS)
def ledger(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    signer: Ed25519Signer,
    quote_service: QuoteService,
) -> Iterator[AuditLedger]:
    """A fresh SQLite file or PostgreSQL schema, with a notary (every 5 events) and a sink."""
    yield from make_ledger(request.param, request, tmp_path, signer, quote_service)


@pytest.fixture
def sqlite_ledger(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    signer: Ed25519Signer,
    quote_service: QuoteService,
) -> Iterator[AuditLedger]:
    """The SQLite ledger alone, for tests of behaviour that does not depend on the backend."""
    yield from make_ledger("sqlite", request, tmp_path, signer, quote_service)


@pytest.fixture(params=BACKENDS)
def end_only_ledger(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    signer: Ed25519Signer,
    quote_service: QuoteService,
) -> Iterator[AuditLedger]:
    """A ledger whose notary signs only when a run pauses or ends (``every=0``)."""
    yield from make_ledger(request.param, request, tmp_path, signer, quote_service, every=0)
