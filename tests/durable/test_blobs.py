"""Large payloads outside the chain: blobs beside the ledger, digests in the entries.

Real SQLite files and blob directories; the CLI runs in a new process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, WorkloadRuntimeError
from codon_sdk.errors import BlobStoreError, ConfigurationError, PayloadTooLargeError
from codon_sdk.runtime import load_report
from codon_sdk.stores import BLOB_NEEDLE, LedgerStore, MemoryStore, Op, open_store, verify_run

BIG = 50 * 1024 * 1024  # the acceptance payload: 50 MB
THRESHOLD = 64 * 1024


def _workload() -> CodonWorkload:
    wl = CodonWorkload(name="Big", version="1.0")

    def make(n: int, *, runtime: Any, context: Any) -> str:
        runtime.emit("use", "x" * n)
        return "made"

    def use(text: str, *, runtime: Any, context: Any) -> int:
        runtime.state["big"] = text
        return len(text)

    wl.add_node(make, "make", "worker")
    wl.add_node(use, "use", "worker")
    wl.add_edge("make", "use")
    wl.store_blobs_over(THRESHOLD)
    return wl


def _db(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _blob_files(url: str) -> list[Path]:
    root = Path(str(_db(url)) + ".blobs")
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _entries(url: str, run_id: str) -> list[bytes]:
    with open_store(url) as store:
        return store.read(run_id)


def _codon(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        timeout=120,
        env={**os.environ},
        check=False,
    )


def test_a_50mb_payload_is_stored_once_outside_the_sqlite_file_and_read_back(
    sqlite_url: str,
) -> None:
    report = _workload().execute(BIG, deployment_id="dev", store=sqlite_url)
    assert report.node_results("use") == [BIG]
    files = _blob_files(sqlite_url)
    # the token payload and the state value are the same bytes: one blob, stored once
    assert len(files) == 1
    text = b'"' + b"x" * BIG + b'"'
    assert files[0].read_bytes() == text
    assert files[0].name == hashlib.sha256(text).hexdigest()
    assert os.path.getsize(_db(sqlite_url)) < 2 * 1024 * 1024  # the payload is not in it
    entries = _entries(sqlite_url, report.run_id)
    assert sum(BLOB_NEEDLE in e for e in entries) == 2  # token_enqueued and state_updated
    assert max(len(e) for e in entries) < 4096

    loaded = load_report(sqlite_url, report.run_id)
    assert loaded.node_results("use") == [BIG]
    assert loaded.state["big"] == "x" * BIG
    verdict = verify_run(sqlite_url, report.run_id)
    assert verdict.ok, verdict.findings
    assert any("blobs" in c for c in verdict.checked)


def test_small_payloads_stay_inline(sqlite_url: str) -> None:
    report = _workload().execute(1000, deployment_id="dev", store=sqlite_url)
    assert report.status == "completed"
    assert _blob_files(sqlite_url) == []
    assert not any(BLOB_NEEDLE in e for e in _entries(sqlite_url, report.run_id))


def test_verify_reports_a_deleted_blob_and_readers_name_it(sqlite_url: str) -> None:
    report = _workload().execute(THRESHOLD * 2, deployment_id="dev", store=sqlite_url)
    (blob,) = _blob_files(sqlite_url)
    blob.unlink()
    verdict = verify_run(sqlite_url, report.run_id)
    assert verdict.status == "tampered"
    missing = [f for f in verdict.findings if f.code == "blob_missing"]
    assert [f.seq for f in missing] == [3, 6]
    assert blob.name in missing[0].message
    with pytest.raises(BlobStoreError, match=f"blob {blob.name}.*missing"):
        load_report(sqlite_url, report.run_id).node_results("use")

    done = _codon("verify", report.run_id, "--ledger", sqlite_url)
    assert done.returncode == 1
    assert b"Traceback" not in done.stderr + done.stdout
    assert blob.name.encode() in done.stdout + done.stderr


def test_verify_reports_altered_blob_bytes(sqlite_url: str) -> None:
    report = _workload().execute(THRESHOLD * 2, deployment_id="dev", store=sqlite_url)
    (blob,) = _blob_files(sqlite_url)
    data = bytearray(blob.read_bytes())
    data[10] = ord("y")  # same size, other bytes
    blob.write_bytes(bytes(data))
    verdict = verify_run(sqlite_url, report.run_id)
    assert verdict.status == "tampered"
    assert {f.code for f in verdict.findings} == {"blob_altered"}
    assert "does not match its digest" in verdict.findings[0].message
    with pytest.raises(BlobStoreError, match="does not match its digest"):
        load_report(sqlite_url, report.run_id).node_results("use")


def test_an_unwritable_blob_store_fails_the_write_and_records_no_digest(sqlite_url: str) -> None:
    db = _db(sqlite_url)
    db.parent.mkdir(parents=True, exist_ok=True)
    Path(str(db) + ".blobs").write_text("not a directory")  # the blob directory cannot be made
    with pytest.raises(WorkloadRuntimeError) as info:
        _workload().execute(THRESHOLD * 2, deployment_id="dev", store=sqlite_url)
    assert "cannot write blob" in str(info.value)
    run_id = info.value.report.run_id if info.value.report is not None else None
    assert run_id is not None
    entries = _entries(sqlite_url, run_id)
    assert entries  # the failure itself is recorded
    assert not any(BLOB_NEEDLE in e for e in entries)  # never a digest without its bytes


def test_resume_gives_nodes_the_blob_values_back(sqlite_url: str) -> None:
    wl = CodonWorkload(name="BigPause", version="1.0")

    def ask(n: int, *, runtime: Any, context: Any) -> int:
        runtime.state["big"] = "z" * n
        answer = runtime.interrupt("go on?", payload="z" * n)
        return len(runtime.state["big"]) + len(answer)

    wl.add_node(ask, "ask", "worker")
    wl.store_blobs_over(THRESHOLD)
    paused = wl.execute(THRESHOLD * 3, deployment_id="dev", store=sqlite_url)
    assert paused.status == "interrupted"
    assert _blob_files(sqlite_url)
    done = wl.resume(paused.run_id, store=sqlite_url, input="y" * (THRESHOLD * 2))
    assert done.status == "completed"
    assert done.node_results("ask") == [THRESHOLD * 5]
    assert len(_blob_files(sqlite_url)) == 2  # the resume input went to a blob too
    assert verify_run(sqlite_url, paused.run_id).ok


def test_export_omits_blobs_by_default_and_includes_them_when_asked(sqlite_url: str) -> None:
    report = _workload().execute(THRESHOLD * 2, deployment_id="dev", store=sqlite_url)
    (blob,) = _blob_files(sqlite_url)
    omitted = _codon("export", report.run_id, "--ledger", sqlite_url)
    assert omitted.returncode == 0, omitted.stderr
    lines = omitted.stdout.splitlines()
    assert lines == _entries(sqlite_url, report.run_id)
    included = _codon("export", report.run_id, "--ledger", sqlite_url, "--blobs", "include")
    assert included.returncode == 0, included.stderr
    extra = included.stdout.splitlines()[len(lines) :]
    assert len(extra) == 1
    line = json.loads(extra[0])["codon_blob"]
    assert line["sha256"] == blob.name
    assert base64.b64decode(line["data"]) == blob.read_bytes()

    blob.unlink()
    failed = _codon("export", report.run_id, "--ledger", sqlite_url, "--blobs", "include")
    assert failed.returncode == 1
    assert failed.stderr.startswith(b"codon: blob "), failed.stderr
    assert b"Traceback" not in failed.stderr


def test_memory_store_keeps_its_blobs_with_it() -> None:
    store = MemoryStore()
    report = _workload().execute(THRESHOLD * 2, deployment_id="dev", store=store)
    assert any(BLOB_NEEDLE in e for e in store.read(report.run_id))
    assert load_report(store, report.run_id).node_results("use") == [THRESHOLD * 2]
    assert verify_run(store, report.run_id).ok


def test_the_entry_size_limit_stays_for_what_must_be_inline(sqlite_url: str) -> None:
    wl = CodonWorkload(name="Wide", version="1.0")

    def wide(n: int, *, runtime: Any, context: Any) -> dict[str, str]:
        return {f"k{i}": "v" * 300 for i in range(n)}  # every member under the threshold

    wl.add_node(wide, "wide", "worker")
    wl.store_blobs_over(THRESHOLD)
    with pytest.raises(WorkloadRuntimeError) as info:
        wl.execute(1000, deployment_id="dev", store=sqlite_url, max_event_bytes=200_000)
    assert isinstance(info.value.__cause__, PayloadTooLargeError) or "max_event_bytes" in str(
        info.value
    )


@pytest.mark.parametrize("bad", [0, 255, -1, 1.5, "64k", True])
def test_a_bad_blob_threshold_is_refused_at_configuration(bad: object) -> None:
    wl = CodonWorkload(name="Bad", version="1.0")
    with pytest.raises(ConfigurationError, match="blob threshold"):
        wl.store_blobs_over(bad)  # type: ignore[arg-type]


class _PluginStore(LedgerStore):
    """A plug-in store (not one of the SDK's): it has no blob store."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def execute(self, op: Op) -> Any:
        return self.inner.execute(op)


def test_a_store_without_a_blob_store_is_refused_before_the_run_starts() -> None:
    store = _PluginStore()
    with pytest.raises(BlobStoreError, match="_PluginStore has no blob store"):
        _workload().execute(10, deployment_id="dev", store=store)
    assert store.runs() == []  # refused before anything was written


def test_a_report_read_from_the_store_gives_large_results_back(sqlite_url: str) -> None:
    wl = CodonWorkload(name="Echo", version="1.0")

    def echo(n: int, *, runtime: Any, context: Any) -> dict[str, Any]:
        return {"text": "e" * n, "n": n}

    wl.add_node(echo, "echo", "worker")
    wl.store_blobs_over(THRESHOLD)
    report = wl.execute(THRESHOLD * 2, deployment_id="dev", store=sqlite_url)
    expected = {"text": "e" * (THRESHOLD * 2), "n": THRESHOLD * 2}
    assert report.node_results("echo") == [expected]
    loaded = load_report(sqlite_url, report.run_id)
    assert loaded.node_results("echo") == [expected]
    (done,) = [e for e in loaded.events() if e.type == "node_completed"]
    assert done.value() == expected  # the value, not the reference
    assert BLOB_NEEDLE in done.entry  # while the entry the chain hashes keeps the digest


def test_replay_and_fork_read_the_blob_values(sqlite_url: str) -> None:
    wl = _workload()
    report = wl.execute(THRESHOLD * 2, deployment_id="dev", store=sqlite_url)
    replayed = wl.replay(report.run_id, store=sqlite_url)
    assert replayed.identical, replayed.divergences
    assert replayed.report is not None
    assert replayed.report.node_results("use") == [THRESHOLD * 2]

    # fork before "use" ran: the queued token's payload comes back from its blob
    with open_store(sqlite_url) as store:
        events = list(load_report(store, report.run_id).events())
    at = next(e.seq for e in events if e.type == "node_completed" and e.node == "make")
    forked = wl.fork(report.run_id, store=sqlite_url, at_seq=at)
    assert forked.status == "completed"
    assert forked.node_results("use") == [THRESHOLD * 2]
    assert forked.state["big"] == "x" * (THRESHOLD * 2)
    forked_entries = _entries(sqlite_url, forked.run_id)
    assert max(len(e) for e in forked_entries) < 4096  # the fork offloads again
    assert len(_blob_files(sqlite_url)) == 1  # the same bytes, the same blob
    assert verify_run(sqlite_url, forked.run_id).ok


@pytest.mark.postgres
def test_postgresql_keeps_blobs_in_its_blob_table(postgres_url: str) -> None:
    import psycopg

    size = 4 * 1024 * 1024
    report = _workload().execute(size, deployment_id="dev", store=postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute("SELECT sha256, size FROM codon_blobs").fetchall()
        assert rows == [(hashlib.sha256(b'"' + b"x" * size + b'"').hexdigest(), size + 2)]
        longest = conn.execute("SELECT max(length(entry)) FROM codon_events").fetchone()
    assert longest is not None
    assert longest[0] < 4096  # the payload is not in the entries
    assert load_report(postgres_url, report.run_id).state["big"] == "x" * size
    assert verify_run(postgres_url, report.run_id).ok

    digest = rows[0][0]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE codon_blobs SET data = overlay(data placing 'y' from 5)")
    assert {f.code for f in verify_run(postgres_url, report.run_id).findings} == {"blob_altered"}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM codon_blobs")
    verdict = verify_run(postgres_url, report.run_id)
    assert verdict.status == "tampered"
    assert {f.code for f in verdict.findings} == {"blob_missing"}
    assert digest in verdict.findings[0].message


def test_a_cache_hit_serves_the_blob_value_not_the_reference(sqlite_url: str) -> None:
    from codon_sdk import CachePolicy

    calls: list[int] = []
    wl = CodonWorkload(name="CachedBig", version="1.0")

    def fetch(n: int, *, runtime: Any, context: Any) -> dict[str, str]:
        calls.append(n)
        runtime.emit("size", "c" * n)
        return {"text": "c" * n}

    def size(text: str, *, runtime: Any, context: Any) -> int:
        return len(text)

    wl.add_node(fetch, "fetch", "tool", cache=CachePolicy(ttl=3600))
    wl.add_node(size, "size", "worker")
    wl.add_edge("fetch", "size")
    wl.store_blobs_over(THRESHOLD)
    n = THRESHOLD * 2
    wl.execute(n, deployment_id="dev", store=sqlite_url)
    second = wl.execute(n, deployment_id="dev", store=sqlite_url)
    assert calls == [n]  # served from the cache
    assert second.node_results("fetch") == [{"text": "c" * n}]
    assert second.node_results("size") == [n]
    assert verify_run(sqlite_url, second.run_id).ok


def test_a_request_cache_hit_serves_the_blob_value_not_the_reference(sqlite_url: str) -> None:
    """An effect answered from the request cache by a recording held as a blob gives the
    node the value (the request, held as a blob too, still matches)."""
    from codon_sdk import RequestCache

    calls: list[int] = []
    seen: list[Any] = []
    wl = CodonWorkload(name="RequestCachedBig", version="1.0")

    def fetch(n: int, *, pad: str) -> str:
        calls.append(n)
        return "r" * n

    def ask(n: int, *, runtime: Any, context: Any) -> int:
        text = runtime.effect("fetch", fetch, n, pad="p" * n)
        seen.append(text)
        return len(text)

    wl.add_node(ask, "ask", "tool", request_cache=RequestCache())
    wl.store_blobs_over(THRESHOLD)
    n = THRESHOLD * 2
    first = wl.execute(n, deployment_id="dev", store=sqlite_url)
    second = wl.execute(n, deployment_id="dev", store=sqlite_url)
    assert calls == [n]  # the second run's effect was served from the cache
    assert seen == ["r" * n, "r" * n]
    assert first.node_results("ask") == second.node_results("ask") == [n]
    assert verify_run(sqlite_url, second.run_id).ok
    for blob in _blob_files(sqlite_url):
        blob.unlink()  # the cached answer's bytes are gone: a miss, asked afresh
    third = wl.execute(n, deployment_id="dev", store=sqlite_url)
    assert calls == [n, n]
    assert third.node_results("ask") == [n]
