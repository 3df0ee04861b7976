"""Retries and timeouts: per node (``add_node(retry=..., timeout=...)``) and per run
(``execute(..., timeout=...)``). Every attempt, failure and timeout is in the ledger.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, RetryPolicy, WorkloadRegistrationError, WorkloadRuntimeError
from codon_sdk.errors import NodeTimeoutError, RunTimeoutError

from ._support import opened, outcome, parse, run_child, stored_entries, types, write_module

NO_WAIT = RetryPolicy(max_attempts=3, initial_delay=0)


@contextmanager
def abandoned_nodes() -> Iterator[tuple[threading.Event, list[Any]]]:
    """An event that hung nodes wait on; on exit it is set, so the node threads a timeout
    abandoned finish, and they are joined. What those threads raise is collected in the
    list (``threading.excepthook``) instead of going to pytest."""
    event = threading.Event()
    errors: list[Any] = []
    before = set(threading.enumerate())
    hook = threading.excepthook
    threading.excepthook = errors.append
    try:
        yield event, errors
    finally:
        event.set()
        for thread in set(threading.enumerate()) - before:
            if thread.name.startswith("codon-node"):
                thread.join(10)
        threading.excepthook = hook


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so nodes left hanging in abandoned threads finish. What those threads
    do when they finish late is pinned down by
    ``test_a_sync_node_abandoned_by_its_timeout_finishes_later_without_an_error``."""
    with abandoned_nodes() as (event, _):
        yield event


def flaky_workload(failures: int, seen: list[int], **node_options: Any) -> CodonWorkload:
    """``call`` fails with ConnectionError on its first ``failures`` attempts, then answers."""

    def call(message: Any, *, runtime: Any, context: Any) -> Any:
        seen.append(runtime.attempt)
        if runtime.attempt < failures:
            raise ConnectionError(f"upstream down (attempt {runtime.attempt})")
        return f"answer after {runtime.attempt} retries"

    workload = CodonWorkload(name="flaky", version="1", org_namespace="durable-tests")
    workload.add_node(call, "call", "tool", **node_options)
    return workload


def _retrying(events: list[Any]) -> list[dict[str, Any]]:
    return [e.metadata for e in events if e.type == "node_retrying"]


# --------------------------------------------------------------------------- retries


def test_each_failed_attempt_is_a_node_retrying_event_and_the_last_attempt_completes(
    ledger_url: str,
) -> None:
    seen: list[int] = []
    report = flaky_workload(2, seen, retry=NO_WAIT).execute(
        None, deployment_id="d", store=ledger_url, run_id="retry-ok"
    )
    assert report.status == "completed"
    assert seen == [0, 1, 2]
    assert report.node_results("call") == ["answer after 2 retries"]
    events = parse(stored_entries(ledger_url, "retry-ok"))
    assert types(events) == [
        "run_started",
        "token_enqueued",
        "token_dequeued",
        "node_retrying",
        "node_retrying",
        "node_completed",
        "run_finished",
    ]
    retries = _retrying(events)
    assert [(r["attempt"], r["next_attempt"]) for r in retries] == [(0, 1), (1, 2)]
    assert [r["error_type"] for r in retries] == ["ConnectionError", "ConnectionError"]
    assert retries[1]["exception"] == "ConnectionError: upstream down (attempt 1)"
    assert [r["timeout"] for r in retries] == [False, False]
    assert {e.token_id for e in events if e.type.startswith("node_")} == {"t1"}


def test_an_int_retry_means_that_many_attempts_in_all(sqlite_url: str) -> None:
    seen: list[int] = []
    report = flaky_workload(2, seen, retry=3).execute(
        None, deployment_id="d", store=sqlite_url, run_id="retry-int"
    )
    assert report.status == "completed"
    assert seen == [0, 1, 2]
    assert len(_retrying(list(report.events()))) == 2
    seen.clear()
    with pytest.raises(WorkloadRuntimeError):
        flaky_workload(1, seen, retry=1).execute(
            None, deployment_id="d", store=sqlite_url, run_id="retry-one"
        )
    assert seen == [0]


def test_when_attempts_run_out_the_run_fails_with_every_attempt_and_the_failure_recorded(
    ledger_url: str,
) -> None:
    seen: list[int] = []
    with pytest.raises(WorkloadRuntimeError, match="upstream down") as caught:
        flaky_workload(99, seen, retry=NO_WAIT).execute(
            None, deployment_id="d", store=ledger_url, run_id="retry-out"
        )
    assert seen == [0, 1, 2]
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert str(caught.value.__cause__) == "upstream down (attempt 2)"
    events = parse(stored_entries(ledger_url, "retry-out"))
    assert types(events)[-4:] == ["node_retrying", "node_retrying", "node_failed", "run_finished"]
    failed = events[-2].metadata
    assert failed["attempt"] == 2
    assert failed["error_type"] == "ConnectionError"
    assert events[-1].metadata["status"] == "failed"
    with opened(ledger_url) as store:
        assert store.get_run("retry-out").status == "failed"


def test_only_exceptions_listed_in_retry_on_are_retried(sqlite_url: str) -> None:
    calls: list[int] = []

    def strict(message: Any, *, runtime: Any, context: Any) -> Any:
        calls.append(runtime.attempt)
        raise ValueError("bad input, retrying will not help")

    workload = CodonWorkload(name="strict", version="1", org_namespace="durable-tests")
    policy = RetryPolicy(max_attempts=5, initial_delay=0, retry_on=(ConnectionError,))
    workload.add_node(strict, "strict", "tool", retry=policy)
    with pytest.raises(WorkloadRuntimeError) as caught:
        workload.execute(None, deployment_id="d", store=sqlite_url, run_id="retry-on")
    assert calls == [0]
    assert isinstance(caught.value.__cause__, ValueError)
    assert "node_retrying" not in types(parse(stored_entries(sqlite_url, "retry-on")))


def test_the_backoff_delay_is_waited_before_each_retry_and_recorded(sqlite_url: str) -> None:
    stamps: list[float] = []

    def slow_flaky(message: Any, *, runtime: Any, context: Any) -> Any:
        stamps.append(time.monotonic())
        if runtime.attempt < 2:
            raise TimeoutError("busy")
        return "ok"

    workload = CodonWorkload(name="backoff", version="1", org_namespace="durable-tests")
    policy = RetryPolicy(max_attempts=3, initial_delay=0.05, backoff=3.0)
    workload.add_node(slow_flaky, "slow", "tool", retry=policy)
    report = workload.execute(None, deployment_id="d", store=sqlite_url, run_id="retry-backoff")
    assert report.status == "completed"
    assert [r["delay_s"] for r in _retrying(list(report.events()))] == pytest.approx([0.05, 0.15])
    assert stamps[1] - stamps[0] >= 0.05
    assert stamps[2] - stamps[1] >= 0.15


def test_a_failed_attempts_emissions_are_dropped(sqlite_url: str) -> None:
    def emitter(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.emit("sink", f"from attempt {runtime.attempt}")
        if runtime.attempt == 0:
            raise ConnectionError("flaky")
        return "done"

    def sink(message: Any, *, runtime: Any, context: Any) -> Any:
        return message

    workload = CodonWorkload(name="emit-retry", version="1", org_namespace="durable-tests")
    workload.add_node(emitter, "emitter", "r", retry=NO_WAIT)
    workload.add_node(sink, "sink", "r")
    workload.add_edge("emitter", "sink")
    report = workload.execute(None, deployment_id="d", store=sqlite_url, run_id="retry-emit")
    assert report.node_results("sink") == ["from attempt 1"]
    enqueued = [e for e in report.events() if e.type == "token_enqueued" and e.node == "emitter"]
    assert len(enqueued) == 1


def test_a_failed_attempts_state_writes_are_discarded_like_its_emissions(sqlite_url: str) -> None:
    """Each attempt starts afresh: a counter bumped by a failed attempt is not counted twice,
    in the live report and in the state rebuilt from the ledger (as after a crash, where the
    unfinished attempt's writes are never recorded)."""

    def counter(message: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["charged"] = runtime.state.get("charged", 0) + 1
        runtime.state.setdefault("log", []).append(runtime.attempt)
        if runtime.attempt == 0:
            raise ConnectionError("flaky")
        return "done"

    workload = CodonWorkload(name="state-retry", version="1", org_namespace="durable-tests")
    workload.add_node(counter, "counter", "r", retry=NO_WAIT)
    report = workload.execute(None, deployment_id="d", store=sqlite_url, run_id="retry-state")
    rebuilt = workload.resume("retry-state", store=sqlite_url)
    assert report.state == {"charged": 1, "log": [1]}
    assert rebuilt.state == {"charged": 1, "log": [1]}


def test_retry_and_timeout_settings_are_validated_when_the_node_is_added() -> None:
    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        return message

    workload = CodonWorkload(name="settings", version="1", org_namespace="durable-tests")
    for bad in (0, -1, True, "3", 2.5):
        with pytest.raises(WorkloadRegistrationError, match="retry"):
            workload.add_node(node, f"n{len(workload.nodes)}", "r", retry=bad)
    for bad in (0, -0.5, True, "1"):
        with pytest.raises(WorkloadRegistrationError, match="timeout"):
            workload.add_node(node, f"n{len(workload.nodes)}", "r", timeout=bad)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="retry_on"):
        RetryPolicy(retry_on=())
    workload.add_node(node, "ok", "r")
    for bad in (0, -1, "10"):
        with pytest.raises(ValueError, match="timeout"):
            workload.execute(None, deployment_id="d", timeout=bad)


# --------------------------------------------------------------------------- node timeouts


def test_a_node_timeout_ends_a_hung_sync_node(ledger_url: str, release: threading.Event) -> None:
    def hung(message: Any, *, runtime: Any, context: Any) -> Any:
        release.wait(60)
        return "too late"

    workload = CodonWorkload(name="hung", version="1", org_namespace="durable-tests")
    workload.add_node(hung, "hung", "tool", timeout=0.3)
    start = time.monotonic()
    with pytest.raises(NodeTimeoutError, match=r"'hung'.*timeout of 0\.3s") as caught:
        workload.execute(None, deployment_id="d", store=ledger_url, run_id="timeout-sync")
    assert 0.3 <= time.monotonic() - start < 5
    assert isinstance(caught.value, WorkloadRuntimeError)
    events = parse(stored_entries(ledger_url, "timeout-sync"))
    assert types(events)[-2:] == ["node_failed", "run_finished"]
    assert events[-2].metadata["timeout"] is True
    assert events[-2].metadata["error_type"] == "NodeTimeoutError"
    assert events[-1].metadata["status"] == "failed"
    with opened(ledger_url) as store:
        assert store.get_run("timeout-sync").status == "failed"


def test_a_sync_node_abandoned_by_its_timeout_finishes_later_without_an_error(
    sqlite_url: str,
) -> None:
    """The timeout gives up on the node's thread; when the node returns later, its result is
    dropped quietly, not raised as an unhandled exception in that thread."""

    def slow(message: Any, *, runtime: Any, context: Any) -> Any:
        release.wait(60)
        return "late"

    workload = CodonWorkload(name="late", version="1", org_namespace="durable-tests")
    workload.add_node(slow, "slow", "tool", timeout=0.2)
    with abandoned_nodes() as (release, errors), pytest.raises(NodeTimeoutError):
        workload.execute(None, deployment_id="d", store=sqlite_url, run_id="timeout-late")
    assert [f"{e.exc_type.__name__}: {e.exc_value}" for e in errors] == []


def test_a_node_timeout_cancels_a_hung_async_node(sqlite_url: str) -> None:
    cancelled = threading.Event()

    async def hung(message: Any, *, runtime: Any, context: Any) -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "too late"

    workload = CodonWorkload(name="ahung", version="1", org_namespace="durable-tests")
    workload.add_node(hung, "hung", "tool", timeout=0.2)
    start = time.monotonic()
    with pytest.raises(NodeTimeoutError):
        workload.execute(None, deployment_id="d", store=sqlite_url, run_id="timeout-async")
    assert time.monotonic() - start < 5
    assert cancelled.is_set()
    events = parse(stored_entries(sqlite_url, "timeout-async"))
    assert events[-2].type == "node_failed"
    assert events[-2].metadata["timeout"] is True


def test_a_timed_out_attempt_is_retried_and_the_timeout_recorded(
    sqlite_url: str, release: threading.Event
) -> None:
    def first_hangs(message: Any, *, runtime: Any, context: Any) -> Any:
        if runtime.attempt == 0:
            release.wait(60)
        return f"attempt {runtime.attempt}"

    workload = CodonWorkload(name="hang-once", version="1", org_namespace="durable-tests")
    workload.add_node(
        first_hangs, "call", "tool", timeout=0.2, retry=RetryPolicy(max_attempts=2, initial_delay=0)
    )
    report = workload.execute(None, deployment_id="d", store=sqlite_url, run_id="timeout-retry")
    assert report.node_results("call") == ["attempt 1"]
    (retry,) = _retrying(parse(stored_entries(sqlite_url, "timeout-retry")))
    assert retry["timeout"] is True
    assert retry["error_type"] == "NodeTimeoutError"


# --------------------------------------------------------------------------- run timeouts


def test_the_run_timeout_ends_a_run_whose_node_hangs(
    ledger_url: str, release: threading.Event
) -> None:
    def hung(message: Any, *, runtime: Any, context: Any) -> Any:
        release.wait(60)

    workload = CodonWorkload(name="run-hung", version="1", org_namespace="durable-tests")
    workload.add_node(hung, "hung", "tool")
    start = time.monotonic()
    with pytest.raises(RunTimeoutError, match=r"timeout of 0\.4s") as caught:
        workload.execute(
            None, deployment_id="d", store=ledger_url, run_id="run-timeout", timeout=0.4
        )
    assert 0.4 <= time.monotonic() - start < 5
    assert caught.value.report is not None
    assert caught.value.report.status == "failed"
    events = parse(stored_entries(ledger_url, "run-timeout"))
    assert types(events)[-2:] == ["node_failed", "run_finished"]
    assert events[-2].metadata["error_type"] == "RunTimeoutError"
    assert "timeout" in events[-1].metadata["reason"]
    with opened(ledger_url) as store:
        assert store.get_run("run-timeout").status == "failed"


def test_the_run_timeout_ends_a_long_loop_of_short_activations(sqlite_url: str) -> None:
    def tick(i: Any, *, runtime: Any, context: Any) -> Any:
        time.sleep(0.02)
        runtime.emit("tick", i + 1)
        return i

    workload = CodonWorkload(name="ticker", version="1", org_namespace="durable-tests")
    workload.add_node(tick, "tick", "r")
    workload.add_edge("tick", "tick")
    with abandoned_nodes(), pytest.raises(RunTimeoutError) as caught:
        workload.execute(0, deployment_id="d", store=sqlite_url, run_id="loop-timeout", timeout=0.3)
    report = caught.value.report
    assert report is not None
    assert 5 <= len(report.node_results("tick")) < 100
    assert stored_entries(sqlite_url, "loop-timeout") == list(report.entries)
    assert report.ledger[-1].metadata["status"] == "failed"


# --------------------------------------------------------------------------- across a crash

RETRY_CRASH = """
import os
import signal

from codon_sdk import CodonWorkload
from codon_sdk import RetryPolicy


def call(message, *, runtime, context):
    if runtime.attempt == 0:
        raise ConnectionError("first attempt fails")
    if os.environ.get("CRASH_AT") == "retry":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"attempt": runtime.attempt}


workload = CodonWorkload(name="retry-crash", version="1", org_namespace="durable-tests")
workload.add_node(call, "call", "tool", retry=RetryPolicy(max_attempts=3, initial_delay=0))
"""


def test_a_crash_during_a_retry_does_not_reset_the_attempt_count(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The resumed attempt is numbered after the recorded ones: the budget spans the crash."""
    path = write_module(tmp_path / "mods", "retry_crash", RETRY_CRASH)
    crashed = run_child(
        path,
        "execute",
        env={"CRASH_AT": "retry"},
        kwargs={"store": sqlite_url, "run_id": "retry-crash", "durability": "sync"},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    resumed = outcome(run_child(path, "resume", run_id="retry-crash", kwargs={"store": sqlite_url}))
    assert resumed.get("status") == "completed", resumed
    assert resumed["results"] == {"call": [{"attempt": 1}]}
    assert len(_retrying(parse(stored_entries(sqlite_url, "retry-crash")))) == 1
