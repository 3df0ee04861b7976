"""The Anthropic adapter of the LLM-call layer, and the Messages methods it wraps.

``messages.create`` (sync and async) is the recorded call; ``messages.stream()``
is rebuilt on the wrapped ``create(stream=True)``, so the helper's
``MessageStream`` reads an instrumented (or, on resume and replay, a served)
stream of raw events. :class:`codon_sdk.llm.Patcher` keeps the patches.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from opentelemetry import metrics, trace

import anthropic
from anthropic.lib.streaming import AsyncMessageStreamManager, MessageStreamManager
from codon_sdk.llm import ClientAdapter, Describer, Patcher, StainlessCodec, Target

from . import _describe

__all__ = ["instrument_anthropic", "uninstrument_anthropic"]

_HELPER_HEADERS = {"X-Stainless-Helper-Method": "stream", "X-Stainless-Stream-Helper": "messages"}

CODEC = StainlessCodec(
    anthropic,
    label="Anthropic",
    base_error="AnthropicError",
    safe_headers=frozenset(
        {
            "content-type",
            "request-id",
            "retry-after",
            "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
            "anthropic-ratelimit-tokens-limit",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset",
            "anthropic-ratelimit-input-tokens-limit",
            "anthropic-ratelimit-input-tokens-remaining",
            "anthropic-ratelimit-output-tokens-limit",
            "anthropic-ratelimit-output-tokens-remaining",
        }
    ),
    default_url="https://api.anthropic.com/v1/messages",
)


class _Anthropic(ClientAdapter):
    """What is Anthropic's own in an instrumented call (see ``codon_sdk.llm.ProviderAdapter``)."""

    name = "anthropic"
    label = "Anthropic"
    codec = CODEC
    credential_attributes = ("api_key", "auth_token")
    stream_types = (anthropic.Stream, anthropic.AsyncStream)
    describer: ClassVar[Describer] = _describe

    def provider(self, client: Any) -> str:
        kind = type(client).__name__
        if "Bedrock" in kind:
            return "aws.bedrock"
        return "gcp.vertex_ai" if "Vertex" in kind else "anthropic"


def _stream_helper(patch: Any, resource: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``messages.stream(...)``: the client's stream manager over the wrapped ``create``.

    Structured outputs (``output_format``) go to the client's own helper, untraced.
    """
    if not patch.active or kwargs.get("output_format") is not None:
        return patch.original(resource, *args, **kwargs)
    kwargs.pop("output_format", None)
    headers = {**_HELPER_HEADERS, **(kwargs.pop("extra_headers", None) or {})}
    create = functools.partial(resource.create, *args, stream=True, extra_headers=headers, **kwargs)
    if patch.is_async:
        return AsyncMessageStreamManager(create(), output_format=anthropic.NOT_GIVEN)
    return MessageStreamManager(create, output_format=anthropic.NOT_GIVEN)


def _client_kind(client: Any) -> bool | None:
    if isinstance(client, anthropic.AsyncAnthropic):
        return True
    return False if isinstance(client, anthropic.Anthropic) else None


_MODULE = "anthropic.resources.messages"
_TARGETS = (
    Target(_MODULE, "Messages", ("messages",), "messages", False),
    Target(_MODULE, "AsyncMessages", ("messages",), "messages", True),
    Target(_MODULE, "Messages", ("messages",), "messages", False, "stream", _stream_helper),
    Target(_MODULE, "AsyncMessages", ("messages",), "messages", True, "stream", _stream_helper),
)


def instrument_anthropic(
    client: anthropic.Anthropic | anthropic.AsyncAnthropic | None = None,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    capture_content: bool | None = None,
) -> None:
    """Trace, record and price Anthropic Messages calls: every client's, or only ``client``'s.

    Patches ``messages.create`` and ``messages.stream`` (sync and async). Calling
    it again changes nothing but the settings: ``tracer_provider`` and
    ``meter_provider`` (the global ones by default) and ``capture_content``
    (None: follow ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).
    """
    _PATCHER.instrument(
        client,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
    )


def uninstrument_anthropic(
    client: anthropic.Anthropic | anthropic.AsyncAnthropic | None = None,
) -> None:
    """Undo :func:`instrument_anthropic`: everything, or only what was patched on ``client``.

    The original methods are put back exactly (the same function objects).
    """
    _PATCHER.uninstrument(client)


_PATCHER = Patcher(
    _Anthropic(),
    _TARGETS,
    entry="instrument_anthropic",
    client_kind=_client_kind,
    client_types="an anthropic.Anthropic or anthropic.AsyncAnthropic",
    worker_setup=instrument_anthropic,
    worker_teardown=uninstrument_anthropic,
)
_client_patches = _PATCHER.client_patches
