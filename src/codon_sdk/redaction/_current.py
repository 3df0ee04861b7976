"""The redaction hook for data leaving the process now: the running node's policy, else
the process default.

The run engine sits above this layer, so it plugs its answer in with
:func:`set_run_redaction_source` (once, when it is imported) instead of this module
importing it: the source returns the running activation's hook (``None`` when that run
turned redaction off), or :data:`NOT_IN_A_RUN`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from codon_sdk.redaction._redactor import default_redactor

__all__ = ["NOT_IN_A_RUN", "current_redact", "set_run_redaction_source"]

NOT_IN_A_RUN: Final = object()

RedactHook = Callable[[str], str]
_source: list[Callable[[], object]] = []


def set_run_redaction_source(source: Callable[[], object]) -> None:
    """Install the engine's answer to "which hook applies to the activation running here"."""
    _source[:] = [source]


def current_redact() -> RedactHook | None:
    """The redaction hook for data about to leave the process (span attributes, logs):
    the running node's policy, else the default one; None when redaction is off."""
    if _source:
        hook = _source[0]()
        if hook is not NOT_IN_A_RUN:
            return hook  # type: ignore[return-value]
    policy = default_redactor()
    return policy.redact_text if policy.enabled else None
