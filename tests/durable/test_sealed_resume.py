"""Sealed secrets survive a crash: a run killed with SIGKILL resumes on its real values.

A child process runs ``start`` (its input holds an API key; it writes the key and a
bearer header fetched by a recorded effect into the shared state) and ``use`` (which
gets the key in its token). It is killed with SIGKILL either right after the effect
(so ``start`` runs again on resume and gets the effect's result from the ledger) or
inside ``use``. A new process resumes the run from the store with the sealing key in
``CODON_SEALING_KEY``; every node compares what it received with the real secrets and
raises on a difference (and writes what it saw to a check log). Then:

* the resumed run completes, every check inside the nodes passed, the run verifies;
* the raw database bytes (the SQLite file with its WAL, every PostgreSQL table's rows)
  never contain either secret, and they do contain sealed markers;
* resuming without a key, or with another key, is refused with ``SealingKeyError``
  naming the key source and the run, and nothing is recorded;
* replay and fork with the key run the nodes on the real values too; without it they
  refuse before any node runs.

A key source that fails while the run writes leaves nothing unsealed in the database, and
the run resumes once it works again. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codon_sdk import CodonWorkload, verify_run
from codon_sdk.errors import SealingKeyError
from codon_sdk.redaction import Redactor, generate_sealing_key, set_default_redactor

from ._support import (
    assert_chain,
    load_module,
    opened,
    outcome,
    parse,
    run_child,
    stored_entries,
    write_module,
)

API_KEY = "sk-proj-Q7wErTy2uIoP9aSdFgH4jKlZ8xCvBnM1"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC03In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"

WORKLOAD = f'''
"""Two nodes that check, inside the node, that they get the real secrets back."""

import os
import signal

from codon_sdk import CodonWorkload

API_KEY = {API_KEY!r}
AUTH = "Authorization: Bearer {TOKEN}"


def _check(node, what, ok):
    with open(os.environ["CHECK_LOG"], "a") as f:
        f.write(f"{{os.getpid()}} {{node}} {{what}} {{'ok' if ok else 'WRONG'}}\\n")
    if not ok:
        raise AssertionError(f"{{node}} got a wrong {{what}}")


def _crash_if(point):
    if os.environ.get("CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _vault():
    return {{"header": AUTH}}


def start(x, *, runtime, context):
    _check("start", "input", x["api_key"] == API_KEY)
    runtime.state["credentials"] = {{"api_key": x["api_key"], "user": "ada"}}
    fetched = runtime.effect("vault", _vault)
    _check("start", "effect", fetched == {{"header": AUTH}})
    _crash_if("start:after_effect")
    runtime.state["auth"] = fetched["header"]
    runtime.emit("use", {{"key": x["api_key"], "n": 1}})
    return "started"


def use(x, *, runtime, context):
    _check("use", "token", x == {{"key": API_KEY, "n": 1}})
    _check("use", "state", runtime.state["credentials"]["api_key"] == API_KEY)
    _check("use", "effect state", runtime.state["auth"] == AUTH)
    _crash_if("use:mid")
    runtime.state["used"] = True
    return "used"


workload = CodonWorkload(name="sealed", version="1", org_namespace="durable-tests")
workload.add_node(start, "start", "worker")
workload.add_node(use, "use", "worker")
workload.add_edge("start", "use")
'''


@pytest.fixture
def module_path(tmp_path: Path) -> Path:
    return write_module(tmp_path / "mods", "sealed_workload", WORKLOAD)


@pytest.fixture
def key() -> str:
    return generate_sealing_key()


@pytest.fixture
def check_log(tmp_path: Path) -> Path:
    return tmp_path / "checks.log"


@pytest.fixture
def with_key(monkeypatch: pytest.MonkeyPatch, key: str) -> Iterator[str]:
    """This process's default policy seals with ``key`` (rebuilt from the environment)."""
    monkeypatch.setenv("CODON_SEALING_KEY", key)
    monkeypatch.setenv("CODON_REDACTION_KEY", "durable-sealing-tests")
    previous = set_default_redactor(None)
    try:
        yield key
    finally:
        set_default_redactor(previous)


def _env(key: str | None, check_log: Path, **extra: str) -> dict[str, str]:
    env = {"CHECK_LOG": str(check_log), "CODON_REDACTION_KEY": "durable-sealing-tests", **extra}
    if key is not None:
        env["CODON_SEALING_KEY"] = key
    return env


def raw_bytes(url: str) -> bytes:
    """Everything the database holds: the SQLite files, or every row of every table."""
    if url.startswith("sqlite:///"):
        folder = Path(url[len("sqlite:///") :]).parent
        return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())
    import psycopg

    chunks: list[bytes] = []
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        ]
        assert "codon_events" in tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        chunks.append(bytes(value))
                    else:
                        chunks.append(str(value).encode("utf-8"))
    return b"\n".join(chunks)


def assert_no_secret(url: str) -> None:
    data = raw_bytes(url)
    assert b"[SEALED:" in data
    assert API_KEY.encode() not in data
    assert TOKEN.encode() not in data
    assert API_KEY[8:30].encode() not in data  # not even a part of it


def crash(module_path: Path, url: str, key: str, check_log: Path, point: str) -> str:
    run_id = f"sealed-{point.replace(':', '-')}"
    proc = run_child(
        module_path,
        "execute",
        env=_env(key, check_log, CRASH_AT=point),
        payload={"api_key": API_KEY},
        kwargs={"store": url, "run_id": run_id, "durability": "sync"},
    )
    assert proc.returncode == -9, proc.stderr
    return run_id


def checks(check_log: Path) -> list[str]:
    return [line.split(" ", 1)[1] for line in check_log.read_text().splitlines()]


@pytest.mark.parametrize("point", ["start:after_effect", "use:mid"])
def test_killed_run_resumes_on_real_secrets(
    ledger_url: str, module_path: Path, key: str, check_log: Path, point: str
) -> None:
    run_id = crash(module_path, ledger_url, key, check_log, point)
    assert_no_secret(ledger_url)
    before = checks(check_log)
    resumed = outcome(
        run_child(
            module_path,
            "resume",
            env=_env(key, check_log),
            run_id=run_id,
            kwargs={"store": ledger_url},
        )
    )
    assert resumed["status"] == "completed", resumed
    assert resumed["state"]["used"] is True
    after = checks(check_log)[len(before) :]
    assert after
    assert all(line.endswith(" ok") for line in after), after
    # the node that was killed ran again in the resuming process, on the real values
    expected = "start input ok" if point.startswith("start") else "use token ok"
    assert expected in after
    if point.startswith("start"):
        assert "start effect ok" in after  # the effect's result, served from the ledger
    entries = stored_entries(ledger_url, run_id)
    assert_chain(entries, run_id, require_end=True)
    assert verify_run(ledger_url, run_id).ok
    assert_no_secret(ledger_url)
    resumed_events = [e for e in parse(entries) if e.type == "run_resumed"]
    assert resumed_events
    assert "masked" not in resumed_events[0].metadata


@pytest.mark.parametrize("which", ["none", "other"])
def test_resume_without_the_key_is_refused(
    ledger_url: str, module_path: Path, key: str, check_log: Path, which: str
) -> None:
    run_id = crash(module_path, ledger_url, key, check_log, "use:mid")
    count = len(stored_entries(ledger_url, run_id))
    lines = len(checks(check_log))
    env = _env(None if which == "none" else generate_sealing_key(), check_log)
    proc = run_child(module_path, "resume", env=env, run_id=run_id, kwargs={"store": ledger_url})
    result = outcome(proc)
    assert result["error"] == "SealingKeyError", result
    assert run_id in result["message"]
    if which == "none":
        assert "no sealing key is configured" in result["message"]
        assert "CODON_SEALING_KEY" in result["message"]
    else:
        assert "which the key source CODON_SEALING_KEY does not hold" in result["message"]
    assert API_KEY not in result["message"]
    assert len(stored_entries(ledger_url, run_id)) == count  # nothing recorded
    assert len(checks(check_log)) == lines  # no node ran
    # the key still opens it afterwards
    good = run_child(
        module_path, "resume", env=_env(key, check_log), run_id=run_id, kwargs={"store": ledger_url}
    )
    assert outcome(good).get("status") == "completed", outcome(good)


def _loaded(module_path: Path, check_log: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("CHECK_LOG", str(check_log))
    monkeypatch.delenv("CRASH_AT", raising=False)
    return load_module(module_path)


def test_replay_and_fork_run_on_real_secrets(
    ledger_url: str,
    module_path: Path,
    key: str,
    check_log: Path,
    with_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = crash(module_path, ledger_url, key, check_log, "use:mid")
    resumed = run_child(
        module_path, "resume", env=_env(key, check_log), run_id=run_id, kwargs={"store": ledger_url}
    )
    assert outcome(resumed)["status"] == "completed"
    module = _loaded(module_path, check_log, monkeypatch)
    lines = len(checks(check_log))
    replay = module.workload.replay(run_id, store=ledger_url)
    assert replay.identical, replay.summary()
    seen = checks(check_log)[lines:]
    assert seen
    assert all(line.endswith(" ok") for line in seen)
    assert "start input ok" in seen
    assert "use token ok" in seen
    events = parse(stored_entries(ledger_url, run_id))
    at = next(e.seq for e in events if e.type == "node_completed" and e.node == "start")
    lines = len(checks(check_log))
    forked = module.workload.fork(run_id, store=ledger_url, at_seq=at, new_run_id=f"{run_id}-f")
    assert forked.status == "completed"
    seen = checks(check_log)[lines:]
    assert seen == ["use token ok", "use state ok", "use effect state ok"]
    assert verify_run(ledger_url, f"{run_id}-f").ok
    assert_no_secret(ledger_url)


def test_replay_and_fork_without_the_key_refuse(
    ledger_url: str,
    module_path: Path,
    key: str,
    check_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = crash(module_path, ledger_url, key, check_log, "use:mid")
    for name in ("CODON_SEALING_KEY", "CODON_SEALING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    previous = set_default_redactor(None)
    try:
        module = _loaded(module_path, check_log, monkeypatch)
        lines = len(checks(check_log))
        with pytest.raises(SealingKeyError, match="no sealing key is configured") as replayed:
            module.workload.replay(run_id, store=ledger_url)
        assert replayed.value.run_id == run_id
        with pytest.raises(SealingKeyError, match=f"run {run_id} .*forked"):
            module.workload.fork(run_id, store=ledger_url, at_seq=3, new_run_id="never")
        assert len(checks(check_log)) == lines  # no node ran
        with opened(ledger_url) as store:
            assert not store.has_run("never")
    finally:
        set_default_redactor(previous)


def test_masked_values_at_resume_are_recorded_not_silent(
    ledger_url: str, module_path: Path, check_log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a sealing key the secrets are masked for good: the resumed run goes on, but
    ``run_resumed`` says how many masked values (and of which kinds) code receives."""
    run_id = "masked-run"
    proc = run_child(
        module_path,
        "execute",
        env=_env(None, check_log, CRASH_AT="use:mid"),
        payload={"api_key": API_KEY},
        kwargs={"store": ledger_url, "run_id": run_id, "durability": "sync"},
    )
    assert proc.returncode == -9, proc.stderr
    data = raw_bytes(ledger_url)
    assert API_KEY.encode() not in data
    assert b"[SEALED:" not in data
    resumed = outcome(
        run_child(
            module_path,
            "resume",
            env=_env(None, check_log),
            run_id=run_id,
            kwargs={"store": ledger_url},
        )
    )
    assert resumed["error"] == "WorkloadRuntimeError"  # `use` got a marker, not the key
    events = parse(stored_entries(ledger_url, run_id))
    meta = next(e for e in events if e.type == "run_resumed").metadata
    assert meta["masked"]["values"] >= 3, meta
    assert {"api_key", "bearer_token"} <= {kind for kind, _ in meta["masked"]["kinds"]}


def test_sealed_markers_are_in_every_place_code_reads_back(
    ledger_url: str, module_path: Path, key: str, check_log: Path
) -> None:
    run_id = crash(module_path, ledger_url, key, check_log, "use:mid")
    events = parse(stored_entries(ledger_url, run_id))
    by_type: dict[str, list[Any]] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e)
    seed = by_type["token_enqueued"][0].value()
    assert seed["api_key"].startswith("[SEALED:credential_key:")  # under a credential key
    effect = by_type["effect_recorded"][0].value()
    assert effect["header"].startswith("Authorization: Bearer [SEALED:bearer_token:")
    state = [e.value() for e in by_type["state_updated"]]
    assert any("[SEALED:" in str(s) for s in state)


class _SwitchableKMS:
    """A key source that goes down, as a KMS behind a network does."""

    source = "durable-test-kms"

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.up = True

    def current(self) -> tuple[str, bytes]:
        if not self.up:
            raise ConnectionError("unreachable")
        return "kms-1", self.key

    def get(self, key_id: str) -> bytes | None:
        return self.key if key_id == "kms-1" else None


def test_a_key_source_that_fails_mid_run_leaves_nothing_unsealed(ledger_url: str) -> None:
    kms = _SwitchableKMS(bytes(range(32)))
    ran: list[str] = []

    def fetch(x: Any, *, runtime: Any, context: Any) -> Any:
        ran.append("fetch")
        if len(ran) == 1:
            kms.up = False  # goes down while the activation holds a secret
        runtime.state["auth"] = f"Authorization: Bearer {TOKEN}"
        runtime.emit("send", {"key": API_KEY})
        return "fetched"

    def send(x: Any, *, runtime: Any, context: Any) -> Any:
        ran.append("send")
        if x != {"key": API_KEY} or runtime.state["auth"] != f"Authorization: Bearer {TOKEN}":
            raise AssertionError("send got a marker, not the secret")
        return "sent"

    workload = CodonWorkload(
        name="kms-durable",
        version="1",
        org_namespace="durable-tests",
        redactor=Redactor(sealing_keys=kms),
    )
    workload.add_node(fetch, "fetch", "worker")
    workload.add_node(send, "send", "worker")
    workload.add_edge("fetch", "send")
    with pytest.raises(SealingKeyError, match="durable-test-kms failed") as err:
        workload.execute({"n": 1}, deployment_id="d", store=ledger_url, run_id="kms-run")
    assert err.value.run_id == "kms-run"
    data = raw_bytes(ledger_url)
    assert API_KEY.encode() not in data
    assert TOKEN.encode() not in data
    events = parse(stored_entries(ledger_url, "kms-run"))
    assert [e.type for e in events][-2:] == ["node_failed", "run_interrupted"]
    assert events[-1].metadata["kind"] == "sealing_key"
    kms.up = True
    report = workload.resume("kms-run", store=ledger_url)
    assert report.status == "completed"
    assert ran == ["fetch", "fetch", "send"]
    assert_no_secret(ledger_url)
    assert verify_run(ledger_url, "kms-run").ok
