"""The OpenAI adapter of the LLM-call layer, and patching ``create`` on the openai resources.

The patched methods are ``chat.completions.create``, ``responses.create`` and
``embeddings.create`` and their async twins; :class:`codon_sdk.llm.Patcher`
keeps the patches (on the classes for every client, or on one client's
resources) and puts the exact original functions back.
"""

from __future__ import annotations

from typing import Any, ClassVar

from opentelemetry import metrics, trace

import openai
from codon_sdk.llm import ClientAdapter, Describer, Patcher, Target

from . import _describe
from ._codec import CODEC

__all__ = ["instrument_openai", "uninstrument_openai"]


class _OpenAI(ClientAdapter):
    """What is OpenAI's own in an instrumented call (see ``codon_sdk.llm.ProviderAdapter``)."""

    name = "openai"
    label = "OpenAI"
    codec = CODEC
    credential_attributes = ("api_key", "admin_api_key")
    stream_types = (openai.Stream, openai.AsyncStream)
    describer: ClassVar[Describer] = _describe

    def provider(self, client: Any) -> str:
        return "azure.ai.openai" if "Azure" in type(client).__name__ else "openai"


def _client_kind(client: Any) -> bool | None:
    if isinstance(client, openai.AsyncOpenAI):
        return True
    return False if isinstance(client, openai.OpenAI) else None


_TARGETS = (
    Target("openai.resources.chat", "Completions", ("chat", "completions"), "chat", False),
    Target("openai.resources.chat", "AsyncCompletions", ("chat", "completions"), "chat", True),
    Target("openai.resources.responses", "Responses", ("responses",), "responses", False),
    Target("openai.resources.responses", "AsyncResponses", ("responses",), "responses", True),
    Target("openai.resources.embeddings", "Embeddings", ("embeddings",), "embeddings", False),
    Target("openai.resources.embeddings", "AsyncEmbeddings", ("embeddings",), "embeddings", True),
)


def instrument_openai(
    client: openai.OpenAI | openai.AsyncOpenAI | None = None,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    capture_content: bool | None = None,
) -> None:
    """Trace, record and price OpenAI calls: every client's, or only ``client``'s.

    Patches ``chat.completions.create``, ``responses.create`` and
    ``embeddings.create`` (sync and async). Calling it again changes nothing
    but the settings: ``tracer_provider`` and ``meter_provider`` (the global
    ones by default) and ``capture_content`` (None: follow
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``). Instrument before a
    client's first ``with_raw_response`` call: the client caches those views.
    """
    _PATCHER.instrument(
        client,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
    )


def uninstrument_openai(client: openai.OpenAI | openai.AsyncOpenAI | None = None) -> None:
    """Undo :func:`instrument_openai`: everything, or only what was patched on ``client``.

    The original methods are put back exactly (the same function objects).
    """
    _PATCHER.uninstrument(client)


_PATCHER = Patcher(
    _OpenAI(),
    _TARGETS,
    entry="instrument_openai",
    client_kind=_client_kind,
    client_types="an openai.OpenAI or openai.AsyncOpenAI",
    worker_setup=instrument_openai,
    worker_teardown=uninstrument_openai,
)
_class_patches = _PATCHER.class_patches
_client_patches = _PATCHER.client_patches
