"""NatsSink against the real NATS JetStream: every committed entry arrives once after
deduplication, in order per run, through a server restart and a server that is down."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.sinks.conftest import SHARED, OwnServer, _reachable

from codon_sdk.cli import main
from codon_sdk.ledger import leaf_hash
from codon_sdk.runtime import CodonWorkload
from codon_sdk.sinks import AuditEntry, AuditSink, NatsSink, check_stream, open_sink
from codon_sdk.stores import LedgerStore, open_store
from codon_sdk.testing import AuditSinkConformance
from codon_sdk.testing._sink_conformance import loop_workload


class TestNatsSinkConformance(AuditSinkConformance):
    """The conformance suite on JetStream (the cursor is read from the stream)."""

    @pytest.fixture
    def sink(self, shared_sink: NatsSink) -> NatsSink:
        return shared_sink

    def received(self, sink: AuditSink, run_id: str) -> list[tuple[str, bytes]]:
        assert isinstance(sink, NatsSink)
        return [(str(m.key), m.data) for m in sink.messages(run_id)]


@pytest.fixture
def ledger(tmp_path: Path) -> LedgerStore:
    return open_store(f"sqlite:///{tmp_path / 'l.db'}")


class CountingSink(NatsSink):
    """A NatsSink that counts its failed deliveries (to know the outage was met)."""

    failures = 0

    def deliver(self, entries: Sequence[AuditEntry]) -> None:
        try:
            super().deliver(entries)
        except Exception:
            self.failures += 1
            raise


def _switching(
    server: OwnServer, sink: CountingSink, steps: int, stop_at: int, start_at: int
) -> CodonWorkload:
    """A loop whose activation ``stop_at`` stops the server once the sink has delivered
    what came before, and ``start_at`` starts it again once a delivery has failed."""

    def switch(i: int) -> None:
        if i == stop_at:
            assert sink.flush(30)
            server.stop()
        if i == start_at:
            failed = sink.failures
            for _ in range(600):  # the relay meets the outage (bounded: 30 s)
                if sink.failures > failed:
                    break
                time.sleep(0.05)
            server.start()

    return loop_workload(steps, on_step=switch)


def test_every_entry_arrives_once_in_order_through_a_server_restart(
    own_server: OwnServer, ledger: LedgerStore
) -> None:
    """The server is stopped mid-run and started again (its data kept): the run completes,
    and the stream holds every committed entry once (the server deduplicated the
    re-deliveries by Nats-Msg-Id), in chain order, matching the ledger."""
    own_server.start()
    sink = CountingSink(own_server.url, stream="RESTART", timeout=0.5)
    try:
        for durability in ("sync", "batch"):
            wl = _switching(own_server, sink, 60, stop_at=15, start_at=40)
            report = wl.execute(
                0, deployment_id="t", store=ledger, durability=durability, audit_sink=sink
            )
            assert report.node_results("loop") == list(range(60))
            assert sink.flush(60)
            verdict = check_stream(sink, [report.run_id], store=ledger)
            assert verdict.ok, str(verdict)
            run = verdict.run(report.run_id)
            assert run.duplicates == 0
            assert run.ended
            assert run.count == ledger.get_run(report.run_id).event_count
        assert sink.failures >= 2  # the outage was met, in both runs
    finally:
        sink.close()


def test_a_sink_that_is_down_never_fails_the_run_and_catches_up(
    own_server: OwnServer, ledger: LedgerStore
) -> None:
    """No server at all while the run executes: the run completes as usual; once the
    server comes up the relay delivers the whole run from its buffer and the ledger."""
    sink = NatsSink(own_server.url, stream="DOWN", timeout=0.5)
    sink.max_buffer = 10  # most of the run comes back from the store
    try:
        report = loop_workload(30).execute(0, deployment_id="t", store=ledger, audit_sink=sink)
        assert report.node_results("loop") == list(range(30))
        own_server.start()
        assert sink.flush(60)
        verdict = check_stream(sink, [report.run_id], store=ledger)
        assert verdict.ok, str(verdict)
    finally:
        sink.close()


def test_check_stream_names_an_entry_out_of_chain_order(
    shared_sink: NatsSink, ledger: LedgerStore
) -> None:
    """Entries published out of order, a missing tail and a forged key are each caught."""
    report = loop_workload(4).execute(0, deployment_id="t", store=ledger)
    entries = ledger.read(report.run_id)

    def items(seqs: list[int], run_id: str = report.run_id) -> list[AuditEntry]:
        return [AuditEntry(run_id=run_id, seq=k, entry=entries[k], leaf=leaf_hash(entries[k]))
                for k in seqs]  # fmt: skip

    order = list(range(len(entries)))
    order[2], order[3] = order[3], order[2]
    shared_sink.deliver(items(order))
    verdict = check_stream(shared_sink, [report.run_id])
    assert not verdict.ok
    assert verdict.run(report.run_id).bad_seq == 2
    assert "chain order" in str(verdict)


def test_check_stream_catches_a_cut_tail_and_a_forged_key(
    shared_sink: NatsSink, ledger: LedgerStore
) -> None:
    report = loop_workload(4).execute(0, deployment_id="t", store=ledger)
    entries = ledger.read(report.run_id)
    shared_sink.deliver(
        [
            AuditEntry(run_id=report.run_id, seq=k, entry=e, leaf=leaf_hash(e))
            for k, e in enumerate(entries[:-2])
        ]
    )
    cut = check_stream(shared_sink, [report.run_id], store=ledger).run(report.run_id)
    assert not cut.ok
    assert "lacks seq" in str(cut.problem)
    assert check_stream(shared_sink, [report.run_id]).ok  # sound as far as it goes
    forged = AuditEntry(run_id="forged", seq=0, entry=entries[0], leaf=b"\x01" * 32)
    shared_sink.deliver([forged])
    found = check_stream(shared_sink, ["forged"]).run("forged")
    assert not found.ok
    assert "Nats-Msg-Id" in str(found.problem)
    assert "no entry" in str(check_stream(shared_sink, ["absent"]).run("absent").problem)


def test_a_run_id_that_is_no_subject_token_gets_an_encoded_subject(
    shared_sink: NatsSink, ledger: LedgerStore
) -> None:
    """A run id with dots or spaces (a valid run id, not a NATS token) is still one subject."""
    report = loop_workload(3).execute(
        0, deployment_id="t", store=ledger, run_id="team.a run*1", audit_sink=shared_sink
    )
    assert shared_sink.flush(30)
    assert shared_sink.run_subject(report.run_id).endswith("=" + b"team.a run*1".hex())
    assert check_stream(shared_sink, [report.run_id], store=ledger).ok


def test_the_sink_by_url_and_the_cli_check_and_publish(
    shared_sink: NatsSink, ledger: LedgerStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`codon audit-stream publish` catches a run up from the ledger; `check` says the
    stream is complete (exit 0), and exit 1 once the ledger holds more than the stream."""
    url = f"{SHARED}?stream={shared_sink.stream}&subject={shared_sink.subject}"
    assert isinstance(open_sink(url), NatsSink)
    ledger_url = f"sqlite:///{tmp_path / 'l.db'}"
    report = loop_workload(5).execute(0, deployment_id="t", store=ledger_url)
    ledger.close()
    assert (
        main(["audit-stream", "check", report.run_id, "--sink", url, "--ledger", ledger_url]) == 1
    )
    assert (
        main(["audit-stream", "publish", report.run_id, "--sink", url, "--ledger", ledger_url]) == 0
    )
    capsys.readouterr()
    code = main(
        ["audit-stream", "check", report.run_id, "--sink", url, "--ledger", ledger_url, "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["ok"]
    assert out["runs"][0]["count"] > 0


def test_the_cli_says_when_the_server_cannot_be_reached(
    own_server: OwnServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not _reachable(own_server.port)
    code = main(["audit-stream", "check", "--sink", f"{own_server.url}?timeout=0.3", "--no-ledger"])
    assert code == 1
    assert "nats-server -js" in capsys.readouterr().err


def _raw_publish(sink: NatsSink, subject: str, body: bytes, headers: dict[str, str]) -> None:
    async def publish() -> None:
        js = await sink._connected()
        await js.publish(subject, body, headers=headers or None, stream=sink.stream)

    sink._call(publish())


def test_hostile_stream_contents_give_verdicts_never_tracebacks(
    shared_sink: NatsSink, ledger: LedgerStore
) -> None:
    """A message without Codon headers, a garbage body and a Codon-Seq that is no count:
    the check names each, and the cursor falls back to 0 (deliver everything again)."""
    token = shared_sink.run_subject("evil")
    body = b"\xff not json"
    headers = {"Codon-Run-Id": "evil", "Codon-Seq": "9" * 20, "Nats-Msg-Id": leaf_hash(body).hex()}
    _raw_publish(shared_sink, token, body, headers)
    assert shared_sink.cursor("evil") == 0
    _raw_publish(shared_sink, shared_sink.run_subject("anon"), b"{}", {})
    verdict = check_stream(shared_sink)
    assert not verdict.ok
    assert "no Codon-Run-Id" in " ".join(verdict.problems)
    evil = verdict.run("evil")
    assert not evil.ok
    assert evil.bad_seq == 0
    assert "chain order at seq 0" in str(evil.problem)
