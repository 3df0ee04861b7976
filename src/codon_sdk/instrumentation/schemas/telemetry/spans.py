"""The documented ``codon_sdk.instrumentation.schemas.telemetry.spans`` import path."""

from codon_sdk.telemetry import (
    CodonBaseAttributes,
    CodonGraphAttributes,
    CodonLedgerAttributes,
    CodonNodeAttributes,
    CodonSpanNames,
    CodonWorkloadAttributes,
    GenAIAttributes,
    GenAIMetrics,
    GenAIOperations,
)

__all__ = [
    "CodonBaseAttributes",
    "CodonGraphAttributes",
    "CodonLedgerAttributes",
    "CodonNodeAttributes",
    "CodonSpanNames",
    "CodonWorkloadAttributes",
    "GenAIAttributes",
    "GenAIMetrics",
    "GenAIOperations",
]
