"""What governance did in a run, read from its ledger (the report's events)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from codon_sdk.ledger import BUDGET_EXCEEDED, POLICY_DECIDED, RATE_LIMIT_WAITED, LedgerEvent

__all__ = ["GovernanceSummary", "governance_of"]


class _HasEvents(Protocol):
    def events(self) -> Iterable[LedgerEvent]: ...


@dataclass(frozen=True, slots=True)
class GovernanceSummary:
    """Policy decisions other than allow, budget stops and rate-limit waits of one run, each
    the metadata of its ledger event with ``seq`` and ``node`` added; ``waited_s`` is the
    total time calls waited for rate limits."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    budget_stops: list[dict[str, Any]] = field(default_factory=list)
    waits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def waited_s(self) -> float:
        total = 0.0
        for wait in self.waits:
            value = wait.get("waited_s")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total += float(value)
        return total


def governance_of(report: _HasEvents) -> GovernanceSummary:
    """The :class:`GovernanceSummary` of a report (``ExecutionReport``, or a report loaded
    from a store)."""
    out = GovernanceSummary()
    lists = {
        POLICY_DECIDED: out.decisions,
        BUDGET_EXCEEDED: out.budget_stops,
        RATE_LIMIT_WAITED: out.waits,
    }
    for ev in report.events():
        bucket = lists.get(ev.type)
        if bucket is not None:
            meta = ev.metadata if isinstance(ev.metadata, dict) else {}
            bucket.append({**meta, "seq": ev.seq, "node": ev.node})
    return out
