"""Signed approvals from the command line: the keyring (``codon approvers add|list|remove``),
signing an approval (``codon approve``), and the options ``codon resume`` takes to carry one
(``--approve-key``, ``--approval``)."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
from collections.abc import Iterator
from typing import Any

from codon_sdk._text import printable
from codon_sdk.cli._common import (
    EXIT_OK,
    CliError,
    add_ledger,
    emit_json,
    json_arg,
    opened_store,
)
from codon_sdk.errors import CodonError
from codon_sdk.ledger import Approval
from codon_sdk.runtime import sign_approval
from codon_sdk.stores import LedgerStore, add_approver, approvers, remove_approver

__all__ = ["add_commands", "add_resume_options", "approval_for_resume"]

_KEY_HELP = "a signer key (PRIVATE+KEY+...) or the path of a file holding one (`codon keygen`)"


def _text(value: str, what: str) -> str:
    """A key given as text, or the path of a file holding it."""
    path = pathlib.Path(value).expanduser()
    if "+" not in value and not path.is_file():
        raise CliError(f"{what} {value!r} is neither a key nor the path of a file holding one")
    try:
        return path.read_text(encoding="utf-8").strip() if path.is_file() else value.strip()
    except OSError as exc:
        raise CliError(f"cannot read {what} from {path}: {exc}") from exc


def add_commands(commands: Any) -> None:
    """``codon approvers ...`` and ``codon approve``."""
    keyring = commands.add_parser(
        "approvers",
        help="the keyring: which approver keys may sign approvals for which workload",
    )
    cmds = keyring.add_subparsers(dest="approvers_command", required=True, metavar="SUBCOMMAND")
    for name, helptext in (
        ("add", "trust an approver's verifier key for a workload"),
        ("remove", "stop trusting a key (approvals it signed then verify as tampered)"),
    ):
        cmd = cmds.add_parser(name, help=helptext)
        cmd.add_argument("--workload", required=True, metavar="NAME", help="the workload name")
        cmd.add_argument(
            "--key", required=True, metavar="VKEY", help="a verifier key or a .vkey file"
        )
        add_ledger(cmd)
        cmd.set_defaults(func=_add if name == "add" else _remove)
    listing = cmds.add_parser("list", help="the approver keys, by workload")
    listing.add_argument("--workload", metavar="NAME", help="only this workload's approvers")
    add_ledger(listing)
    listing.set_defaults(func=_list)

    approve = commands.add_parser(
        "approve",
        help="sign an approval of an input for a paused run (pass it to `codon resume "
        "--approval FILE` on the machine that resumes)",
    )
    approve.add_argument("run_id")
    approve.add_argument("--key", required=True, metavar="KEY", help=_KEY_HELP)
    approve.add_argument("--input", metavar="JSON", help="the input approved, as JSON")
    approve.add_argument("--actor", metavar="NAME", help="who approves (default: the key name)")
    approve.add_argument("--out", metavar="FILE", help="write the signed approval here")
    add_ledger(approve)
    approve.set_defaults(func=_approve)


def add_resume_options(resume: argparse.ArgumentParser) -> None:
    """``codon resume --approve-key KEY`` or ``--approval FILE``."""
    group = resume.add_mutually_exclusive_group()
    group.add_argument(
        "--approve-key",
        metavar="KEY",
        help=f"sign the approval of --input with this approver key: {_KEY_HELP}",
    )
    group.add_argument(
        "--approval", metavar="FILE", help="a signed approval made by `codon approve`"
    )


def approval_for_resume(
    args: argparse.Namespace, store: LedgerStore, given: Any
) -> Approval | None:
    """The approval ``codon resume`` carries: signed here, read from a file, or none."""
    try:
        if getattr(args, "approve_key", None):
            key = _text(args.approve_key, "--approve-key")
            return sign_approval(store, args.run_id, input=given, key=key, actor=args.actor)
        if getattr(args, "approval", None):
            path = pathlib.Path(args.approval)
            return Approval.parse(path.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read the approval: {exc}") from exc
    except (CodonError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    return None


@contextlib.contextmanager
def _keyring(url: str | None) -> Iterator[LedgerStore]:
    """The store, with a refused key or workload name a usage error (exit 2, one line)."""
    with opened_store(url) as store:
        try:
            yield store
        except (CodonError, ValueError) as exc:
            raise CliError(str(exc)) from exc


def _add(args: argparse.Namespace) -> int:
    with _keyring(args.ledger) as store:
        key = add_approver(store, args.workload, _text(args.key, "--key"))
    print(f"approver {printable(key.name)} may approve runs of {printable(key.workload_name)}")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    with _keyring(args.ledger) as store:
        removed = remove_approver(store, args.workload, _text(args.key, "--key"))
    if not removed:
        raise CliError(f"that key is not an approver of {printable(args.workload)}")
    print(f"removed; approvals it signed for {printable(args.workload)} no longer verify")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    with _keyring(args.ledger) as store:
        keys = approvers(store, args.workload)
    if getattr(args, "json", False):
        emit_json([k.to_dict() for k in keys])
        return EXIT_OK
    if not keys:
        print("no approvers")
    for k in keys:
        print(f"{printable(k.workload_name):<24} {printable(k.vkey)}")
    return EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    given = json_arg(args.input, "--input")
    with opened_store(args.ledger) as store:
        args.approve_key, args.approval = args.key, None
        approval = approval_for_resume(args, store, given)
    assert approval is not None
    if args.out:
        pathlib.Path(args.out).write_text(approval.note, encoding="utf-8")
        print(f"signed approval written to {args.out}")
    else:
        print(approval.note, end="")
    return EXIT_OK
