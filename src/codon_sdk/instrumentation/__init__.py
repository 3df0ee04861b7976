"""Instrumentation entry points: :func:`initialize_telemetry` ships Codon's telemetry over OTLP.

``initialize_telemetry`` needs the ``otel`` extra (``pip install "codon-sdk[otel]"``);
it is imported on first use, so this package and its ``schemas`` import without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codon_sdk.telemetry import TelemetryHandle, initialize_telemetry

__all__ = ["TelemetryHandle", "initialize_telemetry"]

_LAZY = {
    "TelemetryHandle": "codon_sdk.telemetry._setup",
    "initialize_telemetry": "codon_sdk.telemetry._setup",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
