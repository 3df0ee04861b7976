"""``codon verify``, ``codon keygen``, ``codon prove``, ``codon verify-proof``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys

from codon_sdk._text import printable
from codon_sdk.cli._common import EXIT_FAILED, EXIT_OK, CliError, emit_json, opened_store
from codon_sdk.errors import CheckpointError, ProofError
from codon_sdk.ledger import (
    VerificationReport,
    build_inclusion_proof,
    chain_leaf,
    generate_key,
    verify_proof_file,
)
from codon_sdk.stores import LedgerStore, verify_all, verify_run

__all__ = ["keygen", "prove", "verify", "verify_proof"]


def _vkeys(args: argparse.Namespace) -> list[str] | None:
    """``--vkey`` values (key text or files holding one), else ``CODON_VERIFIER_KEYS``."""
    given = list(args.vkey or [])
    if not given and os.environ.get("CODON_VERIFIER_KEYS"):
        given = [k for k in os.environ["CODON_VERIFIER_KEYS"].split(",") if k.strip()]
    if not given:
        return None
    keys: list[str] = []
    for item in given:
        path = pathlib.Path(item)
        keys.append(path.read_text(encoding="utf-8").strip() if path.is_file() else item.strip())
    return keys


def _progress(done: int, total: int, report: VerificationReport) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {printable(report.status):<10}"
    )
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _checkpoint_dir(args: argparse.Namespace) -> str | None:
    """``--checkpoint-dir``, else ``CODON_CHECKPOINT_DIR``; it must be a directory."""
    directory = args.checkpoint_dir or os.environ.get("CODON_CHECKPOINT_DIR") or None
    if directory is not None and not pathlib.Path(directory).is_dir():
        source = "--checkpoint-dir" if args.checkpoint_dir else "CODON_CHECKPOINT_DIR"
        raise CliError(
            f"{source} {printable(directory)!r} is not a directory; give the directory the "
            "checkpoint sink exports to"
        )
    return directory


def _escaped(report: VerificationReport) -> VerificationReport:
    """``report`` with every ledger-derived string escaped (``printable``), so its summary
    shows a newline or an escape sequence in a run id or a message instead of obeying it."""
    return dataclasses.replace(
        report,
        run_id=printable(report.run_id),
        status=printable(report.status),
        root=printable(report.root),
        checked=tuple(map(printable, report.checked)),
        anchors=tuple(map(printable, report.anchors)),
        findings=tuple(
            dataclasses.replace(f, code=printable(f.code), message=printable(f.message))
            for f in report.findings
        ),
    )


def verify(args: argparse.Namespace) -> int:
    if bool(args.run_id) == bool(args.all):
        raise CliError("give either a RUN_ID or --all")
    keys = _vkeys(args)
    directory = _checkpoint_dir(args)
    try:
        with opened_store(args.ledger) as store:
            if args.all:
                return _verify_all(args, store, keys, directory)
            report = verify_run(
                store,
                args.run_id,
                vkeys=keys,
                checkpoints=args.checkpoint,
                checkpoint_dir=directory,
            )
    except (OSError, CheckpointError) as exc:
        raise CliError(f"cannot read a checkpoint or key: {exc}") from exc
    if args.json:
        emit_json(report.to_dict())
    else:
        print(_escaped(report).summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def _verify_all(
    args: argparse.Namespace, store: LedgerStore, keys: list[str] | None, directory: str | None
) -> int:
    """``verify --all``: exit 0 when nothing was tampered with (runs still running or paused
    are reported as incomplete, with why, and do not fail it), 1 otherwise."""
    outcome = verify_all(
        store,
        vkeys=keys,
        log_checkpoints=args.checkpoint,
        progress=_progress,
        checkpoint_dir=directory,
    )
    log = outcome.log
    if args.json:
        emit_json(
            {
                "ok": outcome.ok,
                "runs": [r.to_dict() for r in outcome.runs],
                "findings": [str(f) for f in outcome.findings if f.tamper],
                "log": {
                    "ok": log.ok,
                    "size": log.size,
                    "root": log.root,
                    "checked": list(log.checked),
                    "anchors": list(log.anchors),
                    "findings": [
                        {"code": f.code, "message": f.message, "tamper": f.tamper}
                        for f in log.findings
                    ],
                },
            }
        )
        return EXIT_OK if outcome.ok else EXIT_FAILED
    for report in outcome.runs:
        print(_escaped(report).summary())
    for line in (*log.checked, *log.anchors):
        print(f"log of runs: {printable(line)}")
    for finding in outcome.findings:
        print(f"{'TAMPER' if finding.tamper else 'note'}: {printable(finding)}")
    counts: dict[str, int] = {}
    for report in outcome.runs:
        counts[report.status] = counts.get(report.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(
        f"{len(outcome.runs)} run(s): {printable(summary) or 'none'}; log of runs "
        f"{'ok' if log.ok else 'TAMPERED'} ({log.size} lines); "
        f"{'nothing was tampered with' if outcome.ok else 'TAMPERED'}"
    )
    return EXIT_OK if outcome.ok else EXIT_FAILED


def keygen(args: argparse.Namespace) -> int:
    skey, vkey = generate_key(args.name)
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    secret = out / f"{args.name.replace('/', '_')}.skey"
    public = out / f"{args.name.replace('/', '_')}.vkey"
    if secret.exists() and not args.force:
        raise CliError(f"{secret} exists; pass --force to replace it")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(skey + "\n")
    public.write_text(vkey + "\n", encoding="utf-8")
    print(vkey)
    print(
        f"signer key written to {secret} (keep it secret; set CODON_SIGNING_KEY={secret}); "
        f"verifier key in {public} (give it to auditors; pass it with --vkey)",
        file=sys.stderr,
    )
    return EXIT_OK


def prove(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:
        entries = store.read(args.run_id)
        notes = store.checkpoints(args.run_id)
    if not 0 <= args.seq < len(entries):
        raise CliError(f"run {args.run_id} has events 0 to {len(entries) - 1}; no seq {args.seq}")
    covering = [(size, note) for size, note in notes if size > args.seq]
    if not covering:
        raise CliError(
            f"no stored checkpoint of run {args.run_id} covers seq {args.seq}; the ledger needs a "
            "notary (CODON_SIGNING_KEY) for checkpoints"
        )
    size, note = covering[-1]
    leaves = [chain_leaf(entry) for entry in entries[:size]]
    if leaves[args.seq][1]:
        raise CliError(
            f"event {args.seq} of run {args.run_id} was erased: its bytes are gone, so only "
            "someone who kept them can prove it; the other events still prove",
            EXIT_FAILED,
        )
    try:
        proof = build_inclusion_proof(
            checkpoint=note,
            index=args.seq,
            leaf_hashes=[leaf for leaf, _ in leaves],
            entry=entries[args.seq],
        )
    except ProofError as exc:
        raise CliError(f"cannot build the proof: {exc}", EXIT_FAILED) from exc
    if args.out:
        pathlib.Path(args.out).write_bytes(proof)
        print(f"inclusion proof of event {args.seq} in {size} events written to {args.out}")
    else:
        sys.stdout.write(proof.decode("utf-8") + "\n")
    return EXIT_OK


def verify_proof(args: argparse.Namespace) -> int:
    keys = _vkeys(args)
    if not keys:
        raise CliError("verify-proof needs the verifier key(s) to trust: --vkey KEY or FILE")
    try:
        data = pathlib.Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read proof file {args.file}: {exc}") from exc
    try:
        verdict = verify_proof_file(data, keys)
    except CheckpointError as exc:
        raise CliError(f"unusable --vkey: {exc}") from exc
    if args.json:
        emit_json(
            {
                "ok": verdict.ok,
                "kind": verdict.kind,
                "checked": list(verdict.checked),
                "problem": verdict.problem,
                "signed_by": list(verdict.signed_by),
            }
        )
    else:
        print(verdict)
    return EXIT_OK if verdict.ok else EXIT_FAILED
