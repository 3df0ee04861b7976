"""Redaction: the policy that masks or seals secrets before anything records or exports them."""

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
