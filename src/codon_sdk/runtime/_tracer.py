"""Spans for runs and node activations, through the OpenTelemetry API only (no SDK needed).

A traced run is one ``invoke_workflow <workload name>`` span (kind INTERNAL,
``gen_ai.operation.name=invoke_workflow``) with one ``codon.node.<name>`` child
per activation. Spans carry the Codon identity attributes and their position in
the ledger (``codon.ledger.seq`` .. ``codon.ledger.seq_end``); ledger events
carry the trace and span ids back (see ``Recorder``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from codon_sdk._version import __version__
from codon_sdk.telemetry import (
    TRACER_NAME,
    continuation_links,
    instruments,
    record_error,
    record_node_duration,
    record_run_cost,
    record_run_duration,
    run_attributes,
)
from codon_sdk.telemetry import (
    CodonLedgerAttributes as L,
)
from codon_sdk.telemetry import (
    CodonNodeAttributes as NodeA,
)
from codon_sdk.telemetry import (
    CodonWorkloadAttributes as W,
)
from codon_sdk.telemetry import (
    GenAIAttributes as G,
)
from codon_sdk.telemetry import (
    GenAIOperations as Op,
)

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.runtime._engine import NodeDef, Run

__all__ = ["RunTracer"]

_TOKEN_ID = NodeA.TOKEN_ID.value
_SEQ = L.SEQ.value


_USAGE_KEYS = ("input_tokens", "output_tokens")


class _Usage:
    """LLM totals (cost, input and output tokens) of the calls recorded in this process."""

    __slots__ = ("cost_usd", "tokens")

    def __init__(self) -> None:
        self.cost_usd: float | None = None
        self.tokens: dict[str, int] = {}

    def add(self, llm: Mapping[str, Any]) -> None:
        if llm.get("cached"):  # served from the request cache: nothing spent
            return
        cost = llm.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            self.cost_usd = (self.cost_usd or 0.0) + float(cost)
        usage = llm.get("usage")
        if isinstance(usage, Mapping):
            for key in _USAGE_KEYS:
                n = usage.get(key)
                if type(n) is int:
                    self.tokens[key] = self.tokens.get(key, 0) + n

    def stamp(self, span: trace.Span, cost_attribute: str) -> None:
        """Set the totals on ``span``: ``gen_ai.usage.*`` tokens and ``cost_attribute``."""
        if self.cost_usd is not None:
            span.set_attribute(cost_attribute, self.cost_usd)
        for key, n in self.tokens.items():
            span.set_attribute(f"gen_ai.usage.{key}", n)


class RunTracer:
    """Opens a run's root span and its node spans (as the current span), and records the
    ``codon.node.duration`` and ``codon.run.cost`` metrics beside them.

    The root span starts when the run is launched (``starting``), so the run's first
    events (``run_started``, or ``run_resumed``) carry its ids; ``run_span`` then makes it
    current while the run is driven, and ends it. LLM calls recorded in the run
    (``llm_call``) are totalled on the span of the activation that made them and on the
    root span.
    """

    __slots__ = (
        "_base",
        "_lock",
        "_metric_attrs",
        "_metric_per_node",
        "_node_duration",
        "_node_usage",
        "_per_node",
        "_root",
        "_run_usage",
        "_trace",
        "_tracer",
    )

    def __init__(
        self, context: dict[str, Any], tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self._tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=tracer_provider)
        self._base = run_attributes(context)
        # low cardinality only: never run or token ids on metrics
        self._metric_attrs = {k: v for k, v in self._base.items() if k not in (W.RUN_ID.value,)}
        self._per_node: dict[str, dict[str, Any]] = {}
        self._metric_per_node: dict[str, dict[str, Any]] = {}
        self._node_duration = instruments().node_duration  # the global meter's, made once
        self._trace: tuple[int, str] = (0, "")  # the last trace id stamped, and its hex
        self._root: trace.Span | None = None  # started by ``starting``, not yet driven
        self._run_usage = _Usage()
        self._node_usage: dict[str, _Usage] = {}  # token id -> its activation's totals
        self._lock = threading.Lock()  # threaded nodes record LLM calls side by side

    def _start_root(self, run: Run) -> trace.Span:
        name = str(run.context.get("workload_name") or "workload")
        attrs = dict(self._base)
        attrs[G.OPERATION_NAME.value] = Op.INVOKE_WORKFLOW.value
        attrs[G.WORKFLOW_NAME.value] = name
        span = self._tracer.start_span(
            f"invoke_workflow {name}",
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            links=continuation_links(run.continues),
        )
        if run.continues is not None or run.resumed_by is not None:
            event: dict[str, Any] = {W.RUN_ID.value: self._base.get(W.RUN_ID.value, "")}
            if run.resumed_by is not None:
                event["codon.actor"] = run.resumed_by
            span.add_event("codon.run.resumed", event)
        return span

    @contextlib.contextmanager
    def starting(self, run: Run) -> Iterator[None]:
        """Start the run's root span and have the events recorded in this block (the
        run's ``run_started`` or ``run_resumed``) carry its ids; the span stays open for
        ``run_span``, or ends when the run closes undriven."""
        span = self._root = self._start_root(run)
        run.on_close.append(self._abandon)
        token = otel_context.attach(trace.set_span_in_context(span))
        previous = self._stamp(run, span)
        try:
            yield
        finally:
            self._unstamp(run, previous)
            otel_context.detach(token)

    def _abandon(self) -> None:
        """End a root span whose run was launched but never driven (its launch failed)."""
        span, self._root = self._root, None
        if span is not None:
            span.end()

    @contextlib.contextmanager
    def run_span(self, run: Run) -> Iterator[trace.Span]:
        span, self._root = self._root, None
        if span is None:
            span = self._start_root(run)
        # exceptions are recorded here, redacted: never OpenTelemetry's raw record
        with trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            previous = self._stamp(run, span)
            try:
                yield span
            except Exception as exc:
                record_error(span, exc, run.mask)
                raise
            finally:
                self._unstamp(run, previous)

    def llm_call(self, token_id: str, llm: Mapping[str, Any]) -> None:
        """Count one recorded LLM call (its effect's ``llm`` metadata) towards the totals of
        the activation ``token_id`` and of the run."""
        with self._lock:
            self._run_usage.add(llm)
            usage = self._node_usage.get(token_id)
            if usage is None:
                usage = self._node_usage[token_id] = _Usage()
            usage.add(llm)

    def run_totals(self, span: trace.Span) -> None:
        """The run's LLM totals on its root span: cost and input/output tokens."""
        self._run_usage.stamp(span, "codon.run.cost_usd")

    def _node_totals(self, token_id: str, span: trace.Span) -> None:
        if not self._node_usage:  # no LLM call in flight: no lock on every activation
            return
        with self._lock:
            usage = self._node_usage.pop(token_id, None)
        if usage is not None:
            usage.stamp(span, "codon.node.cost_usd")

    def paused(self, reason: str, node: str | None, mask: Any) -> None:
        """An interrupt (or a cancellation) as an event on the current span."""
        try:
            text = reason if mask is None else mask(reason)
            attrs: dict[str, Any] = {"codon.interrupt.reason": text}
            if node is not None:
                attrs[NodeA.NODESPEC_NAME.value] = node
            trace.get_current_span().add_event("codon.run.interrupted", attrs)
        except Exception:  # telemetry never breaks a run
            return

    def _node_attributes(self, node: NodeDef) -> dict[str, Any]:
        """The attributes every span of ``node`` carries in this run (computed once)."""
        spec = node.spec
        attrs = dict(self._base)
        attrs[NodeA.NODESPEC_ID.value] = spec.id
        attrs[NodeA.NODESPEC_NAME.value] = spec.name
        attrs[NodeA.NODESPEC_ROLE.value] = spec.role
        attrs[NodeA.NODESPEC_CODE_HASH.value] = spec.code_hash
        if spec.model_name:
            attrs[NodeA.MODEL_NAME.value] = spec.model_name
        if spec.model_version:
            attrs[NodeA.MODEL_VERSION.value] = spec.model_version
        self._per_node[node.name] = attrs
        self._metric_per_node[node.name] = {
            **self._metric_attrs,
            NodeA.NODESPEC_ROLE.value: spec.role,
            NodeA.NODESPEC_NAME.value: spec.name,
        }
        return attrs

    def _record_duration(self, node: str, seconds: float, error: str | None) -> None:
        """``codon.node.duration`` for one activation; a metrics failure never fails a run."""
        attrs = self._metric_per_node[node]
        if error is not None:
            attrs = {**attrs, G.ERROR_TYPE.value: error}
        try:
            self._node_duration.record(seconds, attrs)
        except Exception:
            record_node_duration(seconds, node=node, error_type=error)  # logs the failure

    def _stamp(self, run: Run, span: trace.Span) -> Any:
        """Have the run's events carry this span's ids (one activation at a time: set them
        once; with several at once the recorder reads the current span per event)."""
        if run.max_concurrency > 1:
            return None
        ctx = span.get_span_context()
        trace_id = ctx.trace_id
        if trace_id != self._trace[0]:  # one trace per run, as a rule: format it once
            self._trace = (trace_id, format(trace_id, "032x"))
        previous = run.rec.trace_ids
        run.rec.trace_ids = (self._trace[1], format(ctx.span_id, "016x"))
        return previous

    @staticmethod
    def _unstamp(run: Run, previous: Any) -> None:
        if run.max_concurrency == 1:
            run.rec.trace_ids = previous

    def run_cost(self) -> None:
        """Record the finished run's LLM cost (nothing when unknown)."""
        record_run_cost(self._run_usage.cost_usd, self._metric_attrs)

    def run_duration(self, seconds: float, status: str) -> None:
        """Record how long the run ran in this process, and how it ended (or paused)."""
        record_run_duration(seconds, status=status, attributes=self._metric_attrs)

    def node_span(self, run: Run, node: NodeDef, token_id: str, seq: int) -> _NodeSpan:
        """The span of one activation of ``node``, current while it runs (a context manager
        yielding the span): errors set its status, its duration goes to the metrics."""
        return _NodeSpan(self, run, node, token_id, seq)


class _NodeSpan:
    """``RunTracer.node_span``: a class, not a generator, as it wraps every activation.

    It does what ``start_as_current_span`` does (start, make current, record an
    exception and an ERROR status, end) without that API's two generator layers.
    """

    __slots__ = (
        "_attrs",
        "_previous",
        "_run",
        "_started",
        "_token",
        "_token_id",
        "_tracer",
        "node",
        "span",
    )

    def __init__(self, tracer: RunTracer, run: Run, node: NodeDef, token_id: str, seq: int):
        self._tracer = tracer
        self._run = run
        self._token_id = token_id
        self.node = node
        try:
            attrs = dict(tracer._per_node[node.name])
        except KeyError:
            attrs = dict(tracer._node_attributes(node))
        attrs[_TOKEN_ID] = token_id
        attrs[_SEQ] = seq
        self._attrs = attrs

    def __enter__(self) -> trace.Span:
        self._started = time.perf_counter()
        self.span = span = self._tracer._tracer.start_span(
            f"codon.node.{self.node.name}", kind=SpanKind.INTERNAL, attributes=self._attrs
        )
        self._token = otel_context.attach(trace.set_span_in_context(span))
        self._previous = self._tracer._stamp(self._run, span)
        return span

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        span, error = self.span, None
        try:
            otel_context.detach(self._token)
            if isinstance(exc, Exception):
                if getattr(exc, "wraps_node_error", False):  # the engine's wrapper: report
                    exc = getattr(exc, "error", exc)  # what the node raised, not the wrapper
                error = type(exc).__qualname__
                span.set_attribute(G.ERROR_TYPE.value, error)
                record_error(span, exc, self._run.mask)
        finally:
            try:
                self._tracer._unstamp(self._run, self._previous)
                self._tracer._node_totals(self._token_id, span)
                self._tracer._record_duration(
                    self.node.name, time.perf_counter() - self._started, error
                )
            finally:
                span.end()
