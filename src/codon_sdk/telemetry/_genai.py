"""Shared GenAI telemetry for every LLM integration: spans, metrics, usage, ledger metadata.

An integration (the OpenAI instrumentation, ``track_llm``, the LangGraph adapter)
describes one LLM call with a :class:`GenAICall`: it opens a CLIENT span named
``"<operation> <model>"`` in the current context (inside the node span when
tracing is on), takes the response facts, and on :meth:`GenAICall.end` (exactly
once, whatever calls it) sets the ``gen_ai.*`` attributes of the GenAI semantic
conventions (v1.41), ends the span and records the duration and token metrics.
:func:`llm_metadata` builds the ``llm`` metadata recorded with the call's effect,
which ``ExecutionReport.usage`` aggregates::

    {"provider": "openai", "operation": "chat" | "responses" | "embeddings",
     "request_model": str, "response_model": str | None,
     "usage": {"input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
               ["cache_creation_input_tokens"]},
     "cost_usd": float | None, "request": {...request parameters...}}

Telemetry never breaks a call: every failure here is logged and swallowed.
Message content goes on spans only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
says so (see :func:`capture_message_content`).
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from codon_sdk._version import __version__
from codon_sdk.redaction import current_redact, get_logger
from codon_sdk.telemetry._attributes import CodonLedgerAttributes as L
from codon_sdk.telemetry._attributes import GenAIAttributes as G
from codon_sdk.telemetry._cost import PRICES, PriceTable
from codon_sdk.telemetry._metrics import record_operation_duration, record_token_usage

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "TRACER_NAME",
    "GenAICall",
    "TokenUsage",
    "capture_message_content",
    "cost_of",
    "error_type_of",
    "extract_finish_reasons",
    "extract_response_id",
    "extract_response_model",
    "extract_usage",
    "field",
    "jsonable",
    "llm_call_active",
    "llm_call_scope",
    "llm_metadata",
    "request_attributes",
    "scrub",
]

_log = get_logger("codon_sdk.telemetry")

TRACER_NAME = "codon_sdk.gen_ai"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})

_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("codon_llm_call", default=False)


def capture_message_content() -> bool:
    """Whether message content may go on spans (read from the environment on each call)."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON


def llm_call_active() -> bool:
    """True inside an LLM call an integration already traces and records (no double spans)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def llm_call_scope() -> Iterator[None]:
    """Mark the block as one traced LLM call: nested instrumented calls pass straight through."""
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


# --------------------------------------------------------------------------- reading results


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (for pydantic models, plain objects and dicts), else None."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenUsage:
    """Token counts of one call; None where the provider did not say.

    ``cached_input_tokens`` (cache reads) and ``cache_creation_input_tokens``
    (cache writes, Anthropic) are part of ``input_tokens``, and ``reasoning_tokens``
    part of ``output_tokens``, as the GenAI conventions count them.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_creation_input_tokens: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        """The counts by name; ``cache_creation_input_tokens`` only when the provider said."""
        out = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }
        if self.cache_creation_input_tokens is not None:
            out["cache_creation_input_tokens"] = self.cache_creation_input_tokens
        return out

    @property
    def known(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None

    @classmethod
    def from_dict(cls, data: Any) -> TokenUsage | None:
        if not isinstance(data, Mapping):
            return None
        usage = cls(**{k: _count(data.get(k)) for k in cls.__dataclass_fields__})
        return usage if usage.known else None


def extract_usage(result: Any) -> TokenUsage | None:
    """Token usage of an LLM result, or None when it carries none.

    Reads (from attributes or dict keys) OpenAI chat completions and embeddings
    (``usage.prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.
    cached_tokens``, ``completion_tokens_details.reasoning_tokens``), the
    Responses API (``usage.input_tokens``, ``output_tokens``,
    ``input_tokens_details.cached_tokens``, ``output_tokens_details.
    reasoning_tokens``), LangChain messages (``usage_metadata`` with
    ``input_token_details.cache_read`` and ``output_token_details.reasoning``),
    Anthropic (``cache_read_input_tokens`` and ``cache_creation_input_tokens``,
    both added to the input), and a bare usage object or dict of any of these shapes.
    """
    usage = field(result, "usage")
    if usage is None:
        usage = field(result, "usage_metadata")
    if usage is None:
        usage = result
    if isinstance(usage, (str, bytes, int, float)) or usage is None:
        return None
    inputs = _count(field(usage, "input_tokens"))
    if inputs is None:
        inputs = _count(field(usage, "prompt_tokens"))
    outputs = _count(field(usage, "output_tokens"))
    if outputs is None:
        outputs = _count(field(usage, "completion_tokens"))
    cached = _count(field(field(usage, "prompt_tokens_details"), "cached_tokens"))
    if cached is None:
        cached = _count(field(field(usage, "input_tokens_details"), "cached_tokens"))
    if cached is None:
        cached = _count(field(field(usage, "input_token_details"), "cache_read"))
    anthropic_cached = _count(field(usage, "cache_read_input_tokens"))
    if anthropic_cached is not None:  # Anthropic counts cache reads outside input_tokens
        cached = anthropic_cached
        inputs = (inputs or 0) + anthropic_cached
    written = _count(field(usage, "cache_creation_input_tokens"))
    if written is not None:  # and cache writes too
        inputs = (inputs or 0) + written
    reasoning = _count(field(field(usage, "completion_tokens_details"), "reasoning_tokens"))
    if reasoning is None:
        reasoning = _count(field(field(usage, "output_tokens_details"), "reasoning_tokens"))
    if reasoning is None:
        reasoning = _count(field(field(usage, "output_token_details"), "reasoning"))
    found = TokenUsage(
        input_tokens=inputs,
        output_tokens=outputs,
        cached_input_tokens=cached,
        reasoning_tokens=reasoning,
        cache_creation_input_tokens=written,
    )
    return found if found.known else None


def _str(value: Any) -> str | None:
    if isinstance(value, enum.Enum):
        value = value.value
    return value if isinstance(value, str) and value else None


def extract_response_model(result: Any) -> str | None:
    """The model that answered (``model``, or LangChain's ``response_metadata.model_name``)."""
    model = _str(field(result, "model"))
    if model is None:
        meta = field(result, "response_metadata")
        model = _str(field(meta, "model_name")) or _str(field(meta, "model"))
    return model


def extract_response_id(result: Any) -> str | None:
    """The provider's id of the response (``id``), when it has one."""
    return _str(field(result, "id"))


def extract_finish_reasons(result: Any) -> tuple[str, ...]:
    """Why generation stopped, per choice.

    Chat completions: each choice's ``finish_reason``. Responses API: ``stop``
    when completed (``tool_calls`` when the output calls a function), the
    ``incomplete_details.reason`` when incomplete, ``error`` when failed,
    ``cancelled`` when cancelled, nothing while still in progress.
    Anthropic and others: ``stop_reason``/``finish_reason``.
    """
    choices = field(result, "choices")
    if isinstance(choices, list):
        return tuple(r for c in choices if (r := _str(field(c, "finish_reason"))))
    status = _str(field(result, "status"))
    if status is not None and field(result, "output") is not None:
        if status == "completed":
            output = field(result, "output") or []
            calls = any(_str(field(item, "type")) == "function_call" for item in output)
            return ("tool_calls",) if calls else ("stop",)
        if status == "incomplete":
            return (_str(field(field(result, "incomplete_details"), "reason")) or "incomplete",)
        if status == "failed":
            return ("error",)
        return ("cancelled",) if status == "cancelled" else ()  # still running: no reason yet
    for name in ("stop_reason", "finish_reason"):
        reason = _str(field(result, name)) or _str(field(field(result, "response_metadata"), name))
        if reason:
            return (reason,)
    return ()


def error_type_of(exc: BaseException) -> str:
    """The ``error.type`` of an exception: its class name (as the node spans use)."""
    return type(exc).__qualname__


# --------------------------------------------------------------------------- requests


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``<redacted>``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "<redacted>")
    return text


def jsonable(value: Any, secrets: tuple[str, ...] = (), *, _depth: int = 0) -> Any:
    """A JSON-ready copy of request parameters: pydantic models dumped, classes named,
    sentinels (openai's ``NOT_GIVEN``/``omit``) dropped, other objects as their repr,
    and any secret string replaced by ``<redacted>``."""
    if _depth > 64:
        return "<too deep>"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value, secrets, _depth=_depth + 1)
    if isinstance(value, Mapping):
        return {
            scrub(str(k), secrets): jsonable(v, secrets, _depth=_depth + 1)
            for k, v in value.items()
            if not _sentinel(v)
        }
    if isinstance(value, (list, tuple)):
        return [jsonable(v, secrets, _depth=_depth + 1) for v in value]
    if isinstance(value, type):
        return f"{value.__module__}:{value.__qualname__}"
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump(mode="json", by_alias=True), secrets, _depth=_depth + 1)
        except Exception:
            pass
    return scrub(repr(value), secrets)


def _sentinel(value: Any) -> bool:
    return type(value).__name__ in ("NotGiven", "Omit")


def request_attributes(params: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """``gen_ai.request.*`` span attributes from OpenAI-style request parameters."""
    attrs: dict[str, AttributeValue] = {}

    def put(name: G, value: Any, *, integer: bool = False) -> None:
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return
        attrs[name.value] = int(value) if integer else float(value)

    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        put(G.REQUEST_MAX_TOKENS, params.get(key), integer=True)
    put(G.REQUEST_TEMPERATURE, params.get("temperature"))
    put(G.REQUEST_TOP_P, params.get("top_p"))
    put(G.REQUEST_SEED, params.get("seed"), integer=True)
    put(G.REQUEST_FREQUENCY_PENALTY, params.get("frequency_penalty"))
    put(G.REQUEST_PRESENCE_PENALTY, params.get("presence_penalty"))
    n = params.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        attrs[G.REQUEST_CHOICE_COUNT.value] = n
    stop = params.get("stop")
    if isinstance(stop, str):
        attrs[G.REQUEST_STOP_SEQUENCES.value] = (stop,)
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        attrs[G.REQUEST_STOP_SEQUENCES.value] = tuple(stop)
    encoding = params.get("encoding_format")
    if isinstance(encoding, str):
        attrs[G.REQUEST_ENCODING_FORMATS.value] = (encoding,)
    output_type = _output_type(params)
    if output_type:
        attrs[G.OUTPUT_TYPE.value] = output_type
    return attrs


def _output_type(params: Mapping[str, Any]) -> str | None:
    fmt = field(params.get("response_format"), "type")
    if fmt is None:
        fmt = field(field(params.get("text"), "format"), "type")
    if not isinstance(fmt, str):
        return None
    return "json" if fmt in ("json_object", "json_schema") else fmt


# --------------------------------------------------------------------------- ledger metadata


def llm_metadata(
    *,
    provider: str,
    operation: str,
    request_model: str | None,
    response_model: str | None,
    usage: TokenUsage | None,
    cost_usd: float | None,
    request: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``llm`` metadata convention recorded with an LLM call's effect (module docstring)."""
    return {
        "provider": provider,
        "operation": operation,
        "request_model": request_model,
        "response_model": response_model,
        "usage": (usage or TokenUsage()).as_dict(),
        "cost_usd": cost_usd,
        "request": dict(request),
    }


def cost_of(
    usage: TokenUsage | None, *models: str | None, prices: PriceTable | None = None
) -> float | None:
    """USD for ``usage`` at the price of the first priced of ``models``; None if unknown."""
    if usage is None or not usage.known:
        return None
    return (prices or PRICES).cost(
        *models,
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cached_input_tokens=usage.cached_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
    )


# --------------------------------------------------------------------------- the call


class GenAICall:
    """One LLM call's span and metrics; :meth:`end` finishes both exactly once.

    ``served=True`` describes a call answered from the ledger (resume, replay):
    its span carries ``codon.ledger.effect_served`` and no metrics are recorded.
    """

    __slots__ = (
        "_base",
        "_ended",
        "_lock",
        "_meter_provider",
        "_response_model",
        "_served",
        "_span",
        "_started",
        "_usage",
    )

    def __init__(
        self,
        *,
        operation: str,
        provider: str,
        request_model: str | None,
        server_address: str | None = None,
        server_port: int | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        served: bool = False,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._ended = False
        self._served = served
        self._meter_provider = meter_provider
        self._response_model: str | None = None
        self._usage: TokenUsage | None = None
        self._started = time.perf_counter()
        base: dict[str, AttributeValue] = {
            G.OPERATION_NAME.value: operation,
            G.PROVIDER_NAME.value: provider,
        }
        if request_model:
            base[G.REQUEST_MODEL.value] = request_model
        if server_address:
            base[G.SERVER_ADDRESS.value] = server_address
            if server_port:
                base[G.SERVER_PORT.value] = server_port
        self._base = base
        self._span: trace.Span = trace.INVALID_SPAN
        try:
            tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=tracer_provider)
            attrs = {**base, **(attributes or {})}
            if served:
                attrs[L.EFFECT_SERVED.value] = True
            name = f"{operation} {request_model}" if request_model else operation
            self._span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        except Exception:
            _log.warning("could not start the GenAI span", exc_info=True)

    @property
    def span(self) -> trace.Span:
        return self._span

    @property
    def ended(self) -> bool:
        return self._ended

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """Make the call's span the current span for the block (e.g. the HTTP request).

        Exceptions are not attached here: the integration ends the span with a
        scrubbed description (an exception message may hold content or keys).
        """
        with trace.use_span(
            self._span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            yield

    def reclassify(self, *, operation: str | None = None, provider: str | None = None) -> None:
        """Correct the operation or provider once the response shows them (span and metrics)."""
        try:
            if operation:
                self._base[G.OPERATION_NAME.value] = operation
                model = self._base.get(G.REQUEST_MODEL.value)
                self._span.update_name(f"{operation} {model}" if model else operation)
            if provider:
                self._base[G.PROVIDER_NAME.value] = provider
            self.set_attributes(self._base)
        except Exception:
            _log.warning("could not update the GenAI span", exc_info=True)

    def set_attributes(self, attributes: Mapping[str, AttributeValue | None]) -> None:
        """Set span attributes, skipping None values; never raises."""
        try:
            clean = {k: v for k, v in attributes.items() if v is not None}
            if clean and self._span.is_recording():
                self._span.set_attributes(clean)
        except Exception:
            _log.warning("could not set GenAI span attributes", exc_info=True)

    def set_response(
        self,
        *,
        response_model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Iterable[str] = (),
        usage: TokenUsage | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Record the response facts on the span (and for the metrics at :meth:`end`)."""
        self._response_model = response_model or self._response_model
        self._usage = usage if usage is not None else self._usage
        reasons = tuple(finish_reasons)
        attrs: dict[str, AttributeValue | None] = {
            G.RESPONSE_MODEL.value: response_model,
            G.RESPONSE_ID.value: response_id,
            G.RESPONSE_FINISH_REASONS.value: reasons or None,
            G.COST_USD.value: cost_usd,
        }
        if usage is not None:
            attrs[G.USAGE_INPUT_TOKENS.value] = usage.input_tokens
            attrs[G.USAGE_OUTPUT_TOKENS.value] = usage.output_tokens
            attrs[G.USAGE_CACHE_READ_INPUT_TOKENS.value] = usage.cached_input_tokens
            attrs[G.USAGE_CACHE_CREATION_INPUT_TOKENS.value] = usage.cache_creation_input_tokens
            attrs[G.USAGE_REASONING_OUTPUT_TOKENS.value] = usage.reasoning_tokens
        self.set_attributes(attrs)

    def end(
        self,
        error: BaseException | None = None,
        *,
        error_type: str | None = None,
        description: str | None = None,
    ) -> None:
        """End the span (with ``error.type`` and ERROR status on failure) and record metrics.

        The status description is ``description`` (pass a scrubbed message) or the
        error type; the exception itself is not attached, as its message may hold
        content or credentials. Only the first call counts; later ones do nothing.
        """
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            self._finish(error, error_type, description)
        except Exception:
            _log.warning("could not end the GenAI span", exc_info=True)

    def _finish(
        self, error: BaseException | None, error_type: str | None, description: str | None
    ) -> None:
        seconds = time.perf_counter() - self._started
        kind = error_type or (error_type_of(error) if error is not None else None)
        span = self._span
        if kind is not None:
            span.set_attribute(G.ERROR_TYPE.value, kind)
            if description:  # an error message may echo credentials: the redaction policy
                redact = current_redact()
                description = description if redact is None else redact(description)
            span.set_status(Status(StatusCode.ERROR, description or kind))
        span.end()
        if self._served:
            return
        attrs = dict(self._base)
        if self._response_model:
            attrs[G.RESPONSE_MODEL.value] = self._response_model
        record_operation_duration(
            seconds, attrs, error_type=kind, meter_provider=self._meter_provider
        )
        if self._usage is not None and self._usage.known:
            record_token_usage(self._usage, attrs, meter_provider=self._meter_provider)
