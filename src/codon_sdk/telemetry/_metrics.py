"""The SDK's metric instruments and the helpers that record them (OpenTelemetry API only).

==================================  =========  ========  ===================================
instrument                          type       unit      recorded by
==================================  =========  ========  ===================================
``gen_ai.client.token.usage``       histogram  {token}   every LLM call with known usage,
                                                         once per ``gen_ai.token.type``
``gen_ai.client.operation.duration`` histogram  s         every LLM call (``error.type`` on
                                                         failure)
``codon.node.duration``             histogram  s         the engine, per node activation
``codon.run.cost``                  histogram  {USD}     the engine, once per run with a cost
``codon.run.duration``              histogram  s         the engine, once per run or resumed
                                                         part (``codon.workload.status``)
``codon.request_cache.lookups``     counter    {lookup}  the request cache, per lookup
                                                         (``codon.request_cache.result``:
                                                         ``hit`` or ``miss``)
==================================  =========  ========  ===================================

The two ``gen_ai.client.*`` histograms carry the explicit bucket boundaries the
GenAI semantic conventions (v1.41) specify, as an advisory (an SDK view can
still override them). Calls served from the ledger on resume or replay record
no metrics: no tokens were spent and no request was made.

Every helper takes an optional ``meter_provider`` (the global one by default)
and never raises: a metric that cannot be recorded is logged and dropped.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.util.types import AttributeValue

from codon_sdk._version import __version__
from codon_sdk.redaction import get_logger
from codon_sdk.telemetry._attributes import CodonNodeAttributes as NodeA
from codon_sdk.telemetry._attributes import GenAIAttributes as G
from codon_sdk.telemetry._attributes import GenAIMetrics as M

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.telemetry._genai import TokenUsage

__all__ = [
    "COST_BUCKETS",
    "DURATION_BUCKETS",
    "METER_NAME",
    "TOKEN_BUCKETS",
    "GenAIInstruments",
    "instruments",
    "record_node_duration",
    "record_operation_duration",
    "record_run_cost",
    "record_run_duration",
    "record_token_usage",
]

_log = get_logger("codon_sdk.telemetry")

METER_NAME = "codon_sdk"

TOKEN_BUCKETS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
"""``gen_ai.client.token.usage`` boundaries, from the GenAI semantic conventions."""

DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
"""``gen_ai.client.operation.duration`` boundaries (seconds), from the GenAI conventions;
``codon.node.duration`` uses them too."""

COST_BUCKETS: tuple[float, ...] = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0,
)  # fmt: skip
"""``codon.run.cost`` boundaries (USD per run)."""

Attributes = Mapping[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class GenAIInstruments:
    """The instruments (five histograms and a counter), made once per meter provider."""

    token_usage: metrics.Histogram
    operation_duration: metrics.Histogram
    node_duration: metrics.Histogram
    run_cost: metrics.Histogram
    run_duration: metrics.Histogram
    request_cache: metrics.Counter


_lock = threading.Lock()
_by_provider: weakref.WeakKeyDictionary[metrics.MeterProvider, GenAIInstruments] = (
    weakref.WeakKeyDictionary()
)


def _create(provider: metrics.MeterProvider) -> GenAIInstruments:
    meter = provider.get_meter(METER_NAME, __version__)
    return GenAIInstruments(
        token_usage=meter.create_histogram(
            M.TOKEN_USAGE.value,
            unit="{token}",
            description="Number of input and output tokens used by GenAI operations.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        ),
        operation_duration=meter.create_histogram(
            M.OPERATION_DURATION.value,
            unit="s",
            description="Duration of GenAI client operations.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        node_duration=meter.create_histogram(
            M.NODE_DURATION.value,
            unit="s",
            description="Duration of Codon node activations.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        run_cost=meter.create_histogram(
            M.RUN_COST.value,
            unit="{USD}",
            description="LLM cost of a Codon run in US dollars (runs with a known cost only).",
            explicit_bucket_boundaries_advisory=COST_BUCKETS,
        ),
        run_duration=meter.create_histogram(
            M.RUN_DURATION.value,
            unit="s",
            description="Time a Codon run spent running in one process (waits excluded).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        request_cache=meter.create_counter(
            M.REQUEST_CACHE.value,
            unit="{lookup}",
            description="Lookups of the request cache (an effect served from an earlier "
            "identical request, or sent).",
        ),
    )


def instruments(meter_provider: metrics.MeterProvider | None = None) -> GenAIInstruments:
    """The instruments of ``meter_provider`` (default: the global provider), made once."""
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    with _lock:
        found = _by_provider.get(provider)
        if found is None:
            found = _create(provider)
            _by_provider[provider] = found
        return found


def _attrs(attributes: Attributes | None) -> dict[str, AttributeValue]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


def record_token_usage(
    usage: TokenUsage,
    attributes: Attributes | None = None,
    *,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Record ``usage``'s known input and output token counts on ``gen_ai.client.token.usage``.

    ``attributes`` should hold ``gen_ai.operation.name``, ``gen_ai.provider.name``,
    ``gen_ai.request.model`` and, when known, ``gen_ai.response.model`` and
    ``server.address``/``server.port``; ``gen_ai.token.type`` is added here.
    """
    try:
        histogram = instruments(meter_provider).token_usage
        base = _attrs(attributes)
        for token_type, count in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            if count is not None:
                histogram.record(count, {**base, G.TOKEN_TYPE.value: token_type})
    except Exception:
        _log.warning("could not record %s", M.TOKEN_USAGE.value, exc_info=True)


def record_operation_duration(
    seconds: float,
    attributes: Attributes | None = None,
    *,
    error_type: str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Record one LLM call's duration on ``gen_ai.client.operation.duration``."""
    try:
        attrs = _attrs(attributes)
        if error_type:
            attrs[G.ERROR_TYPE.value] = error_type
        instruments(meter_provider).operation_duration.record(max(seconds, 0.0), attrs)
    except Exception:
        _log.warning("could not record %s", M.OPERATION_DURATION.value, exc_info=True)


def record_node_duration(
    seconds: float,
    *,
    node: str,
    attributes: Attributes | None = None,
    error_type: str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Record one node activation's duration on ``codon.node.duration``.

    ``node`` becomes ``codon.nodespec.name``. Pass only low-cardinality
    ``attributes`` (workload id, logic id, deployment id, role), never run or token ids.
    """
    try:
        attrs = _attrs(attributes)
        attrs[NodeA.NODESPEC_NAME.value] = node
        if error_type:
            attrs[G.ERROR_TYPE.value] = error_type
        instruments(meter_provider).node_duration.record(max(seconds, 0.0), attrs)
    except Exception:
        _log.warning("could not record %s", M.NODE_DURATION.value, exc_info=True)


def record_run_cost(
    cost_usd: float | None,
    attributes: Attributes | None = None,
    *,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Record a finished run's LLM cost on ``codon.run.cost`` (nothing when it is None).

    The engine calls this once per run with ``report.usage["total"]["cost_usd"]``;
    an unknown cost is not recorded as zero.
    """
    if cost_usd is None:
        return
    try:
        instruments(meter_provider).run_cost.record(max(float(cost_usd), 0.0), _attrs(attributes))
    except Exception:
        _log.warning("could not record %s", M.RUN_COST.value, exc_info=True)


def record_run_duration(
    seconds: float,
    *,
    status: str,
    attributes: Attributes | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Record the time a run (or the resumed part of one) ran in this process on
    ``codon.run.duration``, with its status as ``codon.workload.status``."""
    try:
        attrs = _attrs(attributes)
        attrs["codon.workload.status"] = status
        instruments(meter_provider).run_duration.record(max(seconds, 0.0), attrs)
    except Exception:
        _log.warning("could not record %s", M.RUN_DURATION.value, exc_info=True)


def record_request_cache(
    effect: str, *, hit: bool, meter_provider: metrics.MeterProvider | None = None
) -> None:
    """Count one request-cache lookup of ``effect`` on ``codon.request_cache.lookups``."""
    try:
        instruments(meter_provider).request_cache.add(
            1,
            {"codon.request_cache.result": "hit" if hit else "miss", "codon.effect.name": effect},
        )
    except Exception:
        _log.warning("could not record %s", M.REQUEST_CACHE.value, exc_info=True)
