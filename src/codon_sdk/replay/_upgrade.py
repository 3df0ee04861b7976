"""Code changes under runs in flight: which versions ran, which runs today's code strands,
and whether a stranded run would take the new code.

A run is *stranded* for a workload when it is paused (``interrupted``) or crashed (still
``running`` with a stale lease) and was recorded with another logic id that the workload
does not accept (a node's ``compatible_with`` can accept a reviewed change). For each one
the operator chooses: resume on the recorded logic (the old code), migrate with
``allow_logic_change=True``, or first :func:`check_upgrade`: replay the recorded part with
today's code and see whether it would decide the same.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from codon_sdk._clock import from_us
from codon_sdk._text import printable
from codon_sdk.errors import LedgerError
from codon_sdk.ledger import RUN_STARTED, parse_entry
from codon_sdk.runtime import logic_diff, open_ledger
from codon_sdk.stores import LedgerStore, RunInfo, lease_is_stale

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime import CodonWorkload, ReplayReport

__all__ = [
    "LogicVersion",
    "StrandedRun",
    "UpgradeCheck",
    "check_upgrade",
    "stranded_runs",
    "versions",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class LogicVersion:
    """One logic id seen in a store: which workload, when, how many runs, how they ended."""

    logic_id: str
    workload: str
    runs: int
    first_started: datetime
    last_started: datetime
    statuses: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "logic_id": self.logic_id,
            "workload": self.workload,
            "runs": self.runs,
            "first_started": self.first_started.isoformat(),
            "last_started": self.last_started.isoformat(),
            "statuses": dict(self.statuses),
        }


def versions(store: str | LedgerStore, *, workload_name: str | None = None) -> list[LogicVersion]:
    """Every logic id the store's runs were recorded with, newest first."""
    ledger, opened = open_ledger(store)
    try:
        runs = ledger.runs(workload_name=workload_name)
    finally:
        if opened:
            ledger.close()
    grouped: dict[str, list[RunInfo]] = {}
    for info in runs:
        grouped.setdefault(info.logic_id, []).append(info)
    found = [
        LogicVersion(
            logic_id=logic_id,
            workload=f"{group[0].workload_name}:{group[0].workload_version}",
            runs=len(group),
            first_started=from_us(min(r.started_us for r in group)),
            last_started=from_us(max(r.started_us for r in group)),
            statuses=dict(sorted(Counter(r.status for r in group).items())),
        )
        for logic_id, group in grouped.items()
    ]
    return sorted(found, key=lambda v: (v.last_started, v.logic_id), reverse=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class StrandedRun:
    """An unfinished run recorded with logic the workload does not accept."""

    info: RunInfo
    state: str
    change: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "state": self.state, "logic_change": self.change}


def _unfinished_state(info: RunInfo, now: int) -> str | None:
    if info.status == "interrupted":
        return "paused"
    if info.status == "running" and lease_is_stale(info, now_us=now):
        return "crashed"
    return None


def _started(ledger: LedgerStore, run_id: str) -> dict[str, Any]:
    """The run's ``run_started`` payload (its first entry), or {} when it cannot be read."""
    try:
        first = ledger.read(run_id, 0, 1)
        event = parse_entry(first[0]) if first else None
    except LedgerError:
        return {}
    if event is None or event.type != RUN_STARTED or not isinstance(event.metadata, dict):
        return {}
    return event.metadata


def stranded_runs(store: str | LedgerStore, workload: CodonWorkload) -> list[StrandedRun]:
    """Paused and crashed runs of ``workload``'s name that its code does not accept."""
    ledger, opened = open_ledger(store)
    try:
        now = time.time_ns() // 1000
        found: list[StrandedRun] = []
        for info in ledger.runs(workload_name=workload.name):
            state = _unfinished_state(info, now)
            if state is None or info.logic_id == workload.logic_id:
                continue
            change = logic_diff(_started(ledger, info.run_id), workload)
            if not change["compatible"]:
                found.append(StrandedRun(info=info, state=state, change=change))
        return found
    finally:
        if opened:
            ledger.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeCheck:
    """Whether a recorded run would take today's code: its logic change and a replay."""

    run_id: str
    status: str
    change: dict[str, Any]
    replay: ReplayReport

    @property
    def safe(self) -> bool:
        """True when replaying the recorded part with today's code decides the same."""
        return self.replay.identical

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "safe": self.safe,
            "logic_change": self.change,
            "replay": self.replay.to_dict(),
        }

    def __str__(self) -> str:
        run = printable(self.run_id)
        lines = [f"run {run} ({printable(self.status)})"]
        if not self.change:
            lines.append("  same logic id: nothing to upgrade")
        else:
            reasons = self.change.get("reasons") or {}
            for node in self.change.get("changed_nodes", []):
                why = ", ".join(reasons.get(node) or ["unknown"])
                lines.append(f"  changed  {printable(node)}: {printable(why)}")
            for key, label in (("added_nodes", "added  "), ("removed_nodes", "removed")):
                lines += [f"  {label}  {printable(n)}" for n in self.change.get(key, [])]
            if self.change.get("compatible"):
                lines.append("  every changed node declares the recorded id compatible")
        if self.safe:
            lines.append("  replay with today's code: identical (safe to migrate)")
        else:
            first = self.replay.divergences[0] if self.replay.divergences else None
            what = f": {printable(str(first))}" if first is not None else ""
            lines.append(f"  replay with today's code: DIVERGED{what}")
        lines.append(
            "  choices: resume with the code that recorded it; migrate with "
            "allow_logic_change=True (recorded); or change the code until this check is clean"
        )
        return "\n".join(lines)


def check_upgrade(store: str | LedgerStore, run_id: str, workload: CodonWorkload) -> UpgradeCheck:
    """Replay run ``run_id``'s recorded part with ``workload`` (offline, nothing recorded)
    and report its logic change and whether today's code would decide the same."""
    ledger, opened = open_ledger(store)
    try:
        info = ledger.get_run(run_id)
        started = _started(ledger, run_id)
        report = workload.replay(run_id, store=ledger)
    finally:
        if opened:
            ledger.close()
    change = logic_diff(started, workload) if info.logic_id != workload.logic_id else {}
    return UpgradeCheck(run_id=run_id, status=info.status, change=change, replay=report)
