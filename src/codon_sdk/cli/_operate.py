"""Operating runs from the command line: ``codon resume``, ``codon fork``, ``codon recover``
and ``codon runs list --pending``. Usage errors (a wrong run id, an unknown workload path,
malformed JSON, a run in the wrong state) exit 2 with one line saying what to do, and write
nothing."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import orjson

from codon_sdk._text import printable
from codon_sdk.cli._approvals import approval_for_resume
from codon_sdk.cli._common import EXIT_OK, CliError, emit_json, json_arg, opened_store
from codon_sdk.cli._replay import load_workload
from codon_sdk.errors import CodonError, RunNotFoundError, WorkloadRuntimeError
from codon_sdk.ledger import RUN_INTERRUPTED, parse_entry
from codon_sdk.stores import LedgerStore, RunInfo, default_ledger_url

__all__ = ["fork_command", "pending_list", "recover_command", "resume_command", "worker_command"]


def _known(store: LedgerStore, run_id: str) -> None:
    try:
        store.get_run(run_id)
    except RunNotFoundError as exc:
        raise CliError(f"{exc}; `codon runs list` shows the runs this store holds") from exc


@contextlib.contextmanager
def _refusals_are_usage() -> Iterator[None]:
    """A run refused before anything ran is a usage error (exit 2, one line); a run that
    went on and failed is reported as the failure it is (exit 1)."""
    try:
        yield
    except WorkloadRuntimeError as exc:
        if getattr(exc, "report", None) is None:
            raise CliError(str(exc)) from exc
        raise
    except (CodonError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def _outcome(report: Any, args: argparse.Namespace) -> int:
    if args.json:
        emit_json({"run_id": report.run_id, "status": report.status})
    else:
        print(f"run {printable(report.run_id)}: {printable(report.status)}")
    return EXIT_OK


def resume_command(args: argparse.Namespace) -> int:
    """``codon resume RUN_ID --workload MODULE:ATTR [--input JSON] [--actor NAME]
    [--approve-key KEY | --approval FILE]``."""
    given = json_arg(args.input, "--input")
    workload = load_workload(args.workload)
    with opened_store(args.ledger) as store:
        _known(store, args.run_id)
        approval = approval_for_resume(args, store, given)
        with _refusals_are_usage():
            report = workload.resume(
                args.run_id, store=store, input=given, actor=args.actor, approval=approval
            )
    return _outcome(report, args)


def fork_command(args: argparse.Namespace) -> int:
    """``codon fork RUN_ID --at SEQ --workload MODULE:ATTR [--state-patch JSON] [--run-id ID]``."""
    patch = json_arg(args.state_patch, "--state-patch")
    if patch is not None and not isinstance(patch, dict):
        raise CliError("--state-patch must be a JSON object of state keys to set")
    workload = load_workload(args.workload)
    with opened_store(args.ledger) as store:
        _known(store, args.run_id)
        with _refusals_are_usage():
            report = workload.fork(
                args.run_id,
                store=store,
                at_seq=args.at,
                state_patch=patch,
                new_run_id=args.run_id_new,
            )
    if not args.json:
        print(f"forked {printable(args.run_id)} at seq {args.at}")
    return _outcome(report, args)


def recover_command(args: argparse.Namespace) -> int:
    """``codon recover --workload MODULE:ATTR``: resume every stale run of that workload."""
    workload = load_workload(args.workload)
    with opened_store(args.ledger) as store:
        done = workload.recover(store=store)
    if args.json:
        emit_json([d.to_dict() for d in done])
        return EXIT_OK
    if not done:
        print(f"no stale runs of {printable(workload.name)}")
    for d in done:
        why = f" ({printable(d.error)})" if d.error else ""
        print(f"{printable(d.run_id):<34} {printable(d.status)}{why}")
    return EXIT_OK


def worker_command(args: argparse.Namespace) -> int:
    """``codon worker --workload M:W --ledger URL --ray ADDRESS``: resume crashed runs."""
    from codon_sdk.executors import RayExecutor, work

    workload = load_workload(args.workload)
    executor = RayExecutor(address=args.ray)
    executor.start()  # an unreachable cluster fails here, naming the address

    def show(item: Any) -> None:
        why = f" ({printable(item.error)})" if item.error else ""
        print(f"{printable(item.run_id):<34} {printable(item.status)}{why}", flush=True)

    url = args.ledger or default_ledger_url()
    work(workload, url, executor, interval=args.interval, once=args.once, report=show)
    return EXIT_OK


def _pending(store: LedgerStore, info: RunInfo) -> dict[str, Any]:
    """The question a paused run waits on, read from its last entries (display only)."""
    start = max(0, info.event_count - 4)
    try:
        events = [parse_entry(e) for e in store.read(info.run_id, start)]
    except CodonError:
        return {"question": None, "node": None, "payload": None, "since_us": None}
    for ev in reversed(events):
        if ev.type == RUN_INTERRUPTED:
            md = ev.metadata if isinstance(ev.metadata, dict) else {}
            return {
                "question": md.get("reason"),
                "node": ev.node,
                "payload": md.get("payload"),
                "since_us": ev.ts,
            }
    return {"question": None, "node": None, "payload": None, "since_us": None}


def _age(since_us: Any) -> str:
    if not isinstance(since_us, int):
        return "?"
    seconds = max(0, time.time() - since_us / 1e6)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def pending_list(args: argparse.Namespace) -> int:
    """``codon runs list --pending``: runs waiting for a human, with the question."""
    with opened_store(args.ledger) as store:
        runs = store.runs(status="interrupted", workload_name=args.workload, limit=args.limit)
        rows = [(info, _pending(store, info)) for info in runs]
    if args.json:
        emit_json([{**info.to_dict(), "pending": pending} for info, pending in rows])
        return EXIT_OK
    if not rows:
        print("no runs waiting for input")
        return EXIT_OK
    print(f"{'RUN ID':<34} {'AGE':>5}  {'NODE':<16} QUESTION / PAYLOAD")
    for info, pending in rows:
        payload = (
            orjson.dumps(pending["payload"]).decode() if pending["payload"] is not None else ""
        )
        clipped = payload if len(payload) <= 60 else payload[:59] + "…"
        print(
            f"{printable(info.run_id):<34} {_age(pending['since_us']):>5}  "
            f"{printable(pending['node'] or ''):<16} {printable(pending['question'] or '?')}"
            + (f"  {printable(clipped)}" if clipped else "")
        )
    return EXIT_OK
