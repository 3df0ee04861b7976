"""Ledger material for store tests: realistic hash-chained entries, run rows, and the like.

What :class:`~codon_sdk.testing.StoreConformance` builds its checks from, usable in a
backend's own tests too: :func:`ledger` makes ``n`` entries of one run the way the
runtime writes them (canonical JSON, hash-chained, every character U+0000..U+00FF
inside), :func:`info` a :class:`~codon_sdk.stores.RunInfo` held by ``"owner-a"``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

from codon_sdk._clock import now_us
from codon_sdk.ledger import leaf_hash
from codon_sdk.runtime import Recorder
from codon_sdk.stores import Entry, EntryBatch, LedgerStore, RunInfo

__all__ = [
    "EVERY_BYTE",
    "EVERY_CHAR",
    "T0",
    "batch_of",
    "begun",
    "blobs",
    "info",
    "ledger",
    "now_us",
    "raw",
]

T0: Final = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
EVERY_CHAR: Final = "".join(map(chr, range(256)))  # U+0000..U+00FF inside JSON strings
EVERY_BYTE: Final = bytes(range(256))


def ledger(run_id: str, n: int, *, payload: Any = None) -> list[Entry]:
    """``n`` realistic entries of one run (canonical JSON, hash-chained), seqs 0..n-1."""
    rec = Recorder(run_id)
    rec.append("run_started", T0, metadata={"workload": "conformance", "chars": EVERY_CHAR})
    for i in range(1, n):
        body = {"i": i, "text": EVERY_CHAR} if payload is None else payload
        rec.append("node_completed", T0 + i, node="worker", token_id=f"tok-{i}", payload=body)
    return [(seq, entry, leaf_hash(entry)) for seq, entry in enumerate(rec.entries())]


def raw(seq: int, data: bytes) -> Entry:
    """An opaque entry (stores never parse entries)."""
    return (seq, data, leaf_hash(data))


def info(
    run_id: str | None = None,
    *,
    owner: str | None = "owner-a",
    started_us: int = T0,
    status: str = "running",
    workload_name: str = "wl",
    logic_id: str = "a" * 64,
    deployment_id: str = "d" * 64,
    **fields: Any,
) -> RunInfo:
    return RunInfo(
        run_id=run_id or f"run-{uuid.uuid4().hex[:12]}",
        workload_name=workload_name,
        workload_version="1.0.0",
        logic_id=logic_id,
        deployment_id=deployment_id,
        status=status,
        started_us=started_us,
        owner=owner,
        heartbeat_us=now_us(),
        **fields,
    )


def blobs(entries: Sequence[Entry]) -> list[bytes]:
    return [e for _, e, _ in entries]


def begun(store: LedgerStore, entries: Sequence[Entry] = (), **fields: Any) -> RunInfo:
    run = info(**fields)
    store.begin_run(run, list(entries))
    return run


def batch_of(entries: list[Entry]) -> EntryBatch:
    """``entries`` the way the runtime's writer hands them over (behind their 0x00 byte)."""
    return EntryBatch(entries[0][0], [b"\x00" + e for _, e, _ in entries], [h for *_, h in entries])
