"""``runtime``: the handle a node function receives for one activation attempt."""

from __future__ import annotations

import contextvars
import inspect
import logging
import random as _random
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from codon_sdk._text import exception_message, valid_unicode
from codon_sdk._warn import warn_once
from codon_sdk.errors import (
    CanonicalEncodingError,
    ConfigurationError,
    LedgerError,
    ReplayError,
    WorkloadRuntimeError,
)
from codon_sdk.identity import recorded_error, remember_type, type_path
from codon_sdk.ledger import check_custom_type
from codon_sdk.redaction import NOT_IN_A_RUN, current_redact, set_run_redaction_source
from codon_sdk.runtime._records import Token
from codon_sdk.runtime._request import Request, RequestChange, ask, compare_request
from codon_sdk.stores import check_subject, tag_subject

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, QueueItem, Run
    from codon_sdk.runtime._rebuild import RecordedEffect
    from codon_sdk.runtime._state import RunState

_log = logging.getLogger("codon_sdk")

__all__ = [
    "CURRENT_RUNTIME",
    "current_redact",
    "is_async_callable",
    "enable_current_runtime",
    "integrations_active",
    "EffectDivergence",
    "EffectSlot",
    "Interrupt",
    "NodeRuntime",
    "current_runtime",
]

CURRENT_RUNTIME: contextvars.ContextVar[NodeRuntime | None] = contextvars.ContextVar(
    "codon_current_runtime", default=None
)


_INTEGRATIONS = [False]


def current_runtime() -> NodeRuntime | None:
    """The handle of the node activation running in this context, if any (for integrations).

    An integration calls :func:`enable_current_runtime` once (when it is installed),
    so that the engine publishes the handle; until then this returns None.
    """
    return CURRENT_RUNTIME.get()


def _running_redact() -> object:
    runtime = CURRENT_RUNTIME.get()
    return NOT_IN_A_RUN if runtime is None else runtime.redact


set_run_redaction_source(_running_redact)


def enable_current_runtime() -> None:
    """Ask the engine to publish each activation's handle for :func:`current_runtime`.

    Off by default because it costs every activation a context-variable switch.
    """
    _INTEGRATIONS[0] = True


def integrations_active() -> bool:
    return _INTEGRATIONS[0]


NO_DEFAULT: Any = object()  # runtime.interrupt(default=...) not given: resume needs an input


class Interrupt(BaseException):
    """Raised by ``runtime.interrupt`` to pause the run; a BaseException so that
    ``except Exception`` in node code does not swallow it."""

    def __init__(
        self,
        reason: str,
        payload: Any,
        node: str,
        token_id: str,
        index: int,
        default: Any = NO_DEFAULT,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.payload = payload
        self.default = default
        self.node = node
        self.token_id = token_id
        self.index = index


_NO_REQUEST: Any = object()  # effect_slot(request=...) not given: nothing is recorded or compared


class EffectDivergence(ReplayError):
    """The code asked for an effect the ledger does not hold (replay), or a different one."""


class NodeRuntime:
    """What a node can do besides returning a result.

    Emit tokens, record audit events, read and write the shared state, record
    non-deterministic calls (effects), pause for a human, stop the run. One handle
    per activation attempt; it is closed when the attempt ends.
    """

    __slots__ = ("__dict__", "_attempt", "_closed", "_emitted", "_item", "_node", "_run", "state")

    # set on few activations: class defaults, an instance value only once changed
    _stop: str | None = None
    _emit_metadata: bool = False
    _effects: int = 0
    _interrupts: int = 0

    def __init__(self, run: Run, node: NodeDef, item: QueueItem, attempt: int = 0) -> None:
        self._run = run
        self._node = node
        self._item = item
        self._attempt = attempt
        self._emitted: list[tuple[str, str, Any, Any, Any]] | None = None
        self._closed = False
        #: The dict shared by every activation of this run; changes are recorded in the ledger.
        self.state: RunState = run.state

    # ------------------------------------------------------------------ read-only facts

    @property
    def node(self) -> str:
        """Name of the node being activated."""
        return self._node.name

    @property
    def token_id(self) -> str:
        return self._item[0]

    @property
    def attempt(self) -> int:
        """0 for the first attempt, 1 for the first retry..."""
        return self._attempt

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def context(self) -> dict[str, Any]:
        return self._run.context

    @property
    def replaying(self) -> bool:
        """True while the run is a replay: effects come from the ledger, never from outside."""
        return self._run.replaying

    @property
    def token(self) -> Token:
        """The token this activation is processing."""
        tid, target, payload, origin, parent, created = self._item
        return Token(tid, payload, origin, parent, target, created, self._run.lineage_of)

    def close(self) -> None:
        self._closed = True

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise WorkloadRuntimeError(
                f"node {self._node.name!r} tried to {action} after its activation ended "
                f"(token {self._item[0]}); keep runtime calls inside the node function"
            )

    # ------------------------------------------------------------------ actions

    def emit(
        self, target: str, payload: Any, *, audit_metadata: Mapping[str, Any] | None = None
    ) -> str:
        """Enqueue a new token for ``target`` (along a registered edge); return its id.

        The token is enqueued, and recorded, when this activation completes.
        """
        node = self._node
        if target not in node.successors:
            run = self._run
            if not isinstance(target, str) or target not in run.nodes:
                raise WorkloadRuntimeError(
                    f"node {node.name!r} emitted to unknown node {target!r}; registered nodes: "
                    f"{', '.join(sorted(run.nodes))}"
                )
            raise WorkloadRuntimeError(
                f"node {node.name!r} emitted to {target!r} but there is no edge "
                f"{node.name!r} -> {target!r}; add it with "
                f"workload.add_edge({node.name!r}, {target!r})"
            )
        if self._closed:
            self._check_open("emit")
        try:
            run = self._run
            prepared = payload if payload is None else run.prep(payload)
            meta = run.prep(dict(audit_metadata)) if audit_metadata else None
        except CanonicalEncodingError as exc:
            raise WorkloadRuntimeError(
                f"node {node.name!r} emitted to {target!r} a payload that cannot be recorded "
                f"({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        token_id = run.next_token_id()
        if meta is not None:
            self._emit_metadata = True
        if self._emitted is None:
            self._emitted = []
        self._emitted.append((token_id, target, payload, prepared, meta))
        return token_id

    def record_event(
        self,
        event_type: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        subject: str | None = None,
    ) -> None:
        """Append a custom audit event (its name may not be a built-in event type).

        ``subject`` (a subject id, such as a user id) records the event against that subject
        in the store, so ``codon erase --subject`` erases it (docs: guides/retention.md)."""
        self._check_open("record an event")
        if subject is not None:
            self._check_subject(event_type, subject)
        try:
            check_custom_type(event_type)
        except LedgerError as exc:
            raise WorkloadRuntimeError(str(exc)) from exc
        try:
            meta = self._run.prep(dict(metadata)) if metadata else None
        except CanonicalEncodingError as exc:
            raise WorkloadRuntimeError(
                f"metadata of event {event_type!r} recorded by node {self._node.name!r} cannot be "
                f"recorded ({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        seq = self._run.record_custom(self._node.name, self._item[0], event_type, meta)
        if subject is not None and self._run.subjects is not None:
            tag_subject(self._run.subjects, subject, self._run.run_id, seq)

    def _check_subject(self, event_type: str, subject: str) -> None:
        try:
            check_subject(subject)
        except ConfigurationError as exc:
            raise WorkloadRuntimeError(str(exc)) from exc
        if self._run.subjects is None:
            raise WorkloadRuntimeError(
                f"record_event({event_type!r}, subject=...) needs a durable store (execute with "
                "store=...): the subject is indexed there so `codon erase` can find the event"
            )

    def stop(self, reason: str | None = None) -> None:
        """End the run once this activation completes; tokens still queued are not processed."""
        self._stop = reason or f"stop requested by node {self._node.name!r}"

    def interrupt(self, reason: str, *, payload: Any = None, default: Any = NO_DEFAULT) -> Any:
        """Pause the run for a human or an outside system; return the input given on resume.

        The first time, the run ends with status ``interrupted`` (a ``run_interrupted``
        event records ``reason``, ``payload`` and ``default``). ``workload.resume(run_id,
        input=..., actor=...)`` runs this activation again from its start, and this call
        then returns ``input``; a resume without an input returns ``default`` when one
        was declared and is refused (``InputRequiredError``) otherwise. Several
        interrupts in one activation pause in turn.
        """
        self._check_open("interrupt the run")
        index = self._interrupts
        self._interrupts += 1
        key = (self._item[0], index)
        run = self._run
        if key in run.resume_inputs:
            return run.resume_inputs[key]
        try:
            prepared = self._run.prep(payload)
            fallback = default if default is NO_DEFAULT else self._run.prep(default)
        except CanonicalEncodingError as exc:
            raise WorkloadRuntimeError(
                f"interrupt payload or default of node {self._node.name!r} cannot be recorded "
                f"({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        if not isinstance(reason, str) or not reason:
            raise WorkloadRuntimeError(
                f"interrupt reason must be a non-empty string, got {reason!r}"
            )
        if not run.durable:
            warn_once(
                _log,
                "interrupt-without-store",
                "node %r paused run %s with no durable store: it lives in this process's memory "
                "only and cannot be resumed from elsewhere; pass store='sqlite:///...' (or a "
                "PostgreSQL URL) to execute (said once per process)",
                self._node.name,
                run.run_id,
            )
        raise Interrupt(reason, prepared, self._node.name, self._item[0], index, fallback)

    # ------------------------------------------------------------------ recorded effects

    def effect(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` once and record its result; serve it from the ledger after.

        On resume and replay the recorded result is returned without calling ``fn``
        (an error it raised is raised again). For an ``async`` ``fn`` this returns
        an awaitable: ``value = await runtime.effect("fetch", fetch, url)``. The
        arguments are recorded with the result (``codon_sdk.runtime._request``), and a
        replay whose code passes others reports ``request changed``.
        """
        request: dict[str, Any] = {}
        if args:
            request["args"] = list(args)
        if kwargs:
            request["kwargs"] = kwargs
        if is_async_callable(fn):
            return self._aeffect(
                self.effect_slot(name, request=request, defer=True), fn, args, kwargs
            )
        slot = self.effect_slot(name, request=request)
        if slot.recorded is not None:
            return slot.served()
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            slot.record_error(exc)
            raise
        slot.record(value)
        return value

    async def _aeffect(
        self,
        slot: EffectSlot,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if slot.recorded is not None:
            return slot.served()
        await slot.cleared()
        try:
            value = await fn(*args, **kwargs)
        except Exception as exc:
            slot.record_error(exc)
            raise
        slot.record(value)
        return value

    def effect_slot(
        self,
        name: str,
        *,
        request: Any = _NO_REQUEST,
        request_at: str | None = None,
        llm: Mapping[str, Any] | None = None,
        defer: bool = False,
    ) -> EffectSlot:
        """Reserve the next effect of this activation (for integrations that record later).

        ``slot.recorded`` is the recorded result when the ledger has one (resume,
        replay): serve it with ``slot.served()``. Otherwise make the call, then
        ``slot.record(value, metadata=...)`` or ``slot.record_error(exc)``: a
        streamed LLM response is recorded when its stream ends. During a replay a
        slot the ledger lacks raises ``EffectDivergence`` here: replay never calls out,
        except for the nodes the replay was asked to run ``live``.

        ``request`` is what the effect asks for (JSON-like; parts with no canonical
        encoding are recorded by type name): it is recorded with the effect, and a
        replay asking for another one reports ``request changed`` and still serves
        the recorded answer. ``request_at`` names the dotted metadata path where the
        caller records the same request itself (``"llm.request"``), so it is kept once.
        ``llm`` (``{"provider": ..., "model": ...}``) says the effect is an LLM call, for the
        workload's policies, budgets and rate limits (``codon_sdk.governance``).

        Those checks run here, and a rate-limit wait blocks the thread. Async code passes
        ``defer=True`` and awaits :meth:`EffectSlot.cleared` before making the call, so
        the wait awaits instead of blocking the event loop; the slot refuses to record
        until it is cleared.
        """
        self._check_open("record an effect")
        if not isinstance(name, str) or not name:
            raise WorkloadRuntimeError(f"effect name must be a non-empty string, got {name!r}")
        key = (self._item[0], self._attempt, self._effects)
        self._effects += 1
        run = self._run
        recorded = run.effects.get(key)
        # a resume serves what it holds without writing or comparing: nothing to ask
        needed = request is not _NO_REQUEST and (recorded is None or run.replaying)
        asked = ask(request, run.redact) if needed else None
        if run.replaying:
            live = self._node.name in run.live
            if recorded is not None and recorded.name == name and asked is not None:
                self._compare_request(name, key, recorded, asked)
            if live:  # called for real; the recording was only compared with
                recorded = None
            elif recorded is None:
                raise self._diverged(
                    f"replay: node {self._node.name!r} asked for effect {name!r} (#{key[2]} of "
                    f"token {key[0]}, attempt {key[1]}) which the ledger does not hold; replay "
                    "never calls the outside world"
                )
        if recorded is not None and recorded.name != name:
            raise self._diverged(
                f"node {self._node.name!r} asked for effect {name!r} as #{key[2]} of token "
                f"{key[0]}, but the ledger recorded {recorded.name!r} there; the code changed "
                "its calls"
            )
        slot = EffectSlot(self, name, key, recorded, asked=asked, asked_at=request_at)
        policy = self._node.request_cache
        if recorded is None and asked is not None and policy is not None and run.requests:
            cache_key, served = run.requests.lookup(run, self._node, name, asked, policy)
            if served is not None:  # recorded here as what it serves; never sent
                meta = {**served.metadata, **slot.key_metadata()}
                self._record(slot, run.prep(served.value), meta)
                slot.recorded = served
                return slot
            slot.cache_key = cache_key
        if recorded is None:  # about to call out: a durable run must still hold its lease
            asked_for = None if request is _NO_REQUEST else request
            if defer:
                slot.gate = (asked_for, llm)
            else:
                self._clear(name, asked_for, llm)
        return slot

    def _clear(self, name: str, request: Any, llm: Mapping[str, Any] | None) -> None:
        run = self._run
        if run.governor is not None:  # policies, budgets, rate limits: may raise or wait
            run.governor.call(self, name, request, llm)
        run.rec.confirm_lease()

    async def _aclear(self, name: str, request: Any, llm: Mapping[str, Any] | None) -> None:
        run = self._run
        if run.governor is not None:
            await run.governor.acall(self, name, request, llm)
        run.rec.confirm_lease()

    def _compare_request(
        self, name: str, key: tuple[str, int, int], recorded: RecordedEffect, asked: Request
    ) -> None:
        changed = compare_request(recorded.metadata, asked)
        if changed is not None:
            was, now, found = changed
            self._run.request_changes.append(
                RequestChange(key[0], self._node.name, name, key[2], recorded.seq, was, now, found)
            )

    def now(self) -> datetime:
        """The current UTC time, recorded as an effect (the same instant on resume and replay)."""
        value: datetime = self.effect("now", _utc_now)
        return value

    def random(self) -> float:
        """A random float in [0, 1), recorded as an effect."""
        value: float = self.effect("random", _random.random)
        return value

    def _diverged(self, message: str) -> EffectDivergence:
        # noted on the run too, so a node that swallows the exception cannot hide it
        self._run.divergences.append((self._item[0], message))
        return EffectDivergence(message)

    @property
    def redact(self) -> Callable[[str], str] | None:
        """The run's redaction hook for data that leaves the process (spans, logs): secrets
        come out masked, never sealed (the ledger's own hook is the run's)."""
        return self._run.mask

    def _record(self, slot: EffectSlot, value: Any, meta: dict[str, Any]) -> int:
        return self._run.record_effect(self._node.name, slot.key[0], meta, value)


class EffectSlot:
    """One reserved effect of an activation (see :meth:`NodeRuntime.effect_slot`)."""

    __slots__ = (
        "_asked",
        "_asked_at",
        "_done",
        "_handle",
        "cache_key",
        "gate",
        "key",
        "name",
        "recorded",
    )

    def __init__(
        self,
        handle: NodeRuntime,
        name: str,
        key: tuple[str, int, int],
        recorded: RecordedEffect | None,
        *,
        asked: Request | None = None,
        asked_at: str | None = None,
    ) -> None:
        self._handle = handle
        self.name = name
        self.key = key
        self.recorded = recorded
        self._asked = asked
        self._asked_at = asked_at
        self._done = False
        #: the request cache's key when this effect missed it (its recording is indexed)
        self.cache_key: str | None = None
        #: (request, llm) of the checks a deferred slot still owes (see ``cleared``)
        self.gate: tuple[Any, Mapping[str, Any] | None] | None = None

    async def cleared(self) -> None:
        """Run the checks a ``defer=True`` slot deferred (policies, budgets, rate limits,
        the lease), awaiting any rate-limit wait. Call it before making the call; it does
        nothing for a slot that owes none."""
        gate = self.gate
        if gate is None:
            return
        self.gate = None
        await self._handle._aclear(self.name, *gate)

    def key_metadata(self) -> dict[str, Any]:
        """Where this effect sits in its activation: the metadata every recording carries."""
        return {"name": self.name, "attempt": self.key[1], "index": self.key[2]}

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata recorded with the effect (e.g. LLM usage), when it was recorded."""
        return {} if self.recorded is None else dict(self.recorded.metadata)

    def served(self) -> Any:
        """The recorded value (or the recorded error, raised again)."""
        assert self.recorded is not None
        if self.recorded.error is not None:
            raise _rebuild_error(self.recorded.error)
        return self.recorded.value

    def record(self, value: Any, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Record the effect's value (made durable before this returns)."""
        try:
            prepared = self._handle._run.prep(value)
        except CanonicalEncodingError as exc:
            raise WorkloadRuntimeError(
                f"effect {self.name!r} of node {self._handle.node!r} returned a value that cannot "
                f"be recorded ({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        self._write(prepared, metadata, None)

    def record_error(
        self, error: BaseException, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Record that the effect raised ``error`` (resume and replay raise it again, as a
        :class:`~codon_sdk.errors.RecordedError` that is also an instance of its class when
        that class is a standard-library or registered one)."""
        kind = type(error)
        remember_type(kind)
        trace = "".join(traceback.format_exception(kind, error, error.__traceback__))
        self._write(
            None,
            metadata,
            {
                "type": type_path(kind),
                "message": exception_message(error),
                "traceback": valid_unicode(trace[-8192:]),
            },
        )

    def _write(self, prepared: Any, metadata: Mapping[str, Any] | None, error: Any) -> None:
        if self._done or self.recorded is not None:
            raise WorkloadRuntimeError(f"effect {self.name!r} ({self.key}) is already recorded")
        if self.gate is not None:
            raise WorkloadRuntimeError(
                f"effect {self.name!r} ({self.key}) was reserved with defer=True and never "
                "cleared: await slot.cleared() before making the call, so the workload's "
                "policies, budgets and rate limits see it"
            )
        self._done = True
        meta: dict[str, Any] = dict(metadata or {})
        meta.update(self.key_metadata())
        if error is not None:
            meta["error"] = error
        if self._asked is not None:
            meta["request"] = self._asked.record(meta, self._asked_at)
        if self.cache_key is not None:
            meta["request_cache"] = "miss"
        seq = self._handle._record(self, prepared, meta)
        run = self._handle._run
        if self.cache_key is not None and error is None and run.requests is not None:
            run.requests.put(run, self._handle._node, self.cache_key, seq)


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` gives an awaitable: an ``async def`` function, a
    ``functools.partial`` of one, or an object whose ``__call__`` is ``async def``."""
    target = fn
    while True:
        if inspect.iscoroutinefunction(target):
            return True
        inner = getattr(target, "func", None)  # functools.partial
        if inner is None or inner is target:
            break
        target = inner
    call = getattr(type(fn), "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call) and not inspect.isfunction(fn)


def _utc_now() -> datetime:
    return datetime.fromtimestamp(time.time(), tz=timezone.utc)


def _rebuild_error(error: Mapping[str, Any]) -> BaseException:
    """The exception a recorded effect raised, rebuilt from the ledger without trusting it."""
    return recorded_error(error.get("type"), error.get("message"), error.get("traceback", ""))
