"""Launching runs: a new run from a payload, or an existing run resumed from its store."""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codon_sdk._text import printable
from codon_sdk.errors import (
    CanonicalEncodingError,
    InputRequiredError,
    LedgerError,
    LogicChangedError,
    RunConflictError,
    StoreError,
    UntrustedRunError,
    WorkloadRuntimeError,
)
from codon_sdk.identity import Redact, changed_joins, prepare, recorded_identity, revive
from codon_sdk.ledger import RUN_RESUMED, Approval, leaf_hash, parse_entry
from codon_sdk.redaction import Redactor, default_redactor
from codon_sdk.runtime._approval import ApprovalLike, check_approval, record_of
from codon_sdk.runtime._blobs import offload_for, resolved_events
from codon_sdk.runtime._cache import RunCache
from codon_sdk.runtime._dispatch import Executor, adopt_executor, start_executor
from codon_sdk.runtime._engine import NodeDef, Observer, Run, now_us
from codon_sdk.runtime._govern import RunGovernor
from codon_sdk.runtime._queue import TokenQueueLike, open_token_queue
from codon_sdk.runtime._rebuild import RebuiltRun, rebuild
from codon_sdk.runtime._recorder import DURABILITY_MODES, LockedRecorder, Recorder
from codon_sdk.runtime._report import ExecutionReport
from codon_sdk.runtime._request_cache import RequestCaching
from codon_sdk.runtime._tracer import RunTracer
from codon_sdk.runtime._trust import Trust, check_trust, readable_entries, trusted_entries
from codon_sdk.runtime._unseal import open_rebuilt
from codon_sdk.runtime._writer import RunWriter
from codon_sdk.sinks import AuditFeed, AuditSink, run_sink
from codon_sdk.stores import (
    ClaimRun,
    LedgerStore,
    RunInfo,
    blob_store_for,
    check_subject,
    is_shared,
    new_owner,
    open_store,
    shared_store,
    tag_subject,
)

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._graph import GraphWorkload

__all__ = ["RunOptions", "load_report", "new_run", "report_from_trust", "resume_run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How a run executes (none of this is part of its logic id)."""

    max_steps: int = 1000
    max_concurrency: int = 1
    max_event_bytes: int = 16 * 1024 * 1024
    durability: str = "batch"
    timeout: float | None = None
    observer: Observer | None = None
    #: The run's lease period in seconds (None: ``DEFAULT_LEASE_TTL_S``, 60): recorded in the
    #: runs row; the heartbeat renews it every third of it, and a second resumer may take the
    #: run over once this process has not renewed it for that long.
    lease_ttl: float | None = None
    #: Where committed entries also go (``codon_sdk.sinks``): a sink, a URL, or None.
    audit_sink: AuditSink | str | None = None
    #: Where activations run (None: the workload's ``executor``, else in process).
    executor: Executor | None = None
    #: The run's pending tokens (None: the workload's ``token_queue``, else in memory).
    token_queue: TokenQueueLike | None = None

    @property
    def lease_us(self) -> int | None:
        """The lease period as the runs row records it (None: the default)."""
        return None if self.lease_ttl is None else max(1, round(self.lease_ttl * 1_000_000))

    def validate(self) -> None:
        for label in ("max_steps", "max_concurrency", "max_event_bytes"):
            value = getattr(self, label)
            if type(value) is not int or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        if self.durability not in DURABILITY_MODES:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, got {self.durability!r}"
            )
        if self.timeout is not None and (
            not isinstance(self.timeout, (int, float)) or self.timeout <= 0
        ):
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        lease = self.lease_ttl
        if lease is not None and (
            type(lease) not in (int, float) or not math.isfinite(lease) or lease <= 0
        ):
            raise ValueError(
                f"lease_ttl must be a positive number of seconds (how long another process waits "
                f"for this one's heartbeat before taking the run over), got {lease!r}"
            )


def node_defs(workload: GraphWorkload) -> dict[str, NodeDef]:
    return {name: node.copy() for name, node in workload._nodes.items()}


def redaction_policy(workload: GraphWorkload) -> Redactor:
    """The run's redaction policy: the workload's, else the default one."""
    return workload.redactor if workload.redactor is not None else default_redactor()


def ledger_redact(workload: GraphWorkload) -> Redact | None:
    """The run's ledger hook: secrets masked, or sealed where the policy seals them."""
    return redaction_policy(workload).ledger_hook()


def span_mask(workload: GraphWorkload) -> Redact | None:
    """The run's hook for spans and logs: every secret masked, sealed ones included."""
    policy = redaction_policy(workload)
    return policy.redact_text if policy.enabled else None


def _tracer(workload: GraphWorkload, context: dict[str, Any]) -> RunTracer | None:
    return RunTracer(context) if workload.enable_tracing and workload.engine_spans else None


def _starting(run: Run) -> contextlib.AbstractContextManager[None]:
    """The run's root span started for the block (see ``RunTracer.starting``), if traced."""
    return contextlib.nullcontext() if run.tracer is None else run.tracer.starting(run)


def _recorder(run_id: str, options: RunOptions, writer: RunWriter | None) -> Recorder:
    cls = Recorder if options.max_concurrency == 1 else LockedRecorder
    return cls(
        run_id,
        max_event_bytes=options.max_event_bytes,
        sink=writer,
        durability=options.durability,
    )


def _audit_feed(
    workload: GraphWorkload, options: RunOptions, store: LedgerStore, run_id: str, held: int
) -> AuditFeed | None:
    """The run's door into its audit sink (the option's, else the workload's), if any."""
    sink = run_sink(options.audit_sink or getattr(workload, "audit_sink", None))
    return None if sink is None else sink.feed(store, run_id, held, new=held == 0)


def open_ledger(store: str | LedgerStore) -> tuple[LedgerStore, bool]:
    """The store to use and whether the caller must close it: a PostgreSQL URL names the
    store this process shares for it (``stores/open_ledger.shared_store``), which stays open."""
    if isinstance(store, str):
        opened = shared_store(store)
        return opened, not is_shared(opened)
    opened = open_store(store)
    return opened, opened is not store


def new_run(
    workload: GraphWorkload,
    payload: Any,
    *,
    run_id: str,
    deployment_id: str,
    entry_nodes: list[str],
    context_extras: dict[str, Any],
    options: RunOptions,
    store: str | LedgerStore | None,
    fork: dict[str, Any] | None = None,
    fresh_id: bool = False,
    subject: str | None = None,
) -> Run:
    """Record ``run_started`` and the seed tokens of a new run, ready to drive.

    ``fork`` (from ``workload.fork``) names the parent run in ``run_started``; the
    caller then records the forked state and tokens itself. A run id the caller chose is
    checked against the store before any node runs (a taken one is refused); a
    ``fresh_id`` (a random 128-bit one the SDK made) skips that round trip, and the
    store's own start of the run still refuses an id that exists.
    """
    if subject is not None and store is None:
        raise ValueError(
            "subject= records the run against a subject in its store, for erasure: pass "
            "store=... (a URL such as sqlite:///ledger.db)"
        )
    if subject is not None:
        check_subject(subject)
    executor = start_executor(workload.executor, options.executor)  # before anything is written
    queue = open_token_queue(workload.token_queue, options.token_queue, run_id, fresh=True)
    redact = ledger_redact(workload)
    mask = span_mask(workload)
    if mask is not None:  # shown in spans, the runs table and every report: masked, never sealed
        deployment_id = mask(deployment_id)  # the run's id from here on (resume reads it)
    context = workload._context(run_id, deployment_id, context_extras)
    try:
        prepared_payload = prepare(payload, redact)
        prepared_extras = prepare(context_extras, redact)
    except CanonicalEncodingError as exc:
        raise WorkloadRuntimeError(
            f"the run input cannot be recorded ({exc.type_name} at {exc.path}): {exc}"
        ) from exc
    writer: RunWriter | None = None
    closers: list[Any] = []
    if store is not None:
        ledger, opened = open_ledger(store)
        if opened:
            closers.append(ledger.close)
        # the start barrier below refuses a taken id before any node runs, in the same write
        # that starts the run: the extra look-up is only for runs that start with no barrier
        barrier = options.durability != "exit" and fork is None
        if not fresh_id and not barrier and ledger.has_run(run_id):
            for close in closers:
                close()
            raise _taken(run_id, ledger)
        info = RunInfo(
            run_id=run_id,
            workload_name=workload.name,
            workload_version=workload.version,
            logic_id=workload.logic_id,
            deployment_id=deployment_id,
            status="running",
            started_us=now_us(),
            owner=new_owner(),
            heartbeat_us=now_us(),
            parent_run_id=None if fork is None else str(fork["parent_run_id"]),
            lease_us=options.lease_us,
        )
        feed = _audit_feed(workload, options, ledger, run_id, 0)
        writer = RunWriter(ledger, info, durability=options.durability, audit=feed)
        closers.insert(0, writer.close)
    run = Run(
        nodes=node_defs(workload),
        run_id=run_id,
        context=context,
        recorder=_recorder(run_id, options, writer),
        max_steps=options.max_steps,
        max_concurrency=options.max_concurrency,
        observer=options.observer,
        tracer=_tracer(workload, context),
        timeout=options.timeout,
        redact=redact,
        mask=span_mask(workload),
    )
    run.on_close.extend(closers)
    run.queue = queue
    adopt_executor(run, executor)
    run.blobs = offload_for(workload.blob_threshold, None if writer is None else writer.store)
    if run.blobs is not None:  # the seed payload is prepared above, before the store is known
        prepared_payload = run.blobs(prepared_payload)
    run.cache = RunCache.of(run.nodes.values(), None if writer is None else writer.store)
    run.requests = RequestCaching.of(run.nodes.values(), None if writer is None else writer.store)
    RunGovernor.of(
        run, getattr(workload, "_governance", None), None if writer is None else writer.store
    )
    started = workload._run_started(
        context, entry_nodes, prepared_extras, options.max_steps, options.max_concurrency
    )
    if fork is not None:
        started["fork"] = fork
    if writer is not None and writer.store.notary is not None:
        started["checkpoints"] = writer.store.notary.announce(run_id)
    with _starting(run):  # the root span's ids go on run_started and the seed tokens
        run.record_started(started)
        for entry in entry_nodes:
            run.enqueue_seed(entry, payload, prepared_payload)
    if writer is not None and options.durability != "exit" and fork is None:
        try:
            run.rec.barrier()  # the run exists in the store before any node runs
        except StoreError as exc:  # the writer names the store's refusal as its cause
            for close in run.on_close:
                close()
            if fresh_id or not isinstance(exc.__cause__, RunConflictError):
                raise
            raise _taken(run_id, writer.store) from exc.__cause__
        except BaseException:
            for close in run.on_close:
                close()
            raise
    if writer is not None:
        run.subjects = writer.store
        if subject is not None:  # after the start barrier: a taken run id is never tagged
            tag_subject(writer.store, subject, run_id)
    return run


def _taken(run_id: str, ledger: LedgerStore) -> RunConflictError:
    return RunConflictError(
        f"run {run_id!r} already exists in {ledger.url}; continue it with "
        "workload.resume(...) or choose another run_id"
    )


def read_checked(
    ledger: LedgerStore, run_id: str, *, action: str = "resumed, replayed or forked"
) -> list[bytes]:
    """A run's entries, refused if they do not verify (see ``runtime/_trust.py``): a rewritten
    or planted history is never resumed, replayed or forked, let alone signed over."""
    return trusted_entries(ledger, run_id, action=action)


def load_report(store: str | LedgerStore, run_id: str, *, force: bool = False) -> ExecutionReport:
    """The report of a recorded run, read from its store (no workload code needed).

    The run is checked first, as every reader checks it (``runtime/_trust.py``): one that
    does not verify raises :class:`~codon_sdk.errors.UntrustedRunError`, unless
    ``force=True``; a forced report of an untrusted run is built from the entries before
    the first broken one, and ``report.verification`` says what is wrong.

    The entries are read a page at a time (:class:`~codon_sdk.stores.PagedEntries`), and
    the report reads them again page by page when asked: a store opened here from a URL
    stays open while the report lives (closed with it); a store you pass and close before
    reading the report is opened again from its URL (``stores.reopen``).
    """
    ledger, opened = open_ledger(store)
    try:
        trust = check_trust(ledger, run_id, paged=True)
        if not trust.trusted and not force:
            raise UntrustedRunError(
                f"run {run_id} does not verify, so no report is built from it: "
                + "; ".join(trust.problems)
                + " (pass force=True to read it anyway, or run `codon verify`)",
                findings=trust.problems,
            )
        report = report_from_trust(trust, ledger)
    except BaseException:
        if opened:
            ledger.close()
        raise
    if opened:  # the report reads the store page by page: it holds the store it was read from
        weakref.finalize(report, ledger.close)
    return report


def report_from_trust(trust: Trust, ledger: LedgerStore | None = None) -> ExecutionReport:
    """The report of a checked run (an untrusted one: of its entries before the first
    broken one), with ``report.verification`` set; payloads stored as blobs are read from
    ``ledger``'s blob store."""
    entries = readable_entries(trust)
    rebuilt = rebuild(resolved_events(entries, ledger))
    if ledger is not None and any(f.code == "erased" for f in trust.report.findings):
        rebuilt.status = ledger.get_run(rebuilt.run_id).status  # its run_finished may be erased
    report = _report_from(entries, rebuilt)
    report.verification = trust.report
    report.blobs = None if ledger is None else blob_store_for(ledger)
    return report


def _report_from(entries: Sequence[bytes], rebuilt: RebuiltRun) -> ExecutionReport:
    started = rebuilt.started
    context = dict(started.get("context") or {})
    workload = started.get("workload") or {}
    context.update(
        {
            "run_id": rebuilt.run_id,
            "workload_run_id": rebuilt.run_id,
            "logic_id": workload.get("logic_id"),
            "workload_logic_id": workload.get("logic_id"),
            "workload_id": workload.get("agent_class_id"),
            "workload_name": workload.get("name"),
            "workload_version": workload.get("version"),
            "deployment_id": started.get("deployment_id"),
            "organization_id": workload.get("organization_id"),
            "org_namespace": workload.get("org_namespace"),
        }
    )
    return ExecutionReport(
        run_id=rebuilt.run_id,
        context=context,
        status=rebuilt.status,
        entries=entries,
        state=rebuilt.state,
        started_us=rebuilt.started_us,
        finished_us=rebuilt.last_us or rebuilt.started_us,
        reason=rebuilt.finish_reason,
    )


def logic_diff(recorded: dict[str, Any], workload: GraphWorkload) -> dict[str, Any]:
    """What changed between a recorded run's graph and the workload's: nodes (with the
    reasons each changed, when the run recorded its identity parts), edges and joins
    (the join nodes whose sources changed). ``compatible`` is True when only nodes
    changed, each to code that declared the recorded id in ``compatible_with``."""
    _, recorded_nodes, recorded_edges = recorded_identity(recorded)  # hostile-data safe
    old_nodes = {name: node_id for name, (node_id, _) in recorded_nodes.items()}
    new_nodes = {spec.name: spec.id for spec in workload.nodes}
    old_edges = set(recorded_edges)
    new_edges = set(workload.topology)
    changed = sorted(n for n in old_nodes.keys() & new_nodes.keys() if old_nodes[n] != new_nodes[n])
    diff: dict[str, Any] = {
        "added_nodes": sorted(new_nodes.keys() - old_nodes.keys()),
        "removed_nodes": sorted(old_nodes.keys() - new_nodes.keys()),
        "changed_nodes": changed,
        "added_edges": sorted(list(e) for e in new_edges - old_edges),
        "removed_edges": sorted(list(e) for e in old_edges - new_edges),
        "reasons": {c.node: list(c.reasons) for c in workload.identity_diff(recorded).changed},
        "changed_joins": changed_joins(recorded.get("joins"), workload.joins),
    }
    graph_parts = ("added_nodes", "removed_nodes", "added_edges", "removed_edges", "changed_joins")
    diff["compatible"] = bool(changed) and (
        not any(diff[k] for k in graph_parts)
        and all(workload.accepts_node_id(n, old_nodes[n]) for n in changed)
    )
    return diff


def _changed_text(change: dict[str, Any]) -> str:
    reasons = change.get("reasons") or {}
    named = [
        f"{n} ({', '.join(reasons[n])})" if reasons.get(n) else n for n in change["changed_nodes"]
    ]
    return printable(", ".join(named)) or "none"


def resume_run(
    workload: GraphWorkload,
    run_id: str,
    *,
    store: str | LedgerStore,
    input: Any,
    actor: str | None,
    allow_logic_change: bool,
    options: RunOptions | None,
    approval: ApprovalLike | None = None,
    take_over: str | None = None,
) -> Run | ExecutionReport:
    """Rebuild a run from its store and return it ready to drive (or its report if it ended).

    ``take_over`` is the owner a submitted run was left held by (``runtime/_handover.py``):
    the run is claimed from exactly that owner, at once, or refused (``RunConflictError``)
    when anyone else took it over first."""
    ledger, opened = open_ledger(store)
    closers: list[Any] = [ledger.close] if opened else []
    try:
        entries = read_checked(ledger, run_id, action="resumed")
        rebuilt = rebuild(resolved_events(entries, ledger))
        if rebuilt.finished:
            if input is not None or approval is not None:
                raise RunConflictError(
                    f"run {printable(run_id)} has already ended ({rebuilt.status}): the input "
                    "given to resume it was not recorded and changes nothing. Start a new run, "
                    "or fork this one (workload.fork / codon fork) to decide differently"
                )
            for close in closers:
                close()
            return _report_from(entries, rebuilt)
        # sealed values opened (or the run refused) before anything is claimed or run
        masked = open_rebuilt(rebuilt, entries, redaction_policy(workload), action="resumed")
        input = resume_input(rebuilt, input)
        actor, approved = check_approval(workload, ledger, rebuilt, input, actor, approval)
        started = rebuilt.started
        recorded_logic = (started.get("workload") or {}).get("logic_id")
        change: dict[str, Any] | None = None
        if recorded_logic != workload.logic_id:
            change = {
                "from": recorded_logic,
                "to": workload.logic_id,
                **logic_diff(started, workload),
            }
            if not allow_logic_change and not change["compatible"]:
                raise LogicChangedError(
                    f"run {run_id} was recorded with logic id {str(recorded_logic)[:12]}…, this "
                    f"workload's logic id is {workload.logic_id[:12]}… (changed nodes: "
                    f"{_changed_text(change)}; added: "
                    f"{', '.join(change['added_nodes']) or 'none'}; removed: "
                    f"{', '.join(change['removed_nodes']) or 'none'}; edges added "
                    f"{change['added_edges'] or 'none'}, "
                    f"removed {change['removed_edges'] or 'none'}; joins changed: "
                    f"{', '.join(change['changed_joins']) or 'none'}). "
                    "Resume with the code that started it, check the new code against the run "
                    "with `codon runs check-upgrade`, declare reviewed changes with "
                    "add_node(..., compatible_with=[old id]), or pass allow_logic_change=True "
                    "(recorded in the ledger)"
                )
        limits = started.get("limits") or {}
        opts = options or RunOptions(
            max_steps=int(limits.get("max_steps", 1000)),
            max_concurrency=int(limits.get("max_concurrency", 1)),
        )
        opts.validate()
        executor = start_executor(workload.executor, opts.executor)
        queue = open_token_queue(workload.token_queue, opts.token_queue, run_id, fresh=False)
        owner = new_owner()
        # as read, or refused; the holder is judged by the lease it declared
        if take_over is None:
            info = ledger.claim(run_id, owner, event_count=len(entries), lease_us=opts.lease_us)
        else:  # handed over by its submitter: no lease to wait for, only this exact holder
            claim = ClaimRun(
                run_id=run_id,
                expected=take_over,
                owner=owner,
                now_us=now_us(),
                event_count=len(entries),
                lease_us=opts.lease_us,
            )
            info = ledger.execute(claim)
        writer = RunWriter(
            ledger,
            info,
            durability=opts.durability,
            begun=True,
            leaves=[leaf_hash(e) for e in entries],
            audit=_audit_feed(workload, opts, ledger, run_id, len(entries)),
        )
        closers.insert(0, writer.close)
        report_ctx = _report_from([], rebuilt).context
        context = workload._context(run_id, str(started.get("deployment_id")), {})
        context.update({k: v for k, v in report_ctx.items() if k not in context})
        context.update(dict(started.get("context") or {}))
        run = Run(
            nodes=node_defs(workload),
            run_id=run_id,
            context=context,
            recorder=_recorder(run_id, opts, writer),
            max_steps=opts.max_steps,
            max_concurrency=opts.max_concurrency,
            observer=opts.observer,
            tracer=_tracer(workload, context),
            timeout=opts.timeout,
            redact=ledger_redact(workload),
            mask=span_mask(workload),
        )
        run.on_close.extend(closers)
        run.queue = queue  # loaded from the ledger by _adopt
        adopt_executor(run, executor)
        run.blobs = offload_for(workload.blob_threshold, ledger)
        run.subjects = ledger
        run.cache = RunCache.of(run.nodes.values(), ledger)
        run.requests = RequestCaching.of(run.nodes.values(), ledger)
        run.continues = _last_span(entries)
        run.resumed_by = actor if run.mask is None or actor is None else run.mask(actor)
        _adopt(run, entries, rebuilt)
        RunGovernor.of(run, getattr(workload, "_governance", None), ledger)
        with _starting(run):  # run_resumed carries the new root span's ids
            _record_resumed(run, rebuilt, input, actor, change, masked, approved)
        return run
    except BaseException:
        for close in closers:
            close()
        raise


def _last_span(entries: list[bytes]) -> tuple[str, str] | None:
    """(trace id, span id) of the last traced entry: the span a resumed run links to."""
    for entry in reversed(entries[-200:]):
        if b'"span_id":"' in entry:
            try:
                ev = parse_entry(entry)
            except LedgerError:
                return None
            if isinstance(ev.trace_id, str) and isinstance(ev.span_id, str):
                return ev.trace_id, ev.span_id
            return None
    return None


def _adopt(run: Run, entries: list[bytes], rebuilt: RebuiltRun) -> None:
    check_queue(rebuilt, run.nodes)
    run.rec.load(entries)
    run.state.load(rebuilt.state)
    run.queue.load(rebuilt.queue)  # the ledger is the queue's source of truth
    run.token_counter = rebuilt.token_counter
    run.steps = rebuilt.steps
    run.rerun = rebuilt.rerun
    run.live_offset = rebuilt.completed
    run.effects = dict(rebuilt.effects)
    run.resume_inputs = dict(rebuilt.resume_inputs)
    run.attempts = dict(rebuilt.attempts)
    run.started_us = rebuilt.started_us


def resume_input(rebuilt: RebuiltRun, given: Any) -> Any:
    """The input a resume hands the paused node: ``given``, else (``None``: no input) the
    interrupt's declared default; a run that waits for an input with neither is refused
    before anything is written (``InputRequiredError``). To answer ``None`` on purpose,
    declare ``default=None`` on the interrupt."""
    interrupt = rebuilt.interrupt if rebuilt.status == "interrupted" else None
    waiting = interrupt is not None and interrupt.get("kind") == "interrupt"
    if given is not None:
        return given
    if not waiting:
        return None
    assert interrupt is not None
    if "default" in interrupt:
        return revive(interrupt["default"])
    raise InputRequiredError(
        f"run {printable(rebuilt.run_id)} waits for an input at node "
        f"{printable(str(interrupt.get('node')))!r} ({printable(str(interrupt.get('reason')))!r}); "
        "pass input=... (codon resume RUN_ID --workload MODULE:ATTR --input JSON), or declare "
        "one with runtime.interrupt(..., default=...). Nothing was recorded"
    )


def check_queue(rebuilt: RebuiltRun, nodes: dict[str, NodeDef]) -> None:
    """Every token the ledger left queued must be for a node of this workload: a ledger that
    names another (recorded by other code, or edited) is refused, naming it."""
    for token_id, target, *_ in rebuilt.queue:
        if target not in nodes:
            raise LedgerError(
                f"run {rebuilt.run_id} has token {printable(token_id)!r} queued for node "
                f"{printable(target)!r}, which this workload does not have (known: "
                f"{', '.join(sorted(nodes))}); resume it with the code that recorded it"
            )


def _record_resumed(
    run: Run,
    rebuilt: RebuiltRun,
    input: Any,
    actor: str | None,
    change: dict[str, Any] | None,
    masked: dict[str, Any] | None = None,
    approval: Approval | None = None,
) -> None:
    interrupt = rebuilt.interrupt if rebuilt.status == "interrupted" else None
    run.rec.flush_held()
    meta: dict[str, Any] = {"reason": "recovery", "events": run.rec.seq}
    token_id = node = None
    if interrupt is not None and interrupt.get("kind") == "interrupt" and interrupt.get("token_id"):
        token_id, node = interrupt["token_id"], interrupt.get("node")
        index = int(interrupt.get("interrupt_index", 0))
        meta.update({"reason": "interrupt", "interrupt_index": index, "input": input})
        run.resume_inputs[(token_id, index)] = input
    elif interrupt is not None:
        meta["reason"] = str(interrupt.get("reason") or "recovery")
    if change is not None:
        meta["logic_change"] = change
    if masked is not None:
        meta["masked"] = masked  # code receives values the policy dropped for good
    try:
        prepared = run.prep(meta)
    except CanonicalEncodingError as exc:
        raise WorkloadRuntimeError(
            f"resume input cannot be recorded ({exc.type_name} at {exc.path}): {exc}"
        ) from exc
    if approval is not None and isinstance(prepared, dict):  # signed: recorded as signed
        prepared["approval"] = record_of(approval, input, prepared.get("input"))
    if actor is not None and run.mask is not None:  # shown to every reader: masked, never sealed
        actor = run.mask(actor)
    run.rec.append(RUN_RESUMED, now_us(), node, token_id, metadata=prepared, actor=actor)
    run.rec.barrier(status="running")


def entry_list(entry_nodes: Iterable[str] | None) -> list[str] | None:
    if entry_nodes is None:
        return None
    return [entry_nodes] if isinstance(entry_nodes, str) else list(entry_nodes)
