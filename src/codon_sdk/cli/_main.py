"""Argument parsing for ``codon``; each command lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from codon_sdk._version import __version__
from codon_sdk.cli._common import add_ledger, run_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from codon_sdk.cli import (
        _approvals,
        _audit,
        _db,
        _identity,
        _operate,
        _replay,
        _retention,
        _runs,
        _sinks,
        _ui,
    )

    parser = argparse.ArgumentParser(
        prog="codon",
        description="Inspect, verify, replay and export Codon run ledgers.",
        epilog="Every command reads the ledger from --ledger, else $CODON_LEDGER_URL, "
        "else sqlite:///.codon/ledger.db.",
    )
    parser.add_argument("--version", action="version", version=f"codon-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = commands.add_parser("runs", help="list and show runs")
    runs_cmds = runs.add_subparsers(dest="runs_command", required=True, metavar="SUBCOMMAND")
    listing = runs_cmds.add_parser("list", help="list runs, newest first")
    add_ledger(listing)
    listing.add_argument(
        "--status",
        help="only runs with this status (running, completed, stopped, failed, interrupted, or "
        "stale: recorded as running, its owner gone)",
    )
    listing.add_argument(
        "--pending",
        action="store_true",
        help="only runs waiting for input, with the question, node, payload and age",
    )
    listing.add_argument("--workload", help="only runs of this workload name")
    listing.add_argument(
        "--limit", type=int, help=f"at most this many runs (default {_runs.DEFAULT_PAGE})"
    )
    listing.add_argument("--logic-id", help="only runs recorded with this logic id")
    listing.add_argument("--deployment", metavar="ID", help="only runs of this deployment id")
    listing.add_argument("--parent", metavar="RUN_ID", help="only runs forked from this run")
    listing.add_argument(
        "--since",
        metavar="TIME",
        help="only runs started at or after TIME: ISO 8601 (UTC unless an offset is given) "
        "or an age such as 30m, 2h, 7d",
    )
    listing.add_argument(
        "--until", metavar="TIME", help="only runs started before TIME (as --since)"
    )
    listing.add_argument(
        "--after",
        metavar="RUN_ID",
        help="the next page: the runs listed after this one (the last of the previous page)",
    )
    listing.add_argument(
        "--stranded",
        metavar="MODULE:ATTR",
        help="only paused and crashed runs that this workload's code does not accept (another "
        "logic id, not declared compatible); each with the nodes that changed and why",
    )
    listing.set_defaults(func=_runs.runs_list)
    upgrade = runs_cmds.add_parser(
        "check-upgrade",
        help="replay a run's recorded part with today's code: exit 0 when it decides the same "
        "(safe to migrate with allow_logic_change), 1 when it diverges",
    )
    upgrade.add_argument("run_id")
    upgrade.add_argument("--workload", required=True, metavar="MODULE:ATTR")
    add_ledger(upgrade)
    upgrade.set_defaults(func=_identity.check_upgrade_command)
    show = runs_cmds.add_parser("show", help="one run: summary, results and its ledger")
    show.add_argument("run_id")
    add_ledger(show)
    _add_progress(show)
    show.set_defaults(func=_runs.runs_show)

    export = commands.add_parser("export", help="a run's ledger entries as JSON Lines")
    export.add_argument("run_id")
    export.add_argument("--ledger", metavar="URL", help="ledger store URL")
    export.add_argument("--format", default="jsonl", help="output format (jsonl)")
    export.add_argument(
        "--force",
        action="store_true",
        help="export a run that does not verify anyway (a warning goes to stderr)",
    )
    export.add_argument(
        "--blobs",
        choices=("omit", "include"),
        default="omit",
        help="payloads stored as blobs: omit them (entries keep their digests; the default) "
        'or include each once, as a {"codon_blob": {"sha256", "size", "data": base64}} line '
        "after the entries",
    )
    _add_progress(export)
    export.set_defaults(func=_runs.export)

    verify = commands.add_parser(
        "verify",
        help="verify a run's ledger (exit 0 verified/unanchored, 1 tampered/incomplete, 2 usage); "
        "with --all every run and the log of runs (exit 0 unless something was tampered with: "
        "runs still running or paused are reported as incomplete)",
    )
    verify.add_argument("run_id", nargs="?")
    verify.add_argument("--all", action="store_true", help="every run, and the log of runs")
    verify.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="the directory checkpoints were exported to (a FileCheckpointSink): each run's "
        "notes and the log's are checked (default $CODON_CHECKPOINT_DIR)",
    )
    verify.add_argument(
        "--checkpoint",
        action="append",
        metavar="FILE",
        help="a signed checkpoint kept outside the database (repeatable); with --all, of the "
        "log of runs",
    )
    verify.add_argument(
        "--vkey",
        action="append",
        metavar="KEY",
        help="trusted verifier key, or a file holding one (repeatable; default "
        "$CODON_VERIFIER_KEYS)",
    )
    add_ledger(verify)
    verify.set_defaults(func=_audit.verify)

    keygen = commands.add_parser("keygen", help="create an Ed25519 signer/verifier key pair")
    keygen.add_argument("name", help="key name, e.g. acme.example/ledger")
    keygen.add_argument("--out-dir", default=".codon/keys", help="where to write the key files")
    keygen.add_argument("--force", action="store_true", help="replace existing key files")
    keygen.set_defaults(func=_audit.keygen)

    prove = commands.add_parser(
        "prove", help="an inclusion proof of one event against the run's latest checkpoint"
    )
    prove.add_argument("run_id")
    prove.add_argument("seq", type=int)
    prove.add_argument("--ledger", metavar="URL", help="ledger store URL")
    prove.add_argument("--out", metavar="FILE", help="write the proof here (default: stdout)")
    prove.set_defaults(func=_audit.prove)

    verify_proof = commands.add_parser("verify-proof", help="check a proof file offline")
    verify_proof.add_argument("file")
    verify_proof.add_argument("--vkey", action="append", metavar="KEY")
    verify_proof.add_argument("--json", action="store_true")
    verify_proof.set_defaults(func=_audit.verify_proof)

    replay = commands.add_parser(
        "replay", help="re-run a recorded run with today's code, offline, and compare"
    )
    replay.add_argument("run_id")
    replay.add_argument("--workload", required=True, metavar="MODULE:ATTR")
    replay.add_argument(
        "--live",
        action="append",
        default=[],
        metavar="NODE",
        help="make this node's effects and LLM calls for real (repeatable); the rest is "
        "served from the ledger",
    )
    replay.add_argument(
        "--force",
        action="store_true",
        help="replay a recorded run that does not verify anyway (the output says so; exit 1)",
    )
    add_ledger(replay)
    replay.set_defaults(func=_replay.replay)

    ident = commands.add_parser(
        "identity",
        help="what went into a workload's logic id (`identity MODULE:ATTR`), or what changed "
        "between two versions (`identity diff OLD NEW`, OLD a MODULE:ATTR or run:RUN_ID; "
        "exit 1 when they differ)",
    )
    ident.add_argument("targets", nargs="+", metavar="TARGET", help="MODULE:ATTR, or diff OLD NEW")
    add_ledger(ident)
    ident.set_defaults(func=_identity.identity)

    resume = commands.add_parser(
        "resume",
        help="continue a paused or crashed run (an approval: --input and --actor); exit 2 when "
        "the run cannot be resumed as asked, nothing written",
    )
    resume.add_argument("run_id")
    resume.add_argument("--workload", required=True, metavar="MODULE:ATTR")
    resume.add_argument("--input", metavar="JSON", help="what the interrupt returns, as JSON")
    resume.add_argument("--actor", metavar="NAME", help="who decided (recorded in the ledger)")
    _approvals.add_resume_options(resume)
    add_ledger(resume)
    resume.set_defaults(func=_operate.resume_command)

    fork = commands.add_parser(
        "fork", help="start a new run from a recorded run's history up to a seq, then run live"
    )
    fork.add_argument("run_id")
    fork.add_argument("--at", type=int, required=True, metavar="SEQ", help="last seq to keep")
    fork.add_argument("--workload", required=True, metavar="MODULE:ATTR")
    fork.add_argument(
        "--state-patch", metavar="JSON", help="a JSON object merged into the state at SEQ"
    )
    fork.add_argument("--run-id", dest="run_id_new", metavar="ID", help="the new run's id")
    add_ledger(fork)
    fork.set_defaults(func=_operate.fork_command)

    recover = commands.add_parser(
        "recover",
        help="resume every stale run (recorded as running, owner gone) of a workload, each "
        "once; safe to run from several processes at once",
    )
    recover.add_argument("--workload", required=True, metavar="MODULE:ATTR")
    add_ledger(recover)
    recover.set_defaults(func=_operate.recover_command)

    worker = commands.add_parser(
        "worker",
        help="a long-lived process that resumes, on a Ray cluster, every run of a workload "
        "submitted with workload.submit whose driver never started or died (once its lease "
        "expires); several may run at once",
    )
    worker.add_argument("--workload", required=True, metavar="MODULE:WORKLOAD")
    worker.add_argument("--ray", required=True, metavar="ADDRESS", help="the Ray head, host:port")
    worker.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between looks"
    )
    worker.add_argument("--once", action="store_true", help="look once, then exit")
    add_ledger(worker)
    worker.set_defaults(func=_operate.worker_command)

    versions = commands.add_parser(
        "versions", help="the logic ids runs were recorded with: first and last run, counts"
    )
    versions.add_argument("--workload", metavar="NAME", help="only runs of this workload name")
    add_ledger(versions)
    versions.set_defaults(func=_identity.versions_command)

    _approvals.add_commands(commands)
    _retention.add_commands(commands)
    _db.add_db(commands)
    _ui.add_commands(commands)
    _sinks.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        help="report how far the read has got on stderr even when stderr is not a terminal "
        "(on a terminal it is always reported); the run is read a page at a time",
    )
