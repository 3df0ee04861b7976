"""``runtime``: the handle a node function receives for one activation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from codon_sdk.errors import CanonicalEncodingError, LedgerError, WorkloadRuntimeError
from codon_sdk.identity._canonical import prepare
from codon_sdk.ledger._events import check_custom_type
from codon_sdk.runtime._records import Token

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, QueueItem, Run
    from codon_sdk.runtime._state import RunState

__all__ = ["NodeRuntime"]


class NodeRuntime:
    """What a node can do besides returning a result: emit tokens, record events, stop the run.

    One handle per activation; ``runtime.state`` is shared by every activation
    of the run.
    """

    __slots__ = ("_emitted", "_item", "_node", "_run", "_stop")

    def __init__(self, run: Run, node: NodeDef, item: QueueItem) -> None:
        self._run = run
        self._node = node
        self._item = item
        self._emitted: list[tuple[str, str, Any, Any, Any]] | None = None
        self._stop: str | None = None

    # ------------------------------------------------------------------ read-only facts

    @property
    def state(self) -> RunState:
        """The dict shared by every activation of this run; changes are recorded in the ledger."""
        return self._run.state

    @property
    def node(self) -> str:
        """Name of the node being activated."""
        return self._node.name

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def context(self) -> dict[str, Any]:
        return self._run.context

    @property
    def token(self) -> Token:
        """The token this activation is processing."""
        tid, target, payload, origin, parent, created = self._item
        return Token(tid, payload, origin, parent, target, created, self._run.lineage_of)

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
        try:
            prepared = prepare(payload)
            meta = prepare(dict(audit_metadata)) if audit_metadata else None
        except CanonicalEncodingError as exc:
            raise WorkloadRuntimeError(
                f"node {node.name!r} emitted to {target!r} a payload that cannot be recorded "
                f"({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        token_id = self._run.next_token_id()
        if self._emitted is None:
            self._emitted = []
        self._emitted.append((token_id, target, payload, prepared, meta))
        return token_id

    def record_event(self, event_type: str, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Append a custom audit event (its name may not be a built-in event type)."""
        try:
            check_custom_type(event_type)
        except LedgerError as exc:
            raise WorkloadRuntimeError(str(exc)) from exc
        try:
            meta = prepare(dict(metadata)) if metadata else None
        except CanonicalEncodingError as exc:
            raise WorkloadRuntimeError(
                f"metadata of event {event_type!r} recorded by node {self._node.name!r} cannot be "
                f"recorded ({exc.type_name} at {exc.path}): {exc}"
            ) from exc
        self._run.record_custom(self._node.name, self._item[0], event_type, meta)

    def stop(self, reason: str | None = None) -> None:
        """End the run once this activation completes; tokens still queued are not processed."""
        self._stop = reason or f"stop requested by node {self._node.name!r}"
