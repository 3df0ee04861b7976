"""Deployment budgets in the store: what the runs of a deployment have spent, per budget.

One row per (deployment id, budget name) holds the totals spent: ``usd``, ``tokens``,
``llm_calls`` and ``activations``. :class:`ChargeBudget` adds to them in one statement
(an upsert whose update is conditional on every limit), so two processes charging the
same budget at once can never together cross a limit: the database serialises the row.
A charge that would cross is refused and changes nothing. ``force`` charges whatever
the limits (the correction of an estimate once the real usage is known, which may
also be negative).

Rate windows shared across processes (:class:`TakeRateSlot`) live here too: one row per call
granted in the window, the expired ones deleted by the next taker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from codon_sdk.errors import StoreCorruptError
from codon_sdk.stores._schema_budgets import RATE_TABLE
from codon_sdk.stores._schema_budgets import charge as charge_statement
from codon_sdk.stores._schema_budgets import read as read_statement

__all__ = [
    "BUDGET_MEASURES",
    "BudgetTotals",
    "ChargeBudget",
    "ReadBudget",
    "TakeRateSlot",
    "charge_memory",
    "take_rate_memory",
    "take_rate_sql",
]

BUDGET_MEASURES: Final = ("usd", "tokens", "llm_calls", "activations")
_NO_LIMIT: Final = 1e300


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetTotals:
    """What a deployment budget has spent so far."""

    usd: float = 0.0
    tokens: int = 0
    llm_calls: int = 0
    activations: int = 0

    def of(self, measure: str) -> float:
        return float(getattr(self, measure))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeBudget:
    """Add ``amounts`` (by measure) to the budget's totals, unless one would then exceed its
    limit in ``limits`` (by measure; a missing measure is unlimited). Returns True when
    charged, False when refused (nothing changed). ``force`` charges regardless."""

    deployment_id: str
    budget: str
    amounts: tuple[tuple[str, float], ...]
    limits: tuple[tuple[str, float], ...] = ()
    force: bool = False
    now_us: int = 0

    def params(self) -> tuple[Any, ...]:
        """The parameters of the charge statement (``stores/_schema_budgets.py``)."""
        amounts = dict(self.amounts)
        limits = dict(self.limits)
        values = [amounts.get(m, 0) for m in BUDGET_MEASURES]
        bounds = [_NO_LIMIT if self.force else limits.get(m, _NO_LIMIT) for m in BUDGET_MEASURES]
        return (self.deployment_id, self.budget, *values, self.now_us, *bounds)

    def fits_alone(self) -> bool:
        """Whether the amounts fit the limits from zero (the first charge of a budget)."""
        limits = dict(self.limits)
        return self.force or all(v <= limits.get(m, _NO_LIMIT) for m, v in self.amounts)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadBudget:
    """The :class:`BudgetTotals` of a deployment budget (zeros when nothing was charged)."""

    deployment_id: str
    budget: str


def totals_from_row(row: Sequence[Any] | None) -> BudgetTotals:
    """Totals from a row selected as ``usd, tokens, llm_calls, activations`` (or none)."""
    if row is None:
        return BudgetTotals()
    try:
        usd, tokens, calls, activations = row
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
        totals = BudgetTotals(
            usd=float(usd), tokens=int(tokens), llm_calls=int(calls), activations=int(activations)
        )
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not all(math.isfinite(totals.of(m)) for m in BUDGET_MEASURES):
        raise StoreCorruptError(
            f"the budgets table holds {tuple(row)!r}, which is not four spent totals (numbers); "
            "the row was damaged or written by something else: delete it to start the budget "
            "afresh, or restore the table from a backup"
        )
    return totals


def charge_memory(held: dict[tuple[str, str], BudgetTotals], op: ChargeBudget) -> bool:
    """:class:`ChargeBudget` on a dict (the memory store; the caller holds its lock)."""
    key = (op.deployment_id, op.budget)
    now = held.get(key, BudgetTotals())
    amounts = dict(op.amounts)
    limits = dict(op.limits)
    after = {m: now.of(m) + amounts.get(m, 0) for m in BUDGET_MEASURES}
    if not op.force and any(after[m] > limits.get(m, _NO_LIMIT) for m in BUDGET_MEASURES):
        return False
    held[key] = BudgetTotals(
        usd=after["usd"],
        tokens=int(after["tokens"]),
        llm_calls=int(after["llm_calls"]),
        activations=int(after["activations"]),
    )
    return True


def charge_sql(conn: Any, placeholder: str, op: ChargeBudget) -> bool:
    """:class:`ChargeBudget` as one statement on a SQL connection (autocommit)."""
    if not op.fits_alone():
        return False
    cursor = conn.execute(charge_statement(placeholder), op.params())
    return bool(cursor.rowcount == 1)


def read_sql(conn: Any, placeholder: str, op: ReadBudget) -> BudgetTotals:
    row = conn.execute(read_statement(placeholder), (op.deployment_id, op.budget)).fetchone()
    return totals_from_row(row)


# --------------------------------------------------------------------------- rate windows


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeRateSlot:
    """Take a place for one call of ``tokens`` in the sliding window ``key`` (at most
    ``requests`` calls and ``tokens_cap`` tokens per ``window_us``), shared by every process
    using the store. Returns 0 when taken, else the microseconds until the oldest call in
    the window leaves it (nothing taken). One transaction; on PostgreSQL an advisory lock on
    the key serialises the processes."""

    key: str
    window_us: int
    requests: int | None
    tokens_cap: int | None
    tokens: int
    now_us: int


def room_after(count: int, used: int, oldest: int | None, op: TakeRateSlot) -> int:
    """0 when a call fits a window holding ``count`` calls of ``used`` tokens, else the wait."""
    if count == 0 or oldest is None:
        return 0
    fits = (op.requests is None or count < op.requests) and (
        op.tokens_cap is None or used + op.tokens <= op.tokens_cap
    )
    return 0 if fits else max(1, oldest + op.window_us - op.now_us)


def take_rate_memory(held: dict[str, list[tuple[int, int]]], op: TakeRateSlot) -> int:
    """:class:`TakeRateSlot` on a dict (the memory store; the caller holds its lock)."""
    calls = [c for c in held.get(op.key, []) if c[0] > op.now_us - op.window_us]
    wait = room_after(len(calls), sum(t for _, t in calls), calls[0][0] if calls else None, op)
    if wait == 0:
        calls.append((op.now_us, op.tokens))
    held[op.key] = calls
    return wait


def take_rate_sql(conn: Any, p: str, op: TakeRateSlot, atomic: Any, lock: str | None) -> int:
    """:class:`TakeRateSlot` in the transaction ``atomic`` (``lock``: the backend's statement
    that serialises takers of one key, if its transaction does not already)."""
    t = RATE_TABLE
    with atomic:
        if lock is not None:
            conn.execute(lock, (op.key,))
        conn.execute(f"DELETE FROM {t} WHERE key = {p} AND at_us <= {p}",
                     (op.key, op.now_us - op.window_us))  # fmt: skip
        row = conn.execute(
            f"SELECT count(*), COALESCE(sum(tokens), 0), min(at_us) FROM {t} WHERE key = {p}",
            (op.key,),
        ).fetchone()
        wait = room_after(int(row[0]), int(row[1]), None if row[2] is None else int(row[2]), op)
        if wait == 0:
            conn.execute(f"INSERT INTO {t} (key, at_us, tokens) VALUES ({p}, {p}, {p})",
                         (op.key, op.now_us, op.tokens))  # fmt: skip
        return wait
