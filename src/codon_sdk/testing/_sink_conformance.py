"""The audit sink conformance suite: what every ``AuditSink`` must do, as pytest tests.

Subclass :class:`AuditSinkConformance` under a name pytest collects and say how to make
a fresh sink and how to read back what it received::

    class TestMySink(AuditSinkConformance):
        def make_sink(self, tmp_path: Path) -> AuditSink:
            return MySink(...)

        def received(self, sink: AuditSink, run_id: str) -> list[tuple[str, bytes]]:
            return [(key, body) for key, body in ...]  # in arrival order

Each test runs real workloads against a SQLite ledger in ``tmp_path`` and compares what
the sink received, deduplicated by key, with the ledger, entry by entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.ledger import leaf_hash
from codon_sdk.runtime import CodonWorkload
from codon_sdk.sinks import AuditEntry, AuditSink, catch_up
from codon_sdk.stores import LedgerStore, open_store

__all__ = ["AuditSinkConformance", "loop_workload"]


def loop_workload(
    steps: int = 12,
    *,
    pause_at: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> CodonWorkload:
    """A self-loop of ``steps`` activations (pausing once at ``pause_at`` when given;
    calling ``on_step(i)`` at the start of activation ``i`` when given)."""
    wl = CodonWorkload(name="SinkLoop", version="1.0", org_namespace="codon-tests")

    def loop(message: Any, *, runtime: Any, context: Any) -> int:
        i = int(runtime.state.get("i", 0))
        if on_step is not None:
            on_step(i)
        if pause_at is not None and i == pause_at:
            runtime.interrupt("approve", default="ok")
        runtime.state["i"] = i + 1
        if i + 1 < steps:
            runtime.emit("loop", i + 1)
        return i

    wl.add_node(loop, "loop", "worker")
    wl.add_edge("loop", "loop")
    return wl


class AuditSinkConformance:
    """The conformance suite of :class:`~codon_sdk.sinks.AuditSink` implementations.

    Implement :meth:`make_sink` and :meth:`received`. The tests check that every
    committed entry arrives, in chain order per run once deduplicated by key, for new,
    concurrent and resumed runs; that the key is the entry's leaf hash; that the
    cursor says what the sink holds; and that :func:`~codon_sdk.sinks.catch_up`
    delivers from the ledger exactly what the sink lacks.
    """

    flush_timeout: float = 30.0

    def make_sink(self, tmp_path: Path) -> AuditSink:
        """A new sink that has received nothing; the suite closes it after the test."""
        raise NotImplementedError(
            f"{type(self).__qualname__} runs the audit sink conformance suite but does not "
            "say which sink: implement make_sink(self, tmp_path) to return an AuditSink"
        )

    def received(self, sink: AuditSink, run_id: str) -> list[tuple[str, bytes]]:
        """What ``sink`` received of ``run_id``, as (key, entry bytes) in arrival order."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must implement received(self, sink, run_id)"
        )

    @pytest.fixture
    def sink(self, tmp_path: Path) -> Iterator[AuditSink]:
        made = self.make_sink(tmp_path)
        assert isinstance(made, AuditSink), f"make_sink returned {type(made).__qualname__}"
        try:
            yield made
        finally:
            made.close()

    @pytest.fixture
    def ledger(self, tmp_path: Path) -> Iterator[LedgerStore]:
        store = open_store(f"sqlite:///{tmp_path / 'sink-ledger.db'}")
        try:
            yield store
        finally:
            store.close()

    # ------------------------------------------------------------------ helpers

    def assert_complete(self, sink: AuditSink, ledger: LedgerStore, run_id: str) -> None:
        """The sink holds the run's ledger entry for entry, in order, once deduplicated."""
        assert sink.flush(self.flush_timeout), "the sink did not catch up in time"
        expected = ledger.read(run_id)
        seen: set[str] = set()
        got: list[bytes] = []
        for key, body in self.received(sink, run_id):
            assert key == leaf_hash(body).hex(), "a key is not the leaf hash of its entry"
            if key not in seen:
                seen.add(key)
                got.append(body)
        assert got == expected
        assert sink.cursor(run_id) == len(expected)

    # ------------------------------------------------------------------ the checks

    def test_every_committed_entry_arrives_in_order(
        self, sink: AuditSink, ledger: LedgerStore
    ) -> None:
        """A run's entries all reach the sink, in chain order, after they commit."""
        for durability in ("sync", "batch", "exit"):
            report = loop_workload().execute(
                0, deployment_id="conf", store=ledger, durability=durability, audit_sink=sink
            )
            self.assert_complete(sink, ledger, report.run_id)

    def test_concurrent_runs_each_arrive_in_order(
        self, sink: AuditSink, ledger: LedgerStore
    ) -> None:
        """Runs sharing one sink interleave, but each run's entries stay in order."""
        import threading

        ids: list[str] = []

        def one() -> None:
            ids.append(
                loop_workload(30)
                .execute(0, deployment_id="conf", store=ledger, audit_sink=sink)
                .run_id
            )

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for run_id in ids:
            self.assert_complete(sink, ledger, run_id)

    def test_a_resumed_run_continues_where_the_sink_stopped(
        self, sink: AuditSink, ledger: LedgerStore
    ) -> None:
        """A paused run resumed with the same sink: the sink holds the whole run, once."""
        wl = loop_workload(6, pause_at=3)
        report = wl.execute(0, deployment_id="conf", store=ledger, audit_sink=sink)
        wl.resume(report.run_id, store=ledger, input="yes", audit_sink=sink)
        self.assert_complete(sink, ledger, report.run_id)

    def test_catch_up_delivers_what_the_cursor_lacks(
        self, sink: AuditSink, ledger: LedgerStore
    ) -> None:
        """A run recorded without the sink is delivered from the ledger by catch_up,
        and a second catch_up sends nothing."""
        report = loop_workload().execute(0, deployment_id="conf", store=ledger)
        count = ledger.get_run(report.run_id).event_count
        assert sink.cursor(report.run_id) == 0
        assert catch_up(ledger, sink, [report.run_id]) == {report.run_id: count}
        assert catch_up(ledger, sink, [report.run_id]) == {report.run_id: 0}
        self.assert_complete(sink, ledger, report.run_id)

    def test_a_delivery_repeated_is_deduplicated_by_key(
        self, sink: AuditSink, ledger: LedgerStore
    ) -> None:
        """At least once: the same entries delivered again carry the same keys."""
        report = loop_workload(3).execute(0, deployment_id="conf", store=ledger)
        entries = ledger.read(report.run_id)
        batch = [
            AuditEntry(run_id=report.run_id, seq=k, entry=e, leaf=leaf_hash(e))
            for k, e in enumerate(entries)
        ]
        sink.deliver(batch)
        sink.deliver(batch[2:])
        sink.acknowledged(report.run_id, len(batch))
        self.assert_complete(sink, ledger, report.run_id)
