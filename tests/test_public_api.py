"""The public surface: ``codon_sdk.__all__`` and the documented import paths of API.md Part 1.

Not covered yet (the modules do not exist): ``codon_sdk.instrumentation.initialize_telemetry``,
``codon_sdk.llm`` (``track_llm``, ``track_llm_async``) and ``codon.instrumentation.*``.
"""

from __future__ import annotations

import enum
import importlib

import pytest

import codon_sdk

EXPECTED_ALL = [
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

# API.md Part 1, "Import paths that must exist" (the paths that exist today).
DOCUMENTED_IMPORTS = {
    "codon_sdk.agents": [
        "Workload",
        "CodonWorkload",
        "ExecutionReport",
        "AuditEvent",
        "Token",
        "NodeExecutionRecord",
        "StreamEvent",
        "WorkloadRegistrationError",
        "WorkloadRuntimeError",
    ],
    "codon_sdk.instrumentation.schemas.nodespec": ["NodeSpec", "NodeSpecValidationError"],
    "codon_sdk.instrumentation.schemas.logic_id": [
        "AgentClass",
        "NodeEdge",
        "Topology",
        "LogicRequest",
        "generate_logic_id",
    ],
}

# The attributes API.md's tracing section promises on every node span.
DOCUMENTED_SPAN_ATTRIBUTES = {
    "codon.workload.id",
    "codon.workload.logic_id",
    "codon.workload.run_id",
    "codon.workload.deployment_id",
    "org.namespace",
    "codon.organization.id",
    "codon.nodespec.id",
    "codon.nodespec.name",
    "codon.nodespec.role",
}


def test_all_is_sorted_and_pinned() -> None:
    """``codon_sdk.__all__`` is sorted and exactly the expected public names (no drift)."""
    assert list(codon_sdk.__all__) == sorted(codon_sdk.__all__)
    assert list(codon_sdk.__all__) == EXPECTED_ALL


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_is_importable(name: str) -> None:
    """Every name in ``__all__`` is an attribute of the package."""
    assert getattr(codon_sdk, name) is not None


def test_star_import_gives_exactly_all() -> None:
    """``from codon_sdk import *`` binds every name of ``__all__`` and nothing private."""
    namespace: dict[str, object] = {}
    exec("from codon_sdk import *", namespace)
    namespace.pop("__builtins__", None)
    assert sorted(namespace) == sorted(EXPECTED_ALL)


@pytest.mark.parametrize(
    ("module_name", "name"),
    [(module, name) for module, names in DOCUMENTED_IMPORTS.items() for name in names],
)
def test_documented_import_path(module_name: str, name: str) -> None:
    """Each documented ``from <module> import <name>`` of API.md Part 1 works."""
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"{module_name} lacks {name}"
    exported = getattr(module, "__all__", None)
    if exported is not None:
        assert name in exported, f"{name} missing from {module_name}.__all__"


@pytest.mark.parametrize(
    ("module_name", "name"),
    [(module, name) for module, names in DOCUMENTED_IMPORTS.items() for name in names],
)
def test_documented_paths_reexport_the_core_objects(module_name: str, name: str) -> None:
    """The documented paths are re-exports: the same objects as ``codon_sdk.<name>``."""
    module = importlib.import_module(module_name)
    assert getattr(module, name) is getattr(codon_sdk, name)


def test_span_attribute_catalogue_covers_the_documented_attributes() -> None:
    """``...schemas.telemetry.spans`` holds str enums naming every documented span attribute."""
    spans = importlib.import_module("codon_sdk.instrumentation.schemas.telemetry.spans")
    enums = [
        obj
        for obj in vars(spans).values()
        if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj is not enum.Enum
    ]
    assert enums, "the spans module exports no attribute-name enums"
    values = {member.value for cls in enums for member in cls}
    assert values >= DOCUMENTED_SPAN_ATTRIBUTES
    for cls in enums:
        for member in cls:
            assert isinstance(member.value, str)


def test_error_classes_fit_the_builtin_hierarchy() -> None:
    """Registration errors are ValueErrors, runtime errors RuntimeErrors, all CodonErrors."""
    from codon_sdk import (
        CanonicalEncodingError,
        CodonError,
        NodeSpecValidationError,
        PayloadTooLargeError,
        StepLimitExceededError,
        WorkloadRegistrationError,
        WorkloadRuntimeError,
    )

    assert issubclass(WorkloadRuntimeError, RuntimeError)
    assert issubclass(StepLimitExceededError, WorkloadRuntimeError)
    assert issubclass(PayloadTooLargeError, WorkloadRuntimeError)
    assert issubclass(CanonicalEncodingError, TypeError)
    for cls in (
        WorkloadRegistrationError,
        WorkloadRuntimeError,
        NodeSpecValidationError,
        CanonicalEncodingError,
    ):
        assert issubclass(cls, CodonError)


def test_version_is_a_string() -> None:
    """``codon_sdk.__version__`` is a non-empty version string."""
    assert isinstance(codon_sdk.__version__, str)
    assert codon_sdk.__version__
