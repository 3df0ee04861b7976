"""The documented ``codon_sdk.agents`` import path (re-exports)."""

from codon_sdk.errors import WorkloadRegistrationError, WorkloadRuntimeError
from codon_sdk.runtime import (
    AuditEvent,
    CodonWorkload,
    ExecutionReport,
    NodeExecutionRecord,
    StreamEvent,
    Token,
    Workload,
)

__all__ = [
    "AuditEvent",
    "CodonWorkload",
    "ExecutionReport",
    "NodeExecutionRecord",
    "StreamEvent",
    "Token",
    "Workload",
    "WorkloadRegistrationError",
    "WorkloadRuntimeError",
]
