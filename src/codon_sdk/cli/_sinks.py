"""``codon audit-stream check`` and ``codon audit-stream publish``: the audit stream of a
sink (NATS JetStream) read back and checked against the chain rules, or caught up."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from codon_sdk._text import printable
from codon_sdk.cli._common import EXIT_FAILED, EXIT_OK, CliError, emit_json, opened_store
from codon_sdk.errors import InvalidSinkURLError
from codon_sdk.sinks import AuditSink, NatsSink, catch_up, check_stream, open_sink

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    stream = commands.add_parser(
        "audit-stream", help="check or catch up the audit stream an audit sink ships to"
    )
    cmds = stream.add_subparsers(dest="stream_command", required=True, metavar="SUBCOMMAND")
    check = cmds.add_parser(
        "check",
        help="check that the stream holds each run complete and in chain order (exit 0 "
        "sound, 1 a run is incomplete, out of order or altered, or the sink is unreachable, "
        "2 usage)",
    )
    check.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to check (default: "
                       "every run the stream holds)")  # fmt: skip
    _add_sink(check)
    check.add_argument(
        "--no-ledger",
        action="store_true",
        help="check the stream alone (by default each run must also match the ledger)",
    )
    check.set_defaults(func=check_command)
    publish = cmds.add_parser(
        "publish",
        help="deliver from the ledger what the sink lacks of each run (after the sink was "
        "down when a process ended)",
    )
    publish.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    publish.add_argument("--all", action="store_true", help="every run of the ledger")
    _add_sink(publish)
    publish.set_defaults(func=publish_command)


def _add_sink(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sink",
        metavar="URL",
        help="audit sink URL, e.g. nats://127.0.0.1:4222?stream=CODON_AUDIT (default "
        "$CODON_AUDIT_SINK_URL)",
    )
    parser.add_argument(
        "--ledger",
        metavar="URL",
        help="ledger store URL (default: $CODON_LEDGER_URL, else sqlite:///.codon/ledger.db)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _sink(args: argparse.Namespace) -> AuditSink:
    url = args.sink or os.environ.get("CODON_AUDIT_SINK_URL")
    if not url:
        raise CliError("name the audit sink: --sink URL or $CODON_AUDIT_SINK_URL")
    try:
        return open_sink(url)
    except InvalidSinkURLError as exc:
        raise CliError(str(exc)) from exc


def check_command(args: argparse.Namespace) -> int:
    sink = _sink(args)
    if not isinstance(sink, NatsSink):  # pragma: no cover - the one URL scheme
        raise CliError("codon audit-stream check reads NATS JetStream sinks only")
    run_ids = list(args.run_ids) or None
    try:
        if args.no_ledger:
            verdict = check_stream(sink, run_ids)
        else:
            with opened_store(args.ledger) as store:
                verdict = check_stream(sink, run_ids, store=store)
    finally:
        sink.close()
    if args.json:
        emit_json(verdict.to_dict())
    else:
        print(str(verdict))
    return EXIT_OK if verdict.ok else EXIT_FAILED


def publish_command(args: argparse.Namespace) -> int:
    if bool(args.run_ids) == bool(args.all):
        raise CliError("name the runs to publish, or pass --all (not both)")
    sink = _sink(args)
    try:
        with opened_store(args.ledger) as store:
            sent = catch_up(store, sink, None if args.all else list(args.run_ids))
    finally:
        sink.close()
    if args.json:
        emit_json(sent)
    else:
        for run_id, count in sent.items():
            print(f"{printable(run_id)}: {count} entries sent", file=sys.stdout)
    return EXIT_OK
