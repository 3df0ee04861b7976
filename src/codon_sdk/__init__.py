"""Codon SDK: make AI agents operable in production.

Agents are graphs of plain Python functions passing immutable tokens; every run
writes a hash-chained audit ledger that can be verified, resumed and replayed;
functions, workflows and deployments carry stable SHA-256 identities. Start with
:class:`CodonWorkload`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codon_sdk._version import __version__
from codon_sdk.errors import (
    ApprovalError,
    CanonicalEncodingError,
    CheckpointError,
    CodonError,
    ConfigurationError,
    InvalidStoreURLError,
    LeaseLostError,
    LedgerError,
    LogicChangedError,
    NodeSpecValidationError,
    NodeTimeoutError,
    PayloadTooLargeError,
    ProofError,
    RecordedError,
    ReplayError,
    RunConflictError,
    RunNotFoundError,
    RunTimeoutError,
    SchemaVersionError,
    SealingKeyError,
    StepLimitExceededError,
    StoreConnectionError,
    StoreCorruptError,
    StoreError,
    StorePluginError,
    UntrustedRunError,
    WorkloadRegistrationError,
    WorkloadRuntimeError,
)
from codon_sdk.identity import (
    AgentClass,
    Deployment,
    LogicRequest,
    NodeEdge,
    NodeSpec,
    TaggedValue,
    Topology,
    canonical_bytes,
    generate_logic_id,
    register_type,
)
from codon_sdk.ledger import (
    Approval,
    ApprovalStatement,
    ChainCheck,
    Ed25519Signer,
    LedgerEvent,
    Signer,
    VerificationReport,
    check_chain,
    generate_key,
)
from codon_sdk.redaction import Redactor
from codon_sdk.runtime import (
    AuditEvent,
    CachePolicy,
    CodonWorkload,
    Divergence,
    ExecutionReport,
    NodeExecutionRecord,
    NodeRuntime,
    ReplayReport,
    RequestCache,
    RetryPolicy,
    StreamEvent,
    Token,
    Workload,
    WorkloadMetadata,
    load_report,
    sign_approval,
)
from codon_sdk.stores import (
    FileCheckpointSink,
    LedgerStore,
    MemoryStore,
    Notary,
    RunInfo,
    SQLiteStore,
    StoreVerification,
    default_ledger_url,
    open_store,
    register_store,
    verify_all,
    verify_run,
)

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores import PostgresStore

__all__ = [
    "AgentClass",
    "Approval",
    "ApprovalError",
    "ApprovalStatement",
    "AuditEvent",
    "CachePolicy",
    "CanonicalEncodingError",
    "ChainCheck",
    "CheckpointError",
    "CodonError",
    "CodonWorkload",
    "ConfigurationError",
    "Deployment",
    "Divergence",
    "Ed25519Signer",
    "ExecutionReport",
    "FileCheckpointSink",
    "InvalidStoreURLError",
    "LeaseLostError",
    "LedgerError",
    "LedgerEvent",
    "LedgerStore",
    "LogicChangedError",
    "LogicRequest",
    "MemoryStore",
    "NodeEdge",
    "NodeExecutionRecord",
    "NodeRuntime",
    "NodeSpec",
    "NodeSpecValidationError",
    "NodeTimeoutError",
    "Notary",
    "PayloadTooLargeError",
    "PostgresStore",
    "ProofError",
    "RecordedError",
    "Redactor",
    "ReplayError",
    "ReplayReport",
    "RequestCache",
    "RetryPolicy",
    "RunConflictError",
    "RunInfo",
    "RunNotFoundError",
    "RunTimeoutError",
    "SQLiteStore",
    "SchemaVersionError",
    "SealingKeyError",
    "Signer",
    "StepLimitExceededError",
    "StoreConnectionError",
    "StoreCorruptError",
    "StoreError",
    "StorePluginError",
    "StoreVerification",
    "StreamEvent",
    "TaggedValue",
    "Token",
    "Topology",
    "UntrustedRunError",
    "VerificationReport",
    "Workload",
    "WorkloadMetadata",
    "WorkloadRegistrationError",
    "WorkloadRuntimeError",
    "__version__",
    "canonical_bytes",
    "check_chain",
    "default_ledger_url",
    "generate_key",
    "generate_logic_id",
    "load_report",
    "open_store",
    "register_store",
    "register_type",
    "sign_approval",
    "verify_all",
    "verify_run",
]


def __getattr__(name: str) -> Any:
    """``PostgresStore`` is imported on first use (it needs the ``postgres`` extra)."""
    if name == "PostgresStore":
        from codon_sdk.stores import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'codon_sdk' has no attribute {name!r}")
