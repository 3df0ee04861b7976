"""Deployment budgets in the store: what the runs of a deployment have spent, per budget.

One row per (deployment id, budget name) holds the totals spent: ``usd``, ``tokens``,
``llm_calls`` and ``activations``. :class:`ChargeBudget` adds to them in one statement
(an upsert whose update is conditional on every limit), so two processes charging the
same budget at once can never together cross a limit: the database serialises the row.
A charge that would cross is refused and changes nothing. ``force`` charges whatever
the limits (the correction of an estimate once the real usage is known, which may
also be negative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from codon_sdk.errors import StoreCorruptError
from codon_sdk.stores._schema_budgets import charge as charge_statement
from codon_sdk.stores._schema_budgets import read as read_statement

__all__ = ["BUDGET_MEASURES", "BudgetTotals", "ChargeBudget", "ReadBudget", "charge_memory"]

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
