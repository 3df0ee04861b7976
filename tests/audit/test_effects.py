"""Recorded effects: ``runtime.effect`` (sync and async callables), ``runtime.now``,
``runtime.random``: called once and recorded the first time, then served from the
ledger on resume and replay (a recorded error is raised again)."""

from __future__ import annotations

import asyncio
import functools
import gc
import warnings
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from codon_sdk import CodonWorkload, WorkloadRuntimeError

from ._workloads import build_pausing, build_v1, fetch_quote
from .conftest import AuditLedger


def _effects(ledger: AuditLedger, run_id: str) -> list[dict[str, Any]]:
    events = [orjson.loads(e) for e in ledger.db.entries(run_id)]
    return [e for e in events if e["type"] == "effect_recorded"]


def _workload(name: str, fn: Any) -> CodonWorkload:
    workload = CodonWorkload(name=name, version="1.0", org_namespace="audit-tests")
    workload.add_node(fn, "node", "worker")
    return workload


def test_sync_effect_calls_out_once_per_activation_and_records_the_result(
    ledger: AuditLedger,
) -> None:
    report = ledger.record("r", limit=3)
    assert ledger.service.hits == 3
    fetched = [e for e in _effects(ledger, "r") if e["metadata"]["name"] == "fetch"]
    assert [e["payload"]["step"] for e in fetched] == [0, 1, 2]
    quotes = [r["quote"] for r in report.node_results("work")]
    assert [e["payload"]["quote"] for e in fetched] == quotes
    assert all(e["metadata"]["attempt"] == 0 for e in fetched)


def test_now_and_random_are_recorded_effects(sqlite_ledger: AuditLedger) -> None:
    report = sqlite_ledger.record("r", limit=2)
    effects = _effects(sqlite_ledger, "r")
    (now,) = [e for e in effects if e["metadata"]["name"] == "now"]
    assert now["payload"] == {"$codon": "datetime", "v": report.state["started"]}
    started = datetime.fromisoformat(report.state["started"])
    assert started.tzinfo is not None
    assert started.utcoffset() == timezone.utc.utcoffset(None)
    rolls = [e["payload"] for e in effects if e["metadata"]["name"] == "random"]
    assert rolls == [r["roll"] for r in report.node_results("work")]
    assert all(0.0 <= x < 1.0 for x in rolls)


async def _afetch(url: str, step: int) -> dict[str, Any]:
    await asyncio.sleep(0)
    return await asyncio.to_thread(fetch_quote, url, step)


class _AsyncFetcher:
    async def __call__(self, url: str, step: int) -> dict[str, Any]:
        return await _afetch(url, step)


ASYNC_CALLABLES = {
    "coroutine function": _afetch,
    "partial of a coroutine function": functools.partial(_afetch),
    "object with async __call__": _AsyncFetcher(),
}


async def _async_node(message: Any, *, runtime: Any, context: Any) -> Any:
    fn = ASYNC_CALLABLES[message["kind"]]
    quote = await runtime.effect("fetch", fn, message["url"], 7)
    return quote["quote"]


def _execute_or_fail(workload: CodonWorkload, message: Any, ledger: AuditLedger) -> Any:
    """Run it; if the effect was not awaited, fail with why, leaving no stray coroutine behind
    (an un-awaited coroutine would otherwise warn, as an error, at some later test)."""
    try:
        return workload.execute(message, deployment_id="audit", store=ledger.store, run_id="a")
    except WorkloadRuntimeError as exc:
        reason = str(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gc.collect()
    pytest.fail(f"runtime.effect did not await the async callable: {reason}")


@pytest.mark.parametrize("kind", sorted(ASYNC_CALLABLES))
def test_async_effect_is_awaited_recorded_and_served_on_replay(
    sqlite_ledger: AuditLedger, kind: str
) -> None:
    workload = _workload("audit-async-effect", _async_node)
    message = {"kind": kind, "url": sqlite_ledger.service.url}
    report = _execute_or_fail(workload, message, sqlite_ledger)
    assert report.status == "completed"
    (quote,) = report.node_results("node")
    (effect,) = _effects(sqlite_ledger, "a")
    assert effect["payload"] == {"step": 7, "quote": quote}
    assert sqlite_ledger.service.hits == 1

    replayed = workload.replay("a", store=sqlite_ledger.store)
    assert replayed.identical, replayed.summary()
    assert sqlite_ledger.service.hits == 1


class _Flaky:
    """Fails the first call with a ValueError, as an upstream outage would."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        raise ValueError(f"upstream unavailable (call {self.calls})")


FLAKY = _Flaky()


def _guarded_node(message: Any, *, runtime: Any, context: Any) -> str:
    try:
        return str(runtime.effect("lookup", FLAKY))
    except ValueError as exc:
        return f"fallback after: {exc}"


def test_effect_error_is_recorded_and_raised_again_on_replay(sqlite_ledger: AuditLedger) -> None:
    workload = _workload("audit-flaky-effect", _guarded_node)
    before = FLAKY.calls
    report = workload.execute(None, deployment_id="audit", store=sqlite_ledger.store, run_id="e")
    failure = f"upstream unavailable (call {before + 1})"
    assert report.node_results("node") == [f"fallback after: {failure}"]
    (effect,) = _effects(sqlite_ledger, "e")
    assert effect["metadata"]["error"]["message"] == failure
    assert "ValueError" in effect["metadata"]["error"]["type"]

    replayed = workload.replay("e", store=sqlite_ledger.store)
    assert replayed.identical, replayed.summary()
    assert FLAKY.calls == before + 1  # the replay raised the recorded error, it did not call


def test_recorded_effects_are_served_on_resume(ledger: AuditLedger) -> None:
    """``approve`` reads the clock, then pauses; resumed, it runs again from its start and
    gets the recorded instant back instead of reading the clock a second time."""
    workload = build_pausing()
    workload.execute({"n": 1}, deployment_id="audit", store=ledger.store, run_id="p")
    (asked,) = [e for e in _effects(ledger, "p") if e["metadata"]["name"] == "now"]
    done = workload.resume("p", store=ledger.store, input="alice", actor="alice@example.com")
    assert done.status == "completed"
    (result,) = done.node_results("approve")
    assert result == {"approved_by": "alice", "asked_at": asked["payload"]["v"]}
    assert len([e for e in _effects(ledger, "p") if e["metadata"]["name"] == "now"]) == 1


def _bad_value_node(message: Any, *, runtime: Any, context: Any) -> Any:
    return runtime.effect("socket", object)


def test_effect_value_that_cannot_be_recorded_fails_the_run_with_its_name(
    sqlite_ledger: AuditLedger,
) -> None:
    workload = _workload("audit-unrecordable", _bad_value_node)
    with pytest.raises(WorkloadRuntimeError, match="socket"):
        workload.execute(None, deployment_id="audit", store=sqlite_ledger.store, run_id="u")


def _unnamed_node(message: Any, *, runtime: Any, context: Any) -> Any:
    return runtime.effect("", lambda: 1)


def test_effect_needs_a_name(sqlite_ledger: AuditLedger) -> None:
    workload = _workload("audit-unnamed", _unnamed_node)
    with pytest.raises(WorkloadRuntimeError, match="effect name"):
        workload.execute(None, deployment_id="audit", store=sqlite_ledger.store, run_id="n")


def test_effects_of_a_run_without_store_are_recorded_in_its_report(
    quote_service: Any,
) -> None:
    report = build_v1().execute(
        {"topic": "mem", "limit": 2}, deployment_id="audit", quote_url=quote_service.url
    )
    names = [
        orjson.loads(e)["metadata"]["name"] for e in report.entries if b'"effect_recorded"' in e
    ]
    assert names == ["now", "random", "fetch", "random", "fetch"]
