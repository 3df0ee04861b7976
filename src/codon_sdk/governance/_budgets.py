"""Budgets: limits on what a run, or all runs of a deployment, may spend.

A :class:`Budget` limits any of: ``usd`` (LLM cost, from the price table), ``tokens``
(input plus output), ``llm_calls``, ``activations`` and ``wall_time`` (seconds, per run
only). Before each activation and each LLM call the run checks whether it would cross a
limit (an LLM call by its estimate, see ``LLMRequest``); if so the act is not made and the
run ends with status ``stopped``, its reason naming the budget. ``per="deployment"``
budgets are kept in the run's store, so they hold across runs and processes (SQLite,
PostgreSQL; a memory store holds them for its process).

Values are checked when the budget is made: a negative limit, a bool, or a value in
another unit (``usd="5 EUR"``, ``wall_time="5 tokens"``) is refused with
``ConfigurationError``. ``usd`` takes a number or ``"$5"`` / ``"5 USD"``; ``wall_time`` a
number of seconds or ``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from codon_sdk.errors import ConfigurationError

__all__ = ["MEASURES", "Budget"]

MEASURES: Final = ("usd", "tokens", "llm_calls", "activations", "wall_time")
"""What a budget can limit; the first four are also kept per deployment."""

_COUNTS: Final = ("tokens", "llm_calls", "activations")
_USD: Final = re.compile(r"\s*(?:\$\s*(?P<a>[0-9.eE+]+)|(?P<b>[0-9.eE+]+)\s*(?:usd|USD|\$))\s*\Z")
_TIME: Final = re.compile(r"\s*(?P<n>[0-9.eE+]+)\s*(?P<unit>ms|s|sec|m|min|h)?\s*\Z")
_TIME_UNITS: Final = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")


def _number(label: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"budget {label} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ConfigurationError(
            f"budget {label} must be a finite number of at least 0, got {value!r}"
        )
    return number


def _usd(value: Any) -> float:
    if isinstance(value, str):
        match = _USD.match(value)
        if match is None:
            raise ConfigurationError(
                f"budget usd must be an amount in US dollars (5, 0.25, '$5' or '5 USD'), "
                f"got {value!r}: costs are priced in USD"
            )
        try:
            value = float(match.group("a") or match.group("b"))
        except ValueError:
            raise ConfigurationError(f"budget usd {value!r} is not a number") from None
    return _number("usd", value)


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        match = _TIME.match(value)
        if match is None:
            raise ConfigurationError(
                f"budget wall_time must be a duration (seconds, or '500ms', '30s', '5m', "
                f"'2h'), got {value!r}"
            )
        try:
            value = float(match.group("n")) * _TIME_UNITS[match.group("unit")]
        except ValueError:
            raise ConfigurationError(f"budget wall_time {value!r} is not a number") from None
    return _number("wall_time", value)


def _count(label: str, value: Any) -> int:
    if isinstance(value, bool) or type(value) is not int:
        raise ConfigurationError(
            f"budget {label} must be a whole number of {label.replace('_', ' ')}, got {value!r}"
        )
    if value < 0:
        raise ConfigurationError(f"budget {label} must be at least 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, init=False)
class Budget:
    """Limits on a run's (``per="run"``) or a deployment's (``per="deployment"``) spending.

    >>> Budget(usd="$0.50", llm_calls=20, wall_time="5m").limits()
    {'usd': 0.5, 'llm_calls': 20, 'wall_time': 300.0}
    """

    per: str
    name: str
    usd: float | None
    tokens: int | None
    llm_calls: int | None
    activations: int | None
    wall_time: float | None

    def __init__(
        self,
        *,
        usd: float | str | None = None,
        tokens: int | None = None,
        llm_calls: int | None = None,
        activations: int | None = None,
        wall_time: float | str | None = None,
        per: str = "run",
        name: str = "budget",
    ) -> None:
        if per not in ("run", "deployment"):
            raise ConfigurationError(f"budget per= must be 'run' or 'deployment', got {per!r}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(
                f"budget name must be 1-64 letters, digits, '_', '.', ':' or '-', got {name!r}"
            )
        if per == "deployment" and wall_time is not None:
            raise ConfigurationError(
                "a deployment budget cannot limit wall_time (runs overlap in time); give "
                "wall_time to a per='run' budget"
            )
        set_ = object.__setattr__
        set_(self, "per", per)
        set_(self, "name", name)
        set_(self, "usd", None if usd is None else _usd(usd))
        for label, value in (
            ("tokens", tokens),
            ("llm_calls", llm_calls),
            ("activations", activations),
        ):
            set_(self, label, None if value is None else _count(label, value))
        set_(self, "wall_time", None if wall_time is None else _seconds(wall_time))
        if not self.limits():
            raise ConfigurationError(
                "a budget needs at least one limit: usd, tokens, llm_calls, activations or "
                "wall_time"
            )

    def limits(self) -> dict[str, float | int]:
        """The limits set, by measure."""
        out: dict[str, float | int] = {}
        for measure in MEASURES:
            value = getattr(self, measure)
            if value is not None:
                out[measure] = value
        return out

    @property
    def label(self) -> str:
        """How reasons name it: ``run budget 'budget'``, ``deployment budget 'monthly'``."""
        return f"{self.per} budget {self.name!r}"
