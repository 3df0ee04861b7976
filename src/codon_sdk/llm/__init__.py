"""Trace, record and price calls to any LLM: ``track_llm`` / ``track_llm_async``, and prices.

``track_llm(func, *args, **kwargs)`` calls ``func(*args, **kwargs)`` inside a
CLIENT span ``"chat <model>"`` (GenAI semantic conventions) that records the
model, token usage and cost, and the duration and token metrics. Inside a Codon
node the call is a recorded effect named ``"llm.<func qualname>"``: its result
(or error) goes into the ledger with the ``llm`` usage metadata, and resume and
replay return the recorded result without calling ``func``::

    def answer(message, *, runtime, context):
        reply = track_llm(my_client.complete, model="gpt-4o-mini", prompt=message)
        return reply["text"]

What is read, from attributes or dict keys:

- the requested model: the ``model`` (or ``model_name``) keyword argument;
- the response model, id, finish reasons and token usage from the result:
  OpenAI chat completions, Responses API objects and embeddings, LangChain
  messages (``usage_metadata``, ``response_metadata``), Anthropic messages, or
  dicts of those shapes (see :func:`codon_sdk.telemetry._genai.extract_usage`);
- the provider (``gen_ai.provider.name``) from the package the result type or
  ``func`` comes from (``openai``, ``anthropic``, ``langchain_openai``...),
  else ``"unknown"``;
- the operation: ``embeddings`` when the result holds embedding vectors,
  otherwise ``chat``.

Keyword arguments that hold credentials (``api_key``, ``authorization``,
``headers``...) are never recorded, and their values are scrubbed from the
recorded request, the span and a recorded error's message (the result itself
is recorded as returned).
The result must be recordable by the SDK's canonical encoding (JSON values,
dataclasses, pydantic models); ``func`` must return a finished result, not a
stream. A method the OpenAI instrumentation already wraps is simply called (it
traces and records itself), and so is ``func`` when called inside another
traced LLM call.

Prices live in :data:`PRICES` (USD per 1M tokens, OpenAI and Anthropic models);
change or extend them with :func:`set_model_price`. An unknown model has no cost
(None) and logs one warning.

**The LLM-call layer for instrumentations.** A client instrumentation
(``codon.instrumentation.openai``, ``codon.instrumentation.anthropic``, or yours)
is a :class:`ProviderAdapter` (how to describe a request, read a response and its
usage, record and rebuild responses, streams and errors: a :class:`RecordCodec`,
for Stainless-built clients a :class:`StainlessCodec`) and the :class:`Target`
methods to wrap, given to a :class:`Patcher`. The layer does the rest once: the
recorded effect per call, serving from the ledger on resume and replay, sync,
async and streamed calls whose span ends exactly once, usage and cost, patching
and unpatching.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from codon_sdk.errors import WorkloadRuntimeError
from codon_sdk.integrations import EffectSlot, integration
from codon_sdk.llm._adapter import (
    ClientAdapter,
    Describer,
    ProviderAdapter,
    RecordCodec,
    RequestInfo,
    ResponseInfo,
    Target,
)
from codon_sdk.llm._calls import recorded_error_type
from codon_sdk.llm._content import (
    content_json,
    describe_params,
    described_response,
    text_parts,
    tool_call_part,
)
from codon_sdk.llm._patching import INSTRUMENTED_ATTR, Patcher
from codon_sdk.llm._stainless import StainlessCodec
from codon_sdk.telemetry import (
    DEFAULT_PRICES,
    PRICES,
    GenAICall,
    ModelPrice,
    PriceTable,
    TokenUsage,
    cost_of,
    error_type_of,
    extract_finish_reasons,
    extract_response_id,
    extract_response_model,
    extract_usage,
    field,
    jsonable,
    llm_call_active,
    llm_call_scope,
    llm_metadata,
    model_price,
    request_attributes,
    reset_prices,
    scrub,
    set_model_price,
)

__all__ = [
    "ClientAdapter",
    "DEFAULT_PRICES",
    "Describer",
    "ModelPrice",
    "PRICES",
    "Patcher",
    "PriceTable",
    "ProviderAdapter",
    "RecordCodec",
    "RequestInfo",
    "ResponseInfo",
    "StainlessCodec",
    "Target",
    "TokenUsage",
    "content_json",
    "describe_params",
    "described_response",
    "model_price",
    "reset_prices",
    "set_model_price",
    "text_parts",
    "tool_call_part",
    "track_llm",
    "track_llm_async",
]

# track_llm goes through the integrations door (made now, before any run starts)
_DOOR = integration("llm")

_SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "auth",
        "token",
        "access_token",
        "auth_token",
        "bearer_token",
        "secret",
        "client_secret",
        "password",
        "headers",
        "extra_headers",
        "default_headers",
    }
)
_PROVIDERS = {
    "openai": "openai",
    "langchain_openai": "openai",
    "anthropic": "anthropic",
    "langchain_anthropic": "anthropic",
    "mistralai": "mistral_ai",
    "langchain_mistralai": "mistral_ai",
    "cohere": "cohere",
    "groq": "groq",
    "google": "gcp.gen_ai",
    "langchain_google_genai": "gcp.gen_ai",
    "boto3": "aws.bedrock",
    "langchain_aws": "aws.bedrock",
    "ollama": "ollama",
}


def track_llm(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call ``func(*args, **kwargs)`` as a traced LLM call (a recorded effect inside a node)."""
    if not callable(func):
        raise TypeError(f"track_llm needs a callable LLM function, got {type(func).__name__}")
    if getattr(func, INSTRUMENTED_ATTR, False) or llm_call_active():
        return func(*args, **kwargs)
    tracked = _Tracked(func, args, kwargs)
    if tracked.served:
        return tracked.serve()
    with llm_call_scope(), tracked.call.current():
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            tracked.fail(exc)
            raise
    if inspect.isawaitable(result):
        tracked.call.end(error_type="TypeError")
        _close(result)
        raise TypeError(
            f"{tracked.label} returned an awaitable; use `await track_llm_async(...)` for "
            "async LLM functions"
        )
    return tracked.succeed(result)


async def track_llm_async(func: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
    """Await ``func(*args, **kwargs)`` as a traced LLM call; the async twin of :func:`track_llm`."""
    if not callable(func):
        raise TypeError(f"track_llm_async needs a callable LLM function, got {type(func).__name__}")
    if getattr(func, INSTRUMENTED_ATTR, False) or llm_call_active():
        return await func(*args, **kwargs)
    tracked = _Tracked(func, args, kwargs)
    if tracked.served:
        return tracked.serve()
    with llm_call_scope(), tracked.call.current():
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            tracked.fail(exc)
            raise
    return tracked.succeed(result)


def _close(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


class _Tracked:
    """The I/O-free part of one tracked call, shared by the sync and async drivers."""

    __slots__ = ("call", "label", "provider", "request", "request_model", "secrets", "slot")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
        self.label = qualname
        self.secrets = tuple(
            v for k, v in kwargs.items() if k.lower() in _SECRET_KEYS and isinstance(v, str) and v
        )
        public = {k: v for k, v in kwargs.items() if k.lower() not in _SECRET_KEYS}
        self.request: dict[str, Any] = jsonable(public, self.secrets)
        if args:
            self.request["args"] = jsonable(list(args), self.secrets)
        # reserved before any call: during a replay a missing recording raises here, and a
        # request other than the recorded one (kept once, as llm.request) is reported
        self.slot: EffectSlot | None = (
            _DOOR.effect(f"llm.{qualname}", request=self.request, request_at="llm.request")
            if _DOOR.activation() is not None
            else None
        )
        model = kwargs.get("model", kwargs.get("model_name"))
        self.request_model = model if isinstance(model, str) and model else None
        self.provider = _provider_of(func)
        self.call = GenAICall(
            operation="chat",
            provider=self.provider,
            request_model=self.request_model,
            attributes=request_attributes(public),
            served=self.served,
        )

    @property
    def served(self) -> bool:
        return self.slot is not None and self.slot.recorded is not None

    def serve(self) -> Any:
        assert self.slot is not None
        assert self.slot.recorded is not None
        llm = self.slot.metadata.get("llm")
        llm = llm if isinstance(llm, Mapping) else {}
        self.call.set_response(
            response_model=llm.get("response_model"),
            usage=TokenUsage.from_dict(llm.get("usage")),
            cost_usd=llm.get("cost_usd"),
        )
        error = self.slot.recorded.error
        self.call.end(error_type=recorded_error_type(error) if error is not None else None)
        return self.slot.served()

    def _metadata(self, result: Any, usage: TokenUsage | None, cost: float | None) -> Any:
        return {
            "llm": llm_metadata(
                provider=self.provider,
                operation="embeddings" if _is_embeddings(result) else "chat",
                request_model=self.request_model,
                response_model=extract_response_model(result),
                usage=usage,
                cost_usd=cost,
                request=self.request,
            )
        }

    def fail(self, exc: Exception) -> None:
        try:
            if self.slot is not None:
                self.slot.record_error(
                    _scrubbed(exc, self.secrets), metadata=self._metadata(None, None, None)
                )
        finally:
            message = scrub(f"{error_type_of(exc)}: {exc}", self.secrets)
            self.call.end(exc, description=message)

    def succeed(self, result: Any) -> Any:
        response_model = extract_response_model(result)
        usage = extract_usage(result)
        cost = cost_of(usage, response_model, self.request_model)
        provider = _provider_of(result)
        if self.provider == "unknown" and provider != "unknown":
            self.provider = provider
            self.call.reclassify(provider=provider)
        if _is_embeddings(result):
            self.call.reclassify(operation="embeddings")
        self.call.set_response(
            response_model=response_model,
            response_id=extract_response_id(result),
            finish_reasons=extract_finish_reasons(result),
            usage=usage,
            cost_usd=cost,
        )
        try:
            if self.slot is not None:
                self.slot.record(result, metadata=self._metadata(result, usage, cost))
        finally:
            self.call.end()
        return result


def _provider_of(obj: Any) -> str:
    """The GenAI provider a callable or result comes from, by its package; else "unknown"."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.ismethod(obj):
        module = type(obj.__self__).__module__
    elif inspect.isroutine(obj) or isinstance(obj, type):
        module = str(getattr(obj, "__module__", "") or "")
    else:
        module = type(obj).__module__
    top = module.split(".", 1)[0]
    if top == "google" and "genai" not in module:
        return "unknown"
    return _PROVIDERS.get(top, "unknown")


def _is_embeddings(result: Any) -> bool:
    data = field(result, "data")
    if isinstance(data, list) and data:
        return field(data[0], "embedding") is not None
    return False


def _scrubbed(exc: Exception, secrets: tuple[str, ...]) -> BaseException:
    """``exc``, or a copy whose message has no secret (the ledger keeps type and message)."""
    message = str(exc)
    clean = scrub(message, secrets)
    if clean == message:
        return exc
    try:
        return type(exc)(clean)
    except Exception:
        return WorkloadRuntimeError(f"{type(exc).__qualname__}: {clean}")
