"""``python -m bench``: run the benchmark groups and print one table.

Exit status: 0 when every group ran (even if a target failed: the table says
so), 2 when the harness itself failed (a group raised, bad arguments, the JSON
file could not be written).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from bench._harness import Result, Settings, fmt_number
from bench.groups import GROUPS, load

__all__ = ["main"]

HARNESS_ERROR = 2
_COLUMNS = ("benchmark", "value", "unit", "target", "verdict", "details")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for name, what in GROUPS.items():
            print(f"{name:<8} {what}")
        return 0
    names = _selected(args.only)
    if names is None:
        return HARNESS_ERROR
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"python -m bench: no directory for --json {args.json}", file=sys.stderr)
        return HARNESS_ERROR
    if args.profile:
        from bench._profile import profile_loop

        profile_loop(quick=args.quick)
        return 0
    settings = Settings(quick=args.quick, repeat=args.repeat)
    meta = _environment(settings)
    print(_banner(meta), flush=True)
    started = time.perf_counter()
    results: list[Result] = []
    failed = False
    for name in names:
        print(f"[bench] {name}: {GROUPS[name]} ...", file=sys.stderr, flush=True)
        group_start = time.perf_counter()
        try:
            results += load(name)(settings)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            results.append(
                Result(name, "(group)", None, "", details=_one_line(exc), status="ERROR")
            )
        print(
            f"[bench] {name}: done in {time.perf_counter() - group_start:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    meta["wall_s"] = time.perf_counter() - started
    meta["load_after"] = _load()
    print(render_table(results))
    print(_summary(results, meta))
    if args.json and not _write_json(args.json, meta, results):
        failed = True
    return HARNESS_ERROR if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Codon SDK benchmarks: performance targets of DESIGN.md section 7, "
        "measured side by side in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="reduced sizes (smoke test, ~20 s)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this group (repeatable or comma-separated): {', '.join(GROUPS)}",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--repeat", type=_positive, metavar="N", help="repetitions per timing (overrides defaults)"
    )
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of benchmarking, profile the SDK loop (cProfile, top functions)",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _selected(only: list[str] | None) -> list[str] | None:
    if not only:
        return list(GROUPS)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        print(
            f"python -m bench: unknown group(s) {', '.join(unknown)}; "
            f"known groups: {', '.join(GROUPS)}",
            file=sys.stderr,
        )
        return None
    return list(dict.fromkeys(names))


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _environment(settings: Settings) -> dict[str, Any]:
    return {
        "mode": "quick" if settings.quick else "full",
        "repeat_override": settings.repeat,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "codon_sdk": _version("codon-sdk"),
        "langgraph": _version("langgraph"),
        "load_before": _load(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _banner(meta: dict[str, Any]) -> str:
    return (
        f"Codon SDK benchmarks ({meta['mode']}): {meta['implementation']} {meta['python']} on "
        f"{meta['platform']}, {meta['cpus']} CPUs, load average {meta['load_before']}; "
        f"codon-sdk {meta['codon_sdk']}, langgraph {meta['langgraph']}"
    )


def render_table(results: Sequence[Result]) -> str:
    """The results as an aligned text table, one row per result."""
    rows = [
        (
            r.label,
            "" if r.value is None else fmt_number(r.value),
            r.unit,
            "" if r.target is None else r.target.describe(r.unit),
            r.verdict,
            r.details,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (_COLUMNS, *rows)) for i in range(len(_COLUMNS) - 1)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(w) if i == 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  ".join([*padded, cells[-1]]).rstrip()

    rule = line(["-" * w for w in widths] + ["-" * len(_COLUMNS[-1])])
    return "\n".join([line(_COLUMNS), rule, *(line(row) for row in rows)])


def _summary(results: Sequence[Result], meta: dict[str, Any]) -> str:
    counts = {v: sum(1 for r in results if r.verdict == v) for v in ("PASS", "FAIL", "ERROR")}
    targets = sum(1 for r in results if r.target is not None)
    text = f"\n{counts['PASS']} PASS, {counts['FAIL']} FAIL of {targets} targets"
    if counts["ERROR"]:
        text += f"; {counts['ERROR']} group(s) failed to run (ERROR)"
    text += (
        f"; wall time {meta['wall_s']:.1f} s; load average before {meta['load_before']}, "
        f"after {meta['load_after']}"
    )
    busy = max((meta["load_before"] or [0.0])[0], (meta["load_after"] or [0.0])[0])
    if busy > (meta["cpus"] or 1) / 2:
        text += (
            f"\nnote: the machine was busy (1-minute load {busy} on {meta['cpus']} CPUs): "
            "absolute timings are inflated, ratios less so; see the cpu share in the details"
        )
    return text


def _write_json(path: str, meta: dict[str, Any], results: Sequence[Result]) -> bool:
    document = {"meta": meta, "results": [r.to_json() for r in results]}
    try:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, ensure_ascii=False)
            out.write("\n")
    except OSError as exc:
        print(f"python -m bench: cannot write {path}: {exc}", file=sys.stderr)
        return False
    print(f"results written to {path}")
    return True


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 160 else first[:157] + "..."
