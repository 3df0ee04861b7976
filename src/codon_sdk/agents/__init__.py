"""The documented ``codon_sdk.agents`` import path (re-exports)."""

from codon_sdk.errors import WorkloadRegistrationError, WorkloadRuntimeError
from codon_sdk.runtime._records import AuditEvent, NodeExecutionRecord, StreamEvent, Token
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._workload import CodonWorkload, Workload

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
