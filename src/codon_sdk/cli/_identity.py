"""``codon identity MODULE:ATTR`` and ``codon identity diff OLD NEW``: what went into a
workload's logic id, and what changed between two versions (a workload, or a recorded
run's logic named ``run:RUN_ID``). Exit 0; ``diff`` exits 1 when the versions differ."""

from __future__ import annotations

import argparse
from typing import Any

from codon_sdk._text import printable
from codon_sdk.cli._common import EXIT_FAILED, EXIT_OK, CliError, emit_json, opened_store
from codon_sdk.cli._replay import load_workload
from codon_sdk.errors import CodonError
from codon_sdk.identity import IdentityDiff
from codon_sdk.ledger import RUN_STARTED
from codon_sdk.replay import check_upgrade, stranded_runs, versions
from codon_sdk.runtime import load_report

__all__ = ["check_upgrade_command", "identity", "stranded_list", "versions_command"]

RUN_PREFIX = "run:"


def identity(args: argparse.Namespace) -> int:
    targets: list[str] = list(args.targets)
    if targets[0] == "diff":
        if len(targets) != 3:
            raise CliError(
                "identity diff takes two versions: MODULE:ATTR or run:RUN_ID, e.g. "
                "`codon identity diff run:42 agents.support:workload`"
            )
        return _diff(targets[1], targets[2], args)
    if len(targets) != 1:
        raise CliError("identity takes one MODULE:ATTR (or `identity diff OLD NEW`)")
    if targets[0].startswith(RUN_PREFIX):
        raise CliError(
            "a recorded run keeps each part's digest, not the code: compare it with "
            f"`codon identity diff {targets[0]} MODULE:ATTR`"
        )
    explanation = load_workload(targets[0]).explain_identity()
    if args.json:
        emit_json(explanation.to_dict())
    else:
        print(printable_block(str(explanation)))
    return EXIT_OK


def printable_block(text: str) -> str:
    return "\n".join(printable(line) for line in text.splitlines())


def _diff(old: str, new: str, args: argparse.Namespace) -> int:
    if new.startswith(RUN_PREFIX):
        raise CliError(
            f"{new}: the newer version must be a workload (MODULE:ATTR); a run records only "
            "digests, so a run is compared with the code of today"
        )
    workload = load_workload(new)
    if old.startswith(RUN_PREFIX):
        result = workload.identity_diff(_recorded_logic(old[len(RUN_PREFIX) :], args))
    else:
        result = load_workload(old).explain_identity().diff(workload.explain_identity())
    _print(result, args)
    return EXIT_OK if result.identical else EXIT_FAILED


def _recorded_logic(run_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """The run's ``run_started`` payload, read through the checks every reader makes."""
    with opened_store(args.ledger) as store:
        try:
            report = load_report(store, run_id)
        except CodonError as exc:
            raise CliError(str(exc)) from exc
    for event in report.ledger:
        if event.event_type == RUN_STARTED:
            return dict(event.metadata)
    raise CliError(f"run {printable(run_id)!r} has no run_started event to compare with")


def _print(result: IdentityDiff, args: argparse.Namespace) -> None:
    if args.json:
        emit_json(result.to_dict())
    else:
        print(printable_block(str(result)))


def versions_command(args: argparse.Namespace) -> int:
    """``codon versions [--workload NAME]``: the logic ids the store's runs were recorded with."""
    with opened_store(args.ledger) as store:
        found = versions(store, workload_name=args.workload)
    if args.json:
        emit_json([v.to_dict() for v in found])
        return EXIT_OK
    if not found:
        print("no runs")
        return EXIT_OK
    print(f"{'LOGIC ID':<14} {'WORKLOAD':<24} {'RUNS':>6}  {'FIRST':<19}  {'LAST':<19}  STATUSES")
    for v in found:
        statuses = ", ".join(f"{printable(k)} {n}" for k, n in v.statuses.items())
        print(
            f"{v.logic_id[:12]}…  {printable(v.workload):<24} {v.runs:>6}  "
            f"{v.first_started.isoformat(timespec='seconds')[:19]}  "
            f"{v.last_started.isoformat(timespec='seconds')[:19]}  {statuses}"
        )
    return EXIT_OK


def check_upgrade_command(args: argparse.Namespace) -> int:
    """``codon runs check-upgrade RUN_ID --workload MODULE:ATTR``: exit 0 when today's code
    replays the run's recorded part identically, 1 when it diverges."""
    workload = load_workload(args.workload)
    with opened_store(args.ledger) as store:
        try:
            result = check_upgrade(store, args.run_id, workload)
        except CodonError as exc:
            raise CliError(str(exc)) from exc
    if args.json:
        emit_json(result.to_dict())
    else:
        print(printable_block(str(result)))
    return EXIT_OK if result.safe else EXIT_FAILED


def stranded_list(args: argparse.Namespace, workload_spec: str) -> int:
    """``codon runs list --stranded MODULE:ATTR``: paused and crashed runs its code strands."""
    workload = load_workload(workload_spec)
    with opened_store(args.ledger) as store:
        found = stranded_runs(store, workload)
    if args.json:
        emit_json([s.to_dict() for s in found])
        return EXIT_OK
    if not found:
        print(f"no stranded runs for logic id {workload.logic_id[:12]}…")
        return EXIT_OK
    print(f"{'RUN ID':<34} {'STATE':<8} {'RECORDED LOGIC':<14} CHANGED NODES")
    for s in found:
        reasons = s.change.get("reasons") or {}
        changed = "; ".join(
            f"{n} ({', '.join(reasons.get(n) or ['unknown'])})" for n in s.change["changed_nodes"]
        )
        extra = [f"+{n}" for n in s.change["added_nodes"]] + [
            f"-{n}" for n in s.change["removed_nodes"]
        ]
        print(
            f"{printable(s.info.run_id):<34} {s.state:<8} {s.info.logic_id[:12]}…  "
            f"{printable(' '.join([changed, *extra]).strip()) or 'edges'}"
        )
    return EXIT_OK
