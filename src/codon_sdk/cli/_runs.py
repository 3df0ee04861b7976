"""``codon runs list``, ``codon runs show``, ``codon export``."""

from __future__ import annotations

import argparse
import sys

import orjson

from codon_sdk.cli._common import EXIT_OK, CliError, emit_json, opened_store
from codon_sdk.runtime._launch import load_report
from codon_sdk.stores._base import RUN_STATUSES

__all__ = ["export", "runs_list", "runs_show"]


def runs_list(args: argparse.Namespace) -> int:
    if args.status is not None and args.status not in RUN_STATUSES:
        raise CliError(f"--status must be one of {', '.join(RUN_STATUSES)}, got {args.status!r}")
    with opened_store(args.ledger) as store:
        runs = store.runs(status=args.status, workload_name=args.workload, limit=args.limit)
    if args.json:
        emit_json([r.to_dict() for r in runs])
        return EXIT_OK
    if not runs:
        print("no runs")
        return EXIT_OK
    print(f"{'RUN ID':<34} {'STATUS':<12} {'WORKLOAD':<24} {'EVENTS':>7}  STARTED")
    for r in runs:
        workload = f"{r.workload_name}:{r.workload_version}"
        print(
            f"{r.run_id:<34} {r.status:<12} {workload:<24} {r.event_count:>7}  "
            f"{r.started_at.isoformat(timespec='seconds')}"
        )
    return EXIT_OK


def runs_show(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:
        info = store.get_run(args.run_id)
        report = load_report(store, args.run_id)
    if args.json:
        emit_json(
            {
                "run": info.to_dict(),
                "state": report.state,
                "results": {
                    node: [r.result for r in records] for node, records in report.results.items()
                },
                "events": [orjson.loads(e) for e in report.entries],
            }
        )
        return EXIT_OK
    print(report.summary())
    print("  ledger:")
    for ev in report.ledger:
        who = ev.source_node or ""
        if ev.target_node:
            who += f" -> {ev.target_node}"
        token = f" [{ev.token_id}]" if ev.token_id else ""
        actor = f" by {ev.actor}" if ev.actor else ""
        print(
            f"    {ev.seq:>5}  {ev.timestamp.isoformat(timespec='milliseconds')}  "
            f"{ev.event_type:<16} {who}{token}{actor}"
        )
    return EXIT_OK


def export(args: argparse.Namespace) -> int:
    if args.format != "jsonl":
        raise CliError(f"unknown --format {args.format!r}; supported: jsonl")
    with opened_store(args.ledger) as store:
        entries = store.read(args.run_id)
        notes = store.checkpoints(args.run_id)
    out = sys.stdout.buffer
    for entry in entries:
        out.write(entry + b"\n")
    if notes:  # the last line: the latest signed checkpoint, to verify the lines above
        size, note = notes[-1]
        out.write(orjson.dumps({"codon_checkpoint": {"size": size, "note": note.decode()}}) + b"\n")
    out.flush()
    return EXIT_OK
