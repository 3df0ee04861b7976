"""The deployment budgets table (migration 6) and its two statements, in both dialects."""

from __future__ import annotations

from typing import Final

__all__ = ["BUDGETS_TABLE", "MIGRATION", "RATE_MIGRATION", "RATE_TABLE", "charge", "read"]

BUDGETS_TABLE: Final = "codon_budgets"

_MEASURES: Final = ("usd", "tokens", "llm_calls", "activations")

#: Migration 6 (``{real}``/``{int}``: the dialect's double and 64-bit integer types).
MIGRATION: Final = f"""CREATE TABLE {BUDGETS_TABLE} (
    deployment_id TEXT NOT NULL,
    budget TEXT NOT NULL,
    usd {{real}} NOT NULL DEFAULT 0,
    tokens {{int}} NOT NULL DEFAULT 0,
    llm_calls {{int}} NOT NULL DEFAULT 0,
    activations {{int}} NOT NULL DEFAULT 0,
    updated_us {{int}} NOT NULL,
    PRIMARY KEY (deployment_id, budget)
)"""


RATE_TABLE: Final = "codon_rate_slots"

#: Also migration 6: the calls granted in shared rate-limit windows (``TakeRateSlot``).
RATE_MIGRATION: Final = (
    f"CREATE TABLE {RATE_TABLE} (key TEXT NOT NULL, at_us {{int}} NOT NULL, "
    f"tokens {{int}} NOT NULL)"
)
RATE_INDEX: Final = f"CREATE INDEX codon_rate_slots_by_key ON {RATE_TABLE} (key, at_us)"


def charge(p: str) -> str:
    """Add to a budget's totals unless a limit would be crossed: one upsert, atomic on its row
    (parameters: deployment, budget, four amounts, now, four limits)."""
    t = BUDGETS_TABLE
    sets = ", ".join(f"{m} = {t}.{m} + excluded.{m}" for m in _MEASURES)
    where = " AND ".join(f"{t}.{m} + excluded.{m} <= {p}" for m in _MEASURES)
    values = ", ".join([p] * 7)
    return (
        f"INSERT INTO {t} (deployment_id, budget, {', '.join(_MEASURES)}, updated_us) "
        f"VALUES ({values}) ON CONFLICT (deployment_id, budget) DO UPDATE SET {sets}, "
        f"updated_us = excluded.updated_us WHERE {where}"
    )


def read(p: str) -> str:
    return (
        f"SELECT {', '.join(_MEASURES)} FROM {BUDGETS_TABLE} "
        f"WHERE deployment_id = {p} AND budget = {p}"
    )
