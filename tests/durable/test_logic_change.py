"""Resuming with code whose logic id differs from the run's: refused with an error naming
what changed, unless ``allow_logic_change=True``, which the ledger records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from codon_sdk import CodonWorkload, RetryPolicy, WorkloadRegistrationError, WorkloadRuntimeError
from codon_sdk.errors import LogicChangedError

from ._support import opened, parse, stored_entries

Node = Callable[..., Any]


def fetch(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.emit("review", f"fetched {message}")
    return "fetched"


def review(message: Any, *, runtime: Any, context: Any) -> Any:
    verdict = runtime.interrupt("review needed", payload=message)
    return f"reviewed: {verdict}"


def review_stricter(message: Any, *, runtime: Any, context: Any) -> Any:
    verdict = runtime.interrupt("review needed", payload=message)
    return f"reviewed strictly: {verdict}"


def archive(message: Any, *, runtime: Any, context: Any) -> Any:
    return "archived"


def build(
    review_fn: Node = review, *, extra_node: bool = False, **review_options: Any
) -> CodonWorkload:
    workload = CodonWorkload(name="pipeline", version="1", org_namespace="durable-tests")
    workload.add_node(fetch, "fetch", "tool")
    workload.add_node(review_fn, "review", "human", **review_options)
    workload.add_edge("fetch", "review")
    if extra_node:
        workload.add_node(archive, "archive", "tool")
        workload.add_edge("review", "archive")
    return workload


def _paused(url: str, run_id: str) -> list[bytes]:
    report = build().execute("doc-1", deployment_id="d", store=url, run_id=run_id)
    assert report.status == "interrupted"
    return stored_entries(url, run_id)


def test_resume_with_a_changed_node_is_refused_naming_it_and_writes_nothing(
    ledger_url: str,
) -> None:
    before = _paused(ledger_url, "logic-changed")
    changed = build(review_stricter)
    assert changed.logic_id != build().logic_id
    with pytest.raises(
        LogicChangedError, match=r"changed nodes: review \(code, signature\);"
    ) as caught:
        changed.resume("logic-changed", store=ledger_url, input="ok", actor="alice")
    assert isinstance(caught.value, WorkloadRuntimeError)
    message = str(caught.value)
    assert build().logic_id[:12] in message
    assert changed.logic_id[:12] in message
    assert "allow_logic_change=True" in message
    assert "fetch" not in message.split("changed nodes:")[1].split(";")[0]
    assert stored_entries(ledger_url, "logic-changed") == before
    with opened(ledger_url) as store:
        info = store.get_run("logic-changed")
    assert (info.status, info.owner) == ("interrupted", None)
    # the refusal took no lease: the original code resumes the run at once
    report = build().resume("logic-changed", store=ledger_url, input="ok")
    assert report.node_results("review") == ["reviewed: ok"]


def test_an_added_node_is_named_in_the_refusal(sqlite_url: str) -> None:
    _paused(sqlite_url, "logic-added")
    with pytest.raises(LogicChangedError, match=r"added: archive;") as caught:
        build(extra_node=True).resume("logic-added", store=sqlite_url, input="ok")
    assert "['review', 'archive']" in str(caught.value)


def test_a_removed_node_is_named_in_the_refusal(sqlite_url: str) -> None:
    report = build(extra_node=True).execute(
        "doc-1", deployment_id="d", store=sqlite_url, run_id="logic-removed"
    )
    assert report.status == "interrupted"
    with pytest.raises(LogicChangedError, match=r"removed: archive;"):
        build().resume("logic-removed", store=sqlite_url, input="ok")


def test_allow_logic_change_resumes_and_records_the_change_in_the_ledger(
    ledger_url: str,
) -> None:
    _paused(ledger_url, "logic-allowed")
    old_logic, changed = build().logic_id, build(review_stricter)
    report = changed.resume(
        "logic-allowed", store=ledger_url, input="ok", actor="alice", allow_logic_change=True
    )
    assert report.status == "completed"
    assert report.node_results("review") == ["reviewed strictly: ok"]
    events = parse(stored_entries(ledger_url, "logic-allowed"))
    (resumed,) = [e for e in events if e.type == "run_resumed"]
    change = resumed.metadata["logic_change"]
    assert (change["from"], change["to"]) == (old_logic, changed.logic_id)
    assert change["changed_nodes"] == ["review"]
    assert change["added_nodes"] == change["removed_nodes"] == []
    assert resumed.actor == "alice"


def test_retry_and_timeout_settings_are_not_logic_so_changing_them_is_no_logic_change(
    sqlite_url: str,
) -> None:
    _paused(sqlite_url, "logic-settings")
    tuned = build(retry=RetryPolicy(max_attempts=5), timeout=30.0)
    assert tuned.logic_id == build().logic_id
    report = tuned.resume("logic-settings", store=sqlite_url, input="ok")
    assert report.status == "completed"
    (resumed,) = [e for e in report.events() if e.type == "run_resumed"]
    assert "logic_change" not in resumed.metadata


def test_a_renamed_or_reversioned_workload_is_a_logic_change(sqlite_url: str) -> None:
    _paused(sqlite_url, "logic-version")
    bumped = CodonWorkload(name="pipeline", version="2", org_namespace="durable-tests")
    bumped.add_node(fetch, "fetch", "tool")
    bumped.add_node(review, "review", "human")
    bumped.add_edge("fetch", "review")
    with pytest.raises(LogicChangedError):
        bumped.resume("logic-version", store=sqlite_url, input="ok")


def test_a_node_declaring_the_recorded_id_compatible_resumes_without_allow_logic_change(
    ledger_url: str,
) -> None:
    """A reviewed, behaviour-preserving change does not strand paused runs: the new code
    names the old NodeSpec id in ``compatible_with``; the ledger still records the change."""
    _paused(ledger_url, "logic-compatible")
    old_review = build().node_spec("review").id
    changed = build(review_stricter, compatible_with=[old_review])
    report = changed.resume("logic-compatible", store=ledger_url, input="ok", actor="alice")
    assert report.status == "completed"
    assert report.node_results("review") == ["reviewed strictly: ok"]
    (resumed,) = [
        e for e in parse(stored_entries(ledger_url, "logic-compatible")) if e.type == "run_resumed"
    ]
    change = resumed.metadata["logic_change"]
    assert change["compatible"] is True
    assert change["changed_nodes"] == ["review"]
    assert change["reasons"] == {"review": ["code", "signature"]}  # its name is in the signature


def test_compatibility_covers_only_the_ids_declared_and_only_changed_nodes(
    sqlite_url: str,
) -> None:
    _paused(sqlite_url, "logic-other-id")
    unrelated = "0" * 64
    with pytest.raises(LogicChangedError, match="compatible_with"):
        build(review_stricter, compatible_with=[unrelated]).resume(
            "logic-other-id", store=sqlite_url, input="ok"
        )
    old_review = build().node_spec("review").id
    with pytest.raises(LogicChangedError, match="added: archive"):
        build(review_stricter, extra_node=True, compatible_with=[old_review]).resume(
            "logic-other-id", store=sqlite_url, input="ok"
        )


@pytest.mark.parametrize("bad", ["abc", "G" * 64, 42, ["0" * 63]])
def test_compatible_with_takes_only_nodespec_ids(bad: Any) -> None:
    with pytest.raises(WorkloadRegistrationError, match="compatible_with of node 'review'"):
        build(review_stricter, compatible_with=bad if isinstance(bad, list) else [bad])
