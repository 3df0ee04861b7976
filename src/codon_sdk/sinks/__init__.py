"""Audit sinks: every committed ledger entry, shipped elsewhere as it is written.

- :class:`AuditSink`: the seam (one abstract method, ``deliver``, and a cursor per
  run). Pass one to ``execute``/``resume`` (``audit_sink=sink`` or a URL) or set it once
  on the workload (``workload.audit_sink = sink``). It receives every entry after its
  store commit, at least once and in order per run, keyed by the entry's leaf hash
  (:class:`AuditEntry`). The ledger store stays the source of truth: a sink that is slow
  or down costs a run nothing beyond a bounded buffer and is caught up from the store.
- :class:`NatsSink` (extra ``nats``): NATS JetStream, one subject per run, the leaf hash
  as ``Nats-Msg-Id`` so the server deduplicates.
- :func:`open_sink`: a sink from a URL (``nats://127.0.0.1:4222?stream=CODON_AUDIT``).
- :func:`catch_up`: deliver from the store what a sink's cursor says it lacks.
- :func:`check_stream` / :class:`StreamCheck`: the consumer-side check that a stream
  holds each run complete and in chain order (the ledger's chain check, per run).
- :class:`~codon_sdk.testing.AuditSinkConformance` checks a sink of your own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from codon_sdk.sinks._base import DEFAULT_MAX_BUFFER, AuditSink
from codon_sdk.sinks._check import RunStreamCheck, StreamCheck, check_messages
from codon_sdk.sinks._entry import AuditEntry
from codon_sdk.sinks._nats import NatsSink, StreamMessage
from codon_sdk.sinks._open import catch_up, open_sink, run_sink
from codon_sdk.sinks._relay import AuditFeed

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores import LedgerStore

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "AuditEntry",
    "AuditFeed",
    "AuditSink",
    "NatsSink",
    "RunStreamCheck",
    "StreamCheck",
    "StreamMessage",
    "catch_up",
    "check_messages",
    "check_stream",
    "open_sink",
    "run_sink",
]


def check_stream(
    sink: str | NatsSink,
    run_ids: Sequence[str] | None = None,
    *,
    store: LedgerStore | None = None,
) -> StreamCheck:
    """Read a NATS audit stream back and check each run (of ``run_ids``, else every run it
    holds) is complete and in chain order, and, with ``store``, matches the ledger."""
    opened = open_sink(sink) if isinstance(sink, str) else sink
    if not isinstance(opened, NatsSink):
        raise TypeError(f"check_stream reads a NatsSink's stream, got {type(opened).__name__}")
    try:
        if run_ids is None:
            messages = list(opened.messages())
        else:
            messages = [m for run_id in run_ids for m in opened.messages(run_id)]
        return check_messages(messages, run_ids=run_ids, store=store)
    finally:
        if opened is not sink:
            opened.close()
