"""The consumer-side check: does an audit stream hold every run complete and in chain order?

Messages are hostile input. Per run (the ``Codon-Run-Id`` header), in stream order:

1. each message's key (``Nats-Msg-Id``) must be the leaf hash of its body, else the
   message was altered or not published by Codon;
2. messages whose key was seen before are duplicates of an at-least-once delivery:
   counted and dropped (the first copy counts);
3. what is left goes through the ledger's own chain check
   (:func:`codon_sdk.ledger.check_chain`): it must start at ``run_started`` and link
   seq by seq, so a missing, extra or out-of-order entry is named by its seq;
4. with the ledger store given, the stream must hold as many entries as the ledger and
   end at the same head, so a cut-off tail is caught too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from codon_sdk._text import printable
from codon_sdk.errors import RunNotFoundError
from codon_sdk.ledger import RUN_FINISHED, check_chain, leaf_hash, parse_entry
from codon_sdk.sinks._nats import StreamMessage
from codon_sdk.stores import LedgerStore

__all__ = ["RunStreamCheck", "StreamCheck", "check_messages"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStreamCheck:
    """What the stream holds of one run. ``problem`` says what is wrong (None: sound)."""

    run_id: str
    count: int  # distinct entries in the stream
    duplicates: int = 0
    head: str | None = None  # the leaf hash of the run's last entry in the stream
    ended: bool = False  # the stream holds the run's run_finished
    ledger_count: int | None = None  # entries the ledger holds (when compared)
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "count": self.count,
            "duplicates": self.duplicates,
            "head": self.head,
            "ended": self.ended,
            "ledger_count": self.ledger_count,
            "bad_seq": self.bad_seq,
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True)
class StreamCheck:
    """The verdict over a stream: true when every run checked is complete and in order."""

    runs: tuple[RunStreamCheck, ...]
    problems: tuple[str, ...] = field(default=())  # messages that belong to no run

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.runs)

    def __bool__(self) -> bool:
        return self.ok

    def run(self, run_id: str) -> RunStreamCheck:
        """The check of one run (``KeyError`` when it was not checked)."""
        for found in self.runs:
            if found.run_id == run_id:
                return found
        raise KeyError(run_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "runs": [r.to_dict() for r in self.runs],
            "problems": list(self.problems),
        }

    def __str__(self) -> str:
        lines = []
        for r in self.runs:
            dup = f", {r.duplicates} duplicates dropped" if r.duplicates else ""
            state = "complete, in chain order" if r.ok else f"BROKEN: {r.problem}"
            lines.append(f"{printable(r.run_id)}: {r.count} entries{dup}: {state}")
        lines.extend(f"stream: {printable(p)}" for p in self.problems)
        return "\n".join(lines) or "no runs in the stream"


def check_messages(
    messages: Iterable[StreamMessage],
    *,
    run_ids: Sequence[str] | None = None,
    store: LedgerStore | None = None,
) -> StreamCheck:
    """Check the messages of an audit stream, in stream order (see the module docstring).

    ``run_ids`` restricts the check to those runs (one the stream lacks is a problem);
    ``store``, when given, is the ledger the stream must match run by run.
    """
    wanted = None if run_ids is None else set(run_ids)
    by_run: dict[str, list[StreamMessage]] = {r: [] for r in run_ids or ()}
    problems: list[str] = []
    for msg in messages:
        if msg.run_id is None:
            problems.append(
                f"message {msg.stream_seq} on {msg.subject!r} has no Codon-Run-Id header"
            )
            continue
        if wanted is None or msg.run_id in wanted:
            by_run.setdefault(msg.run_id, []).append(msg)
    runs = tuple(_check_run(run_id, msgs, store) for run_id, msgs in by_run.items())
    return StreamCheck(runs, tuple(problems))


def _check_run(run_id: str, msgs: list[StreamMessage], store: LedgerStore | None) -> RunStreamCheck:
    seen: set[str] = set()
    entries: list[bytes] = []
    duplicates = 0
    for msg in msgs:
        key = leaf_hash(msg.data).hex()
        if msg.key != key:
            return RunStreamCheck(
                run_id=run_id,
                count=len(entries),
                bad_seq=len(entries),
                problem=f"message {msg.stream_seq}: its Nats-Msg-Id "
                f"{printable(str(msg.key))[:70]!r} is not the leaf hash of its body ({key}): "
                "altered, or not published by Codon",
            )
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        entries.append(msg.data)
    if not entries:
        return RunStreamCheck(run_id=run_id, count=0, problem="the stream holds no entry of it")
    chain = check_chain(entries, run_id=run_id)
    ended = chain.ok and _ends(entries[-1])
    base: dict[str, Any] = {
        "run_id": run_id,
        "count": len(entries),
        "duplicates": duplicates,
        "ended": ended,
    }
    if not chain.ok:
        return RunStreamCheck(
            **base,
            bad_seq=chain.bad_seq,
            problem=f"not complete and in chain order at seq {chain.bad_seq}: {chain.problem}",
        )
    head = chain.head
    if store is None:
        return RunStreamCheck(**base, head=head)
    return _against_ledger(run_id, base, head, store)


def _against_ledger(
    run_id: str, base: dict[str, Any], head: str | None, store: LedgerStore
) -> RunStreamCheck:
    try:
        count = store.get_run(run_id).event_count
    except RunNotFoundError:
        return RunStreamCheck(**base, head=head, problem=f"the ledger {store.url} has no such run")
    last = store.read(run_id, count - 1, count) if count else []
    ledger_head = leaf_hash(last[0]).hex() if last else None
    problem = None
    if base["count"] < count:
        problem = (
            f"the stream lacks seq {base['count']}..{count - 1} of the {count} entries the "
            "ledger holds (still being delivered? run `codon audit-stream publish`)"
        )
    elif base["count"] > count or head != ledger_head:
        problem = (
            f"the stream's head ({base['count']} entries, {head}) is not the ledger's "
            f"({count} entries, {ledger_head})"
        )
    bad = None if problem is None else min(base["count"], count)
    return RunStreamCheck(**base, head=head, ledger_count=count, problem=problem, bad_seq=bad)


def _ends(entry: bytes) -> bool:
    try:
        return parse_entry(entry).type == RUN_FINISHED
    except Exception:  # the chain check vouched for it; a verdict, never a traceback
        return False
