"""ExecutionReport: a run as read back from its ledger.

Everything here is derived from the run's ledger entries (the single source of
truth), lazily and once: the audit view, the per-node results, timings. Only
result objects produced in this process are kept live, so callers get back the
very objects their nodes returned; results of a resumed run's earlier part are
decoded from the ledger.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from codon_sdk._text import printable
from codon_sdk.identity._canonical import canonical_bytes, revive
from codon_sdk.ledger._chain import ChainCheck, check_chain
from codon_sdk.ledger._events import (
    EFFECT_RECORDED,
    NODE_COMPLETED,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
    LedgerEvent,
    parse_entry,
)
from codon_sdk.ledger._verify import VerificationReport
from codon_sdk.runtime._records import AuditEvent, NodeExecutionRecord, from_us

__all__ = ["ExecutionReport", "LedgerView", "usage_from"]

_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")


def _empty_usage() -> dict[str, Any]:
    return {"calls": 0, **dict.fromkeys(_TOKEN_FIELDS, 0), "cost_usd": None, "cost_complete": True}


def _add_usage(bucket: dict[str, Any], llm: dict[str, Any]) -> None:
    bucket["calls"] += 1
    usage = llm.get("usage") or {}
    for name in _TOKEN_FIELDS:
        bucket[name] += int(usage.get(name) or 0)
    cost = llm.get("cost_usd")
    if cost is None:
        bucket["cost_complete"] = False
    else:
        bucket["cost_usd"] = (bucket["cost_usd"] or 0.0) + float(cost)


def usage_from(events: Iterator[LedgerEvent]) -> dict[str, Any]:
    """Aggregate the ``llm`` metadata of recorded effects per run, node and model."""
    total = _empty_usage()
    by_node: dict[str, dict[str, Any]] = {}
    by_model: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.type != EFFECT_RECORDED or ev.metadata.get("forked"):
            continue
        llm = ev.metadata.get("llm")
        if not isinstance(llm, dict):
            continue
        model = str(llm.get("response_model") or llm.get("request_model") or "unknown")
        for bucket in (
            total,
            by_node.setdefault(ev.node or "", _empty_usage()),
            by_model.setdefault(model, _empty_usage()),
        ):
            _add_usage(bucket, llm)
    return {"total": total, "by_node": by_node, "by_model": by_model}


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(canonical_bytes(value))
    return out


class LedgerView(Sequence[bytes]):
    """Read access to a run's verbatim entries (the recorder's buffer, or a list from a store)."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        src = self._source
        return src.entry(index) if hasattr(src, "entry") else src[index]

    def __iter__(self) -> Iterator[bytes]:
        src = self._source
        return src.entries() if hasattr(src, "entries") else iter(src)


class ExecutionReport:
    """The outcome of a run: results per node, the audit ledger, status, state and timings."""

    def __init__(
        self,
        *,
        run_id: str,
        context: dict[str, Any],
        status: str,
        entries: Any,
        state: dict[Any, Any],
        started_us: int,
        finished_us: int,
        live_results: Sequence[Any] = (),
        live_offset: int = 0,
        reason: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.context = context
        self.status = status
        self.reason = reason
        self.state = state
        self._entries = LedgerView(entries)
        self._started_us = started_us
        self._finished_us = finished_us
        self._live = live_results
        self._live_offset = live_offset
        self._results: dict[str, list[NodeExecutionRecord]] | None = None
        self._ledger: list[AuditEvent] | None = None
        self._usage: dict[str, Any] | None = None
        #: How the run verified when the report was read from a store (None: made in this
        #: process). A report forced out of a run that does not verify says why here.
        self.verification: VerificationReport | None = None

    # ------------------------------------------------------------------ identity & timing

    @property
    def logic_id(self) -> str | None:
        return self.context.get("logic_id")

    @property
    def deployment_id(self) -> str | None:
        return self.context.get("deployment_id")

    @property
    def started_at(self) -> datetime:
        return from_us(self._started_us)

    @property
    def finished_at(self) -> datetime:
        return from_us(self._finished_us)

    @property
    def duration_ms(self) -> float:
        return (self._finished_us - self._started_us) / 1000.0

    # ------------------------------------------------------------------ the ledger

    @property
    def entries(self) -> LedgerView:
        """The run's verbatim ledger entries (canonical bytes), in seq order."""
        return self._entries

    @property
    def event_count(self) -> int:
        return len(self._entries)

    @property
    def head_hash(self) -> str | None:
        """Hex leaf hash of the last event: the head of the hash chain."""
        if not len(self._entries):
            return None
        return parse_entry(self._entries[-1]).leaf.hex()

    def events(self) -> Iterator[LedgerEvent]:
        """The ledger entries parsed into :class:`LedgerEvent` records, in order."""
        for entry in self._entries:
            yield parse_entry(entry)

    def check_chain(self) -> ChainCheck:
        """Re-check the run's hash chain from its verbatim entries."""
        return check_chain(self._entries, run_id=self.run_id, require_end=self.finished)

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "stopped", "failed")

    @property
    def ledger(self) -> list[AuditEvent]:
        """The audit ledger as :class:`AuditEvent` records (API view), in order."""
        if self._ledger is None:
            self._ledger = self._build_ledger()
        return self._ledger

    @property
    def results(self) -> dict[str, list[NodeExecutionRecord]]:
        """Completed activations per node, in completion order."""
        if self._results is None:
            self._results = self._build_results()
        return self._results

    @property
    def usage(self) -> dict[str, Any]:
        """LLM token usage and cost: ``total``, ``by_node`` and ``by_model``.

        Derived from the ``llm`` metadata that instrumented calls record with their
        effects, so a resumed or replayed run counts every call exactly once.
        ``cost_usd`` is None when no call had a known price; ``cost_complete`` is
        False when some call's model had no price (its cost is never guessed).
        """
        if self._usage is None:
            self._usage = usage_from(self.events())
        return self._usage

    def node_results(self, node: str) -> list[Any]:
        """The values node ``node`` returned, in order."""
        return [r.result for r in self.results.get(node, ())]

    # ------------------------------------------------------------------ rendering

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: ids, status, timings, per-node results and the ledger events.

        Values JSON cannot express (datetimes, tuples, dataclasses...) appear in
        their documented tagged encoding, exactly as the ledger records them.
        """
        return _jsonable(
            {
                "run_id": self.run_id,
                "status": self.status,
                "reason": self.reason,
                "logic_id": self.logic_id,
                "deployment_id": self.deployment_id,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "event_count": self.event_count,
                "head_hash": self.head_hash,
                "context": self.context,
                "state": self.state,
                "usage": self.usage,
                "results": {
                    node: [
                        {
                            "token_id": r.token_id,
                            "result": r.result,
                            "started_at": r.started_at.isoformat(),
                            "finished_at": r.finished_at.isoformat(),
                        }
                        for r in records
                    ]
                    for node, records in self.results.items()
                },
                "events": [orjson.loads(e) for e in self._entries],
            }
        )

    def summary(self) -> str:
        """A short human-readable account of the run (ledger strings shown escaped)."""
        reason = f" ({printable(self.reason)})" if self.reason else ""
        lines = [
            f"run {printable(self.run_id)}: {printable(self.status)}{reason} "
            f"in {self.duration_ms:.1f} ms",
            f"  logic id    {printable(self.logic_id)}",
            f"  deployment  {printable(self.deployment_id)}",
            f"  events      {self.event_count}   head {self.head_hash}",
            "  nodes:",
        ]
        for node, records in self.results.items():
            total = sum(r.duration_ms for r in records)
            lines.append(
                f"    {printable(node):<20} {len(records):>5} activation(s)  {total:>9.2f} ms"
            )
        counts = Counter(printable(e.event_type) for e in self.ledger)
        lines.append(
            "  events by type: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"ExecutionReport(run_id={self.run_id!r}, status={self.status!r}, "
            f"events={self.event_count})"
        )

    # ------------------------------------------------------------------ derivations

    def _build_ledger(self) -> list[AuditEvent]:
        origins: dict[str, str | None] = {}
        out: list[AuditEvent] = []
        completed = 0
        for ev in self.events():
            md = dict(ev.metadata)
            source, target = ev.node, ev.target
            if ev.type == TOKEN_ENQUEUED:
                if ev.token_id is not None:
                    origins[ev.token_id] = ev.node
                md["payload_repr"] = repr(revive(ev.payload))
            elif ev.type == TOKEN_DEQUEUED:
                source = origins.get(ev.token_id or "")
                target = ev.node
            elif ev.type == NODE_COMPLETED:
                md["result_repr"] = repr(self._result_at(completed, ev))
                completed += 1
            out.append(
                AuditEvent(
                    event_type=ev.type,
                    timestamp=from_us(ev.ts),
                    token_id=ev.token_id,
                    source_node=source,
                    target_node=target,
                    metadata=md,
                    seq=ev.seq,
                    actor=ev.actor,
                )
            )
        return out

    def _build_results(self) -> dict[str, list[NodeExecutionRecord]]:
        started: dict[str, int] = {}
        results: dict[str, list[NodeExecutionRecord]] = {}
        completed = 0
        for ev in self.events():
            if ev.type == TOKEN_DEQUEUED and ev.token_id is not None:
                started[ev.token_id] = ev.ts
            elif ev.type == NODE_COMPLETED and ev.node is not None:
                record = NodeExecutionRecord(
                    node=ev.node,
                    token_id=ev.token_id or "",
                    result=self._result_at(completed, ev),
                    started_at=from_us(started.get(ev.token_id or "", ev.ts)),
                    finished_at=from_us(ev.ts),
                )
                results.setdefault(ev.node, []).append(record)
                completed += 1
        return results

    def _result_at(self, index: int, ev: LedgerEvent) -> Any:
        live = index - self._live_offset
        if 0 <= live < len(self._live):
            return self._live[live]
        return ev.value()
