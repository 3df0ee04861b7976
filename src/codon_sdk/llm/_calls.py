"""One instrumented LLM call: the algorithm once (:class:`LLMCall`), driven sync and async.

Inside a Codon node each call of a wrapped client method is a recorded effect
(``<provider>.<operation>``, ``<provider>.<operation>.stream``: ``openai.chat``,
``anthropic.messages.stream``...). The effect slot is reserved before anything
else, so a replay missing the recording fails there, before any HTTP; the
request (model, messages or input, parameters; never credentials or transport
headers) is recorded with the call, and a replay asking for another one reports
``request changed``. A slot the ledger holds is served without the network: the
response object, a stand-in stream, or the recorded error raised again.
Otherwise the client is called inside the call's CLIENT span, and the response
(or error, or the stream when it ends) is recorded with the ``llm`` metadata.
Outside a node calls are traced only. What is the provider's own comes from its
:class:`~codon_sdk.llm._adapter.ProviderAdapter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

from codon_sdk.errors import ReplayError
from codon_sdk.integrations import EffectSlot, integration
from codon_sdk.llm._adapter import ProviderAdapter, RequestInfo, ResponseInfo
from codon_sdk.llm._streams import (
    AsyncReplayStream,
    InstrumentedAsyncStream,
    InstrumentedStream,
    LiveRawResponse,
    ReplayStream,
    ServedRawResponse,
    StreamEnd,
)
from codon_sdk.redaction import get_logger
from codon_sdk.telemetry import (
    GenAICall,
    TokenUsage,
    capture_message_content,
    cost_of,
    error_type_of,
    llm_call_active,
    llm_call_scope,
    llm_metadata,
)

__all__ = ["Config", "LLMCall", "Patch", "acall", "call", "recorded_error_type"]

_RAW_HEADER = "x-stainless-raw-response"
_REQUEST_AT = "llm.request"  # where the llm metadata holds the request (effect_slot)


@dataclass(slots=True, kw_only=True)
class Config:
    """Settings given to ``instrument_<provider>()``."""

    tracer_provider: trace.TracerProvider | None = None
    meter_provider: metrics.MeterProvider | None = None
    capture_content: bool | None = None

    @property
    def capture(self) -> bool:
        return capture_message_content() if self.capture_content is None else self.capture_content


@dataclass(slots=True, kw_only=True)
class Patch:
    """One patched client method: what it replaced, and whether it is still in force."""

    adapter: ProviderAdapter
    operation: str  # "chat" | "responses" | "embeddings" | "messages"...
    is_async: bool
    original: Any
    config: Config
    active: bool = True


def call(patch: Patch, resource: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The sync driver: what a patched ``create`` does."""
    if not patch.active or llm_call_active():
        return patch.original(resource, *args, **kwargs)
    mode = _raw_mode(kwargs)
    if mode == "stream":
        _unrecorded(patch.adapter)
        return patch.original(resource, *args, **kwargs)
    kwargs = _materialize(kwargs)
    current = LLMCall(patch, resource, kwargs, raw=mode == "raw")
    if current.served:
        return current.serve()
    with llm_call_scope(), current.genai.current():
        try:
            result = patch.original(resource, *args, **kwargs)
            value = result.parse() if current.raw else result
        except Exception as exc:
            current.fail(exc)
            raise
    return current.succeed(result, value)


async def acall(patch: Patch, resource: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The async driver: what a patched async ``create`` does."""
    if not patch.active or llm_call_active():
        return await patch.original(resource, *args, **kwargs)
    mode = _raw_mode(kwargs)
    if mode == "stream":
        _unrecorded(patch.adapter)
        return await patch.original(resource, *args, **kwargs)
    kwargs = _materialize(kwargs)
    current = LLMCall(patch, resource, kwargs, raw=mode == "raw")
    if current.served:
        return current.serve()
    if current.slot is not None:
        await current.slot.cleared()
    with llm_call_scope(), current.genai.current():
        try:
            result = await patch.original(resource, *args, **kwargs)
            value = result.parse() if current.raw else result
        except Exception as exc:
            current.fail(exc)
            raise
    return current.succeed(result, value)


def _raw_mode(kwargs: Mapping[str, Any]) -> str | None:
    """``"raw"`` for ``with_raw_response``, ``"stream"`` for ``with_streaming_response``."""
    headers = kwargs.get("extra_headers")
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == _RAW_HEADER:
            return "stream" if value == "stream" else "raw"
    return None


_warned_unrecorded: set[tuple[str, str]] = set()


def _unrecorded(adapter: ProviderAdapter) -> None:
    runtime = integration(adapter.name).activation()
    if runtime is None:
        return
    if runtime.replaying:
        raise ReplayError(
            f"node {runtime.node!r} called {adapter.label} through with_streaming_response, "
            "which is not recorded, so a replay cannot serve it (and never calls out); use "
            "create() or with_raw_response"
        )
    if (adapter.name, runtime.node) in _warned_unrecorded:
        return
    _warned_unrecorded.add((adapter.name, runtime.node))
    _logger(adapter).warning(
        "node %r called %s through with_streaming_response: the call is not recorded as "
        "an effect (resume calls it again, replay cannot); use create() or with_raw_response",
        runtime.node,
        adapter.label,
    )


def _logger(adapter: ProviderAdapter) -> Any:
    return get_logger(f"codon.instrumentation.{adapter.name}")


def recorded_error_type(error: Mapping[str, Any]) -> str:
    """The short class name of a recorded error (``module:Qualname`` -> ``Qualname``)."""
    return str(error.get("type", "")).rpartition(":")[2] or "Exception"


def _materialize(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turn one-shot iterables (generators of messages...) into lists, recorded and sent alike."""
    out = dict(kwargs)
    for key, value in kwargs.items():
        if not isinstance(value, (str, bytes, list, tuple, Mapping)) and _iterable(value):
            out[key] = list(value)
    return out


def _iterable(value: Any) -> bool:
    return hasattr(value, "__iter__") and not hasattr(value, "model_dump")


def _server(client: Any) -> tuple[str | None, int | None]:
    try:
        url = client.base_url
        port = url.port or {"https": 443, "http": 80}.get(url.scheme)
        return (str(url.host) or None), port
    except Exception:
        return None, None


def _describe_request(
    adapter: ProviderAdapter,
    operation: str,
    kwargs: dict[str, Any],
    secrets: tuple[str, ...],
    capture: bool,
) -> RequestInfo:
    try:
        return adapter.describe_request(operation, kwargs, secrets, capture=capture)
    except Exception:  # never let describing a request break the call
        _logger(adapter).warning("could not describe an %s request", adapter.label, exc_info=True)
        model = kwargs.get("model")
        return RequestInfo(
            operation=operation,
            model=model if isinstance(model, str) else None,
            stream=kwargs.get("stream") is True,
            params={},
            attributes={},
        )


class LLMCall:
    """The I/O-free steps of one call: reserve the effect, describe, serve or record."""

    __slots__ = (
        "adapter",
        "capture",
        "genai",
        "is_async",
        "operation",
        "provider",
        "raw",
        "request",
        "secrets",
        "slot",
    )

    def __init__(self, patch: Patch, resource: Any, kwargs: dict[str, Any], *, raw: bool) -> None:
        client = getattr(resource, "_client", None)
        adapter = self.adapter = patch.adapter
        self.operation = patch.operation
        self.is_async = patch.is_async
        self.raw = raw
        self.secrets = adapter.secrets(client)
        self.provider = adapter.provider(client)
        self.capture = patch.config.capture
        self.request = _describe_request(
            adapter, patch.operation, kwargs, self.secrets, self.capture
        )
        door = integration(adapter.name)
        name = f"{adapter.name}.{self.operation}" + (".stream" if self.request.stream else "")
        # first thing that can fail: during a replay a missing recording raises here; the
        # request (recorded once, as llm.request) is compared with the recorded one
        self.slot: EffectSlot | None = (
            door.effect(
                name,
                request=self.request.params,
                request_at=_REQUEST_AT,
                llm={"provider": self.provider, "model": self.request.model},
                defer=self.is_async,  # acall awaits the checks (a rate-limit wait)
            )
            if door.activation() is not None
            else None
        )
        address, port = _server(client)
        self.genai = GenAICall(
            operation=self.request.span_operation,
            provider=self.provider,
            request_model=self.request.model,
            server_address=address,
            server_port=port,
            attributes=self.request.attributes,
            served=self.served,
            tracer_provider=patch.config.tracer_provider,
            meter_provider=patch.config.meter_provider,
        )

    @property
    def served(self) -> bool:
        return self.slot is not None and self.slot.recorded is not None

    @property
    def _error_key(self) -> str:
        """Where the effect's metadata keeps what it takes to raise the error again."""
        return f"{self.adapter.name}_error"

    # ------------------------------------------------------------------ describing

    def _describe(self, value: Any) -> ResponseInfo:
        try:
            return self.adapter.describe_response(
                self.operation, value, self.secrets, capture=self.capture
            )
        except Exception:
            _logger(self.adapter).warning(
                "could not describe an %s response", self.adapter.label, exc_info=True
            )
            return ResponseInfo()

    def _chunks(self, chunks: list[Any]) -> ResponseInfo:
        try:
            return self.adapter.describe_chunks(
                self.operation, chunks, self.secrets, capture=self.capture
            )
        except Exception:
            _logger(self.adapter).warning(
                "could not describe an %s stream", self.adapter.label, exc_info=True
            )
            return ResponseInfo()

    def _show(self, info: ResponseInfo) -> float | None:
        if self.served:  # the cost recorded with the call, not today's price
            assert self.slot is not None
            llm = self.slot.metadata.get("llm")
            recorded = llm.get("cost_usd") if isinstance(llm, Mapping) else None
            cost = float(recorded) if isinstance(recorded, (int, float)) else None
        else:
            cost = cost_of(info.usage, info.model, self.request.model)
        self.genai.set_response(
            response_model=info.model,
            response_id=info.id,
            finish_reasons=info.finish_reasons,
            usage=info.usage,
            cost_usd=cost,
        )
        self.genai.set_attributes(info.attributes)
        return cost

    def _llm(self, info: ResponseInfo, cost: float | None) -> dict[str, Any]:
        return llm_metadata(
            provider=self.provider,
            operation=self.operation,
            request_model=self.request.model,
            response_model=info.model,
            usage=info.usage,
            cost_usd=cost,
            request=self.request.params,
        )

    # ------------------------------------------------------------------ live

    def succeed(self, result: Any, value: Any) -> Any:
        """Record a response (or wrap a stream, recorded when it ends); return what the client
        returned."""
        if self.adapter.is_stream(value):
            kind = InstrumentedAsyncStream if self.is_async else InstrumentedStream
            stream = kind(value, StreamEnd(self._stream_ended))
            return LiveRawResponse(result, stream) if self.raw else stream
        info = self._describe(value)
        cost = self._show(info)
        try:
            if self.slot is not None:
                codec = self.adapter.codec
                headers = codec.safe_headers(result.headers) if self.raw else None
                self.slot.record(
                    codec.encode_object(value, headers=headers),
                    metadata={"llm": self._llm(info, cost)},
                )
        finally:
            self.genai.end()
        return result

    def fail(self, exc: Exception) -> None:
        """Record that the call raised ``exc`` (scrubbed); the caller raises it on."""
        codec = self.adapter.codec
        codec.scrub_exception(exc, self.secrets)
        info = codec.encode_error(exc, self.secrets)
        try:
            if self.slot is not None:
                # an error status is not billed: zero tokens, zero cost; other failures unknown
                billed = info["kind"] != "status"
                usage = None if billed else TokenUsage(input_tokens=0, output_tokens=0)
                llm = self._llm(ResponseInfo(usage=usage), None if billed else 0.0)
                self.slot.record_error(exc, metadata={"llm": llm, self._error_key: info})
        finally:
            self.genai.end(exc, description=f"{error_type_of(exc)}: {info['message']}")

    def _stream_ended(self, chunks: list[Any], outcome: str, error: BaseException | None) -> None:
        codec = self.adapter.codec
        if error is not None:
            codec.scrub_exception(error, self.secrets)
        info = self._chunks(chunks)
        cost = self._show(info)
        failure = codec.encode_error(error, self.secrets) if error is not None else None
        try:
            if self.slot is not None:
                meta: dict[str, Any] = {
                    "llm": self._llm(info, cost),
                    "stream": {"outcome": outcome, "chunks": len(chunks)},
                }
                if failure is not None:
                    meta[self._error_key] = failure
                self.slot.record(codec.encode_stream(chunks, outcome, failure), metadata=meta)
        finally:
            message = None
            if error is not None and failure is not None:
                message = f"{error_type_of(error)}: {failure['message']}"
            self.genai.end(error, description=message)

    # ------------------------------------------------------------------ served

    def serve(self) -> Any:
        """The recorded answer: the response, a stand-in stream, or the recorded error raised."""
        slot = self.slot
        assert slot is not None
        assert slot.recorded is not None
        metadata = slot.metadata
        codec = self.adapter.codec
        if slot.recorded.error is not None:
            failure = metadata.get(self._error_key)
            self.genai.end(error_type=recorded_error_type(slot.recorded.error))
            if isinstance(failure, Mapping):
                raise codec.rebuild_error(failure)
            return slot.served()  # raises the recorded error, rebuilt generically
        record = slot.recorded.value
        if self.request.stream:
            chunks, _, failure = codec.decode_stream(record)
            error = codec.rebuild_error(failure) if failure else None
            self._show(self._chunks(chunks))
            self.genai.end(error_type=error_type_of(error) if error is not None else None)
            replay = AsyncReplayStream if self.is_async else ReplayStream
            value: Any = replay(chunks, error)
        else:
            value = codec.decode_object(record)
            self._show(self._describe(value))
            self.genai.end()
        return ServedRawResponse(value, codec.recorded_headers(record)) if self.raw else value
