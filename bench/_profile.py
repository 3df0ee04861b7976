"""``python -m bench --profile``: where an SDK loop activation spends its time.

Runs each loop style once under ``cProfile`` (after a warm-up) and prints the
functions with the most time of their own, with microseconds per activation.
cProfile adds a fixed cost to every Python call, so the absolute figures are
inflated (by 2-3x for code this call-heavy); read them as proportions, and use
``python -m bench --only loop`` for the real cost.
"""

from __future__ import annotations

import cProfile
from types import CodeType

from bench._loops import VARIANTS, check_report, sdk_loop

__all__ = ["profile_loop"]

TOP = 18


def profile_loop(*, quick: bool = False) -> None:
    steps = 2_000 if quick else 10_000
    for variant in VARIANTS:
        loop = sdk_loop(variant, steps)
        check_report(loop(), steps)
        profiler = cProfile.Profile()
        profiler.runcall(loop)
        entries = profiler.getstats()
        total = sum(entry.inlinetime for entry in entries)
        print(
            f"\n== SDK {variant} loop, {steps:,} steps: "
            f"{total / steps * 1e6:.1f} µs/activation under cProfile =="
        )
        print(f"{'own µs/act':>10}  {'cum µs/act':>10}  {'calls/act':>9}  function")
        for entry in sorted(entries, key=lambda e: e.inlinetime, reverse=True)[:TOP]:
            print(
                f"{entry.inlinetime / steps * 1e6:>10.2f}  {entry.totaltime / steps * 1e6:>10.2f}"
                f"  {entry.callcount / steps:>9.2f}  {_describe(entry.code)}"
            )


def _describe(code: CodeType | str) -> str:
    if isinstance(code, str):
        return code
    parts = code.co_filename.replace("\\", "/").split("/")
    return f"{code.co_name} ({'/'.join(parts[-2:])}:{code.co_firstlineno})"
