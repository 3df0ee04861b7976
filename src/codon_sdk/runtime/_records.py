"""The records users see: tokens, audit events, execution records and stream events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NewType

from codon_sdk._clock import from_us

__all__ = [
    "ENTRY_ORIGIN",
    "JOIN_ORIGIN",
    "AuditEvent",
    "NodeExecutionRecord",
    "RunId",
    "StreamEvent",
    "Token",
    "TokenId",
]

RunId = NewType("RunId", str)
TokenId = NewType("TokenId", str)
ENTRY_ORIGIN = "__entry__"
#: The origin of the token a join fires with (see ``_join.py``): no node emitted it.
JOIN_ORIGIN = "__join__"


class Token:
    """An immutable unit of work travelling along an edge.

    ``lineage`` (the emitting nodes from the seed to this token's origin) is
    derived on demand from the run's parent links, so a token costs O(1) memory
    however deep the run goes.
    """

    __slots__ = ("_lineage_of", "created_us", "id", "origin", "parent_id", "payload", "target")

    id: str
    payload: Any
    origin: str
    parent_id: str | None
    target: str
    created_us: int
    _lineage_of: Callable[[str], tuple[str, ...]] | None

    def __init__(
        self,
        id: str,
        payload: Any,
        origin: str,
        parent_id: str | None,
        target: str,
        created_us: int,
        lineage_of: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        setter = object.__setattr__
        setter(self, "id", id)
        setter(self, "payload", payload)
        setter(self, "origin", origin)
        setter(self, "parent_id", parent_id)
        setter(self, "target", target)
        setter(self, "created_us", created_us)
        setter(self, "_lineage_of", lineage_of)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"Token is immutable; cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"Token is immutable; cannot delete {key!r}")

    @property
    def created_at(self) -> datetime:
        return from_us(self.created_us)

    @property
    def lineage(self) -> tuple[str, ...]:
        """Names of the nodes that emitted this token's ancestors and itself, seed first."""
        if self.parent_id is None:
            return ()
        if self._lineage_of is None:
            return (self.origin,)
        return self._lineage_of(self.id)

    def __repr__(self) -> str:
        return f"Token(id={self.id!r}, origin={self.origin!r}, target={self.target!r})"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One ledger event as the documented API presents it."""

    event_type: str
    timestamp: datetime
    token_id: str | None
    source_node: str | None
    target_node: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    seq: int = -1
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class NodeExecutionRecord:
    """One completed node activation."""

    node: str
    token_id: str
    result: Any
    started_at: datetime
    finished_at: datetime

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000.0


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Something that happened during a streamed run; the last has type ``workflow_finished``."""

    event_type: str
    data: dict[str, Any]
    timestamp: datetime
