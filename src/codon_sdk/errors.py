"""Every exception the Codon SDK raises, in one place.

Each class subclasses the built-in that fits (so ``except ValueError`` still works
for callers who do not know ours), and every message says what was wrong, with
the offending value, and what to do about it. Errors from sqlite3, psycopg,
openai and friends are translated at the boundary with ``raise Ours(...) from exc``.

    CodonError(Exception)
    ├── CanonicalEncodingError(TypeError)     a value has no canonical JSON encoding
    ├── NodeSpecValidationError(ValueError)   a node's identity record is invalid
    ├── WorkloadRegistrationError(ValueError) the graph definition is invalid
    ├── WorkloadRuntimeError(RuntimeError)    a run failed; ``.report`` holds the ledger so far
    │   ├── StepLimitExceededError            more activations than ``max_steps``
    │   ├── PayloadTooLargeError              an event larger than the configured limit
    │   ├── NodeTimeoutError                  a node attempt exceeded its timeout
    │   ├── RunTimeoutError                   the whole run exceeded its timeout
    │   ├── LogicChangedError                 resume refused: the code changed
    │   ├── InputRequiredError                resume refused: the run waits for an input
    │   ├── ExecutorUnavailableError          the executor (a Ray cluster) cannot be reached
    │   ├── ActivationTransferError           a value cannot cross to or from a remote worker
    │   ├── WorkerLostError                   the worker process running an activation died
    │   ├── WorkerSetupError                  a plug-in's set-up failed in a remote worker
    │   └── GovernanceError                   a governance rule acted (``codon_sdk.governance``)
    │       ├── PolicyDeniedError             a policy denied an activation, effect or LLM call
    │       ├── BudgetExceededError           the next step would cross a budget: the run stops
    │       └── RateLimitWaitError            a rate-limited call would wait past its max_wait
    ├── LedgerError(ValueError)               a ledger event is malformed or unknown
    │   └── UntrustedRunError                 a reader refused a run that does not verify
    ├── StoreError(RuntimeError)              a ledger store failed
    │   ├── InvalidStoreURLError(ValueError)  ``open_store`` cannot parse the URL
    │   ├── StorePluginError                  a store plug-in is taken, broken or not a store
    │   ├── StoreConnectionError              the database cannot be reached
    │   ├── StoreCorruptError                 the file or tables are damaged
    │   ├── SchemaVersionError                the database was written by a newer SDK
    │   ├── RunNotFoundError(LookupError)     no run with that id in the store
    │   ├── RunConflictError                  the run exists, has ended, or another process holds it
    │   │   └── LeaseLostError                this process's lease on the run was taken over
    │   └── BlobStoreError                    a payload blob cannot be written, read or checked
    ├── AuditSinkError(RuntimeError)          an audit sink cannot deliver or be opened
    │   └── InvalidSinkURLError(ValueError)   ``open_sink`` cannot parse the URL
    ├── ConfigurationError(ValueError)        a setting (price, option) has an impossible value
    ├── CheckpointError(ValueError)           a signed checkpoint or key cannot be parsed
    ├── ProofError(ValueError)                an inclusion or consistency proof is malformed
    ├── ApprovalError(ValueError)             resume refused: its signed approval is missing or bad
    ├── RunHeldError(PermissionError)         erasure refused: the run is under a legal hold
    ├── RunErasedError(PermissionError)       resume, replay or fork refused: the run was erased
    ├── SealingKeyError(RuntimeError)         a sealing key is missing, wrong or its provider failed
    ├── RecordedError(Exception)              a recorded effect's error, raised again on resume
    ├── ReplayError(RuntimeError)             a run cannot be replayed or forked
    ├── ExplorerError(ValueError)             the run explorer refused a request or option
    └── IntegrationError(RuntimeError)        a plug-in used the integrations door wrongly
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from codon_sdk.runtime import ExecutionReport

__all__ = [
    "ActivationTransferError",
    "ApprovalError",
    "AuditSinkError",
    "BlobStoreError",
    "CanonicalEncodingError",
    "CheckpointError",
    "CodonError",
    "ConfigurationError",
    "BudgetExceededError",
    "ExecutorUnavailableError",
    "ExplorerError",
    "GovernanceError",
    "IntegrationError",
    "InputRequiredError",
    "InvalidSinkURLError",
    "InvalidStoreURLError",
    "LeaseLostError",
    "LedgerError",
    "LogicChangedError",
    "NodeSpecValidationError",
    "NodeTimeoutError",
    "PayloadTooLargeError",
    "PolicyDeniedError",
    "ProofError",
    "RateLimitWaitError",
    "RecordedError",
    "ReplayError",
    "RunConflictError",
    "RunErasedError",
    "RunHeldError",
    "RunNotFoundError",
    "RunTimeoutError",
    "SchemaVersionError",
    "SealingKeyError",
    "StepLimitExceededError",
    "StoreConnectionError",
    "StoreCorruptError",
    "StoreError",
    "StorePluginError",
    "UntrustedRunError",
    "WorkerLostError",
    "WorkerSetupError",
    "WorkloadRegistrationError",
    "WorkloadRuntimeError",
]


class CodonError(Exception):
    """Base class of every error raised by the Codon SDK."""


class CanonicalEncodingError(CodonError, TypeError):
    """A value cannot be given a canonical (RFC 8785) encoding.

    ``path`` locates the value inside the structure (``$`` is the root, for
    example ``$['items'][3]``); ``type_name`` is the offending value's type.
    """

    def __init__(self, message: str, *, path: str = "$", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class NodeSpecValidationError(CodonError, ValueError):
    """A NodeSpec field is missing or of the wrong kind."""


class WorkloadRegistrationError(CodonError, ValueError):
    """The workload graph is invalid: duplicate or unnamed nodes, edges to unknown nodes..."""


class WorkloadRuntimeError(CodonError, RuntimeError):
    """A run could not go on. ``report`` holds the ledger up to the failure, when there was one."""

    def __init__(self, message: str, *, report: ExecutionReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class StepLimitExceededError(WorkloadRuntimeError):
    """The run needed more node activations than ``max_steps`` allows."""


class PayloadTooLargeError(WorkloadRuntimeError):
    """A payload, result or event is larger than the configured ``max_event_bytes``."""


class NodeTimeoutError(WorkloadRuntimeError):
    """A node attempt ran longer than the node's ``timeout``."""


class RunTimeoutError(WorkloadRuntimeError):
    """The run as a whole ran longer than its ``timeout``."""


class LogicChangedError(WorkloadRuntimeError):
    """Resume refused because the workload's logic id differs from the recorded run's."""


class InputRequiredError(WorkloadRuntimeError):
    """``resume`` of a run paused for an input, with none given and no declared default."""


class ExecutorUnavailableError(WorkloadRuntimeError):
    """The run's executor cannot start: the Ray cluster at the address it names cannot be
    reached, or the ``ray`` extra is not installed. Raised before the run records anything."""


class ActivationTransferError(WorkloadRuntimeError):
    """A value cannot cross between the driver and a remote worker (it does not pickle): the
    message names the node, which part (its input, result, state, effect) and the type."""


class WorkerLostError(WorkloadRuntimeError):
    """The worker process running an activation died before it answered. Nothing of that
    attempt was recorded; the node's retry policy (or the executor's default one for lost
    workers) runs it again."""


class WorkerSetupError(WorkloadRuntimeError):
    """A plug-in's process set-up (``instrument_openai()`` carried to a remote worker) failed
    in the worker process: the message names the plug-in and the process. The activation
    did not run; install the plug-in where the workers run."""


class GovernanceError(WorkloadRuntimeError):
    """A governance rule (policy, budget, rate limit) acted on a run; never retried by a
    node's retry policy. ``rule`` names the policy, budget or limit."""

    def __init__(
        self, message: str, *, rule: str = "", report: ExecutionReport | None = None
    ) -> None:
        super().__init__(message, report=report)
        self._rule = rule

    @property
    def rule(self) -> str:
        """The rule that acted (for the run's error, the one the node's error names)."""
        cause = self.__cause__
        if not self._rule and isinstance(cause, GovernanceError):
            return cause.rule
        return self._rule


class PolicyDeniedError(GovernanceError):
    """A policy denied an activation, a recorded effect or an LLM call before it happened
    (nothing was sent); raised in the node, which may catch it. A policy that raised is a
    denial too, with its exception recorded. The ledger's ``policy_decided`` event says why."""


class BudgetExceededError(GovernanceError):
    """The next activation or LLM call would cross a run or deployment budget: it is not made
    and the run ends with status ``stopped``, its reason naming the budget."""


class RateLimitWaitError(GovernanceError):
    """A call limited by a ``RateLimit`` would have to wait longer than the limit's
    ``max_wait`` for room in its window; raise ``max_wait`` or the limit."""


class LedgerError(CodonError, ValueError):
    """A ledger event is malformed, of an unknown format version, or uses a reserved name."""


class UntrustedRunError(LedgerError):
    """A reader (resume, replay, fork, ``runs show``, export, the report) refused a run whose
    ledger does not verify: its chain is broken, or, with a notary, its history is not
    vouched for by the store's signed checkpoints. ``findings`` lists why."""

    def __init__(self, message: str, *, findings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


class StoreError(CodonError, RuntimeError):
    """A ledger store could not read or write."""


class InvalidStoreURLError(StoreError, ValueError):
    """``open_store`` was given a URL it cannot parse or a scheme it does not know."""


class StorePluginError(StoreError):
    """A store plug-in (see ``register_store``) cannot be used: its scheme is registered twice,
    its entry point fails to import, or its factory returns something that is not a store."""


class StoreConnectionError(StoreError):
    """The database server cannot be reached (the message shows the URL without its password):
    at opening, or, for PostgreSQL, after a lost connection did not come back within the
    store's retry bound (``retry_timeout``); what was committed before is kept."""


class StoreCorruptError(StoreError):
    """The store's file or tables are damaged or are not a Codon ledger."""


class SchemaVersionError(StoreError):
    """The store was written by a newer Codon SDK; upgrade the SDK to read it."""


class RunNotFoundError(StoreError, LookupError):
    """No run with the given id exists in the store."""


class RunConflictError(StoreError):
    """The run already exists, has finished, or is being executed by another process."""


class RunHeldError(CodonError, PermissionError):
    """An erasure was refused: the run is under a legal hold (``codon retention hold``)."""


class RunErasedError(CodonError, PermissionError):
    """Resume, replay or fork was refused: events of the run were erased (``codon erase``,
    ``codon retention apply``), so its history can no longer be built on."""


class BlobStoreError(StoreError):
    """A payload blob (``codon_sdk.stores`` blob stores) cannot be written or read, is
    missing, or does not match the digest its ledger entry commits to. A write that fails
    fails the run's step before anything refers to the blob."""


class LeaseLostError(RunConflictError):
    """This process no longer holds the run: its lease expired (a long pause, a suspended
    process) and another owner claimed the run. Nothing more is appended or executed here;
    the new owner carries the run on."""


class AuditSinkError(CodonError, RuntimeError):
    """An audit sink (``codon_sdk.sinks``) could not deliver entries, be reached or be read.

    A run never sees it: the sink's relay logs it and catches up from the ledger later.
    ``catch_up`` and the stream checks raise it, naming the sink and what to do."""


class InvalidSinkURLError(AuditSinkError, ValueError):
    """``open_sink`` was given a URL it cannot parse or a scheme it does not know."""


class ConfigurationError(CodonError, ValueError):
    """A configuration value is impossible (a negative price, an unknown option value...)."""


class CheckpointError(CodonError, ValueError):
    """A signed checkpoint, note or verifier key is malformed."""


class ProofError(CodonError, ValueError):
    """An inclusion or consistency proof is malformed."""


class ApprovalError(CodonError, ValueError):
    """A resume was refused for its approval: the workload requires a signed approval and
    none was given, or the one given is malformed, is signed by a key outside the store's
    keyring of approvers for the workload, or approves another run, interrupt or input."""


class SealingKeyError(CodonError, RuntimeError):
    """A sealed value cannot be sealed or opened: the key is missing, wrong, or its source failed.

    ``source`` names where the keys come from (``CODON_SEALING_KEY``, a key file's path,
    a provider's own name), ``run_id`` the run concerned when there is one, and ``report``
    the ledger so far when a running run stopped because its key source failed (it is
    recorded as paused: resume it once the source works). The message never holds a key
    or a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        run_id: str | None = None,
        report: ExecutionReport | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.run_id = run_id
        self.report = report


class RecordedError(CodonError):
    """An error that a recorded effect raised, raised again from the ledger on resume or replay.

    The ledger names the original type, but never chooses what is imported or called: the
    error comes back as this type, carrying ``type_name`` (``module:qualname`` as recorded),
    ``message`` and ``traceback_text``. For standard-library exception types and types the
    application registered (``codon_sdk.identity.register_type``) the instance is also an
    instance of the original class, so ``except ValueError`` in node code still matches.
    """

    def __init__(self, message: str = "", *, type_name: str = "", traceback_text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.type_name = type_name
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return self.message


class ReplayError(CodonError, RuntimeError):
    """A run cannot be replayed or forked (for example, it is not in the store)."""


class ExplorerError(CodonError, ValueError):
    """The run explorer (``codon ui``, ``codon report``) refused a request or an option.

    ``status`` is the HTTP status the API answers with and ``code`` a stable word for
    the JSON error body (``bad_request``, ``not_found``...).
    """

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class IntegrationError(CodonError, RuntimeError):
    """An integration (a plug-in such as an LLM client instrumentation) used
    ``codon_sdk.integrations`` wrongly: an effect asked for outside a running node, or an
    integration name that is not a printable, non-empty string. The message names the
    plug-in and what to do."""
