"""ExecutionReport: a run as read back from its ledger.

Everything here is derived from the run's ledger entries (the single source of
truth), lazily and once: the audit view, the per-node results, timings. Only
result objects produced in this process are kept live, so callers get back the
very objects their nodes returned; results of a resumed run's earlier part are
decoded from the ledger.

A report made in this process reads what the run already holds instead of
decoding its ledger: the recorder's :class:`~codon_sdk.runtime._recorder.Completions`
(where each completed activation sits in the ledger) and the entry bytes it wrote
(canonical by construction: the type and timestamp of an entry are read off its
bytes). ``report.ledger`` is an :class:`AuditLedger`: its length costs nothing, and
an index or slice decodes only the entries it touches, each at most once. Entries
that came from elsewhere (a store) are decoded, and validated, once each.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import compress
from typing import Any, Final

import orjson

from codon_sdk._clock import from_us, to_us
from codon_sdk._text import printable
from codon_sdk.errors import LedgerError
from codon_sdk.governance import governance_of
from codon_sdk.identity import canonical_bytes, revive
from codon_sdk.ledger import (
    BUDGET_EXCEEDED,
    POLICY_DECIDED,
    RATE_LIMIT_WAITED,
    TERMINAL_STATUSES,
    ChainCheck,
    LedgerEvent,
    ReportRole,
    VerificationReport,
    check_chain,
    event_type,
    parse_entry,
    types_with,
)
from codon_sdk.runtime._blobs import resolved
from codon_sdk.runtime._completions import Completions
from codon_sdk.runtime._recorder import Recorder
from codon_sdk.runtime._records import AuditEvent, NodeExecutionRecord
from codon_sdk.stores import BlobStore, PagedEntries

# What the report singles out, by the report role of each event type (see ``_event_types``).
_EMITS: Final = types_with(ReportRole.EMIT)
_TAKES: Final = types_with(ReportRole.TAKE)
_RESULTS: Final = types_with(ReportRole.RESULT)
_USAGE: Final = types_with(ReportRole.USAGE)
_WAITS: Final = types_with(ReportRole.WAIT)
_GOVERNANCE_TYPES: Final = (POLICY_DECIDED, BUDGET_EXCEEDED, RATE_LIMIT_WAITED)
_WAIT_NEEDLES: Final = tuple(b'"type":"%s"' % name.encode() for name in sorted(_WAITS))

__all__ = ["AuditLedger", "ExecutionReport", "LedgerView", "usage_from"]

_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
)


def _empty_usage() -> dict[str, Any]:
    return {
        "calls": 0,
        **dict.fromkeys(_TOKEN_FIELDS, 0),
        "cost_usd": None,
        "cost_complete": True,
        "cache_hits": 0,
        "cache_misses": 0,
    }


def _add_usage(bucket: dict[str, Any], llm: dict[str, Any], miss: bool) -> None:
    bucket["calls"] += 1
    if llm.get("cached"):  # served from the request cache: no token or cost was spent
        bucket["cache_hits"] += 1
        return
    if miss:
        bucket["cache_misses"] += 1
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
        if ev.type not in _USAGE or ev.metadata.get("forked"):
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
            _add_usage(bucket, llm, ev.metadata.get("request_cache") == "miss")
    return {"total": total, "by_node": by_node, "by_model": by_model}


def _us(record: NodeExecutionRecord) -> int:
    """An activation's duration in whole microseconds (as the ledger's timestamps are), so
    totals add exactly, the same from live records as from the ledger."""
    return to_us(record.finished_at) - to_us(record.started_at)


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


class AuditLedger(Sequence[AuditEvent]):
    """``report.ledger``: the run's events as :class:`AuditEvent` records, decoded lazily.

    ``len`` decodes nothing; an index or a slice decodes the entries it touches (and,
    for a ``token_dequeued``, the ``token_enqueued`` that named its source), each at
    most once. An entry that cannot be decoded raises :class:`LedgerError` naming it,
    never a half-decoded event.
    """

    def __init__(self, report: ExecutionReport) -> None:
        self._report = report
        self._cache: dict[int, AuditEvent] = {}
        self._origins: dict[str, str | None] = {}  # token id -> node that emitted it
        self._scanned = 0  # the forward scan has built every event below this seq
        self._completed = 0  # node_completed events below _scanned

    def __len__(self) -> int:
        return len(self._report.entries)

    def __getitem__(self, index: Any) -> Any:
        size = len(self)
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(size))]
        if not isinstance(index, int):
            raise TypeError(f"ledger indices must be integers or slices, not {type(index)}")
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(index)
        return self._at(index)

    def __iter__(self) -> Iterator[AuditEvent]:
        if isinstance(self._report.entries._source, PagedEntries):
            yield from self._stream()
            return
        for seq in range(len(self)):
            yield self._at(seq)

    def _stream(self) -> Iterator[AuditEvent]:
        """A run read from a store page by page: every event built as the pages go and none
        kept (each pass decodes again), so iterating a million-event ledger holds one page.
        A token's origin is dropped once it is taken; a token taken again (after a resume)
        finds its origin by the backward search :meth:`_origin` makes."""
        report = self._report
        origins: dict[str, str | None] = {}
        completed = 0
        for seq in range(len(self)):
            ev = report._event_at(seq)
            origin, done = None, None
            if ev.type in _RESULTS:
                done, completed = completed, completed + 1
            if ev.type in _EMITS and ev.token_id is not None:
                origins[ev.token_id] = ev.node
            elif ev.type in _TAKES and ev.token_id is not None:
                origin = origins.pop(ev.token_id, None)
                if origin is None:
                    origin = self._emitter(ev.token_id, seq)
            yield self._audit(ev, origin, done)

    def _emitter(self, token: str, seq: int) -> str | None:
        """The node that emitted ``token``, searched backwards from ``seq``."""
        report = self._report
        for j in range(seq - 1, -1, -1):
            found = report._event_at(j)
            if found.type in _EMITS and found.token_id == token:
                return found.node
        return None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (AuditLedger, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AuditLedger({len(self)} events of run {self._report.run_id!r})"

    # ------------------------------------------------------------------ decoding

    def _at(self, seq: int) -> AuditEvent:
        event = self._cache.get(seq)
        if event is not None:
            return event
        report = self._report
        if report._completions() is None:
            return self._scan_to(seq)
        ev = report._event_at(seq)
        completed = None
        if ev.type in _RESULTS:
            completed = bisect_left(report._completions_done(), seq)
        event = self._cache[seq] = self._audit(ev, self._origin(ev, seq), completed)
        return event

    def _origin(self, ev: LedgerEvent, seq: int) -> str | None:
        """The node that emitted the token a ``token_dequeued`` takes (searched backwards)."""
        if ev.type not in _TAKES or ev.token_id is None:
            return None
        token = ev.token_id
        if token in self._origins:
            return self._origins[token]
        types = self._report._types()
        for j in range(seq - 1, -1, -1):
            if types[j] in _EMITS:
                found = self._at(j)
                if found.token_id is not None:
                    self._origins.setdefault(found.token_id, found.source_node)
                if found.token_id == token:
                    return found.source_node
        return None

    def _scan_to(self, seq: int) -> AuditEvent:
        """Entries from elsewhere: decode forward up to ``seq`` (what a source and a result
        depend on comes before), keeping every event built."""
        report = self._report
        while self._scanned <= seq:
            at = self._scanned
            ev = report._event_at(at)
            completed = None
            if ev.type in _RESULTS:
                completed = self._completed
                self._completed += 1
            origin = None
            if ev.type in _EMITS and ev.token_id is not None:
                self._origins[ev.token_id] = ev.node
            elif ev.type in _TAKES:
                origin = self._origins.get(ev.token_id or "")
            self._cache.setdefault(at, self._audit(ev, origin, completed))
            self._scanned = at + 1
        return self._cache[seq]

    def _audit(self, ev: LedgerEvent, origin: str | None, completed: int | None) -> AuditEvent:
        md = dict(ev.metadata)
        source, target = ev.node, ev.target
        match event_type(ev.type).report:
            case ReportRole.EMIT:
                md["payload_repr"] = repr(revive(ev.payload))
            case ReportRole.TAKE:
                source, target = origin, ev.node
            case ReportRole.RESULT if completed is not None:
                md["result_repr"] = repr(self._report._result_at(completed, ev))
            case ReportRole.RESULT | ReportRole.USAGE | ReportRole.WAIT | ReportRole.PLAIN:
                pass  # shown as recorded
        return AuditEvent(
            event_type=ev.type,
            timestamp=from_us(ev.ts),
            token_id=ev.token_id,
            source_node=source,
            target_node=target,
            metadata=md,
            seq=ev.seq,
            actor=ev.actor,
        )


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
        self._ledger: AuditLedger | None = None
        self._usage: dict[str, Any] | None = None
        self._entry_types: list[str] | None = None
        self._waiting_us: int | None = None
        self._tallied: tuple[list[tuple[str, int, float]], dict[str, int]] | None = None
        #: How the run verified when the report was read from a store (None: made in this
        #: process). A report forced out of a run that does not verify says why here.
        self.verification: VerificationReport | None = None
        self.blobs: BlobStore | None = None  # where a report read from a store finds blobs

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
        """Wall time from the run's start to this report, pauses and crashes included."""
        return (self._finished_us - self._started_us) / 1000.0

    @property
    def waiting_ms(self) -> float:
        """Time the run spent not running: from the last event before each ``run_resumed``
        (a pause for a human, or the last event a crashed process wrote) to the resume."""
        if self._waiting_us is None:
            self._waiting_us = self._waiting()
        return self._waiting_us / 1000.0

    @property
    def active_ms(self) -> float:
        """:attr:`duration_ms` without :attr:`waiting_ms`: the time the run was running."""
        return max(0.0, self.duration_ms - self.waiting_ms)

    def _waiting(self) -> int:
        counts = self._type_counts()  # known without decoding: no resume, no wait
        if not any(counts.get(name) for name in _WAITS):
            return 0
        total = 0
        found = [  # one pass, a C-speed substring test per entry, then parse the few
            seq
            for seq, entry in enumerate(self._entries)
            if seq and any(needle in entry for needle in _WAIT_NEEDLES)
        ]
        for seq in found:
            resumed = self._event_at(seq)
            if resumed.type in _WAITS:
                total += max(0, resumed.ts - self._event_at(seq - 1).ts)
        return total

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
        source = self._entries._source
        if isinstance(source, Recorder):
            return source.head_hex
        if not len(self._entries):
            return None
        return self._event_at(len(self._entries) - 1).leaf.hex()

    def events(self) -> Iterator[LedgerEvent]:
        """The ledger entries parsed into :class:`LedgerEvent` records, in order."""
        for seq in range(len(self._entries)):
            yield self._event_at(seq)

    def check_chain(self) -> ChainCheck:
        """Re-check the run's hash chain from its verbatim entries."""
        return check_chain(self._entries, run_id=self.run_id, require_end=self.finished)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def ledger(self) -> AuditLedger:
        """The audit ledger as :class:`AuditEvent` records (API view), in order: a lazy
        sequence (see :class:`AuditLedger`) that compares equal to the list of its events."""
        if self._ledger is None:
            self._ledger = AuditLedger(self)
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
            if self._completions() is None:
                self._usage = usage_from(self.events())
            else:  # only the effects can carry usage: decode those alone
                effects = [i for i, t in enumerate(self._types()) if t in _USAGE]
                self._usage = usage_from(self._event_at(i) for i in effects)
        return self._usage

    def node_results(self, node: str) -> list[Any]:
        """The values node ``node`` returned, in order."""
        done = self._completions()
        if done is None or self._results is not None:
            return [r.result for r in self.results.get(node, ())]
        ix = done.ix.get(node)
        if ix is None:
            return []
        return [r for r, n in zip(self._live, done.nodes, strict=True) if n == ix]

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
            f"in {self.duration_ms:.1f} ms"
            + (
                f" (active {self.active_ms:.1f} ms, waiting {self.waiting_ms:.1f} ms)"
                if self.waiting_ms
                else ""
            ),
            f"  logic id    {printable(self.logic_id)}",
            f"  deployment  {printable(self.deployment_id)}",
            f"  events      {self.event_count}   head {self.head_hash}",
            "  nodes:",
        ]
        for node, count, total in self._node_totals():
            lines.append(f"    {printable(node):<20} {count:>5} activation(s)  {total:>9.2f} ms")
        counts: Counter[str] = Counter()
        for name, n in self._type_counts().items():
            counts[printable(name)] += n
        lines.append(
            "  events by type: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        )
        if any(counts.get(kind) for kind in _GOVERNANCE_TYPES):  # a governed run that acted
            lines.append(self._governance_line())
        return "\n".join(lines)

    def _governance_line(self) -> str:
        done = governance_of(self)
        parts = [
            f"{len(done.decisions)} policy decision(s)",
            f"{len(done.budget_stops)} budget stop(s)",
            f"{len(done.waits)} rate-limit wait(s) totalling {done.waited_s:.3f} s",
        ]
        return "  governance: " + ", ".join(parts)

    def __repr__(self) -> str:
        return (
            f"ExecutionReport(run_id={self.run_id!r}, status={self.status!r}, "
            f"events={self.event_count})"
        )

    # ------------------------------------------------------------------ derivations

    def _completions(self) -> Completions | None:
        """The recorder's index of this process's completions, when it covers the whole run
        (a run made here, not resumed from a store) and agrees with the live results."""
        source = self._entries._source
        if not isinstance(source, Recorder) or self._live_offset:
            return None
        done = source.completions
        if done is None or len(done.done) != len(self._live):
            return None
        return done

    def _completions_done(self) -> Sequence[int]:
        done = self._completions()
        return () if done is None else done.done

    def _types(self) -> list[str]:
        """Every entry's type, in order: read off the recorder's bytes, else decoded."""
        if self._entry_types is None:
            source = self._entries._source
            types: list[str] | None = None
            if isinstance(source, Recorder) and self._completions() is not None:
                types = source.entry_types()
                if len(types) != len(self._entries):
                    types = None
            if types is None:
                types = [ev.type for ev in self.events()]
            self._entry_types = types
        return self._entry_types

    def _event_at(self, seq: int) -> LedgerEvent:
        """Entry ``seq`` parsed (and validated); a bad entry raises LedgerError naming it."""
        try:
            return resolved(parse_entry(self._entries[seq]), self.blobs)
        except LedgerError as exc:
            raise LedgerError(f"entry {seq} of run {self.run_id!r} cannot be read: {exc}") from exc

    def _node_totals(self) -> list[tuple[str, int, float]]:
        """(node, activations, total ms) in order of first completion, for the summary."""
        done = self._completions()
        if done is None and self._results is None and self._streamed():
            return self._tally()[0]
        if done is None or self._results is not None:
            return [
                (node, len(records), sum(_us(r) for r in records) / 1000.0)
                for node, records in self.results.items()
            ]
        count = Counter(done.nodes)  # in order of first completion, at C speed
        if len(count) == 1:
            ((ix, n),) = count.items()
            return [(done.names[ix], n, sum(done.dur) / 1000.0)]
        return [  # one C-speed pass per node (a run has few)
            (done.names[ix], n, sum(compress(done.dur, map(ix.__eq__, done.nodes))) / 1000.0)
            for ix, n in count.items()
        ]

    def _type_counts(self) -> dict[str, int]:
        """How many events of each type the ledger holds."""
        source = self._entries._source
        if isinstance(source, Recorder) and self._completions() is not None:
            return source.type_counts()
        if self._entry_types is None and self._streamed():
            return self._tally()[1]
        return Counter(self._types())

    def _streamed(self) -> bool:
        """Whether the entries are read from a store page by page (never all held)."""
        return isinstance(self._entries._source, PagedEntries)

    def _tally(self) -> tuple[list[tuple[str, int, float]], dict[str, int]]:
        """For a run read page by page: the summary's node totals (as :meth:`_node_totals`)
        and event counts, in one pass that keeps neither results nor types."""
        if self._tallied is None:
            started: dict[str, int] = {}
            nodes: dict[str, list[int]] = {}  # node -> [activations, total µs]
            counts: Counter[str] = Counter()
            for ev in self.events():
                counts[ev.type] += 1
                if ev.type in _TAKES and ev.token_id is not None:
                    started[ev.token_id] = ev.ts
                elif ev.type in _RESULTS and ev.node is not None:
                    began = started.pop(ev.token_id or "", ev.ts)
                    total = nodes.setdefault(ev.node, [0, 0])
                    total[0] += 1
                    total[1] += ev.ts - began
            rows = [(node, n, us / 1000.0) for node, (n, us) in nodes.items()]
            self._tallied = (rows, dict(counts))
        return self._tallied

    def _build_results(self) -> dict[str, list[NodeExecutionRecord]]:
        done = self._completions()
        if done is not None:
            return self._live_records(done)
        started: dict[str, int] = {}
        results: dict[str, list[NodeExecutionRecord]] = {}
        completed = 0
        for ev in self.events():
            if ev.type in _TAKES and ev.token_id is not None:
                started[ev.token_id] = ev.ts
            elif ev.type in _RESULTS and ev.node is not None:
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

    def _live_records(self, done: Completions) -> dict[str, list[NodeExecutionRecord]]:
        """The results of a run made in this process, from its completions' entries."""
        rec: Recorder = self._entries._source
        results: dict[str, list[NodeExecutionRecord]] = {}
        names, base = done.names, done.base
        rows = zip(done.nodes, done.done, done.start, done.dur, strict=True)
        for k, (ix, end, start, took) in enumerate(rows):
            node = names[ix]
            ev = orjson.loads(rec.entry(end))  # recorded here: canonical, no need to re-check
            record = NodeExecutionRecord(
                node=node,
                token_id=ev.get("token_id") or "",
                result=self._live[k],
                started_at=from_us(base + start),
                finished_at=from_us(base + start + took),
            )
            results.setdefault(node, []).append(record)
        return results

    def _result_at(self, index: int, ev: LedgerEvent) -> Any:
        live = index - self._live_offset
        if 0 <= live < len(self._live):
            return self._live[live]
        return ev.value()
