"""``scale``: does the SDK loop's cost per step stay flat from 10,000 to 100,000 steps?

A quadratic cost hiding in the engine (lineage rebuilt per token, a list copied
per step, a chain re-read) shows up as a per-step cost growing with the run's
length. The short and the long run of each loop style (see ``bench._loops``)
are interleaved, each round pairing one long run with as many back-to-back
short runs as cover the same number of steps; the figure is the median of
per-round ratios of per-step cost, long over short. Target: at most 1.2x.
"""

from __future__ import annotations

from bench._harness import (
    Contestant,
    Result,
    Settings,
    Stats,
    Target,
    fmt_number,
    interleave,
    paired_ratios,
)
from bench._loops import VARIANTS, check_report, sdk_loop

__all__ = ["run"]

GROUP = "scale"
LONG_OVER_SHORT = Target("<=", 1.2)


def run(settings: Settings) -> list[Result]:
    short, long = (2_000, 20_000) if settings.quick else (10_000, 100_000)
    reps = settings.reps(full=5, quick=3)
    contestants: list[Contestant] = []
    for variant in VARIANTS:
        for steps in (short, long):
            sdk = sdk_loop(variant, steps)
            check_report(sdk(), steps)  # the warm-up run, checked
            # the short run is repeated to cover as many steps (and seconds of noise) as the long
            contestants.append(Contestant(f"{variant}_{steps}", sdk, long // steps))
    timings = interleave(contestants, reps)

    results = []
    for variant in VARIANTS:
        short_us = timings[f"{variant}_{short}"].scaled(1e6 / short).wall
        long_us = timings[f"{variant}_{long}"].scaled(1e6 / long).wall
        ratios = paired_ratios(long_us, short_us)
        stats = Stats.of(ratios)
        median_short, median_long = Stats.of(short_us).median, Stats.of(long_us).median
        results.append(
            Result(
                GROUP,
                f"sdk_{variant}_{long // 1000}k_over_{short // 1000}k",
                stats.median,
                "x",
                LONG_OVER_SHORT,
                f"{fmt_number(median_long)} vs {fmt_number(median_short)} µs/step; "
                f"{stats.describe()}",
                tuple(ratios),
                extra={"short_us": short_us, "long_us": long_us, "short": short, "long": long},
            )
        )
    return results
