"""The hash-chain check: does a run's sequence of entries hold together, and if not, where not."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from codon_sdk.errors import CanonicalEncodingError, LedgerError
from codon_sdk.identity._canonical import json_canonical
from codon_sdk.ledger._events import (
    RUN_FINISHED,
    RUN_STARTED,
    LedgerEvent,
    event_from_parsed,
    leaf_hash,
)

__all__ = ["ChainCheck", "check_chain", "check_entry"]


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Outcome of :func:`check_chain`. ``bad_seq`` is the first event that breaks the chain."""

    ok: bool
    count: int
    head: str | None
    bad_seq: int | None = None
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return f"chain ok: {self.count} events, head {self.head}"
        return f"chain broken at seq {self.bad_seq}: {self.problem}"


def check_chain(
    entries: Iterable[bytes], *, run_id: str | None = None, require_end: bool = False
) -> ChainCheck:
    """Check a run's entries, in order: format, canonical bytes, run id, seq, ``prev`` links.

    The first entry must be ``run_started``; nothing may follow ``run_finished``.
    With ``require_end`` (the run is known to have finished) a missing
    ``run_finished`` is reported at the position where it should be.
    """
    prev_hex: str | None = None
    expected_run = run_id
    finished = False
    count = 0
    for seq, entry in enumerate(entries):
        count = seq + 1
        event, problem = check_entry(entry, seq, expected_run, prev_hex, finished)
        if event is None or problem is not None:
            return ChainCheck(False, seq, prev_hex, seq, problem)
        expected_run = event.run_id
        finished = event.type == RUN_FINISHED
        prev_hex = leaf_hash(entry).hex()
    if count == 0:
        return ChainCheck(False, 0, None, 0, "the run has no events (run_started is missing)")
    if require_end and not finished:
        return ChainCheck(
            False, count, prev_hex, count, "the run has no run_finished event (truncated tail?)"
        )
    return ChainCheck(True, count, prev_hex)


def check_entry(
    entry: bytes, seq: int, run_id: str | None, prev_hex: str | None, finished: bool
) -> tuple[LedgerEvent | None, str | None]:
    """Check one entry at position ``seq``; return (parsed event or None, problem or None)."""
    try:
        obj = orjson.loads(entry)
        event = event_from_parsed(obj, entry)
    except (LedgerError, orjson.JSONDecodeError) as exc:
        return None, f"entry cannot be parsed: {exc}"
    try:
        if json_canonical(obj) != entry:
            return event, "entry bytes are not in canonical (RFC 8785) form"
    except CanonicalEncodingError as exc:
        return event, f"entry cannot be re-encoded canonically: {exc}"
    return event, _check_fields(event, seq, run_id, prev_hex, finished)


def _check_fields(
    event: LedgerEvent, seq: int, run_id: str | None, prev_hex: str | None, finished: bool
) -> str | None:
    if finished:
        return f"event {event.type!r} follows run_finished; nothing may be appended after the end"
    if run_id is not None and event.run_id != run_id:
        return f"event belongs to run {event.run_id!r}, not {run_id!r}"
    if event.seq != seq:
        return f"event carries seq {event.seq}, expected {seq} (deleted, inserted or reordered)"
    if seq == 0:
        if event.type != RUN_STARTED:
            return f"first event is {event.type!r}, expected run_started"
        if event.prev is not None:
            return "first event must not carry a prev hash"
    elif event.prev != prev_hex:
        return "prev hash does not match the previous event (edited, deleted or reordered)"
    if event.type == RUN_STARTED and seq != 0:
        return "run_started may only be the first event"
    if event.type == RUN_FINISHED and event.metadata.get("events") != seq:
        return (
            f"run_finished counts {event.metadata.get('events')!r} earlier events, "
            f"but {seq} precede it"
        )
    return None
