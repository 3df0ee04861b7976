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
from codon_sdk.identity import TaggedValue, register_type
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
from codon_sdk.ledger._note import Ed25519Signer, Signer, generate_key
from codon_sdk.ledger._verify import VerificationReport
from codon_sdk.redaction import Redactor
from codon_sdk.runtime._compare import Divergence
from codon_sdk.runtime._handle import NodeRuntime
from codon_sdk.runtime._launch import load_report
from codon_sdk.runtime._policy import RetryPolicy
from codon_sdk.runtime._records import AuditEvent, NodeExecutionRecord, StreamEvent, Token
from codon_sdk.runtime._replay import ReplayReport
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._workload import CodonWorkload, Workload, WorkloadMetadata
from codon_sdk.stores._base import LedgerStore, RunInfo
from codon_sdk.stores._memory import MemoryStore
from codon_sdk.stores._notary import FileCheckpointSink, Notary
from codon_sdk.stores._open import default_ledger_url, open_store
from codon_sdk.stores._registry import register_store
from codon_sdk.stores._sqlite import SQLiteStore
from codon_sdk.stores._verify import StoreVerification, verify_all, verify_run

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores._postgres import PostgresStore

__all__ = [
    "AgentClass",
    "AuditEvent",
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
    "verify_all",
    "verify_run",
]


def __getattr__(name: str) -> Any:
    """``PostgresStore`` is imported on first use (it needs the ``postgres`` extra)."""
    if name == "PostgresStore":
        from codon_sdk.stores._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'codon_sdk' has no attribute {name!r}")
