"""The ledger: event records, the hash chain, Merkle checkpoints, signed notes and proofs.

A run's ledger is a hash-chained list of JSON entries. What other layers use:

- :func:`parse_entry` reads one stored entry as a :class:`LedgerEvent` (hostile bytes:
  a clear :class:`~codon_sdk.errors.LedgerError`, never a traceback);
- :data:`EVENT_TYPES` declares every built-in event type once (``RUN_STARTED``,
  ``TOKEN_ENQUEUED``...), with how resume, replay comparison, the report and the chain
  rules treat it; :func:`event_type` gives the declared type for a name, or
  :data:`CUSTOM_EVENT`, the rule for every other name; the run statuses
  (:data:`RUN_STATUSES`, :data:`TERMINAL_STATUSES`);
- :func:`check_chain` / :class:`ChainCheck`: the chain rules over a run's entries;
  :func:`verify_entries` / :class:`VerificationReport`: the full verdict;
- Merkle checkpoints over runs (:class:`Checkpoint`, :func:`leaf_hash`,
  :class:`MerkleAccumulator`), signed with a :class:`Signer` (:class:`Ed25519Signer`,
  :func:`generate_key`) and checked with a :class:`Verifier`;
- inclusion proofs (:func:`build_inclusion_proof`, :func:`verify_proof_file`) and the
  signed runs log (:func:`verify_runs_log`);
- erasure (:func:`stand_in`, :func:`check_erasure_log`): stand-ins that keep an erased
  event's place and leaf, and the hash-chained log that names them;
- signed approvals (:class:`ApprovalStatement`, :class:`Approval`, :func:`input_digest`):
  what an approver signs to resume a paused run, checked by :func:`verify_entries`.

The modules behind this face are private.
"""

from codon_sdk.ledger._approval import (
    Approval,
    ApprovalCheck,
    ApprovalStatement,
    input_digest,
)
from codon_sdk.ledger._chain import (
    ChainCheck,
    check_chain,
)
from codon_sdk.ledger._checkpoint import (
    Checkpoint,
    run_leaf,
    run_origin,
    runs_origin,
    sign_checkpoint,
)
from codon_sdk.ledger._erasure import (
    ErasureLine,
    ErasureLog,
    Permit,
    chain_leaf,
    check_erasure_log,
    is_stand_in,
    make_line,
    stand_in,
    subject_reason,
)
from codon_sdk.ledger._event_types import (
    BUDGET_EXCEEDED,
    BUILTIN_TYPES,
    CACHE_HIT,
    CUSTOM_EVENT,
    EFFECT_RECORDED,
    EVENT_TYPES,
    NODE_COMPLETED,
    NODE_FAILED,
    NODE_RETRYING,
    NODE_STARTED,
    POLICY_DECIDED,
    RATE_LIMIT_WAITED,
    RUN_FINISHED,
    RUN_INTERRUPTED,
    RUN_RESUMED,
    RUN_STARTED,
    RUN_STATUSES,
    RUNTIME_STOPPED,
    STATE_UPDATED,
    TERMINAL_STATUSES,
    TOKEN_DEQUEUED,
    TOKEN_ENQUEUED,
    ChainRole,
    EventType,
    ReplayRole,
    ReportRole,
    ResumeRole,
    event_type,
    types_with,
)
from codon_sdk.ledger._events import (
    FORMAT_VERSION,
    LedgerEvent,
    check_custom_type,
    parse_entry,
)
from codon_sdk.ledger._merkle import (
    MerkleAccumulator,
    leaf_hash,
)
from codon_sdk.ledger._merkle import (
    root as merkle_root,
)
from codon_sdk.ledger._note import (
    Ed25519Signer,
    Note,
    Signer,
    Verifier,
    check_note,
    generate_key,
)
from codon_sdk.ledger._proof import (
    build_inclusion_proof,
    verify_proof_file,
)
from codon_sdk.ledger._runs_log import (
    LoggedRun,
    LogVerification,
    verify_runs_log,
)
from codon_sdk.ledger._verify import (
    Finding,
    VerificationReport,
    verify_entries,
)

__all__ = [
    "Approval",
    "ApprovalCheck",
    "ApprovalStatement",
    "input_digest",
    "CUSTOM_EVENT",
    "EVENT_TYPES",
    "RUN_STATUSES",
    "ChainRole",
    "EventType",
    "ReplayRole",
    "ReportRole",
    "ResumeRole",
    "event_type",
    "types_with",
    "BUDGET_EXCEEDED",
    "BUILTIN_TYPES",
    "CACHE_HIT",
    "ChainCheck",
    "Checkpoint",
    "EFFECT_RECORDED",
    "ErasureLine",
    "ErasureLog",
    "Permit",
    "chain_leaf",
    "check_erasure_log",
    "is_stand_in",
    "make_line",
    "stand_in",
    "subject_reason",
    "Ed25519Signer",
    "FORMAT_VERSION",
    "Finding",
    "LedgerEvent",
    "LogVerification",
    "LoggedRun",
    "MerkleAccumulator",
    "NODE_COMPLETED",
    "NODE_FAILED",
    "NODE_RETRYING",
    "NODE_STARTED",
    "Note",
    "POLICY_DECIDED",
    "RATE_LIMIT_WAITED",
    "RUNTIME_STOPPED",
    "RUN_FINISHED",
    "RUN_INTERRUPTED",
    "RUN_RESUMED",
    "RUN_STARTED",
    "STATE_UPDATED",
    "Signer",
    "TERMINAL_STATUSES",
    "TOKEN_DEQUEUED",
    "TOKEN_ENQUEUED",
    "VerificationReport",
    "Verifier",
    "build_inclusion_proof",
    "check_chain",
    "check_custom_type",
    "check_note",
    "generate_key",
    "leaf_hash",
    "parse_entry",
    "merkle_root",
    "run_leaf",
    "run_origin",
    "runs_origin",
    "sign_checkpoint",
    "verify_entries",
    "verify_proof_file",
    "verify_runs_log",
]
