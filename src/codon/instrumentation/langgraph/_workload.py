"""LangGraphWorkload: the workload describing an adapted LangGraph graph.

It shares the graph base with ``CodonWorkload`` (nodes, edges, logic id, deployments,
what a run records about them) and adds the workload-level operations, which here drive
LangGraph's own scheduler instead of Codon's: ``execute`` invokes the graph, ``resume``
continues an interrupted run, ``replay`` re-runs a recorded run offline with its LLM
calls served from the ledger. Forking and Codon's token streaming are not among them:
LangGraph has its own (time travel from a checkpoint, ``graph.stream``), and both are
recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from codon.instrumentation.langgraph._compat import langgraph_version
from codon_sdk.errors import WorkloadRuntimeError
from codon_sdk.identity import Deployment
from codon_sdk.runtime import CodonWorkload, ExecutionReport, GraphWorkload, run_coroutine
from codon_sdk.stores import LedgerStore

if TYPE_CHECKING:  # pragma: no cover
    from codon.instrumentation.langgraph._binding import GraphBinding
    from codon_sdk.runtime import ReplayReport

__all__ = ["LangGraphWorkload"]


class LangGraphWorkload(GraphWorkload):
    """A workload whose nodes are a LangGraph graph's nodes.

    It is a :class:`~codon_sdk.CodonWorkload` in the documented sense (``isinstance``
    holds: it is registered as one), built on the same graph base; its runs are driven
    by LangGraph.

    Built by ``LangGraphWorkloadAdapter.from_langgraph``; reach it as
    ``wrapped_graph.workload``. Its logic id covers the node functions' code,
    the edges (every possible target of conditional edges and ``Command``
    included) and the entry nodes.
    """

    node_calling_convention = False  # LangGraph calls the nodes, with its own state
    engine_spans = False  # the binding opens the spans of LangGraph's steps (see _spans)

    def __init__(
        self,
        *,
        name: str,
        version: str,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        org_namespace: str | None = None,
        enable_tracing: bool = True,
    ) -> None:
        super().__init__(
            name=name,
            version=version,
            description=description,
            tags=tags,
            enable_tracing=enable_tracing,
            org_namespace=org_namespace,
        )
        self._entries: list[str] = []
        self._binding: GraphBinding | None = None

    # ------------------------------------------------------------------ identity

    def set_entry_nodes(self, entries: Sequence[str]) -> None:
        self._entries = list(entries)
        self._logic_id = None

    def default_entry_nodes(self) -> list[str]:
        return list(self._entries) or super().default_entry_nodes()

    def _logic_entry_nodes(self) -> list[str]:
        """The logic id covers the entry nodes: they are part of the graph LangGraph runs."""
        return self.default_entry_nodes()

    def _run_started(
        self,
        context: dict[str, Any],
        entries: list[str],
        extras: Any,
        max_steps: int,
        max_concurrency: int,
    ) -> dict[str, Any]:
        started = super()._run_started(
            context, self.default_entry_nodes(), extras, max_steps, max_concurrency
        )
        started["framework"] = {"name": "langgraph", "version": langgraph_version()}
        return started

    # ------------------------------------------------------------------ the graph

    def _bind(self, binding: GraphBinding) -> None:
        self._binding = binding

    def _bound(self) -> GraphBinding:
        if self._binding is None:
            raise WorkloadRuntimeError(
                f"workload {self.name!r} describes a LangGraph graph but is not bound to one; "
                "build it with LangGraphWorkloadAdapter.from_langgraph(...)"
            )
        return self._binding

    @property
    def graph(self) -> Any:
        """The adapted (wrapped) LangGraph graph this workload describes."""
        return self._bound().graph

    # ------------------------------------------------------------------ running

    def execute(
        self, payload: Any, *, deployment_id: str | Deployment | None = None, **kwargs: Any
    ) -> ExecutionReport:
        """Invoke the graph on ``payload`` and return the run's report.

        ``kwargs`` are passed to the graph's ``invoke`` (``config``, ``context``...);
        ``deployment_id`` overrides the adapter's for this run.
        """
        return run_coroutine(
            lambda: self.execute_async(payload, deployment_id=deployment_id, **kwargs)
        )

    async def execute_async(
        self, payload: Any, *, deployment_id: str | Deployment | None = None, **kwargs: Any
    ) -> ExecutionReport:
        """Async twin of :meth:`execute` (the graph's ``ainvoke``)."""
        binding = self._bound()
        config = _with_deployment(kwargs.pop("config", None), self, deployment_id)
        await binding.graph.ainvoke(payload, config, **kwargs)
        return binding.require_report()

    def resume(
        self,
        run_id: str,
        *,
        store: str | LedgerStore | None = None,
        input: Any = None,
        actor: str | None = None,
        allow_logic_change: bool = True,
        **options: Any,
    ) -> ExecutionReport:
        """Continue an interrupted run: invoke the graph with ``Command(resume=input)``
        on the run's thread, recording ``actor`` in the ``run_resumed`` event.

        ``store`` must be the adapter's store when given. Code that changed since the
        run started is allowed (LangGraph allows it) and recorded as a logic change
        unless ``allow_logic_change=False``, which refuses it.
        """
        return run_coroutine(
            lambda: self.aresume(
                run_id,
                store=store,
                input=input,
                actor=actor,
                allow_logic_change=allow_logic_change,
                **options,
            )
        )

    async def aresume(
        self,
        run_id: str,
        *,
        store: str | LedgerStore | None = None,
        input: Any = None,
        actor: str | None = None,
        allow_logic_change: bool = True,
        **options: Any,
    ) -> ExecutionReport:
        """Async twin of :meth:`resume`."""
        from codon.instrumentation.langgraph._binding import resume_graph_run

        return await resume_graph_run(
            self._bound(),
            run_id,
            store=store,
            input=input,
            actor=actor,
            allow_logic_change=allow_logic_change,
            config=options.pop("config", None),
        )

    def replay(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        live: Iterable[str] = (),
        force: bool = False,
    ) -> ReplayReport:
        """Re-run recorded run ``run_id`` through the LangGraph graph, offline, and compare.

        Every invocation of the run is repeated in order (the first, then each
        resume with its recorded input) on a private in-memory checkpointer; LLM
        calls are served from the ledger and a call the ledger lacks is a
        divergence, never a live call; a call asked with another request (another
        prompt) is a ``request changed`` divergence. The graph's nodes named in
        ``live`` (and the subgraphs they run) make their LLM calls for real.
        Activations are compared per LangGraph task (step, path, attempt), so
        parallel branches finishing in another order are not a divergence.
        Nothing is written to ``store``. A run that does not verify is refused unless
        ``force=True`` (see ``CodonWorkload.replay``).
        """
        return run_coroutine(lambda: self.areplay(run_id, store=store, live=live, force=force))

    async def areplay(
        self,
        run_id: str,
        *,
        store: str | LedgerStore,
        live: Iterable[str] = (),
        force: bool = False,
    ) -> ReplayReport:
        """Async twin of :meth:`replay`."""
        from codon.instrumentation.langgraph._replay import replay_graph_run

        return await replay_graph_run(self._bound(), run_id, store=store, live=live, force=force)


def _with_deployment(
    config: Any, workload: GraphWorkload, deployment_id: str | Deployment | None
) -> Any:
    if deployment_id is None:
        return config
    from codon.instrumentation.langgraph._binding import DEPLOYMENT_KEY

    resolved = workload._deployment_id(deployment_id)
    config = dict(config or {})
    config["configurable"] = {**(config.get("configurable") or {}), DEPLOYMENT_KEY: resolved}
    return config


CodonWorkload.register(LangGraphWorkload)
