"""An activation shipped to another process, and what it did, brought back to be recorded.

The driver's recorder stays the single writer of the ledger. A remote worker runs the
node with a :class:`RemoteRuntime`: the same interface as ``runtime`` in process, but
every action (emit, ``record_event``, effects and LLM calls, interrupts, state writes,
``stop``) is noted, in order, in an :class:`ActivationOutcome`. Back in the driver,
:func:`apply_outcome` replays those actions on the activation's real handle, so the
ledger holds what an in-process activation would have written, in the same order:
effects and custom events, then the completion. Nothing of an attempt whose worker
died reaches the ledger, so running it again is safe.

What a remote activation sees: the payload, the run's context, a copy of the shared
state as of its start (its changes are applied when it completes, like an in-process
activation's), the effects recorded for its attempt (served on resume) and the inputs
given on resume to its interrupts. ``emit`` returns the id the token gets when the
activation completes first of the ones in flight (always, with one at a time).

Before the node runs, the worker runs the plug-ins' process set-ups the ticket carries
(``instrument_openai()``...: ``runtime/_setup.py``), so a call through an instrumented
client inside the node is the same recorded effect it would be in the driver.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import os
import pickle
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codon_sdk._text import exception_text
from codon_sdk.errors import (
    ActivationTransferError,
    LedgerError,
    WorkerSetupError,
    WorkloadRuntimeError,
)
from codon_sdk.ledger import check_custom_type
from codon_sdk.runtime._handle import (
    CURRENT_RUNTIME,
    NO_DEFAULT,
    EffectSlot,
    Interrupt,
    NodeRuntime,
    enable_current_runtime,
    integrations_active,
)
from codon_sdk.runtime._records import Token
from codon_sdk.runtime._setup import ProcessSetup, align_setups, carried_setups

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, Run
    from codon_sdk.runtime._rebuild import RecordedEffect

__all__ = ["ActivationOutcome", "ActivationTicket", "RemoteRuntime", "apply_outcome", "ticket"]

_NONE: Any = ("codon-no-default",)  # a picklable marker for "no default" / "no request"


@dataclass(slots=True, kw_only=True)
class ActivationOutcome:
    """What a shipped activation did: its actions in order, then its result or error."""

    ops: list[tuple[Any, ...]] = field(default_factory=list)
    result: Any = None
    error: BaseException | None = None
    paused: bool = False
    state_set: dict[Any, Any] = field(default_factory=dict)
    state_deleted: list[Any] = field(default_factory=list)
    #: ``state.update_with`` calls, (key, fn, default), applied in order after the writes
    state_updates: list[tuple[Any, Any, Any]] = field(default_factory=list)
    stop: str | None = None
    #: the process that ran it
    pid: int = 0


@dataclass(slots=True, kw_only=True)
class ActivationTicket:
    """Everything another process needs to run one activation (picklable)."""

    node: str
    fn: Callable[..., Any]
    payload: Any
    context: dict[str, Any]
    successors: frozenset[str]
    run_id: str
    item: tuple[Any, ...]
    attempt: int
    lineage: tuple[str, ...]
    state: dict[Any, Any]
    effects: dict[int, RecordedEffect]
    resume_inputs: dict[int, Any]
    next_id: int
    integrations: bool
    mask: Callable[[str], str] | None
    #: the plug-ins' process set-ups (``instrument_openai()``...) the worker must have run
    setups: tuple[ProcessSetup, ...] = ()

    def run(self) -> ActivationOutcome:
        """Run the node here (a sync caller: an async node runs on a fresh event loop)."""
        failed = self._set_up()
        if failed is not None:
            return failed
        handle, reset = self._begin()
        try:
            result = self.fn(self.payload, runtime=handle, context=self.context)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            return handle.finish(result, None)
        except BaseException as exc:
            return handle.finish(None, exc)
        finally:
            CURRENT_RUNTIME.reset(reset)

    async def arun(self) -> ActivationOutcome:
        """Run the node on the running event loop (an async host)."""
        failed = self._set_up()
        if failed is not None:
            return failed
        handle, reset = self._begin()
        try:
            result = self.fn(self.payload, runtime=handle, context=self.context)
            if inspect.isawaitable(result):
                result = await result
            return handle.finish(result, None)
        except BaseException as exc:
            return handle.finish(None, exc)
        finally:
            CURRENT_RUNTIME.reset(reset)

    def _set_up(self) -> ActivationOutcome | None:
        """Align this process with the driver's plug-ins; the failed outcome, if one failed."""
        try:
            align_setups(self.setups)
        except WorkerSetupError as exc:
            return ActivationOutcome(error=WorkerSetupError(str(exc)), pid=os.getpid())
        return None

    def _begin(self) -> tuple[RemoteRuntime, Any]:
        if self.integrations and not integrations_active():
            enable_current_runtime()
        handle = RemoteRuntime(self)
        return handle, CURRENT_RUNTIME.set(handle)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def ticket(run: Run, node: NodeDef, payload: Any, handle: NodeRuntime) -> ActivationTicket:
    """The ticket of ``handle``'s activation of ``node`` in ``run``."""
    tid, attempt = handle.token_id, handle.attempt
    effects = {k[2]: e for k, e in run.effects.items() if k[0] == tid and k[1] == attempt}
    inputs = {k[1]: v for k, v in run.resume_inputs.items() if k[0] == tid}
    return ActivationTicket(
        node=node.name,
        fn=node.fn,
        payload=payload,
        context=run.context,
        successors=frozenset(node.successors),
        run_id=run.run_id,
        item=handle._item,
        attempt=attempt,
        lineage=run.lineage_of(tid),
        state=dict(dict.items(run.state)),
        effects=effects,
        resume_inputs=inputs,
        next_id=run.token_counter + 1,
        integrations=integrations_active(),
        mask=run.mask,
        setups=carried_setups(),
    )


class _RemoteState(dict[Any, Any]):
    """``runtime.state`` in a worker: a copy; what changed is sent back on completion.

    ``update_with`` is computed here on the copy (its return value) and sent back as
    the update itself, applied atomically to the run's state when the activation
    completes, so concurrent updates of one key from several workers are never lost.
    """

    updates: list[tuple[Any, Callable[[Any], Any], Any]]

    def update_with(self, key: Any, fn: Callable[[Any], Any], *, default: Any = _NONE) -> Any:
        current = self.get(key, default)
        if current is _NONE:
            raise KeyError(key)
        value = fn(current)
        self[key] = value
        if not hasattr(self, "updates"):
            self.updates = []
        self.updates.append((key, fn, default))
        return value


class RemoteRuntime(NodeRuntime):
    """``runtime`` in a remote worker: notes every action for the driver to record."""

    def __init__(self, ticket: ActivationTicket) -> None:
        self._ticket = ticket
        # what the inherited checks read of the node (its name): the node runs elsewhere
        self._node = types.SimpleNamespace(name=ticket.node)  # type: ignore[assignment]
        self._attempt = ticket.attempt
        self._item = ticket.item
        self._closed = False
        self._emitted = None
        self._ops: list[tuple[Any, ...]] = []
        self._before = copy.deepcopy(ticket.state)
        self.state = _RemoteState(ticket.state)  # type: ignore[assignment]

    @property
    def node(self) -> str:
        return self._ticket.node

    @property
    def run_id(self) -> str:
        return self._ticket.run_id

    @property
    def context(self) -> dict[str, Any]:
        return self._ticket.context

    @property
    def replaying(self) -> bool:
        return False  # replays run in the driver's process

    @property
    def token(self) -> Token:
        tid, target, payload, origin, parent, created = self._item
        lineage = self._ticket.lineage
        return Token(tid, payload, origin, parent, target, created, lambda _tid: lineage)

    @property
    def redact(self) -> Callable[[str], str] | None:
        return self._ticket.mask

    def emit(
        self, target: str, payload: Any, *, audit_metadata: Mapping[str, Any] | None = None
    ) -> str:
        self._check_open("emit")
        if target not in self._ticket.successors:
            raise WorkloadRuntimeError(
                f"node {self.node!r} emitted to {target!r} but there is no edge "
                f"{self.node!r} -> {target!r}; add it with "
                f"workload.add_edge({self.node!r}, {target!r})"
            )
        emitted = sum(1 for op in self._ops if op[0] == "emit")
        self._ops.append(("emit", target, payload, dict(audit_metadata or {}) or None))
        return f"t{self._ticket.next_id + emitted}"

    def record_event(
        self,
        event_type: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        subject: str | None = None,
    ) -> None:
        self._check_open("record an event")
        if subject is not None:
            raise WorkloadRuntimeError(
                f"record_event({event_type!r}, subject=...) is not available in a remote "
                "activation: tag the whole run instead (execute(..., subject=...))"
            )
        try:
            check_custom_type(event_type)
        except LedgerError as exc:
            raise WorkloadRuntimeError(str(exc)) from exc
        self._ops.append(("event", event_type, dict(metadata or {}) or None))

    def interrupt(self, reason: str, *, payload: Any = None, default: Any = NO_DEFAULT) -> Any:
        self._check_open("interrupt the run")
        index = self._interrupts
        self._interrupts += 1
        given = NO_DEFAULT if default is NO_DEFAULT else default
        self._ops.append(("interrupt", reason, payload, _NONE if given is NO_DEFAULT else given))
        if index in self._ticket.resume_inputs:
            return self._ticket.resume_inputs[index]
        raise Interrupt(str(reason), payload, self.node, self.token_id, index, default)

    def effect_slot(
        self,
        name: str,
        *,
        request: Any = _NONE,
        request_at: str | None = None,
        llm: Mapping[str, Any] | None = None,  # governed runs never run remotely (_dispatch)
        defer: bool = False,  # nothing to defer: the driver checks nothing for a remote slot
    ) -> EffectSlot:
        self._check_open("record an effect")
        if not isinstance(name, str) or not name:
            raise WorkloadRuntimeError(f"effect name must be a non-empty string, got {name!r}")
        index = self._effects
        self._effects += 1
        recorded = self._ticket.effects.get(index)
        if recorded is not None and recorded.name != name:
            raise WorkloadRuntimeError(
                f"node {self.node!r} asked for effect {name!r} as #{index} of token "
                f"{self.token_id}, but the ledger recorded {recorded.name!r} there; the code "
                "changed its calls"
            )
        op: list[Any] = ["effect", name, request, request_at, None]
        self._ops.append(op)  # type: ignore[arg-type]  # filled in when it is recorded
        key = (self.token_id, self._attempt, index)
        return _RemoteSlot(self, name, key, recorded, op)

    def finish(self, result: Any, error: BaseException | None) -> ActivationOutcome:
        """What the activation did, ready to be pickled back to the driver."""
        self._closed = True
        out = ActivationOutcome(ops=[tuple(op) for op in self._ops], pid=os.getpid())
        if isinstance(error, Interrupt):
            out.paused = True
            return out
        if error is not None:
            out.error = error if _pickles(error) else WorkloadRuntimeError(exception_text(error))
            return out
        out.result = result
        before, after = self._before, self.state
        out.state_updates = getattr(after, "updates", [])
        updated = {u[0] for u in out.state_updates}
        out.state_set = {
            k: v
            for k, v in after.items()
            if k not in updated and (k not in before or before[k] != v)
        }
        out.state_deleted = [k for k in before if k not in after]
        out.stop = self._stop
        return out


class _RemoteSlot(EffectSlot):
    """An effect of a remote activation: its value goes back to the driver to be recorded."""

    __slots__ = ("_op",)

    def __init__(
        self,
        handle: RemoteRuntime,
        name: str,
        key: tuple[str, int, int],
        recorded: RecordedEffect | None,
        op: list[Any],
    ) -> None:
        super().__init__(handle, name, key, recorded)
        self._op = op

    def record(self, value: Any, *, metadata: Mapping[str, Any] | None = None) -> None:
        self._note(("value", value, dict(metadata or {})))

    def record_error(
        self, error: BaseException, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        sent = error if _pickles(error) else RuntimeError(exception_text(error))
        self._note(("error", sent, dict(metadata or {})))

    def _note(self, what: tuple[Any, Any, dict[str, Any]]) -> None:
        if self._done or self.recorded is not None:
            raise WorkloadRuntimeError(f"effect {self.name!r} ({self.key}) is already recorded")
        self._done = True
        self._op[4] = what


def _pickles(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def apply_outcome(handle: NodeRuntime, outcome: ActivationOutcome) -> Any:
    """Record, through ``handle``, what a shipped activation did; its result (or raise)."""
    failed = outcome.error is not None
    for op in outcome.ops:
        kind = op[0]
        if kind == "emit":
            if not failed:  # a failed attempt's emissions are dropped, as in process
                handle.emit(op[1], op[2], audit_metadata=op[3])
        elif kind == "event":
            handle.record_event(op[1], metadata=op[2])
        elif kind == "effect":
            _apply_effect(handle, op)
        else:  # "interrupt": served ones return; the pausing one raises Interrupt here
            default = NO_DEFAULT if op[3] == _NONE else op[3]
            handle.interrupt(op[1], payload=op[2], default=default)
    if outcome.error is not None:
        raise outcome.error
    if outcome.paused:  # pragma: no cover - the interrupt op above raised already
        raise WorkloadRuntimeError(f"node {handle.node!r} paused without an interrupt")
    for key, value in outcome.state_set.items():
        handle.state[key] = value
    for key in outcome.state_deleted:
        handle.state.pop(key, None)
    for key, fn, default in outcome.state_updates:
        if default == _NONE:
            handle.state.update_with(key, fn)
        else:
            handle.state.update_with(key, fn, default=default)
    if outcome.stop is not None:
        handle.stop(outcome.stop)
    return outcome.result


def _apply_effect(handle: NodeRuntime, op: tuple[Any, ...]) -> None:
    _, name, request, request_at, what = op
    if request == _NONE:
        slot = handle.effect_slot(name, request_at=request_at)
    else:
        slot = handle.effect_slot(name, request=request, request_at=request_at)
    if what is None or slot.recorded is not None:
        return
    kind, value, metadata = what
    if kind == "value":
        slot.record(value, metadata=metadata or None)
    else:
        slot.record_error(value, metadata=metadata or None)


def transfer_error(node: str, part: str, value: Any, exc: BaseException) -> ActivationTransferError:
    """The error for a value of ``node`` that cannot cross between processes."""
    return ActivationTransferError(
        f"node {node!r}: {part} of type {type(value).__qualname__} cannot cross between the "
        f"driver and a remote worker ({exception_text(exc)}); use plain data (dicts, lists, "
        "strings, numbers) or a type that pickles"
    )
