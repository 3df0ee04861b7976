"""Rebuild a run's live state from its ledger: the queue, the shared state, counters, effects.

This is what makes a crashed or paused run resumable from its store alone, and
what replay and fork start from. The rules, applied to the events in seq order:

* a token becomes real when it is enqueued by a seed (``__entry__``) or by an
  activation that completed; enqueues of an activation that never completed are
  ignored (the activation runs again and emits again);
* a token is done when its ``node_completed`` is recorded; the queue is every real
  token not done, in enqueue order (so an activation that started but did not
  complete runs again, at the position FIFO gave it);
* a ``state_updated`` of an activation counts only if that activation completed;
  one without a token (recorded at the end of a run) counts at once;
* ``effect_recorded`` results count whether or not their activation completed:
  that is the point of recording them;
* ``run_resumed`` events carry the input given to an interrupted activation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from codon_sdk.errors import LedgerError
from codon_sdk.identity._canonical import revive
from codon_sdk.ledger import TERMINAL_STATUSES, ResumeRole, event_type, types_with
from codon_sdk.ledger._events import LedgerEvent
from codon_sdk.runtime._records import ENTRY_ORIGIN
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


_OPENER: Final = " or ".join(sorted(types_with(ResumeRole.START)))


def _fold(events: Iterable[LedgerEvent]) -> RebuiltRun:
    """The rules of the module docstring, by the resume role of each event's type."""
    run: RebuiltRun | None = None
    pending_tokens: dict[str, list[tuple[str, str, Any, str, str | None, int]]] = {}
    pending_state: dict[str, list[Any]] = {}
    real: dict[str, tuple[str, str, Any, str, str | None, int]] = {}
    done: set[str] = set()
    dequeued: set[str] = set()
    for ev in events:
        role = event_type(ev.type).resume
        if run is None:
            run = RebuiltRun(run_id=ev.run_id, started=dict(ev.metadata), started_us=ev.ts)
            if role is not ResumeRole.START:
                raise LedgerError(f"run {ev.run_id} does not start with {_OPENER}")
            continue
        run.last_us = ev.ts
        tid = ev.token_id
        match role:
            case ResumeRole.TOKEN if tid is not None and ev.target is not None:
                item = (
                    tid,
                    ev.target,
                    ev.value(),
                    ev.node or ENTRY_ORIGIN,
                    ev.parent_token_id,
                    ev.ts,
                )
                run.token_counter = max(run.token_counter, _token_number(tid))
                if ev.parent_token_id is None:
                    real[tid] = item
                else:
                    pending_tokens.setdefault(ev.parent_token_id, []).append(item)
            case ResumeRole.STEP if tid is not None:
                dequeued.add(tid)
            case ResumeRole.STATE:
                if tid is None:
                    apply_change(run.state, ev.value())
                else:
                    pending_state.setdefault(tid, []).append(ev.value())
            case ResumeRole.COMMIT if tid is not None:
                run.completed += 1
                done.add(tid)
                for item in pending_tokens.pop(tid, ()):
                    real[item[0]] = item
                for change in pending_state.pop(tid, ()):
                    apply_change(run.state, change)
            case ResumeRole.ATTEMPT if tid is not None:
                run.attempts[tid] = int(ev.metadata.get("next_attempt", 1))
            case ResumeRole.EFFECT if tid is not None:
                md = ev.metadata
                key = (tid, int(md.get("attempt", 0)), int(md.get("index", 0)))
                run.effects[key] = RecordedEffect(
                    name=str(md.get("name", "")),
                    value=ev.value(),
                    error=md.get("error"),
                    seq=ev.seq,
                    metadata=dict(md),
                )
            case ResumeRole.PAUSE:
                run.status = "interrupted"
                run.interrupt = dict(ev.metadata)
                run.interrupt["token_id"] = tid
                run.interrupt["node"] = ev.node
            case ResumeRole.RESUME:
                run.status = "running"
                md = ev.metadata
                if tid is not None and "interrupt_index" in md:
                    run.resume_inputs[(tid, int(md["interrupt_index"]))] = revive(md.get("input"))
            case ResumeRole.FINISH:
                run.status = str(ev.metadata.get("status", "completed"))
                run.finish_reason = ev.metadata.get("reason")
            case ResumeRole.START | ResumeRole.IGNORE:
                pass  # a second start is refused by the chain rules; nothing to rebuild
            case _:
                pass  # a built-in event lacking the token id its role needs: nothing to fold
    if run is None:
        raise LedgerError("the run has no events")
    run.queue = [item for tid, item in real.items() if tid not in done]
    # an activation counts once: one that paused or was cut off runs again (its token is
    # back in the queue) and is counted then, so a resumed run's max_steps is not spent twice
    run.steps = len(dequeued.difference(item[0] for item in run.queue))
    return run


def _token_number(token_id: str) -> int:
    digits = token_id[1:] if token_id.startswith("t") else ""
    return int(digits) if digits.isdigit() else 0
