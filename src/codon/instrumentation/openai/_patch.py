"""Patching ``create`` on the openai resource classes, or on one client's resources.

The patched methods are ``chat.completions.create``, ``responses.create`` and
``embeddings.create`` and their async twins. Patching a class reaches every
client; patching a client sets the wrapper on that client's resource objects
only. Each patch remembers the exact function it replaced, and removing it puts
that very object back; a wrapper still held somewhere (the client caches
``with_raw_response`` views) calls straight through once its patch is removed.
"""

from __future__ import annotations

import functools
import importlib
import threading
import types
import weakref
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

import openai
from codon_sdk.llm import INSTRUMENTED_ATTR
from codon_sdk.runtime._handle import enable_current_runtime

from ._call import Config, Patch, acall, call

__all__ = ["instrument_openai", "uninstrument_openai"]

ORIGINAL_ATTR = "__codon_original__"
_METHOD = "create"


@dataclass(frozen=True, slots=True)
class _Target:
    module: str
    cls: str
    path: tuple[str, ...]  # from the client to the resource
    operation: str
    is_async: bool


_TARGETS = (
    _Target("openai.resources.chat", "Completions", ("chat", "completions"), "chat", False),
    _Target("openai.resources.chat", "AsyncCompletions", ("chat", "completions"), "chat", True),
    _Target("openai.resources.responses", "Responses", ("responses",), "responses", False),
    _Target("openai.resources.responses", "AsyncResponses", ("responses",), "responses", True),
    _Target("openai.resources.embeddings", "Embeddings", ("embeddings",), "embeddings", False),
    _Target("openai.resources.embeddings", "AsyncEmbeddings", ("embeddings",), "embeddings", True),
)

_lock = threading.Lock()
_class_patches: dict[type, Patch] = {}
# per-client patches, keyed by the client's resource object; a dropped client is forgotten
_client_patches: weakref.WeakKeyDictionary[Any, Patch] = weakref.WeakKeyDictionary()


def _resource_class(target: _Target) -> type | None:
    try:
        found = getattr(importlib.import_module(target.module), target.cls)
    except (ImportError, AttributeError):  # an openai version without this API
        return None
    return found if isinstance(found, type) else None


def _unwrapped(function: Any) -> Any:
    return getattr(function, ORIGINAL_ATTR, function)


def _wrapper(patch: Patch) -> Any:
    original = patch.original
    if patch.is_async:

        @functools.wraps(original)
        async def wrapper_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await acall(patch, self, args, kwargs)

        wrapper: Any = wrapper_async
    else:

        @functools.wraps(original)
        def wrapper_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
            return call(patch, self, args, kwargs)

        wrapper = wrapper_sync
    setattr(wrapper, ORIGINAL_ATTR, original)
    setattr(wrapper, INSTRUMENTED_ATTR, True)
    return wrapper


def _owners(client: Any) -> list[tuple[_Target, Any]]:
    """(target, class or resource object) pairs to patch for ``client`` (None: every client)."""
    owners: list[tuple[_Target, Any]] = []
    if client is None:
        for target in _TARGETS:
            cls = _resource_class(target)
            if cls is not None:
                owners.append((target, cls))
        return owners
    if isinstance(client, openai.AsyncOpenAI):
        is_async = True
    elif isinstance(client, openai.OpenAI):
        is_async = False
    else:
        raise TypeError(
            "instrument_openai(client) takes an openai.OpenAI or openai.AsyncOpenAI client "
            f"(or None for every client), got {type(client).__module__}.{type(client).__name__}"
        )
    for target in _TARGETS:
        if target.is_async != is_async or _resource_class(target) is None:
            continue
        resource: Any = client
        for name in target.path:
            resource = getattr(resource, name)
        owners.append((target, resource))
    return owners


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
    enable_current_runtime()  # calls inside nodes need the node's handle
    config = Config(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
    )
    with _lock:
        for target, owner in _owners(client):
            registry: Any = _class_patches if isinstance(owner, type) else _client_patches
            existing = registry.get(owner)
            if existing is not None:
                existing.config = config
                continue
            if isinstance(owner, type):
                original = owner.__dict__[_METHOD]
            else:
                original = _unwrapped(getattr(type(owner), _METHOD))
            patch = Patch(
                operation=target.operation,
                is_async=target.is_async,
                original=original,
                config=config,
            )
            wrapper = _wrapper(patch)
            if isinstance(owner, type):
                setattr(owner, _METHOD, wrapper)
            else:
                setattr(owner, _METHOD, types.MethodType(wrapper, owner))
            registry[owner] = patch


def uninstrument_openai(client: openai.OpenAI | openai.AsyncOpenAI | None = None) -> None:
    """Undo :func:`instrument_openai`: everything, or only what was patched on ``client``.

    The original methods are put back exactly (the same function objects).
    """
    with _lock:
        if client is None:
            chosen = [*_class_patches.items(), *_client_patches.items()]
        else:
            chosen = [(o, p) for _, o in _owners(client) if (p := _client_patches.get(o))]
        for owner, patch in chosen:
            patch.active = False
            if isinstance(owner, type):
                setattr(owner, _METHOD, patch.original)
                del _class_patches[owner]
            else:
                vars(owner).pop(_METHOD, None)
                del _client_patches[owner]
