"""``codon runs list``, ``codon runs show``, ``codon export``.

Every string that comes from a ledger is shown through ``printable`` (control characters
and escape sequences escaped, never interpreted), and a run is checked before it is shown
or exported (``runtime/_trust.py``): ``runs show`` puts a warning above a run that does not
verify, ``export`` refuses one unless ``--force``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import orjson

from codon_sdk._text import printable
from codon_sdk.cli._blobs import referenced_blobs, write_blobs
from codon_sdk.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    emit_json,
    json_text,
    opened_store,
)
from codon_sdk.cli._identity import stranded_list
from codon_sdk.cli._operate import pending_list
from codon_sdk.cli._progress import Progress
from codon_sdk.errors import LedgerError
from codon_sdk.ledger import RUN_STATUSES, ReportRole, event_type, parse_entry
from codon_sdk.runtime import (
    ExecutionReport,
    Trust,
    check_trust,
    display_status,
    report_from_trust,
    untrusted_warning,
)
from codon_sdk.stores import LedgerStore, PagedEntries, RunInfo

__all__ = ["export", "runs_list", "runs_show"]


#: The page ``runs list`` prints unless ``--limit`` says otherwise.
DEFAULT_PAGE: Final = 50
_SPAN = re.compile(r"(\d+)([smhdw])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def moment(text: str, option: str) -> datetime:
    """``--since``/``--until``: an ISO 8601 time (UTC unless it names its offset), or an age
    such as ``30m``, ``2h``, ``7d`` (that long before now)."""
    age = _SPAN.fullmatch(text.strip())
    if age is not None:
        return datetime.now(timezone.utc) - timedelta(
            seconds=int(age.group(1)) * _UNIT_S[age.group(2)]
        )
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"{option} must be an ISO 8601 time (2026-12-01T09:00, UTC unless an offset is "
            f"given) or an age such as 30m, 2h or 7d, got {printable(text)!r}"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def runs_list(args: argparse.Namespace) -> int:
    if args.status is not None and args.status not in (*RUN_STATUSES, "stale"):
        raise CliError(
            f"--status must be one of {', '.join(RUN_STATUSES)} or stale, got {args.status!r}"
        )
    if args.stranded is not None:
        return stranded_list(args, args.stranded)
    if args.pending:
        return pending_list(args)
    limit = DEFAULT_PAGE if args.limit is None else args.limit
    if limit < 1:
        raise CliError(f"--limit must be a positive number of runs, got {limit}")
    stale_only = args.status == "stale"
    filters: dict[str, Any] = {
        "status": "running" if stale_only else args.status,
        "workload_name": args.workload,
        "logic_id": args.logic_id,
        "deployment_id": args.deployment,
        "parent_run_id": args.parent,
        "since": None if args.since is None else moment(args.since, "--since"),
        "until": None if args.until is None else moment(args.until, "--until"),
    }
    with opened_store(args.ledger) as store:
        shown = _page(store, filters, args.after, limit + 1, stale_only)
    more = len(shown) > limit
    shown = shown[:limit]
    if args.json:
        emit_json([{**r.to_dict(), "status": s, "stored_status": r.status} for r, s in shown])
        return EXIT_OK
    if not shown:
        print("no runs")
        return EXIT_OK
    print(f"{'RUN ID':<34} {'STATUS':<12} {'WORKLOAD':<24} {'EVENTS':>7}  STARTED")
    for r, status in shown:
        workload = printable(f"{r.workload_name}:{r.workload_version}")
        print(
            f"{printable(r.run_id):<34} {printable(status):<12} {workload:<24} "
            f"{r.event_count:>7}  {r.started_at.isoformat(timespec='seconds')}"
        )
    if more:
        print(f"(more runs: add --after {printable(shown[-1][0].run_id)} for the next page)")
    return EXIT_OK


def _page(
    store: LedgerStore, filters: dict[str, Any], after: str | None, want: int, stale_only: bool
) -> list[tuple[RunInfo, str]]:
    """Up to ``want`` runs after run ``after``, each with the status shown for it; stale runs
    are the running ones whose owner is gone, found page by page."""
    if not stale_only:
        return [(r, display_status(r)) for r in store.runs(**filters, limit=want, after=after)]
    found: list[tuple[RunInfo, str]] = []
    while len(found) < want:
        page = store.runs(**filters, limit=500, after=after)
        found += [(r, s) for r in page if (s := display_status(r)) == "stale"]
        if len(page) < 500:
            break
        after = page[-1].run_id
    return found[:want]


def runs_show(args: argparse.Namespace) -> int:
    with opened_store(args.ledger) as store:  # read page by page: open until all is written
        info = store.get_run(args.run_id)
        progress = _progress(args, info.event_count, ("counting", "checking", "showing"))
        trust = check_trust(store, args.run_id, paged=True, on_page=progress)
        try:
            report: ExecutionReport | None = report_from_trust(trust, store)
        except LedgerError:  # nothing before the first broken entry makes a run
            report = None
        if args.json:
            _show_json(info, trust, report)
        else:
            _show_text(trust, report)
        progress.done()
    return EXIT_OK if trust.trusted else EXIT_FAILED


def _progress(args: argparse.Namespace, total: int, passes: tuple[str, ...]) -> Progress:
    return Progress(f"run {printable(args.run_id)}", total, passes, enabled=args.progress)


def _show_json(info: RunInfo, trust: Trust, report: ExecutionReport | None) -> None:
    """The run as one JSON document, its events written as they are read (the same text
    ``emit_json`` gives the whole document: the events are its last member)."""
    head = {
        "run": info.to_dict(),
        "verification": trust.report.to_dict(),
        "trusted": trust.trusted,
        "problems": list(trust.problems),
        "state": report.state if report is not None else None,
        "results": {}
        if report is None
        else {node: [r.result for r in records] for node, records in report.results.items()},
        "events": [],
    }
    text = json_text(head)
    assert text.endswith('  "events": []\n}')
    if not len(trust.entries):
        sys.stdout.write(text + "\n")
        return
    sys.stdout.write(text[: -len("[]\n}")] + "[\n")
    first = True
    for at, rows in _pages(trust.entries):
        for seq, entry in enumerate(rows, at):
            try:
                event: object = orjson.loads(entry)
            except orjson.JSONDecodeError:
                event = {"seq": seq, "unparseable": entry[:200].decode("utf-8", "replace")}
            item = json_text(event).replace("\n", "\n    ")
            sys.stdout.write(("    " if first else ",\n    ") + item)
            first = False
    sys.stdout.write("\n  ]\n}\n")


def _pages(entries: Sequence[bytes]) -> Iterator[tuple[int, Sequence[bytes]]]:
    """``(position of the first, entries)`` a page at a time (a list is one page)."""
    if isinstance(entries, PagedEntries):
        yield from entries.pages()
    else:
        yield 0, entries


def _show_text(trust: Trust, report: ExecutionReport | None) -> None:
    if not trust.trusted:
        print(printable(untrusted_warning(trust)))
        print("  (what follows is what the database holds, not a verified record)")
    if report is not None:
        print(report.summary())
    _activations_text(trust)
    print("  ledger:")
    origins: dict[str, str | None] = {}
    for seq, entry in enumerate(trust.entries):  # read a page at a time
        try:
            ev = parse_entry(entry)
        except LedgerError as exc:
            print(f"    {seq:>5}  <entry cannot be read: {printable(exc)}>")
            continue
        source, target = ev.node, ev.target
        role = event_type(ev.type).report
        if role is ReportRole.EMIT and ev.token_id is not None:
            origins[ev.token_id] = ev.node
        elif role is ReportRole.TAKE:
            source, target = origins.get(ev.token_id or ""), ev.node
        who = printable(source or "") + (f" -> {printable(target)}" if target else "")
        token = f" [{printable(ev.token_id)}]" if ev.token_id else ""
        actor = f" by {printable(ev.actor)}" if ev.actor else ""
        when = _when(ev.ts)
        print(f"    {ev.seq:>5}  {when}  {printable(ev.type):<16} {who}{token}{actor}")


def _short(value: object, width: int = 160) -> str:
    """A value on one line, at most ``width`` characters, every character shown safely."""
    if isinstance(value, dict) and value.get("$clipped"):
        text = f"{value.get('preview')}… ({value.get('bytes')} bytes)"
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _activations_text(trust: Trust) -> None:
    """Per activation: input, result or error, LLM calls with tokens and cost, interrupts."""
    from codon_sdk.ui import RunView, activation_detail

    view = RunView(trust.report.run_id, trust.entries, trust.report)
    if not view.activations:
        return
    print("  activations:")
    for act in view.activations:
        a = activation_detail(view, act.index)
        took = "" if act.end_us is None else f" {(act.end_us - act.start_us) / 1000:.1f} ms"
        print(
            f"    #{act.index:<4} {printable(act.node)} [{printable(act.token_id)}] "
            f"{act.outcome}{took}{' (resumed)' if act.resumed else ''}"
        )
        if a["input"] is not None:
            print(f"          input   {_short(a['input']['payload'])}")
        if act.outcome == "completed":
            print(f"          result  {_short(a['result'])}")
        if a["error"] is not None:
            error = a["error"]
            print(f"          error   {printable(error['error_type'])}: {_short(error['message'])}")
        for call in a["llm"]:
            cost = "cost unknown" if call["cost_usd"] is None else f"${call['cost_usd']:.6f}"
            print(
                f"          llm     {printable(call['model'])}: {call['input_tokens']} in / "
                f"{call['output_tokens']} out tokens, {cost}; answer {_short(call['answer'], 100)}"
            )
        if a["interrupt"] is not None:
            ask = a["interrupt"]
            print(f"          asks    {_short(ask['reason'])}; payload {_short(ask['payload'])}")
    for approval in view.approvals:
        print(
            f"  approved: {printable(approval['actor'] or '(no actor recorded)')} answered "
            f"{_short(approval['question'])} at seq {approval['seq']} with "
            f"{_short(approval['input'])}"
        )


def _when(ts: int) -> str:
    from codon_sdk._clock import from_us

    try:
        return from_us(ts).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return f"<ts {ts}>"


def export(args: argparse.Namespace) -> int:
    if args.format != "jsonl":
        raise CliError(f"unknown --format {args.format!r}; supported: jsonl")
    with opened_store(args.ledger) as store:  # read page by page, written as it is read
        info = store.get_run(args.run_id)
        progress = _progress(args, info.event_count, ("counting", "checking", "exporting"))
        trust = check_trust(store, args.run_id, paged=True, on_page=progress)
        notes = store.checkpoints(args.run_id)
        if not trust.trusted:
            if not args.force:
                raise CliError(
                    f"{untrusted_warning(trust)}; not exported (pass --force to export what "
                    "the database holds anyway)",
                    EXIT_FAILED,
                )
            print(
                f"codon: {printable(untrusted_warning(trust))}; exported anyway (--force)",
                file=sys.stderr,
            )
        out = sys.stdout.buffer
        shown = sys.stdout.isatty()  # exact bytes for files and pipes, escaped text for a screen
        refs: dict[str, int] = {}
        for _, rows in _pages(trust.entries):
            if shown:
                out.write(b"".join(_screen(entry) + b"\n" for entry in rows))
            else:
                out.write(b"\n".join(rows) + b"\n")
            if args.blobs == "include":
                refs.update(referenced_blobs(rows))
        progress.done()
        write_blobs(out, store, refs)
    if notes:  # the last line: the latest signed checkpoint, to verify the lines above
        size, note = notes[-1]
        text = note.decode("utf-8", "replace")
        out.write(orjson.dumps({"codon_checkpoint": {"size": size, "note": text}}) + b"\n")
    out.flush()
    return EXIT_OK


def _screen(entry: bytes) -> bytes:
    return printable(entry.decode("utf-8", "replace")).encode()
