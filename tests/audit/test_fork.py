"""Fork: ``workload.fork(run_id, *, store, at_seq, state_patch=None)`` starts a new run that
reuses the recorded history up to ``at_seq``, then runs live; its ``run_started`` names the
parent run and seq."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from codon_sdk.errors import CodonError, ReplayError
from codon_sdk.ledger._merkle import leaf_hash

from ._tamper import edit
from ._workloads import build_v1, build_v2
from .conftest import AuditLedger

PARENT = "parent"


def _events(ledger: AuditLedger, run_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(e) for e in ledger.db.entries(run_id)]


def _seq_of(ledger: AuditLedger, run_id: str, type_: str, step: int, name: str = "") -> int:
    """Seq of the ``type_`` event of the ``work`` activation at ``step`` (effect ``name``)."""
    token = None
    for event in _events(ledger, run_id):
        if event["type"] == "token_enqueued" and event.get("target") == "work":
            if event["payload"]["i"] == step:
                token = event["token_id"]
            continue
        ours = event["type"] == type_ and token is not None and event.get("token_id") == token
        if ours and (not name or event["metadata"].get("name") == name):
            return int(event["seq"])
    raise AssertionError(f"no {type_} {name} at step {step}")


def _fork(ledger: AuditLedger, at_seq: int, **kwargs: Any) -> Any:
    workload = kwargs.pop("workload", None) or build_v1()
    return workload.fork(PARENT, store=ledger.store, at_seq=at_seq, new_run_id="child", **kwargs)


@pytest.fixture
def parent(ledger: AuditLedger) -> AuditLedger:
    ledger.record(PARENT, limit=4)
    assert ledger.service.hits == 4
    return ledger


def test_forked_run_started_names_the_parent_run_seq_and_head(parent: AuditLedger) -> None:
    at = _seq_of(parent, PARENT, "node_completed", 1)
    report = _fork(parent, at)
    assert report.status == "completed"
    started = _events(parent, "child")[0]
    assert started["type"] == "run_started"
    fork = started["metadata"]["fork"]
    assert fork["parent_run_id"] == PARENT
    assert fork["parent_seq"] == at
    assert fork["parent_head"] == leaf_hash(parent.db.entries(PARENT)[at]).hex()
    assert parent.store.get_run("child").parent_run_id == PARENT


def test_fork_reuses_history_up_to_the_seq_then_runs_live(parent: AuditLedger) -> None:
    """Forked after step 1 completed: steps 2 and 3 run live (2 new requests), with the state
    as of the fork point."""
    at = _seq_of(parent, PARENT, "node_completed", 1)
    report = _fork(parent, at)
    assert parent.service.hits == 4 + 2
    assert [r["i"] for r in report.node_results("work")] == [2, 3]
    assert report.state["topic"] == PARENT
    assert report.state["started"] == parent.reports[PARENT].state["started"]
    assert report.node_results("finish") == [f"{PARENT}: 4 steps, last review"]


def test_fork_inside_an_activation_reuses_the_effects_it_had_recorded(
    parent: AuditLedger,
) -> None:
    """Forked right after step 2 fetched its quote: step 2 runs again with the recorded quote
    and roll (no new request for it); only step 3 calls out."""
    at = _seq_of(parent, PARENT, "effect_recorded", 2, name="fetch")
    report = _fork(parent, at)
    assert parent.service.hits == 4 + 1
    recorded_step_2 = parent.reports[PARENT].node_results("work")[2]
    assert report.node_results("work")[0] == recorded_step_2


def test_state_patch_is_applied_and_recorded(parent: AuditLedger) -> None:
    at = _seq_of(parent, PARENT, "node_completed", 1)
    report = _fork(parent, at, state_patch={"topic": "what-if"})
    assert report.node_results("finish") == ["what-if: 4 steps, last review"]
    started = _events(parent, "child")[0]
    assert started["metadata"]["fork"]["state_patch"] == {"topic": "what-if"}
    patched = [
        e
        for e in _events(parent, "child")
        if e["type"] == "state_updated" and e.get("metadata", {}).get("forked")
    ]
    assert patched
    assert "what-if" in orjson.dumps(patched[0]["payload"]).decode()


def test_fork_with_changed_code_decides_live_with_the_new_code(parent: AuditLedger) -> None:
    at = _seq_of(parent, PARENT, "node_completed", 1)
    report = _fork(parent, at, workload=build_v2())
    assert [r["decision"] for r in report.node_results("work")] == ["review", "approve"]


def test_forked_run_verifies_and_leaves_its_parent_untouched(parent: AuditLedger) -> None:
    before = parent.db.entries(PARENT)
    _fork(parent, _seq_of(parent, PARENT, "node_completed", 1))
    assert parent.db.entries(PARENT) == before
    assert parent.verify(PARENT).status == "verified"
    child = parent.verify("child")
    assert child.status == "verified", child.summary()


def test_replay_of_a_forked_run_is_identical(parent: AuditLedger) -> None:
    _fork(parent, _seq_of(parent, PARENT, "node_completed", 1))
    hits = parent.service.hits
    outcome = build_v1().replay("child", store=parent.store)
    assert outcome.identical, outcome.summary()
    assert parent.service.hits == hits


@pytest.mark.parametrize("at_seq", [-1, 38, 10_000, "5", 2.0])
def test_fork_at_a_seq_the_run_does_not_have_is_refused(
    sqlite_ledger: AuditLedger, at_seq: Any
) -> None:
    sqlite_ledger.record(PARENT, limit=4)
    with pytest.raises(ReplayError, match="at_seq"):
        _fork(sqlite_ledger, at_seq)
    assert not sqlite_ledger.store.has_run("child")


def test_fork_of_an_unknown_run_is_refused(sqlite_ledger: AuditLedger) -> None:
    with pytest.raises(CodonError, match="nope"):
        build_v1().fork("nope", store=sqlite_ledger.store, at_seq=1)


def test_fork_of_a_tampered_run_is_refused(sqlite_ledger: AuditLedger) -> None:
    sqlite_ledger.record(PARENT, limit=2)
    entries = sqlite_ledger.db.entries(PARENT)

    def forge(obj: dict[str, Any]) -> None:
        obj["ts"] += 1

    sqlite_ledger.db.set_entry(PARENT, 3, edit(entries[3], forge))
    with pytest.raises(CodonError, match="seq 3"):
        _fork(sqlite_ledger, 6)
    assert not sqlite_ledger.store.has_run("child")


def test_a_forked_activations_reused_effects_keep_their_recorded_request_and_metadata(
    parent: AuditLedger,
) -> None:
    """The effects a fork copies carry what the parent recorded with them (the request, and
    any usage metadata), so a replay of the fork compares requests as for the parent."""
    at = _seq_of(parent, PARENT, "effect_recorded", 2, name="fetch")
    _fork(parent, at)
    recorded = next(e for e in _events(parent, PARENT) if e["seq"] == at)
    copied = [
        e
        for e in _events(parent, "child")
        if e["type"] == "effect_recorded" and e["metadata"].get("forked")
    ]
    assert copied
    fetch = next(e for e in copied if e["metadata"]["name"] == "fetch")
    assert "request" in recorded["metadata"]
    assert {k: v for k, v in fetch["metadata"].items() if k != "forked"} == recorded["metadata"]
    assert fetch["payload"] == recorded["payload"]
    outcome = build_v1().replay("child", store=parent.store)
    assert outcome.identical, outcome.summary()
