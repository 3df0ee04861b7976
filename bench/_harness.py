"""The measuring kit every benchmark group shares: settings, interleaved timing, results.

Timings on a shared machine are noisy, so every figure here is the median of
several repetitions, the contestants of one comparison run interleaved
(A, B, C, A, B, C, ...) so that a burst of load from elsewhere hits them alike,
and every target is checked as a ratio or a per-step figure from one process.
A ratio between two contestants is the median of the per-repetition ratios
(each repetition pairs runs made seconds apart), not a ratio of medians.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Contestant",
    "HarnessError",
    "Result",
    "Settings",
    "Stats",
    "Target",
    "Timings",
    "fmt_number",
    "interleave",
    "paired_ratios",
]

Verdict = Literal["PASS", "FAIL", "INFO", "SKIP", "ERROR"]


class HarnessError(RuntimeError):
    """A benchmark did not compute what it claims to (wrong results): its figures are void."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line asked for."""

    quick: bool = False
    repeat: int | None = None  # overrides each group's default number of repetitions

    def reps(self, full: int, quick: int) -> int:
        """Repetitions for a measurement: the override, else the group's default for the mode."""
        if self.repeat is not None:
            return self.repeat
        return quick if self.quick else full


@dataclass(frozen=True, slots=True)
class Target:
    """A bound a measured value must respect: ``value <= limit`` or ``value >= limit``."""

    op: Literal["<=", ">="]
    limit: float

    def holds(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def describe(self, unit: str) -> str:
        return f"{self.op} {self.limit:g} {unit}".rstrip()


@dataclass(frozen=True, slots=True)
class Stats:
    """Median and spread of repeated samples."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not samples:
            raise ValueError("no samples to summarise")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    @property
    def spread_pct(self) -> float:
        """Full range of the samples as a percentage of the median."""
        return 0.0 if self.median == 0 else (self.high - self.low) / self.median * 100.0

    def describe(self) -> str:
        """``n=7, range 9.80-11.2 (13%)``."""
        if self.n == 1:
            return "n=1 (single run)"
        low, high = fmt_number(self.low), fmt_number(self.high)
        return f"n={self.n}, range {low}-{high} ({self.spread_pct:.0f}%)"


@dataclass(frozen=True, slots=True)
class Result:
    """One row of the table."""

    group: str
    name: str
    value: float | None
    unit: str
    target: Target | None = None
    details: str = ""
    samples: tuple[float, ...] = ()
    status: Verdict | None = None  # forced verdict (SKIP, ERROR); otherwise derived
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        if self.status is not None:
            return self.status
        if self.target is None or self.value is None:
            return "INFO"
        return "PASS" if self.target.holds(self.value) else "FAIL"

    @property
    def label(self) -> str:
        return f"{self.group}.{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.label,
            "value": self.value,
            "unit": self.unit,
            "target": None
            if self.target is None
            else {"op": self.target.op, "limit": self.target.limit},
            "verdict": self.verdict,
            "details": self.details,
            "samples": list(self.samples),
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass(frozen=True, slots=True)
class Contestant:
    """One side of a comparison: a callable performing one complete run (set-up done before).

    ``per_sample`` back-to-back runs make one sample (their mean), for runs so
    short that a single one would be at the mercy of the timer and the scheduler.
    """

    name: str
    run: Callable[[], object]
    per_sample: int = 1


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds per run of one contestant, one entry per repetition: wall and process CPU."""

    wall: list[float]
    cpu: list[float]

    def scaled(self, factor: float) -> Timings:
        return Timings([w * factor for w in self.wall], [c * factor for c in self.cpu])

    def cpu_note(self, unit: str) -> str:
        """``cpu 9.6 µs (97% of wall)``: how much of the wall time the process had the CPU."""
        wall, cpu = statistics.median(self.wall), statistics.median(self.cpu)
        share = 0.0 if wall == 0 else cpu / wall * 100
        return f"cpu {fmt_number(cpu)} {unit} ({share:.0f}% of wall)"


def interleave(contestants: Sequence[Contestant], reps: int) -> dict[str, Timings]:
    """Run each contestant once per round, ``reps`` rounds; time every run.

    Garbage is collected before every sample so that no contestant pays for
    another's leftovers; collections during a run are left on, as a user would
    have them. Process CPU time is recorded beside wall time: when it falls well
    below the wall time, something else had the CPU.
    """
    timings = {c.name: Timings([], []) for c in contestants}
    for _ in range(reps):
        for contestant in contestants:
            gc.collect()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(contestant.per_sample):
                contestant.run()
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            timings[contestant.name].wall.append(wall / contestant.per_sample)
            timings[contestant.name].cpu.append(cpu / contestant.per_sample)
    return timings


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Per-repetition ratios of two interleaved sample lists."""
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def fmt_number(value: float) -> str:
    """Three significant digits or so, without scientific notation for everyday magnitudes."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"
