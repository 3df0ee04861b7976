"""``codon ui``, ``codon report RUN_ID --out FILE``, ``codon graph [RUN_ID | --workload]``."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from codon_sdk import CodonWorkload
from codon_sdk._text import printable
from codon_sdk.cli._common import EXIT_FAILED, EXIT_OK, CliError, opened_store
from codon_sdk.errors import ExplorerError

__all__ = ["add_commands", "graph", "report", "ui"]

_NEEDS_EXTRA = "the run explorer needs the ui extra: pip install 'codon-sdk[ui]'"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ui_cmd = commands.add_parser(
        "ui", help="serve the run explorer (a local web UI over the ledger; extra ui)"
    )
    ui_cmd.add_argument("--ledger", metavar="URL", help="ledger store URL")
    ui_cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ui_cmd.add_argument("--port", type=int, default=7300, help="port to listen on (0: any)")
    ui_cmd.add_argument(
        "--token",
        help="token every request must carry (default $CODON_UI_TOKEN); required to listen "
        "beyond loopback",
    )
    ui_cmd.add_argument(
        "--workload",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="today's code of a workload (repeatable): enables replay and code-identity checks",
    )
    ui_cmd.set_defaults(func=ui)

    rep = commands.add_parser("report", help="one run as a self-contained HTML file")
    rep.add_argument("run_id")
    rep.add_argument("--ledger", metavar="URL", help="ledger store URL")
    rep.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    rep.add_argument("--workload", action="append", default=[], metavar="MODULE:ATTR")
    rep.set_defaults(func=report)

    gr = commands.add_parser("graph", help="a run's or a workload's graph as Mermaid or DOT")
    gr.add_argument("run_id", nargs="?", help="the run (activation counts, status per node)")
    gr.add_argument("--ledger", metavar="URL", help="ledger store URL")
    gr.add_argument("--workload", metavar="MODULE:ATTR", help="a workload's definition instead")
    gr.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    gr.set_defaults(func=graph)


def _workloads(specs: list[str]) -> dict[str, CodonWorkload]:
    from codon_sdk.cli._replay import load_workload

    loaded: dict[str, CodonWorkload] = {}
    for spec in specs:
        workload = load_workload(spec)
        loaded[workload.name] = workload
    return loaded


def ui(args: argparse.Namespace) -> int:
    try:
        from codon_sdk.ui import ExplorerServer
    except ImportError as exc:
        raise CliError(f"{_NEEDS_EXTRA} ({exc})") from exc
    token = args.token or os.environ.get("CODON_UI_TOKEN") or None
    workloads = _workloads(args.workload)
    with opened_store(args.ledger) as store:
        try:
            server = ExplorerServer(
                store,
                host=args.host,
                port=args.port,
                token=token,
                workloads=workloads,
            )
        except ExplorerError as exc:
            raise CliError(str(exc)) from exc
        print(f"codon ui: serving {store.url} at {server.url}", flush=True)
        print("  (read-only; Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # pragma: no cover - interactive
            pass
        finally:
            server.close()
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    try:
        from codon_sdk.ui import write_report
    except ImportError as exc:
        raise CliError(f"{_NEEDS_EXTRA} ({exc})") from exc
    out = pathlib.Path(args.out)
    if not out.parent.exists():
        raise CliError(f"cannot write {out}: the directory {out.parent} does not exist")
    workloads = _workloads(args.workload)
    with opened_store(args.ledger) as store:
        try:
            status = write_report(store, args.run_id, out, workloads=workloads)
        except ExplorerError as exc:
            raise CliError(str(exc), EXIT_FAILED if exc.status != 404 else 2) from exc
    print(f"wrote {out} (run {printable(args.run_id)}, verification at export: {status})")
    if status == "tampered":
        print(
            "codon: WARNING: this run's record does not verify (tampered); the report says so",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def graph(args: argparse.Namespace) -> int:
    from codon_sdk.ui import graph_of_workload, to_dot, to_mermaid

    if (args.run_id is None) == (args.workload is None):
        raise CliError("codon graph takes a RUN_ID or --workload MODULE:ATTR (one of the two)")
    if args.workload is not None:
        from codon_sdk.cli._replay import load_workload

        doc = graph_of_workload(load_workload(args.workload))
    else:
        from codon_sdk.ui import Explorer

        with opened_store(args.ledger) as store:
            try:
                doc = Explorer(store).view(args.run_id).graph()
            except ExplorerError as exc:
                raise CliError(str(exc)) from exc
    sys.stdout.write(to_mermaid(doc) if args.format == "mermaid" else to_dot(doc))
    return EXIT_OK
