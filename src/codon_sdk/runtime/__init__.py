"""The runtime: workloads, the run engine, durable resume, recovery, replay and reports.

What applications use (also re-exported by ``codon_sdk``): :class:`CodonWorkload` and
:class:`Workload`, the node handle :class:`NodeRuntime`, :class:`RetryPolicy`,
:class:`CachePolicy` (caching by identity), the
records (:class:`Token`, :class:`AuditEvent`, :class:`NodeExecutionRecord`,
:class:`StreamEvent`), :class:`ExecutionReport` (:func:`load_report` reads one back from
a store) and :class:`ReplayReport` / :class:`Divergence`. A node's ``runtime.state`` is a
:class:`RunState` (see :meth:`RunState.update_with` for atomic updates).

What other layers and integrations use besides:

- the current activation (:func:`current_runtime`, :func:`enable_current_runtime`) and
  its recorded-effect slots (:class:`EffectSlot`); LLM integrations go through
  ``codon_sdk.integrations``, which packages these;
- the engine parts a graph adapter drives (:class:`Run`, :func:`new_run`,
  :func:`resume_run`, :class:`RunOptions`, :class:`Recorder`, :func:`rebuild`), the
  run's redaction hooks (:func:`ledger_redact` for the ledger, :func:`span_mask` for
  spans and logs), and the replay comparison (:func:`compare`, :func:`activations`,
  :func:`load_replayable`);
- the trust verdict of a stored run (:func:`check_trust`, :class:`Trust`);
- the plug-ins' process set-ups carried to remote workers (:class:`ProcessSetup`,
  :func:`carry_setup`, :func:`drop_setup`, :func:`carried_setups`, :func:`align_setups`), through
  ``Integration.carry``;
- submitted runs: :func:`start_submitted` records a run's start where it is submitted,
  and a driver elsewhere takes it over (:class:`SubmittedRun`), or ``codon worker`` does;
- the token queue seam (:class:`TokenQueue`, the default :class:`InMemoryTokenQueue`,
  items :data:`QueuedToken`): ``execute(..., token_queue=...)`` or
  ``workload.token_queue``; rebuilt from the ledger on resume.

The modules behind this face are private.
"""

from __future__ import annotations

from codon_sdk.runtime._approval import (
    sign_approval,
)
from codon_sdk.runtime._cache import (
    CachePolicy,
)
from codon_sdk.runtime._compare import (
    Activation,
    Divergence,
    activations,
    compare,
    outcome,
    request_divergences,
)
from codon_sdk.runtime._dispatch import (
    ActivationCall,
    Executor,
    InProcessExecutor,
    checked_resources,
)
from codon_sdk.runtime._drive import (
    run_coroutine,
)
from codon_sdk.runtime._engine import (
    Run,
    now_us,
)
from codon_sdk.runtime._graph import GraphWorkload
from codon_sdk.runtime._handle import (
    CURRENT_RUNTIME,
    EffectSlot,
    Interrupt,
    NodeRuntime,
    current_redact,
    current_runtime,
    enable_current_runtime,
)
from codon_sdk.runtime._handover import SubmittedRun, start_submitted
from codon_sdk.runtime._launch import (
    RunOptions,
    ledger_redact,
    load_report,
    logic_diff,
    new_run,
    node_defs,
    open_ledger,
    report_from_trust,
    resume_run,
    span_mask,
)
from codon_sdk.runtime._policy import (
    RetryPolicy,
)
from codon_sdk.runtime._queue import InMemoryTokenQueue, QueuedToken, TokenQueue
from codon_sdk.runtime._rebuild import (
    RecordedEffect,
    rebuild,
)
from codon_sdk.runtime._recorder import (
    ABSENT,
    DEFAULT_MAX_EVENT_BYTES,
    DURABILITY_MODES,
    Recorder,
)
from codon_sdk.runtime._records import (
    ENTRY_ORIGIN,
    AuditEvent,
    NodeExecutionRecord,
    StreamEvent,
    Token,
)
from codon_sdk.runtime._recover import (
    Recovered,
    display_status,
)
from codon_sdk.runtime._remote import ActivationOutcome, ActivationTicket
from codon_sdk.runtime._replay import (
    ReplayReport,
    fork_run,
    live_nodes,
    load_replayable,
    replay_run,
)
from codon_sdk.runtime._report import (
    ExecutionReport,
)
from codon_sdk.runtime._request_cache import RequestCache
from codon_sdk.runtime._setup import (
    ProcessSetup,
    align_setups,
    carried_setups,
    carry_setup,
    drop_setup,
)
from codon_sdk.runtime._state import (
    RunState,
)
from codon_sdk.runtime._trust import (
    Trust,
    check_trust,
    untrusted_warning,
)
from codon_sdk.runtime._workload import (
    CodonWorkload,
    Workload,
    WorkloadMetadata,
)

__all__ = [
    "sign_approval",
    "CachePolicy",
    "RequestCache",
    "GraphWorkload",
    "ABSENT",
    "Activation",
    "ActivationCall",
    "ActivationOutcome",
    "ActivationTicket",
    "AuditEvent",
    "CURRENT_RUNTIME",
    "CodonWorkload",
    "DEFAULT_MAX_EVENT_BYTES",
    "DURABILITY_MODES",
    "Divergence",
    "ENTRY_ORIGIN",
    "EffectSlot",
    "ExecutionReport",
    "Executor",
    "InMemoryTokenQueue",
    "InProcessExecutor",
    "Interrupt",
    "NodeExecutionRecord",
    "NodeRuntime",
    "ProcessSetup",
    "QueuedToken",
    "RecordedEffect",
    "Recovered",
    "Recorder",
    "ReplayReport",
    "RetryPolicy",
    "Run",
    "RunOptions",
    "RunState",
    "StreamEvent",
    "SubmittedRun",
    "Token",
    "TokenQueue",
    "Trust",
    "Workload",
    "WorkloadMetadata",
    "activations",
    "align_setups",
    "carried_setups",
    "carry_setup",
    "check_trust",
    "checked_resources",
    "compare",
    "current_redact",
    "current_runtime",
    "display_status",
    "drop_setup",
    "enable_current_runtime",
    "fork_run",
    "ledger_redact",
    "live_nodes",
    "load_replayable",
    "load_report",
    "logic_diff",
    "new_run",
    "node_defs",
    "now_us",
    "open_ledger",
    "outcome",
    "rebuild",
    "replay_run",
    "report_from_trust",
    "request_divergences",
    "resume_run",
    "run_coroutine",
    "span_mask",
    "start_submitted",
    "untrusted_warning",
]
