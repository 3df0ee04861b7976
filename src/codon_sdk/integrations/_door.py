"""Integrations by name, and what each may ask of the running activation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from codon_sdk._text import printable
from codon_sdk.errors import IntegrationError
from codon_sdk.redaction import current_redact
from codon_sdk.runtime import (
    EffectSlot,
    NodeRuntime,
    carry_setup,
    current_runtime,
    drop_setup,
    enable_current_runtime,
)

__all__ = ["Integration", "integration", "integrations"]

_NO_REQUEST: Any = object()
_lock = threading.Lock()
_registered: dict[str, Integration] = {}


class Integration:
    """One plug-in's handle on the running activation (see :func:`integration`)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Integration({self.name!r})"

    def activation(self) -> NodeRuntime | None:
        """The handle of the node activation running in this context, or None outside one."""
        return current_runtime()

    def effect(
        self,
        name: str,
        *,
        request: Any = _NO_REQUEST,
        request_at: str | None = None,
        llm: Mapping[str, Any] | None = None,
        defer: bool = False,
    ) -> EffectSlot:
        """Reserve the running activation's next recorded effect, ``name`` (see
        :meth:`NodeRuntime.effect_slot` for ``request``, ``request_at``, ``llm`` and
        ``defer``: async code passes ``defer=True`` and awaits ``slot.cleared()``).

        Raises :class:`~codon_sdk.errors.IntegrationError` outside a running node: check
        :meth:`activation` first and make the call unrecorded there.
        """
        runtime = current_runtime()
        if runtime is None:
            raise IntegrationError(
                f"integration {self.name!r} asked for the recorded effect {printable(name)!r} "
                "outside a running Codon node: only a node's calls are recorded, so check "
                "Integration.activation() first and make the call unrecorded when it is None"
            )
        if request is _NO_REQUEST:
            return runtime.effect_slot(name, request_at=request_at, llm=llm, defer=defer)
        return runtime.effect_slot(
            name, request=request, request_at=request_at, llm=llm, defer=defer
        )

    def carry(
        self,
        setup: Callable[..., Any],
        /,
        *,
        teardown: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Run ``setup(**kwargs)`` in every remote worker process before it runs an activation
        shipped from this process (``RayExecutor``), and ``teardown()`` there once this
        process stops carrying it (:meth:`stop_carrying`). Call it where the plug-in changes
        this process (``instrument_openai()`` patching the client classes), so calls made
        inside remote activations are recorded as they are here.

        ``setup`` and ``teardown`` must be top-level functions of an installed module (the
        worker imports them by name), and ``kwargs`` must pickle. A later call replaces the
        earlier one; each worker runs a set-up once per distinct ``kwargs``.
        """
        carry_setup(self.name, setup, teardown=teardown, kwargs=kwargs)

    def stop_carrying(self) -> None:
        """Stop carrying this plug-in's set-up (workers tear it down at their next activation)."""
        drop_setup(self.name)

    def redact(self) -> Callable[[str], str] | None:
        """The redaction hook for data leaving the process now (span attributes, logs): the
        running node's policy, else the default one; None when redaction is off."""
        return current_redact()


def integration(name: str) -> Integration:
    """The door for the plug-in ``name`` (the same object on every call with that name).

    The first call asks the engine to publish each activation's handle, so that
    :meth:`Integration.activation` sees it. Make the door when the plug-in is installed
    (import time, ``instrument_...()``), before runs start: an activation already running
    when the first door is made was not published, so its calls go unrecorded.
    """
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise IntegrationError(
            f"an integration name must be a printable, non-empty string (got {name!r}): name "
            "the plug-in as its users know it, for example 'openai' or 'acme-llm'"
        )
    with _lock:
        door = _registered.get(name)
        if door is None:
            door = _registered[name] = Integration(name)
    enable_current_runtime()
    return door


def integrations() -> tuple[str, ...]:
    """The names of the integrations installed in this process, in registration order."""
    with _lock:
        return tuple(_registered)
