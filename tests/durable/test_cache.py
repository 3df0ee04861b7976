"""Caching by identity (``add_node(cache=CachePolicy(...))``) on SQLite and PostgreSQL: a
second run with the same input serves the cached node's recorded outcome, names its source,
survives resume and replay, and never serves a changed node, an expired entry, or a source
that is missing or does not verify."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from typing import Any

import pytest

from codon_sdk import CachePolicy, CodonWorkload
from codon_sdk._warn import forget_warnings
from codon_sdk.ledger import leaf_hash
from codon_sdk.stores import CacheEntry, open_store


def _events(report: Any, kind: str) -> list[Any]:
    return [e for e in report.events() if e.type == kind]


def _workload(calls: Counter[str], *, policy: CachePolicy | None = None) -> CodonWorkload:
    """``lookup`` (cached) upper-cases its input and emits it twice to ``count``."""

    def lookup(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[message] += 1
        runtime.emit("count", message.upper())
        runtime.emit("count", message.upper() + "!")
        return {"answer": message.upper()}

    def count(message, *, runtime, context):  # type: ignore[no-untyped-def]
        return len(message)

    wl = CodonWorkload(name="Cached", version="1.0")
    wl.add_node(lookup, "lookup", "worker", cache=policy or CachePolicy())
    wl.add_node(count, "count", "worker")
    wl.add_edge("lookup", "count")
    return wl


def test_a_second_run_serves_the_cached_node_and_names_its_source(ledger_url: str) -> None:
    calls: Counter[str] = Counter()
    wl = _workload(calls)
    first = wl.execute("abc", deployment_id="dev", store=ledger_url)
    second = wl.execute("abc", deployment_id="dev", store=ledger_url)
    assert calls == {"abc": 1}  # the second run ran the cached node zero times
    assert second.node_results("lookup") == [{"answer": "ABC"}]
    assert sorted(second.node_results("count")) == [3, 4]  # its emitted tokens ran on
    [hit] = _events(second, "cache_hit")
    [done] = _events(first, "node_completed")[:1]
    assert done.node == "lookup"
    assert hit.metadata["source"] == {
        "run_id": first.run_id,
        "seq": done.seq,
        "leaf": leaf_hash(done.entry).hex(),
    }
    assert second.check_chain().ok
    assert _events(first, "cache_hit") == []


def test_a_run_reuses_an_activation_it_completed_itself() -> None:
    calls: Counter[str] = Counter()

    def fan(message, *, runtime, context):  # type: ignore[no-untyped-def]
        for _ in range(3):
            runtime.emit("work", message)

    def work(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[message] += 1
        return message * 2

    wl = CodonWorkload(name="Within", version="1.0")
    wl.add_node(fan, "fan", "worker")
    wl.add_node(work, "work", "worker", cache=CachePolicy())
    wl.add_edge("fan", "work")
    report = wl.execute("x", deployment_id="dev")  # no store: the run's own ledger
    assert calls == {"x": 1}
    assert report.node_results("work") == ["xx", "xx", "xx"]
    assert len(_events(report, "cache_hit")) == 2


def test_a_hit_serves_every_token_of_an_activation_that_emitted_many(ledger_url: str) -> None:
    calls: Counter[str] = Counter()

    def spread(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[message] += 1
        for i in range(20):
            runtime.emit("sink", f"{message}{i}", audit_metadata={"i": i})
        return 20

    def sink(message, *, runtime, context):  # type: ignore[no-untyped-def]
        return message

    wl = CodonWorkload(name="Spread", version="1.0")
    wl.add_node(spread, "spread", "worker", cache=CachePolicy())
    wl.add_node(sink, "sink", "worker")
    wl.add_edge("spread", "sink")
    first = wl.execute("m", deployment_id="dev", store=ledger_url)
    second = wl.execute("m", deployment_id="dev", store=ledger_url)
    assert calls == {"m": 1}
    assert second.node_results("sink") == first.node_results("sink") == [f"m{i}" for i in range(20)]
    metas = [e.metadata for e in _events(second, "token_enqueued") if e.node == "spread"]
    assert metas == [{"i": i} for i in range(20)]


def test_a_changed_node_runs_again(ledger_url: str) -> None:
    calls: Counter[str] = Counter()
    _workload(calls).execute("abc", deployment_id="dev", store=ledger_url)

    def lookup(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls["changed " + message] += 1
        runtime.emit("count", message)
        return {"answer": message.lower()}

    def count(message, *, runtime, context):  # type: ignore[no-untyped-def]
        return len(message)

    changed = CodonWorkload(name="Cached", version="1.0")  # the same graph, new code
    changed.add_node(lookup, "lookup", "worker", cache=CachePolicy())
    changed.add_node(count, "count", "worker")
    changed.add_edge("lookup", "count")
    report = changed.execute("abc", deployment_id="dev", store=ledger_url)
    assert calls == {"abc": 1, "changed abc": 1}
    assert report.node_results("lookup") == [{"answer": "abc"}]
    assert _events(report, "cache_hit") == []


def test_another_input_runs_and_the_same_input_hits(ledger_url: str) -> None:
    calls: Counter[str] = Counter()
    wl = _workload(calls)
    for message in ("a", "b", "a", "b"):
        wl.execute(message, deployment_id="dev", store=ledger_url)
    assert calls == {"a": 1, "b": 1}


def test_an_expired_entry_is_a_miss_and_is_replaced(ledger_url: str) -> None:
    calls: Counter[str] = Counter()
    wl = _workload(calls, policy=CachePolicy(ttl=3600))
    wl.execute("abc", deployment_id="dev", store=ledger_url)
    store = open_store(ledger_url)
    try:
        [key] = _keys(store, ledger_url)
        held = store.lookup_cache(key)
        assert held is not None
        aged = CacheEntry(
            key=key,
            node_id=held.node_id,
            run_id=held.run_id,
            seq=held.seq,
            leaf=held.leaf,
            created_us=held.created_us - 2 * 3600 * 1_000_000,  # two hours old
        )
        store.put_cache(aged, replace=True)
        again = wl.execute("abc", deployment_id="dev", store=ledger_url)
        assert calls == {"abc": 2}  # expired: the node ran again
        renewed = store.lookup_cache(key)
        assert renewed is not None
        assert renewed.run_id == again.run_id
        wl.execute("abc", deployment_id="dev", store=ledger_url)
        assert calls == {"abc": 2}  # the renewed entry serves
    finally:
        store.close()


def test_the_chosen_state_keys_join_the_key(ledger_url: str) -> None:
    calls: Counter[tuple[str, str]] = Counter()

    def setup(message, *, runtime, context):  # type: ignore[no-untyped-def]
        runtime.state["lang"] = message["lang"]
        runtime.state["noise"] = message["noise"]
        runtime.emit("greet", message["name"])

    def greet(name, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[(runtime.state["lang"], name)] += 1
        return f"{runtime.state['lang']}:{name}"

    wl = CodonWorkload(name="Greeter", version="1.0")
    wl.add_node(setup, "setup", "worker")
    wl.add_node(greet, "greet", "worker", cache=CachePolicy(key=["lang"]))
    wl.add_edge("setup", "greet")
    results = [
        wl.execute(
            {"lang": lang, "name": "ada", "noise": noise}, deployment_id="dev", store=ledger_url
        ).node_results("greet")
        for lang, noise in (("en", 1), ("fr", 2), ("en", 3), ("fr", 4))
    ]
    assert results == [["en:ada"], ["fr:ada"], ["en:ada"], ["fr:ada"]]
    assert calls == {("en", "ada"): 1, ("fr", "ada"): 1}  # a key not named does not count


def test_an_activation_that_changes_state_is_not_cached(ledger_url: str) -> None:
    calls: Counter[str] = Counter()

    def note(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[message] += 1
        runtime.state["seen"] = message
        return message

    wl = CodonWorkload(name="Writer", version="1.0")
    wl.add_node(note, "note", "worker", cache=CachePolicy())
    for _ in range(2):
        report = wl.execute("m", deployment_id="dev", store=ledger_url)
        assert report.state == {"seen": "m"}
    assert calls == {"m": 2}


def test_resume_and_replay_of_a_run_with_hits(ledger_url: str) -> None:
    calls: Counter[str] = Counter()

    def lookup(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[message] += 1
        runtime.emit("approve", message.upper())
        return message.upper()

    def approve(message, *, runtime, context):  # type: ignore[no-untyped-def]
        answer = runtime.interrupt("ok?")
        return f"{message}:{answer}"

    wl = CodonWorkload(name="Approve", version="1.0")
    wl.add_node(lookup, "lookup", "worker", cache=CachePolicy())
    wl.add_node(approve, "approve", "worker")
    wl.add_edge("lookup", "approve")
    first = wl.execute("q", deployment_id="dev", store=ledger_url)
    assert first.status == "interrupted"
    second = wl.execute("q", deployment_id="dev", store=ledger_url)
    assert second.status == "interrupted"
    assert calls == {"q": 1}
    assert len(_events(second, "cache_hit")) == 1
    done = wl.resume(second.run_id, store=ledger_url, input="yes")
    assert done.status == "completed"
    assert calls == {"q": 1}
    assert done.node_results("lookup") == ["Q"]
    assert done.node_results("approve") == ["Q:yes"]
    replayed = wl.replay(second.run_id, store=ledger_url)
    assert replayed.identical, replayed.summary()
    assert calls == {"q": 1}  # replay served the hit, it did not run the node
    assert len(_events(replayed.report, "cache_hit")) == 1


def test_replay_serves_a_hit_even_when_the_node_changed(ledger_url: str) -> None:
    calls: Counter[str] = Counter()
    wl = _workload(calls)
    wl.execute("abc", deployment_id="dev", store=ledger_url)
    hit = wl.execute("abc", deployment_id="dev", store=ledger_url)

    def lookup(message, *, runtime, context):  # type: ignore[no-untyped-def]
        raise AssertionError("replay must not run a cached activation")

    def count(message, *, runtime, context):  # type: ignore[no-untyped-def]
        return len(message)

    changed = CodonWorkload(name="Cached", version="1.0")
    changed.add_node(lookup, "lookup", "worker", cache=CachePolicy())
    changed.add_node(count, "count", "worker")
    changed.add_edge("lookup", "count")
    replayed = changed.replay(hit.run_id, store=ledger_url)
    assert replayed.identical, replayed.summary()
    assert replayed.report.node_results("lookup") == [{"answer": "ABC"}]


# ---------------------------------------------------------------------------- bad input


def _keys(store: Any, url: str) -> list[str]:
    """Every cache key in the store (read with SQL: the store has no listing of them)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return [row[0] for row in conn.execute("SELECT key FROM codon_cache")]
    import psycopg

    base, _, options = url.partition("?options=-csearch_path%3D")
    with psycopg.connect(base, autocommit=True) as conn:
        rows = conn.execute(f'SELECT key FROM "{options}".codon_cache').fetchall()
    return [row[0] for row in rows]


def _tamper(url: str, run_id: str, seq: int, entry: bytes) -> None:
    """Overwrite one stored event (the append-only triggers dropped first, as an attacker would)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("DROP TRIGGER IF EXISTS codon_events_no_update")
            conn.execute(
                "UPDATE codon_events SET entry = ? WHERE run_id = ? AND seq = ?",
                (entry, run_id, seq),
            )
        return
    import psycopg

    base, _, schema = url.partition("?options=-csearch_path%3D")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}".codon_events DISABLE TRIGGER USER')
        conn.execute(
            f'UPDATE "{schema}".codon_events SET entry = %b WHERE run_id = %s AND seq = %s',
            (entry, run_id, seq),
        )


def test_a_tampered_source_is_a_miss_with_a_warning(
    ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    forget_warnings()
    calls: Counter[str] = Counter()
    wl = _workload(calls)
    first = wl.execute("abc", deployment_id="dev", store=ledger_url)
    [done] = [e for e in _events(first, "node_completed") if e.node == "lookup"]
    forged = done.entry.replace(b'"ABC"', b'"EVIL"')
    assert forged != done.entry
    _tamper(ledger_url, first.run_id, done.seq, forged)
    with caplog.at_level(logging.WARNING, logger="codon_sdk.cache"):
        second = wl.execute("abc", deployment_id="dev", store=ledger_url)
        third = wl.execute("abc", deployment_id="dev", store=ledger_url)
    assert second.node_results("lookup") == [{"answer": "ABC"}]  # never the forged value
    assert calls == {"abc": 2}  # the miss ran the node; its completion replaced the entry
    warnings = [r for r in caplog.records if r.name == "codon_sdk.cache"]
    assert len(warnings) == 1
    assert "hash does not match" in warnings[0].getMessage()
    [hit] = _events(third, "cache_hit")
    assert hit.metadata["source"]["run_id"] == second.run_id


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"run_id": "no-such-run"}, "is not in the store"),
        ({"seq": 1}, "hash does not match"),
        ({"leaf": "00" * 32}, "hash does not match"),
        ({"seq": "seven"}, "malformed"),
    ],
)
def test_a_missing_or_broken_source_is_a_miss_with_a_warning(
    ledger_url: str, caplog: pytest.LogCaptureFixture, change: dict[str, Any], reason: str
) -> None:
    forget_warnings()
    calls: Counter[str] = Counter()
    wl = _workload(calls)
    wl.execute("abc", deployment_id="dev", store=ledger_url)
    store = open_store(ledger_url)
    try:
        [key] = _keys(store, ledger_url)
        held = store.lookup_cache(key)
        assert held is not None
        fields = {
            "key": key,
            "node_id": held.node_id,
            "run_id": held.run_id,
            "seq": held.seq,
            "leaf": held.leaf,
            "created_us": held.created_us,
            **change,
        }
        if isinstance(fields["seq"], str):  # a row no SDK wrote: only SQLite can hold it
            if not ledger_url.startswith("sqlite"):
                pytest.skip("PostgreSQL's BIGINT column refuses a text seq")
            with sqlite3.connect(ledger_url.removeprefix("sqlite:///")) as conn:
                conn.execute("UPDATE codon_cache SET seq = ? WHERE key = ?", ("seven", key))
        else:
            store.put_cache(CacheEntry(**fields), replace=True)
    finally:
        store.close()
    with caplog.at_level(logging.WARNING, logger="codon_sdk.cache"):
        report = wl.execute("abc", deployment_id="dev", store=ledger_url)
    assert report.node_results("lookup") == [{"answer": "ABC"}]
    assert calls == {"abc": 2}
    assert _events(report, "cache_hit") == []
    [warning] = [r for r in caplog.records if r.name == "codon_sdk.cache"]
    assert reason in warning.getMessage()


def test_a_cache_policy_is_checked_at_registration() -> None:
    from codon_sdk.errors import WorkloadRegistrationError

    wl = CodonWorkload(name="Bad", version="1.0")
    with pytest.raises(WorkloadRegistrationError, match="ttl must be a positive"):
        CachePolicy(ttl=-1)
    with pytest.raises(WorkloadRegistrationError, match="distinct state keys"):
        CachePolicy(key=["a", "a"])
    with pytest.raises(WorkloadRegistrationError, match="must be a CachePolicy"):
        wl.add_node(lambda m, *, runtime, context: m, "n", "worker", cache=3600)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- concurrency


@pytest.mark.postgres
def test_concurrent_runs_share_the_cache_with_one_race_per_key(postgres_url: str) -> None:
    """Run A computes a key and holds; run B, started meanwhile, misses and computes it too
    (the one race: the key was being computed) and completes first, so its entry wins; every
    later run is served by B's entry, and A's completion does not replace it."""
    calls: Counter[str] = Counter()
    a_started, a_may_finish = threading.Event(), threading.Event()

    def lookup(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[message] += 1
        if runtime.run_id == "run-a":
            a_started.set()
            assert a_may_finish.wait(30)
        return message.upper()

    wl = CodonWorkload(name="Race", version="1.0")
    wl.add_node(lookup, "lookup", "worker", cache=CachePolicy())
    reports: dict[str, Any] = {}

    def run_a() -> None:
        reports["a"] = wl.execute("k", deployment_id="dev", store=postgres_url, run_id="run-a")

    thread = threading.Thread(target=run_a)
    thread.start()
    assert a_started.wait(30)
    b = wl.execute("k", deployment_id="dev", store=postgres_url, run_id="run-b")
    a_may_finish.set()
    thread.join(30)
    assert calls == {"k": 2}  # A and B raced on the key
    assert reports["a"].node_results("lookup") == b.node_results("lookup") == ["K"]
    later = [
        wl.execute("k", deployment_id="dev", store=postgres_url, run_id=f"run-{i}")
        for i in range(3)
    ]
    assert calls == {"k": 2}
    for report in later:
        [hit] = _events(report, "cache_hit")
        assert hit.metadata["source"]["run_id"] == "run-b"  # the first to complete won


@pytest.mark.postgres
def test_many_concurrent_runs_on_postgres_compute_each_key_once_it_is_done(
    postgres_url: str,
) -> None:
    """Four threads run the same ten inputs; once every run is done, a fifth pass computes
    nothing, and no input was computed more than once per thread (the races)."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def lookup(message, *, runtime, context):  # type: ignore[no-untyped-def]
        with lock:
            calls[message] += 1
        return message * 2

    wl = CodonWorkload(name="Many", version="1.0")
    wl.add_node(lookup, "lookup", "worker", cache=CachePolicy())
    inputs = [f"in{i}" for i in range(10)]

    def worker(offset: int) -> None:
        for message in inputs[offset:] + inputs[:offset]:
            wl.execute(message, deployment_id="dev", store=postgres_url)

    threads = [threading.Thread(target=worker, args=(i * 3,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(calls) == set(inputs)
    assert max(calls.values()) <= 4
    before = dict(calls)
    for message in inputs:
        report = wl.execute(message, deployment_id="dev", store=postgres_url)
        assert report.node_results("lookup") == [message * 2]
    assert dict(calls) == before


def test_a_state_write_recorded_by_another_activation_still_keeps_it_uncached(
    ledger_url: str,
) -> None:
    """With several activations at once, the cached node's state write is recorded by the
    other node's completion (it completes first); the cached node is still not cached."""
    import asyncio

    calls: Counter[str] = Counter()

    def start(message, *, runtime, context):  # type: ignore[no-untyped-def]
        runtime.emit("work", message)
        runtime.emit("other", message)

    async def work(message, *, runtime, context):  # type: ignore[no-untyped-def]
        calls[message] += 1
        runtime.state["written_by_work"] = message
        gates["work_wrote"].set()
        await gates["other_done"].wait()
        return message

    async def other(message, *, runtime, context):  # type: ignore[no-untyped-def]
        await gates["work_wrote"].wait()
        return "other"

    wl = CodonWorkload(name="ConcurrentState", version="1.0")
    wl.add_node(start, "start", "worker")
    wl.add_node(work, "work", "worker", cache=CachePolicy())
    wl.add_node(other, "other", "worker")
    wl.add_edge("start", "work")
    wl.add_edge("start", "other")

    gates: dict[str, asyncio.Event] = {}

    async def once() -> Any:
        gates.update(work_wrote=asyncio.Event(), other_done=asyncio.Event())

        def observe(kind: str, data: dict[str, Any]) -> None:
            if kind == "node_completed" and data["node"] == "other":
                gates["other_done"].set()

        return await wl.execute_async(
            "m", deployment_id="dev", store=ledger_url, max_concurrency=4, _observer=observe
        )

    for _ in range(2):
        report = asyncio.run(once())
        assert report.status == "completed"
        assert report.state == {"written_by_work": "m"}
        written = [e for e in _events(report, "state_updated") if e.token_id]
        assert [e.node for e in written] == ["other"]  # recorded by the other's completion
    assert calls == {"m": 2}


def test_a_store_that_answers_a_lookup_with_garbage_gives_a_miss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plug-in store's answer is hostile input too: not a CacheEntry is a miss, warned."""
    from codon_sdk.stores import LookupCache, MemoryStore

    class Garbled(MemoryStore):
        def execute(self, op: Any) -> Any:
            if isinstance(op, LookupCache):
                return {"run_id": "x", "seq": 3}
            return super().execute(op)

    forget_warnings()
    calls: Counter[str] = Counter()
    wl = _workload(calls)
    store = Garbled()
    with caplog.at_level(logging.WARNING, logger="codon_sdk.cache"):
        for _ in range(2):
            report = wl.execute("abc", deployment_id="dev", store=store)
            assert report.node_results("lookup") == [{"answer": "ABC"}]
    assert calls == {"abc": 2}
    [warning] = [r for r in caplog.records if r.name == "codon_sdk.cache"]
    assert "malformed" in warning.getMessage()
