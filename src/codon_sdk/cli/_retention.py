"""Erasure and retention from the command line: ``codon erase --subject ID`` and ``codon
retention apply|set|hold|release|list`` (docs: guides/retention.md)."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable
from typing import Any, Final

from codon_sdk._text import printable
from codon_sdk.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_ledger,
    emit_json,
    opened_store,
)
from codon_sdk.errors import ConfigurationError, RunConflictError, RunHeldError, UntrustedRunError
from codon_sdk.stores import (
    Erasure,
    apply_retention,
    erase_subject,
    hold_run,
    legal_holds,
    release_run,
    retention_policies,
    set_retention,
)

__all__ = ["add_commands"]

_AGE: Final = re.compile(r"(\d+)([smhdw])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_REFUSALS: Final = (RunConflictError, RunHeldError, UntrustedRunError)


def add_commands(commands: Any) -> None:
    """``codon erase`` and ``codon retention ...``."""
    erase = commands.add_parser(
        "erase",
        help="erase the payloads a subject id was recorded against (execute(subject=), "
        "record_event(subject=)); the chain, roots, checkpoints and proofs still verify",
    )
    erase.add_argument("--subject", required=True, metavar="ID", help="the subject id to erase")
    _add_common(erase)
    erase.set_defaults(func=_erase)

    retention = commands.add_parser(
        "retention", help="retention: erase expired runs, per-workload policies, legal holds"
    )
    cmds = retention.add_subparsers(dest="retention_command", required=True, metavar="SUBCOMMAND")
    apply = cmds.add_parser(
        "apply",
        help="erase every event of each ended, unheld run past its retention (--older-than, "
        "else each workload's policy from `retention set`)",
    )
    apply.add_argument(
        "--older-than",
        metavar="AGE",
        help="erase runs that ended longer ago than this (30d, 26w, 180d; units s m h d w); "
        "without it each workload's policy decides and workloads without one are kept",
    )
    _add_common(apply)
    apply.set_defaults(func=_apply)

    policy = cmds.add_parser("set", help="keep a workload's runs for N days (0: no policy)")
    policy.add_argument("--workload", required=True, metavar="NAME", help="the workload name")
    policy.add_argument(
        "--days", required=True, type=int, metavar="N", help="days to keep (0 removes it)"
    )
    add_ledger(policy)
    policy.set_defaults(func=_set)

    hold = cmds.add_parser(
        "hold", help="put a legal hold on a run: it is not erased until released"
    )
    hold.add_argument("run_id", help="the run to hold")
    hold.add_argument("--reason", default="legal hold", metavar="TEXT", help="why it is held")
    hold.add_argument("--actor", metavar="NAME", help="who holds it (default: your user name)")
    add_ledger(hold)
    hold.set_defaults(func=_hold)

    release = cmds.add_parser("release", help="release the legal hold on a run")
    release.add_argument("run_id", help="the run to release")
    add_ledger(release)
    release.set_defaults(func=_release)

    listing = cmds.add_parser("list", help="the retention policies and the legal holds")
    add_ledger(listing)
    listing.set_defaults(func=_list)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", metavar="NAME", help="who erases, for the erasure log (default: your user name)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be erased; erase nothing"
    )
    add_ledger(parser)


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        return "unknown"


def _progress(args: argparse.Namespace) -> Callable[[int, int, str], None] | None:
    if args.json or not sys.stderr.isatty():
        return None

    def show(done: int, total: int, run_id: str) -> None:
        sys.stderr.write(f"\r\x1b[Kcodon: erased {done}/{total} runs (last {run_id})")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _report(args: argparse.Namespace, done: list[Erasure], nothing: str) -> int:
    if args.json:
        emit_json(
            [
                {
                    "run_id": e.run_id,
                    "seqs": list(e.seqs),
                    "reason": e.reason,
                    "dry_run": e.dry_run,
                    "erasure_log_line": e.line,
                    "blobs_deleted": list(e.blobs_deleted),
                }
                for e in done
            ]
        )
        return EXIT_OK
    erased = [e for e in done if e.seqs]
    if not erased:
        print(nothing)
        return EXIT_OK
    verb = "would erase" if args.dry_run else "erased"
    for e in erased:
        blobs = f", {len(e.blobs_deleted)} blob(s) deleted" if e.blobs_deleted else ""
        line = "" if e.line is None else f" (erasure log line {e.line})"
        print(f"{verb} {len(e.seqs)} event(s) of run {printable(e.run_id)}{line}{blobs}")
    if not args.dry_run:
        print(
            f"{sum(len(e.seqs) for e in erased)} event(s) in {len(erased)} run(s) erased; "
            "`codon verify` reports them as erased"
        )
    return EXIT_OK


def _erase(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:
        try:
            done = erase_subject(
                store,
                args.subject,
                actor=_actor(args),
                dry_run=args.dry_run,
                progress=_progress(args),
            )
        except ConfigurationError as exc:
            raise CliError(str(exc)) from exc
        except _REFUSALS as exc:
            raise CliError(f"nothing was erased: {exc}", EXIT_FAILED) from exc
    return _report(
        args,
        done,
        f"nothing is recorded against subject {printable(args.subject)!r} in {store.url}: "
        "nothing was erased",
    )


def _age(text: str) -> float:
    found = _AGE.fullmatch(text.strip())
    if found is None:
        raise CliError(
            f"--older-than must be an age such as 180d, 26w or 12h (units s m h d w), got "
            f"{printable(text)!r}"
        )
    return float(int(found.group(1)) * _UNIT_S[found.group(2)])


def _apply(args: argparse.Namespace) -> int:
    older = None if args.older_than is None else _age(args.older_than)
    with opened_store(args.ledger) as store:
        try:
            done = apply_retention(
                store,
                older_than_s=older,
                actor=_actor(args),
                dry_run=args.dry_run,
                progress=_progress(args),
            )
        except _REFUSALS as exc:
            raise CliError(f"retention stopped: {exc}", EXIT_FAILED) from exc
    return _report(args, done, "no run is past its retention: nothing was erased")


def _set(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:
        try:
            set_retention(store, args.workload, args.days or None)
        except ConfigurationError as exc:
            raise CliError(str(exc)) from exc
    if args.days:
        print(f"runs of {printable(args.workload)} are kept {args.days} day(s) after they end")
    else:
        print(f"workload {printable(args.workload)} has no retention policy now")
    return EXIT_OK


def _hold(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:
        added = hold_run(store, args.run_id, reason=args.reason, actor=_actor(args))
    print(
        f"run {printable(args.run_id)} is held"
        + ("" if added else " (it already was; the first hold stays)")
    )
    return EXIT_OK


def _release(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:
        released = release_run(store, args.run_id)
    if not released:
        raise CliError(f"run {printable(args.run_id)} has no legal hold to release")
    print(f"run {printable(args.run_id)} is released: retention and erasure apply to it again")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:
        policies, holds = retention_policies(store), legal_holds(store)
    if args.json:
        emit_json(
            {
                "policies": [{"workload": w, "days": d} for w, d in policies],
                "holds": [
                    {"run_id": h.run_id, "reason": h.reason, "actor": h.actor, "held_us": h.held_us}
                    for h in holds
                ],
            }
        )
        return EXIT_OK
    print("retention policies:" if policies else "no retention policy")
    for workload, days in policies:
        print(f"  {printable(workload)}: {days} day(s)")
    print("legal holds:" if holds else "no legal hold")
    for h in holds:
        print(f"  {printable(h.run_id)}: {printable(h.reason)} (by {printable(h.actor)})")
    return EXIT_OK
