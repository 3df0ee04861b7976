"""The price table: OpenAI families, snapshot names, cache pricing, overrides, unknown models."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from codon_sdk.llm import (
    DEFAULT_PRICES,
    PRICES,
    ModelPrice,
    PriceTable,
    model_price,
    reset_prices,
    set_model_price,
)

COST_LOGGER = "codon_sdk.telemetry.cost"


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    reset_prices()
    yield
    reset_prices()


def test_the_default_table_covers_the_current_openai_families() -> None:
    """gpt-5, gpt-4.1, gpt-4o, o-series and embedding models all have a price."""
    for model in (
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-5.4",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ):
        assert model in PRICES, model
    assert DEFAULT_PRICES["gpt-4o-mini"] == ModelPrice(input=0.15, cached_input=0.075, output=0.60)


@pytest.mark.parametrize(
    ("snapshot", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ],
)
def test_dated_snapshot_names_resolve_to_their_family(snapshot: str, family: str) -> None:
    """A snapshot without its own entry is priced as its family."""
    assert model_price(snapshot) == DEFAULT_PRICES[family]


def test_a_snapshot_with_its_own_price_keeps_it() -> None:
    """gpt-4o-2024-05-13 was priced differently from gpt-4o: the exact entry wins."""
    assert model_price("gpt-4o-2024-05-13") == ModelPrice(input=5.0, output=15.0)
    assert model_price("gpt-4o-2024-05-13") != model_price("gpt-4o")


def test_cached_input_is_billed_at_its_own_price_and_reasoning_is_output() -> None:
    """cost = uncached input + cached input + output (reasoning is inside output)."""
    cost = PRICES.cost("o4-mini", input_tokens=1206, output_tokens=342, cached_input_tokens=1152)
    assert cost == pytest.approx(((1206 - 1152) * 1.10 + 1152 * 0.275 + 342 * 4.40) / 1e6)


def test_a_model_without_a_cached_price_bills_cached_tokens_as_input() -> None:
    """No cache discount listed: cached tokens cost what input tokens cost."""
    price = ModelPrice(input=2.0, output=4.0)
    assert price.cost(input_tokens=100, output_tokens=0, cached_input_tokens=60) == (
        pytest.approx(100 * 2.0 / 1e6)
    )


def test_unknown_model_has_no_cost_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown model costs None (never 0) and logs one warning however often it is used."""
    caplog.set_level(logging.WARNING, logger=COST_LOGGER)
    for _ in range(3):
        assert PRICES.cost("acme-7b", input_tokens=10, output_tokens=10) is None
    assert PRICES.cost("acme-13b", input_tokens=1, output_tokens=1) is None
    messages = [r.getMessage() for r in caplog.records if r.name == COST_LOGGER]
    assert len(messages) == 2
    assert "'acme-7b'" in messages[0]
    assert "set_model_price" in messages[0]


def test_set_model_price_overrides_and_extends_the_table() -> None:
    """Users correct a default price or add their own model; reset_prices undoes both."""
    set_model_price("gpt-4o-mini", input=1.0, output=2.0)
    set_model_price("acme-7b", input=0.5, output=0.5, cached_input=0.1)
    assert PRICES.cost("gpt-4o-mini-2024-07-18", input_tokens=10**6, output_tokens=0) == 1.0
    assert PRICES.cost(
        "acme-7b", input_tokens=10**6, output_tokens=0, cached_input_tokens=10**6
    ) == pytest.approx(0.1)
    reset_prices()
    assert model_price("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]
    assert model_price("acme-7b") is None


def test_pricing_a_model_that_warned_rearms_its_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Once a price is set the model is priced; removing it again warns again."""
    caplog.set_level(logging.WARNING, logger=COST_LOGGER)
    assert PRICES.cost("acme-7b", input_tokens=1, output_tokens=1) is None
    set_model_price("acme-7b", input=1.0, output=1.0)
    assert PRICES.cost("acme-7b", input_tokens=10**6, output_tokens=0) == 1.0
    PRICES.remove("acme-7b")
    assert PRICES.cost("acme-7b", input_tokens=1, output_tokens=1) is None
    assert len([r for r in caplog.records if r.name == COST_LOGGER]) == 2


def test_the_first_priced_name_is_used() -> None:
    """Given the response model and the requested one, the first with a price counts."""
    cost = PRICES.cost("acme-snapshot", "gpt-4.1", input_tokens=10**6, output_tokens=0)
    assert cost == 2.0


def test_a_private_table_is_independent_of_the_global_one() -> None:
    """PriceTable(...) holds its own prices."""
    table = PriceTable({"mine": ModelPrice(input=1.0, output=3.0)})
    assert table.cost("mine-2025-01-01", input_tokens=0, output_tokens=10**6) == 3.0
    assert "mine" not in PRICES
    assert list(table) == ["mine"]
    assert len(table) == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"input": -1.0, "output": 1.0}, ValueError),
        ({"input": float("nan"), "output": 1.0}, ValueError),
        ({"input": 1.0, "output": "2"}, TypeError),
        ({"input": 1.0, "output": 1.0, "cached_input": True}, TypeError),
    ],
)
def test_invalid_prices_are_rejected(fields: dict[str, object], error: type[Exception]) -> None:
    """Prices are finite, non-negative numbers; the message names the field."""
    with pytest.raises(error, match="ModelPrice"):
        ModelPrice(**fields)  # type: ignore[arg-type]
