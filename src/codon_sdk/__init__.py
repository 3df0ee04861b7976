"""Codon SDK: make AI agents operable in production.

Agents are graphs of plain Python functions passing immutable tokens; every run
writes a hash-chained audit ledger; functions, workflows and deployments carry
stable SHA-256 identities. Start with :class:`CodonWorkload`.
"""

from __future__ import annotations

from codon_sdk._version import __version__
from codon_sdk.errors import (
    CanonicalEncodingError,
    CodonError,
    LedgerError,
    NodeSpecValidationError,
    PayloadTooLargeError,
    StepLimitExceededError,
    WorkloadRegistrationError,
    WorkloadRuntimeError,
)
from codon_sdk.identity._canonical import canonical_bytes
from codon_sdk.identity._logic import (
    AgentClass,
    Deployment,
    LogicRequest,
    NodeEdge,
    Topology,
    generate_logic_id,
)
from codon_sdk.identity._nodespec import NodeSpec
from codon_sdk.ledger._chain import ChainCheck, check_chain
from codon_sdk.ledger._events import LedgerEvent
from codon_sdk.runtime._handle import NodeRuntime
from codon_sdk.runtime._records import AuditEvent, NodeExecutionRecord, StreamEvent, Token
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._workload import CodonWorkload, Workload

__all__ = [
    "AgentClass",
    "AuditEvent",
    "CanonicalEncodingError",
    "ChainCheck",
    "CodonError",
    "CodonWorkload",
    "Deployment",
    "ExecutionReport",
    "LedgerError",
    "LedgerEvent",
    "LogicRequest",
    "NodeEdge",
    "NodeExecutionRecord",
    "NodeRuntime",
    "NodeSpec",
    "NodeSpecValidationError",
    "PayloadTooLargeError",
    "StepLimitExceededError",
    "StreamEvent",
    "Token",
    "Topology",
    "Workload",
    "WorkloadRegistrationError",
    "WorkloadRuntimeError",
    "__version__",
    "canonical_bytes",
    "check_chain",
    "generate_logic_id",
]
