"""The relay between a run's writer and its audit sink: ordered, at least once, never in the
run's way, caught up from the ledger store (checked with an in-memory sink)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sinks._support import ListSink

from codon_sdk.errors import InvalidSinkURLError
from codon_sdk.sinks import AuditSink, open_sink, run_sink
from codon_sdk.stores import LedgerStore, open_store
from codon_sdk.testing import AuditSinkConformance
from codon_sdk.testing._sink_conformance import loop_workload


class TestListSinkConformance(AuditSinkConformance):
    """The conformance suite passes on the simplest sink (the cursor is the base's)."""

    def make_sink(self, tmp_path: Path) -> AuditSink:
        return ListSink()

    def received(self, sink: AuditSink, run_id: str) -> list[tuple[str, bytes]]:
        assert isinstance(sink, ListSink)
        return sink.of(run_id)


@pytest.fixture
def ledger(tmp_path: Path) -> LedgerStore:
    return open_store(f"sqlite:///{tmp_path / 'l.db'}")


def _expected(ledger: LedgerStore, run_id: str) -> list[bytes]:
    return ledger.read(run_id)


def test_a_sink_that_is_down_does_not_fail_the_run_and_catches_up(ledger: LedgerStore) -> None:
    """Deliveries raise during the run; the run completes; once the sink is back every
    entry arrives, in order (the retries may repeat some: deduplicated by key)."""
    sink = ListSink()
    sink.down = True
    report = loop_workload(40).execute(0, deployment_id="t", store=ledger, audit_sink=sink)
    assert report.node_results("loop") == list(range(40))
    assert sink.got == []
    assert sink.attempts >= 1
    sink.down = False
    assert sink.flush(30)
    assert [body for _, body in sink.of(report.run_id)] == _expected(ledger, report.run_id)
    sink.close()


def test_a_blocked_sink_holds_at_most_max_buffer_entries_then_reads_the_store(
    ledger: LedgerStore,
) -> None:
    """A sink stuck in deliver: the run of many more entries than the buffer completes
    anyway, the relay holds no more than max_buffer, and the rest comes from the store."""
    sink = ListSink(max_buffer=20)
    sink.gate.clear()  # the first delivery blocks until released
    report = loop_workload(60).execute(0, deployment_id="t", store=ledger, audit_sink=sink)
    assert report.node_results("loop") == list(range(60))
    relay = sink._relay()
    assert relay._held <= 20
    assert relay._runs[report.run_id].behind  # it fell back to the store
    sink.gate.set()
    assert sink.flush(30)
    keys = [k for k, _ in sink.of(report.run_id)]
    deduped = [b for i, (k, b) in enumerate(sink.of(report.run_id)) if k not in keys[:i]]
    assert deduped == _expected(ledger, report.run_id)
    sink.close()


def test_the_run_store_closed_after_the_run_is_reopened_from_its_url(tmp_path: Path) -> None:
    """A run given a store URL closes it when it ends; the relay reopens it to catch up."""
    url = f"sqlite:///{tmp_path / 'u.db'}"
    sink = ListSink(max_buffer=1)
    sink.down = True
    report = loop_workload(10).execute(0, deployment_id="t", store=url, audit_sink=sink)
    sink.down = False
    assert sink.flush(30)
    with open_store(url) as store:
        assert [b for _, b in sink.of(report.run_id)][-len(store.read(report.run_id)) :] == (
            store.read(report.run_id)
        )
    sink.close()


def test_the_workload_sink_is_used_when_execute_names_none(ledger: LedgerStore) -> None:
    """workload.audit_sink is set once and feeds every durable run."""
    sink = ListSink()
    wl = loop_workload(5)
    wl.audit_sink = sink
    report = wl.execute(0, deployment_id="t", store=ledger)
    assert sink.flush(10)
    assert [b for _, b in sink.of(report.run_id)] == _expected(ledger, report.run_id)
    sink.close()


def test_an_audit_sink_without_a_store_is_refused() -> None:
    """The sink is caught up from the ledger store: a memory-only run cannot have one."""
    with pytest.raises(ValueError, match="store="):
        loop_workload(2).execute(0, deployment_id="t", audit_sink=ListSink())


def test_a_misspelt_option_names_audit_sink() -> None:
    with pytest.raises(TypeError, match="audit_sink"):
        loop_workload(2).execute(0, deployment_id="t", audit_snk=ListSink())


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("kafka://broker:9092", "nats://host:port"),
        ("nats://", "nats://host:port"),
        ("nats://127.0.0.1:4222?stream=a.b", "stream name"),
        ("nats://127.0.0.1:4222?subject=x.*", "subject prefix"),
        ("nats://127.0.0.1:4222?timeout=soon", "not a number"),
        ("nats://127.0.0.1:4222?timeout=-1", "positive"),
        ("nats://127.0.0.1:4222?colour=red", "unknown"),
    ],
)
def test_bad_sink_urls_are_refused_with_what_to_do(url: str, match: str) -> None:
    with pytest.raises(InvalidSinkURLError, match=match):
        open_sink(url)


def test_a_sink_that_is_not_a_sink_is_refused() -> None:
    with pytest.raises(InvalidSinkURLError, match="AuditSink or a URL"):
        run_sink(42)  # type: ignore[arg-type]
