"""Patching a provider's client methods, on the resource classes or on one client's resources.

A :class:`Patcher` holds one provider's patches. Patching a class reaches every
client; patching a client sets the wrapper on that client's resource objects
only. Each patch remembers the exact function it replaced, and removing it puts
that very object back; a wrapper still held somewhere (clients cache
``with_raw_response`` views) calls straight through once its patch is removed.
"""

from __future__ import annotations

import functools
import importlib
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics, trace

from codon_sdk.integrations import integration
from codon_sdk.llm._adapter import ProviderAdapter, Target
from codon_sdk.llm._calls import Config, Patch, acall, call

__all__ = ["ORIGINAL_ATTR", "INSTRUMENTED_ATTR", "Patcher"]

ORIGINAL_ATTR = "__codon_original__"
INSTRUMENTED_ATTR = "__codon_llm_instrumented__"
"""Set on callables that trace and record themselves (``track_llm`` calls them as they are)."""

ClientKind = Callable[[Any], "bool | None"]
"""``is_async(client)``: True for an async client, False for a sync one, None for neither."""


def _resource_class(target: Target) -> type | None:
    try:
        found = getattr(importlib.import_module(target.module), target.cls)
    except (ImportError, AttributeError):  # a client version without this API
        return None
    return found if isinstance(found, type) else None


def _unwrapped(function: Any) -> Any:
    return getattr(function, ORIGINAL_ATTR, function)


def _wrapper(patch: Patch, driver: Any) -> Any:
    original = patch.original
    if driver is None and patch.is_async:

        @functools.wraps(original)
        async def wrapper_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await acall(patch, self, args, kwargs)

        wrapper: Any = wrapper_async
    else:
        drive = driver or call

        @functools.wraps(original)
        def wrapper_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
            return drive(patch, self, args, kwargs)

        wrapper = wrapper_sync
    setattr(wrapper, ORIGINAL_ATTR, original)
    setattr(wrapper, INSTRUMENTED_ATTR, True)
    return wrapper


class Patcher:
    """One provider's patches: :meth:`instrument` and :meth:`uninstrument` (thread-safe).

    ``entry`` names the public function for messages (``"instrument_openai"``);
    ``client_kind`` says whether an object is one of the provider's sync or async
    clients (None: it is not a client of this provider). ``worker_setup`` and
    ``worker_teardown`` are the provider's public ``instrument_...`` and
    ``uninstrument_...`` functions: patching every client here carries
    ``worker_setup(capture_content=...)`` to remote workers (``Integration.carry``), so
    their calls are recorded too; unpatching every client stops it.
    """

    def __init__(
        self,
        adapter: ProviderAdapter,
        targets: Iterable[Target],
        *,
        entry: str,
        client_kind: ClientKind,
        client_types: str,
        worker_setup: Callable[..., Any] | None = None,
        worker_teardown: Callable[[], Any] | None = None,
    ) -> None:
        self.adapter = adapter
        self._worker_setup = worker_setup
        self._worker_teardown = worker_teardown
        self.targets = tuple(targets)
        self._entry = entry
        self._client_kind = client_kind
        self._client_types = client_types
        self._lock = threading.Lock()
        self.class_patches: dict[type, dict[str, Patch]] = {}
        # per-client patches, keyed by the client's resource object; a dropped client is forgotten
        self.client_patches: weakref.WeakKeyDictionary[Any, dict[str, Patch]] = (
            weakref.WeakKeyDictionary()
        )

    def _owners(self, client: Any) -> list[tuple[Target, Any]]:
        """(target, class or resource object) pairs to patch for ``client`` (None: all)."""
        owners: list[tuple[Target, Any]] = []
        if client is None:
            for target in self.targets:
                cls = _resource_class(target)
                if cls is not None:
                    owners.append((target, cls))
            return owners
        is_async = self._client_kind(client)
        if is_async is None:
            raise TypeError(
                f"{self._entry}(client) takes {self._client_types} client (or None for every "
                f"client), got {type(client).__module__}.{type(client).__name__}"
            )
        for target in self.targets:
            if target.is_async != is_async or _resource_class(target) is None:
                continue
            resource: Any = client
            for name in target.path:
                resource = getattr(resource, name)
            owners.append((target, resource))
        return owners

    def instrument(
        self,
        client: Any = None,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        capture_content: bool | None = None,
    ) -> None:
        """Patch every target (of every client, or of ``client``); again: new settings only."""
        door = integration(self.adapter.name)  # calls inside nodes need the node's handle
        config = Config(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            capture_content=capture_content,
        )
        with self._lock:
            for target, owner in self._owners(client):
                registry: Any = (
                    self.class_patches if isinstance(owner, type) else self.client_patches
                )
                patches: dict[str, Patch] = registry.setdefault(owner, {})
                existing = patches.get(target.method)
                if existing is not None:
                    existing.config = config
                    continue
                if isinstance(owner, type):
                    original = owner.__dict__[target.method]
                else:
                    original = _unwrapped(getattr(type(owner), target.method))
                patch = Patch(
                    adapter=self.adapter,
                    operation=target.operation,
                    is_async=target.is_async,
                    original=original,
                    config=config,
                )
                wrapper = _wrapper(patch, target.driver)
                if isinstance(owner, type):
                    setattr(owner, target.method, wrapper)
                else:
                    setattr(owner, target.method, types.MethodType(wrapper, owner))
                patches[target.method] = patch
        if client is None and self._worker_setup is not None:
            # remote workers patch their classes too (their own global OpenTelemetry providers)
            door.carry(
                self._worker_setup,
                teardown=self._worker_teardown,
                capture_content=capture_content,
            )

    def uninstrument(self, client: Any = None) -> None:
        """Undo :meth:`instrument`: everything, or what was patched on ``client``; the
        original methods are put back exactly (the same function objects)."""
        if client is None:
            integration(self.adapter.name).stop_carrying()
        with self._lock:
            if client is None:
                chosen = [*self.class_patches.items(), *self.client_patches.items()]
            else:
                chosen = [
                    (owner, found)
                    for _, owner in self._owners(client)
                    if (found := self.client_patches.get(owner))
                ]
            for owner, patches in dict(chosen).items():
                for method, patch in patches.items():
                    patch.active = False
                    if isinstance(owner, type):
                        setattr(owner, method, patch.original)
                    else:
                        if method in vars(owner):
                            delattr(owner, method)
                if isinstance(owner, type):
                    self.class_patches.pop(owner, None)
                else:
                    self.client_patches.pop(owner, None)
