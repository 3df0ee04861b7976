"""Process set-ups that follow activations to remote workers.

A plug-in that changes this process (``instrument_openai()`` patches the openai classes)
registers a :class:`ProcessSetup` here, through ``Integration.carry``. Every
:class:`~codon_sdk.runtime._remote.ActivationTicket` carries the set-ups registered in
the process that made it, and a worker brings its own process in line before it runs
the activation (:func:`align_setups`): it runs the set-ups it has not run with those settings
yet, and tears down the ones it ran earlier that the driver no longer carries. So an
LLM call made inside a remote activation goes through the same instrumentation, and is
recorded as the same effect, as it would in the driver.

A set-up is a top-level function (pickled by reference: the worker imports it from its
module, so the plug-in must be installed there) with keyword arguments that pickle.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from codon_sdk._text import exception_text
from codon_sdk.errors import WorkerSetupError

__all__ = ["ProcessSetup", "align_setups", "carried_setups", "carry_setup", "drop_setup"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSetup:
    """What the plug-in ``name`` needs done in a worker process: ``setup(**kwargs)``, and
    ``teardown()`` when the driver no longer carries it."""

    name: str
    setup: Callable[..., Any]
    kwargs: tuple[tuple[str, Any], ...] = ()
    teardown: Callable[[], Any] | None = None

    def run(self) -> None:
        self.setup(**dict(self.kwargs))


_lock = threading.RLock()
_carried: dict[str, ProcessSetup] = {}  # registered by the plug-ins of this process
_applied: dict[str, ProcessSetup] = {}  # run here on behalf of another process's tickets


def carry_setup(
    name: str,
    setup: Callable[..., Any],
    *,
    teardown: Callable[[], Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> None:
    """Carry ``setup(**kwargs)`` to the workers of the activations made from now on (a later
    call for the same ``name`` replaces it)."""
    if not callable(setup) or (teardown is not None and not callable(teardown)):
        raise TypeError(
            f"the set-up carried for {name!r} must be a callable (and its teardown a callable "
            f"or None), got {setup!r} and {teardown!r}"
        )
    spec = ProcessSetup(
        name=name, setup=setup, kwargs=tuple(sorted((kwargs or {}).items())), teardown=teardown
    )
    with _lock:
        _carried[name] = spec


def drop_setup(name: str) -> None:
    """Stop carrying the set-up of ``name`` (workers tear it down at their next activation)."""
    with _lock:
        _carried.pop(name, None)


def carried_setups() -> tuple[ProcessSetup, ...]:
    """The set-ups a ticket made now carries, in registration order."""
    with _lock:
        return tuple(_carried.values())


def align_setups(setups: tuple[ProcessSetup, ...]) -> None:
    """Bring this process in line with a ticket's ``setups`` before its activation runs.

    A set-up this process registered itself with the same settings is left alone (the
    driver running a ticket in process keeps its own instrumentation, providers and all).
    Raises :class:`~codon_sdk.errors.WorkerSetupError` naming the plug-in that failed.
    """
    wanted = {spec.name: spec for spec in setups}
    with _lock:
        for name in [n for n in _applied if n not in wanted]:
            spec = _applied.pop(name)
            if spec.teardown is not None:
                _guarded(spec, spec.teardown, "tearing down")
            _carried.pop(name, None)  # the set-up registered itself here as it ran
        for name, spec in wanted.items():
            if _applied.get(name) == spec or (name not in _applied and _carried.get(name) == spec):
                continue
            _guarded(spec, spec.run, "setting up")
            _applied[name] = spec


def _guarded(spec: ProcessSetup, step: Callable[[], Any], doing: str) -> None:
    try:
        step()
    except Exception as exc:
        raise WorkerSetupError(
            f"{doing} the integration {spec.name!r} in worker process {os.getpid()} failed "
            f"({exception_text(exc)}); install the plug-in and its dependencies where the "
            "workers run (or pass runtime_env= to RayExecutor)"
        ) from exc
