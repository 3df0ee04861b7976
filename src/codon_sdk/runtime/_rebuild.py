"""Rebuild a run's live state from its ledger: the queue, the shared state, counters, effects.

This is what makes a crashed or paused run resumable from its store alone, and
what replay and fork start from. The rules, applied to the events in seq order:

* a token becomes real when it is enqueued by a seed (``__entry__``) or by an
  activation that completed; enqueues of an activation that never completed are
  ignored (the activation runs again and emits again);
* a token is done when its ``node_completed`` is recorded, or when a join's token
  (``token_enqueued`` from ``__join__`` with ``join`` metadata, see ``_join.py``) lists it among the
  tokens it joined; the queue is every real token not done, in enqueue order (so an
  activation that started but did not complete runs again, at the position FIFO gave
  it, and tokens waiting at a join are queued again, for the engine to hold again);
* a ``state_updated`` of an activation counts only if that activation completed;
  one without a token (recorded at the end of a run) counts at once;
* ``effect_recorded`` results count whether or not their activation completed:
  that is the point of recording them;
* ``run_resumed`` events carry the input given to an interrupted activation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from codon_sdk._text import printable
from codon_sdk.errors import LedgerError
from codon_sdk.identity import revive
from codon_sdk.ledger import (
    CUSTOM_EVENT,
    EVENT_TYPES,
    TERMINAL_STATUSES,
    LedgerEvent,
    ResumeRole,
    event_type,
    is_stand_in,
    types_with,
)
from codon_sdk.runtime._records import ENTRY_ORIGIN, JOIN_ORIGIN
from codon_sdk.runtime._state import apply_change

__all__ = ["RebuiltRun", "RecordedEffect", "rebuild"]


@dataclass(frozen=True, slots=True)
class RecordedEffect:
    """One recorded effect: its name, its value, or the error it raised."""

    name: str
    value: Any
    error: dict[str, Any] | None = None
    seq: int = -1
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RebuiltRun:
    """Everything needed to continue a run, as of the end of its recorded events."""

    run_id: str
    started: dict[str, Any]
    status: str = "running"
    finish_reason: str | None = None
    # (token id, target, payload, origin, parent token id, created µs), in enqueue order
    queue: list[tuple[str, str, Any, str, str | None, int]] = field(default_factory=list)
    state: dict[Any, Any] = field(default_factory=dict)
    token_counter: int = 0
    steps: int = 0
    #: queued tokens whose activation had started before (it paused or was cut off)
    rerun: frozenset[str] = frozenset()
    completed: int = 0
    effects: dict[tuple[str, int, int], RecordedEffect] = field(default_factory=dict)
    resume_inputs: dict[tuple[str, int], Any] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    interrupt: dict[str, Any] | None = None
    started_us: int = 0
    last_us: int = 0

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


def rebuild(events: Iterable[LedgerEvent]) -> RebuiltRun:
    """Fold a run's events (in seq order) into a :class:`RebuiltRun`.

    Ledger data is hostile input even when its chain checks (an attacker without the
    signing key can write a consistent chain): an event whose built-in fields have the wrong
    shape raises :class:`~codon_sdk.errors.LedgerError` naming it, never anything else.
    """
    current: list[LedgerEvent] = []
    try:
        return _fold(_tracked(events, current))
    except LedgerError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        where = f"event {current[0].seq} ({current[0].type!r})" if current else "the run"
        raise LedgerError(
            f"{where} of run {current[0].run_id if current else '?'} is malformed ({exc}); "
            "the ledger was not written by the SDK this way: run `codon verify`"
        ) from None


def _tracked(events: Iterable[LedgerEvent], current: list[LedgerEvent]) -> Iterable[LedgerEvent]:
    for ev in events:
        current[:] = [ev]
        yield ev


_Item: TypeAlias = tuple[str, str, Any, str, str | None, int]
"""A queued token: (id, target, payload, origin, parent token id, created µs)."""


class _Fold:
    """The fold of one run's events after its first: one handler per resume role."""

    __slots__ = ("dequeued", "done", "pending_state", "pending_tokens", "real", "run")

    def __init__(self, run: RebuiltRun) -> None:
        self.run = run
        self.pending_tokens: dict[str, list[_Item]] = {}
        self.pending_state: dict[str, list[Any]] = {}
        self.real: dict[str, _Item] = {}
        self.done: set[str] = set()
        self.dequeued: set[str] = set()

    def token(self, ev: LedgerEvent) -> None:
        tid, target = ev.token_id, ev.target
        if tid is None or target is None:
            return
        item = (tid, target, ev.value(), ev.node or ENTRY_ORIGIN, ev.parent_token_id, ev.ts)
        self.run.token_counter = max(self.run.token_counter, _token_number(tid))
        if ev.parent_token_id is None:
            self.real[tid] = item
            if ev.node == JOIN_ORIGIN and "join" in ev.metadata:
                self._joined(ev)
        else:
            self.pending_tokens.setdefault(ev.parent_token_id, []).append(item)

    def _joined(self, ev: LedgerEvent) -> None:
        """A join's token: the tokens it lists were consumed (each waited at the join)."""
        join = ev.metadata["join"]
        tokens = join.get("tokens") if isinstance(join, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise LedgerError(
                f"event {ev.seq} of run {ev.run_id} is a join's token whose 'join' metadata "
                "does not list the tokens it joined; the ledger was not written by the SDK "
                "this way: run `codon verify`"
            )
        for joined in tokens:
            if joined not in self.real or joined in self.done:
                raise LedgerError(
                    f"event {ev.seq} of run {ev.run_id} joins token {printable(joined)!r}, "
                    "which is not a token waiting in the run at that point; the ledger was not "
                    "written by the SDK this way: run `codon verify`"
                )
            self.done.add(joined)

    def step(self, ev: LedgerEvent) -> None:
        if ev.token_id is not None:
            self.dequeued.add(ev.token_id)

    def state(self, ev: LedgerEvent) -> None:
        if ev.token_id is None:
            apply_change(self.run.state, ev.value())
        else:
            self.pending_state.setdefault(ev.token_id, []).append(ev.value())

    def commit(self, ev: LedgerEvent) -> None:
        tid = ev.token_id
        if tid is None:
            return
        self.run.completed += 1
        self.done.add(tid)
        for item in self.pending_tokens.pop(tid, ()):
            self.real[item[0]] = item
        for change in self.pending_state.pop(tid, ()):
            apply_change(self.run.state, change)

    def attempt(self, ev: LedgerEvent) -> None:
        if ev.token_id is not None:
            self.run.attempts[ev.token_id] = int(ev.metadata.get("next_attempt", 1))

    def effect(self, ev: LedgerEvent) -> None:
        if ev.token_id is None:
            return
        md = ev.metadata
        key = (ev.token_id, int(md.get("attempt", 0)), int(md.get("index", 0)))
        self.run.effects[key] = RecordedEffect(
            name=str(md.get("name", "")),
            value=ev.value(),
            error=md.get("error"),
            seq=ev.seq,
            metadata=dict(md),
        )

    def pause(self, ev: LedgerEvent) -> None:
        run = self.run
        run.status = "interrupted"
        run.interrupt = dict(ev.metadata)
        run.interrupt["token_id"] = ev.token_id
        run.interrupt["node"] = ev.node
        run.interrupt["seq"] = ev.seq  # what a signed approval names

    def resume(self, ev: LedgerEvent) -> None:
        self.run.status = "running"
        md = ev.metadata
        if ev.token_id is not None and "interrupt_index" in md:
            self.run.resume_inputs[(ev.token_id, int(md["interrupt_index"]))] = revive(
                md.get("input")
            )

    def finish(self, ev: LedgerEvent) -> None:
        self.run.status = str(ev.metadata.get("status", "completed"))
        self.run.finish_reason = ev.metadata.get("reason")

    def ignore(self, ev: LedgerEvent) -> None:
        """Nothing to rebuild (a second start is refused by the chain rules)."""


#: How resume treats each role (``tests/ledger/test_event_types.py`` checks it covers all).
HANDLERS: Final[Mapping[ResumeRole, Callable[[_Fold, LedgerEvent], None]]] = {
    ResumeRole.START: _Fold.ignore,
    ResumeRole.TOKEN: _Fold.token,
    ResumeRole.STEP: _Fold.step,
    ResumeRole.STATE: _Fold.state,
    ResumeRole.COMMIT: _Fold.commit,
    ResumeRole.ATTEMPT: _Fold.attempt,
    ResumeRole.EFFECT: _Fold.effect,
    ResumeRole.PAUSE: _Fold.pause,
    ResumeRole.RESUME: _Fold.resume,
    ResumeRole.FINISH: _Fold.finish,
    ResumeRole.IGNORE: _Fold.ignore,
}
_BY_TYPE: Final = {t.name: HANDLERS[t.resume] for t in EVENT_TYPES}
_OTHER: Final = HANDLERS[CUSTOM_EVENT.resume]
_OPENER: Final = " or ".join(sorted(types_with(ResumeRole.START)))


def _fold(events: Iterable[LedgerEvent]) -> RebuiltRun:
    """The rules of the module docstring, by the resume role of each event's type."""
    it = iter(events)
    first = next(it, None)
    if first is None:
        raise LedgerError("the run has no events")
    run = RebuiltRun(run_id=first.run_id, started=dict(first.metadata), started_us=first.ts)
    if event_type(first.type).resume is not ResumeRole.START and not is_stand_in(first.type):
        raise LedgerError(f"run {first.run_id} does not start with {_OPENER}")
    fold = _Fold(run)
    handler, other = _BY_TYPE.get, _OTHER
    for ev in it:
        run.last_us = ev.ts
        handler(ev.type, other)(fold, ev)
    real, done = fold.real, fold.done
    run.queue = [item for tid, item in real.items() if tid not in done]
    # an activation counts once: one that paused or was cut off runs again (its token is
    # back in the queue) and is counted then, so a resumed run's max_steps is not spent twice
    queued = {item[0] for item in run.queue}
    run.steps = len(fold.dequeued.difference(queued))
    run.rerun = frozenset(fold.dequeued.intersection(queued))
    return run


def _token_number(token_id: str) -> int:
    digits = token_id[1:] if token_id.startswith("t") else ""
    return int(digits) if digits.isdigit() else 0
