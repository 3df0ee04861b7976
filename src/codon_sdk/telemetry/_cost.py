"""What an LLM call cost, in USD, from a price table users can override or extend.

Prices are USD per 1M tokens, standard (not batch, flex or priority) tier,
compiled in June 2026 from OpenAI's pricing page and model pages
(https://developers.openai.com/api/docs/pricing and
https://developers.openai.com/api/docs/models/<model>), cross-checked with
published copies of that table.
Prices change: check them against that page and correct or add entries with
``codon_sdk.llm.set_model_price`` (or your own :class:`PriceTable`).

Anthropic prices (Claude models) are from Anthropic's pricing page
(https://docs.anthropic.com/en/docs/about-claude/pricing: base input, 5-minute
cache writes, cache hits, output), compiled in December 2026; the Claude 4.6
models, not on the copy of that page consulted, are priced at their published
base rates with Anthropic's standard cache multipliers (writes 1.25x input,
hits 0.1x input). Prompts over 200K tokens on the long-context Sonnet models
and 1-hour cache writes (2x input) are billed higher than this table says.

How a call is priced::

    cost = ((input - cached_input - cache_creation) * price.input
            + cached_input * price.cached_input
            + cache_creation * price.cache_write
            + output * price.output) / 1_000_000

Cached tokens (cache reads) and cache-creation tokens (cache writes, Anthropic)
are counted inside the input tokens, and reasoning tokens inside the output
tokens (billed at the output price), so none is added again. A model without a
cached-input or cache-write price bills those tokens at the input price.

Model names resolve exactly first, then without a date suffix
(``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``gpt-4-0613`` -> ``gpt-4``), so a
snapshot with its own price can still have its own entry
(``gpt-4o-2024-05-13``). An unknown model has no cost (``None``, never a
made-up zero) and logs one warning per model name.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from codon_sdk.errors import ConfigurationError
from codon_sdk.redaction import get_logger

__all__ = [
    "DEFAULT_PRICES",
    "PRICES",
    "ModelPrice",
    "PriceTable",
    "model_price",
    "reset_prices",
    "set_model_price",
]

_log = get_logger("codon_sdk.telemetry.cost")
_PER_TOKENS = 1_000_000
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPrice:
    """USD per 1M tokens: ``input``, ``output``, (when discounted) ``cached_input`` (cache
    reads) and (when it differs from ``input``) ``cache_write`` (Anthropic's cache writes)."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "cache_write"):
            value = getattr(self, name)
            if value is None and name in ("cached_input", "cache_write"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"ModelPrice.{name} must be a number (USD per 1M tokens), got {value!r}"
                )
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(
                    f"ModelPrice.{name} must be finite and >= 0, got {value!r}"
                )

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
    ) -> float:
        """USD for one call with these token counts (cached and cache-creation tokens are
        part of ``input_tokens``)."""
        inputs = max(input_tokens, 0)
        cached = min(max(cached_input_tokens, 0), inputs)
        written = min(max(cache_creation_input_tokens, 0), inputs - cached)
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write is None else self.cache_write
        total = (
            (inputs - cached - written) * self.input
            + cached * cached_price
            + written * write_price
            + max(output_tokens, 0) * self.output
        )
        return total / _PER_TOKENS


def _p(input: float, cached_input: float | None, output: float) -> ModelPrice:
    return ModelPrice(input=input, cached_input=cached_input, output=output)


def _claude(input: float, cache_write: float, cache_hit: float, output: float) -> ModelPrice:
    return ModelPrice(input=input, cache_write=cache_write, cached_input=cache_hit, output=output)


DEFAULT_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        # GPT-5 family
        "gpt-5.5": _p(5.00, 0.50, 30.00),
        "gpt-5.5-pro": _p(30.00, None, 180.00),
        "gpt-5.4": _p(2.50, 0.25, 15.00),
        "gpt-5.4-mini": _p(0.75, 0.075, 4.50),
        "gpt-5.4-nano": _p(0.20, 0.02, 1.25),
        "gpt-5.4-pro": _p(30.00, None, 180.00),
        "gpt-5.2": _p(1.75, 0.175, 14.00),
        "gpt-5.1": _p(1.25, 0.125, 10.00),
        "gpt-5": _p(1.25, 0.125, 10.00),
        "gpt-5-chat-latest": _p(1.25, 0.125, 10.00),
        "gpt-5-mini": _p(0.25, 0.025, 2.00),
        "gpt-5-nano": _p(0.05, 0.005, 0.40),
        "gpt-5-pro": _p(15.00, None, 120.00),
        # GPT-4.1 family
        "gpt-4.1": _p(2.00, 0.50, 8.00),
        "gpt-4.1-mini": _p(0.40, 0.10, 1.60),
        "gpt-4.1-nano": _p(0.10, 0.025, 0.40),
        # GPT-4o family
        "gpt-4o": _p(2.50, 1.25, 10.00),
        "gpt-4o-2024-05-13": _p(5.00, None, 15.00),
        "gpt-4o-mini": _p(0.15, 0.075, 0.60),
        # o-series reasoning models
        "o1": _p(15.00, 7.50, 60.00),
        "o1-mini": _p(1.10, 0.55, 4.40),
        "o1-pro": _p(150.00, None, 600.00),
        "o3": _p(2.00, 0.50, 8.00),
        "o3-mini": _p(1.10, 0.55, 4.40),
        "o3-pro": _p(20.00, None, 80.00),
        "o4-mini": _p(1.10, 0.275, 4.40),
        # Anthropic Claude: input, 5-minute cache writes, cache hits, output (module docstring)
        "claude-opus-4-6": _claude(5.00, 6.25, 0.50, 25.00),
        "claude-opus-4-5": _claude(5.00, 6.25, 0.50, 25.00),
        "claude-opus-4-1": _claude(15.00, 18.75, 1.50, 75.00),
        "claude-opus-4-0": _claude(15.00, 18.75, 1.50, 75.00),
        "claude-opus-4": _claude(15.00, 18.75, 1.50, 75.00),
        "claude-sonnet-4-6": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-sonnet-4-5": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-sonnet-4-0": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-sonnet-4": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-haiku-4-5": _claude(1.00, 1.25, 0.10, 5.00),
        "claude-3-7-sonnet": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-3-7-sonnet-latest": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-3-5-sonnet": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-3-5-sonnet-latest": _claude(3.00, 3.75, 0.30, 15.00),
        "claude-3-5-haiku": _claude(0.80, 1.00, 0.08, 4.00),
        "claude-3-5-haiku-latest": _claude(0.80, 1.00, 0.08, 4.00),
        "claude-3-opus": _claude(15.00, 18.75, 1.50, 75.00),
        "claude-3-haiku": _claude(0.25, 0.30, 0.03, 1.25),
        # embeddings (input only)
        "text-embedding-3-small": _p(0.02, None, 0.0),
        "text-embedding-3-large": _p(0.13, None, 0.0),
        "text-embedding-ada-002": _p(0.10, None, 0.0),
    }
)


def base_model_name(model: str) -> str:
    """``model`` without a snapshot date suffix (``gpt-4o-2024-08-06`` -> ``gpt-4o``)."""
    return _DATE_SUFFIX.sub("", model)


class PriceTable:
    """A thread-safe table of model prices; :data:`PRICES` is the one the SDK uses.

    >>> table = PriceTable({"my-model": ModelPrice(input=1.0, output=2.0)})
    >>> table.cost("my-model-2025-01-01", input_tokens=1_000_000, output_tokens=0)
    1.0
    """

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self._lock = threading.Lock()
        self._prices: dict[str, ModelPrice] = {}
        self._warned: set[str] = set()
        if prices:
            self.update(prices)

    def set(self, model: str, price: ModelPrice) -> None:
        """Add or replace the price of ``model`` (a family name or an exact snapshot)."""
        if not isinstance(model, str) or not model:
            raise TypeError(f"model must be a non-empty string, got {model!r}")
        if not isinstance(price, ModelPrice):
            raise TypeError(f"price must be a ModelPrice, got {type(price).__name__}")
        with self._lock:
            self._prices[model] = price
            self._warned.clear()  # a model that warned may be priced now

    def update(self, prices: Mapping[str, ModelPrice]) -> None:
        """:meth:`set` each entry of ``prices``."""
        for model, price in prices.items():
            self.set(model, price)

    def remove(self, model: str) -> None:
        """Forget the price of ``model`` (no error if it had none)."""
        with self._lock:
            self._prices.pop(model, None)

    def reset(self, prices: Mapping[str, ModelPrice] = DEFAULT_PRICES) -> None:
        """Replace every entry with ``prices`` (the defaults unless given) and re-arm warnings."""
        with self._lock:
            self._prices = dict(prices)
            self._warned.clear()

    def get(self, model: str | None) -> ModelPrice | None:
        """The price of ``model``: exact name first, then without its date suffix."""
        if not model:
            return None
        with self._lock:
            price = self._prices.get(model)
            if price is None:
                price = self._prices.get(base_model_name(model))
        return price

    def find(self, models: Iterable[str | None]) -> tuple[str | None, ModelPrice | None]:
        """The first of ``models`` with a price, or ``(first named model, None)``."""
        first: str | None = None
        for model in models:
            if not model:
                continue
            first = first or model
            price = self.get(model)
            if price is not None:
                return model, price
        return first, None

    def cost(
        self,
        *models: str | None,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
    ) -> float | None:
        """USD for a call to the first priced of ``models``; None (and one warning) if none is."""
        model, price = self.find(models)
        if price is None:
            self._warn_unknown(model)
            return None
        return price.cost(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
        )

    def _warn_unknown(self, model: str | None) -> None:
        key = model or "<unnamed>"
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        _log.warning(
            "no price for model %r: its calls get no cost (cost_usd=None). Add one with "
            "codon_sdk.llm.set_model_price(%r, input=..., output=..., "
            "cached_input=...) (USD per 1M tokens)",
            key,
            key,
        )

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.get(model) is not None

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._prices))

    def __len__(self) -> int:
        with self._lock:
            return len(self._prices)

    def as_dict(self) -> dict[str, ModelPrice]:
        """A snapshot of the table."""
        with self._lock:
            return dict(self._prices)


PRICES = PriceTable(DEFAULT_PRICES)
"""The process-wide price table the instrumentation and ``track_llm`` price calls with."""


def set_model_price(
    model: str,
    *,
    input: float,
    output: float,
    cached_input: float | None = None,
    cache_write: float | None = None,
) -> None:
    """Override or add a model's price in :data:`PRICES` (USD per 1M tokens).

    ``set_model_price("gpt-4o-mini", input=0.15, output=0.60, cached_input=0.075)``;
    ``cache_write`` is the price of cache-creation tokens (Anthropic), the input price
    when not given.
    """
    price = ModelPrice(
        input=input, output=output, cached_input=cached_input, cache_write=cache_write
    )
    PRICES.set(model, price)


def model_price(model: str) -> ModelPrice | None:
    """The price :data:`PRICES` gives ``model`` (resolving snapshot dates), or None."""
    return PRICES.get(model)


def reset_prices() -> None:
    """Put :data:`PRICES` back to :data:`DEFAULT_PRICES`."""
    PRICES.reset()
