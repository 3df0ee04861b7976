"""The documented ``codon_sdk.instrumentation.schemas.nodespec`` import path."""

from codon_sdk.errors import NodeSpecValidationError
from codon_sdk.identity import NODESPEC_VERSION, NodeSpec

__all__ = ["NODESPEC_VERSION", "NodeSpec", "NodeSpecValidationError"]
