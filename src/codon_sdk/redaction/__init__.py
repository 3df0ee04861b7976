"""Redaction: the policy that masks or seals secrets before anything records or exports them."""

from typing import Any

from codon_sdk.redaction._keys import (
    SEALING_KEY_ENV_VAR,
    SEALING_KEY_FILE_ENV_VAR,
    SealingKeys,
    StaticSealingKeys,
    generate_sealing_key,
    sealing_keys_from_environment,
)
from codon_sdk.redaction._policy import ACTIONS, PERSONAL_DATA_KINDS
from codon_sdk.redaction._sealing import SEALED_MARKER_PATTERN

__all__ = [
    "ACTIONS",
    "PERSONAL_DATA_KINDS",
    "SEALED_MARKER_PATTERN",
    "SEALING_KEY_ENV_VAR",
    "SEALING_KEY_FILE_ENV_VAR",
    "SealingKeys",
    "StaticSealingKeys",
    "generate_sealing_key",
    "sealing_keys_from_environment",
]


def __getattr__(name: str) -> Any:
    # The policy itself still lives in codon_sdk.telemetry._redaction, which imports this
    # package's modules; a lazy re-export keeps the import order free of cycles.
    if name in ("Redactor", "default_redactor", "set_default_redactor"):
        from codon_sdk.telemetry import _redaction

        return getattr(_redaction, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
