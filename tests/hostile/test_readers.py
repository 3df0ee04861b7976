"""Forged and hostile ledgers, planted in SQLite and PostgreSQL, read back by every reader.

An attacker with write access to the database edits a recorded run so that its chain
still holds (``rechain``: they recompute every hash), planting tagged values that name
``subprocess:Popen`` and a module with side effects, and forged errors. Every reader (the
report, resume, replay, fork, verify, and the CLI's ``runs show``, ``--json``, ``export``,
``verify``, ``verify --all``, ``replay``) reads it: nothing is imported or started, and each
gives a verdict, never a traceback. With a notary, a run planted whole is refused.
Hostile bytes (deep nesting, huge numbers, lone surrogates, duplicate keys, wrong types,
entries of another run) each get a specific finding, and what precedes them still reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.audit._tamper import Database, rechain
from tests.durable._support import pg_schema_url
from tests.hostile._agent import build
from tests.hostile._watch import EVIL, forbidden, watched

from codon_sdk import UntrustedRunError, load_report, verify_all, verify_run
from codon_sdk.identity._canonical import json_canonical
from codon_sdk.ledger._merkle import leaf_hash
from codon_sdk.ledger._note import Ed25519Signer, generate_key
from codon_sdk.stores import _schema as schema
from codon_sdk.stores._notary import FileCheckpointSink, Notary
from codon_sdk.stores._open import open_store

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    """(kind, store URL, what the attacker's Database connects to)."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        yield "sqlite", f"sqlite:///{path}", path
        return
    pg_url = request.getfixturevalue("pg_url")
    with pg_schema_url(pg_url) as url:
        yield "postgres", url, url


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Files that exist only if forged data ran code: the evil module's mark, Popen's touch."""
    evil, popen = tmp_path / "evil-mark", tmp_path / "popen-mark"
    monkeypatch.setenv("CODON_EVIL_MARK", str(evil))
    sys.modules.pop(EVIL, None)
    return evil, popen


def _forge(entries: list[bytes], popen_mark: Path) -> list[bytes]:
    """The recorded run with tagged values that would run code planted in state, a result, an
    effect's value and an effect's error, rechained so that the hash chain holds."""
    out = []
    for entry in entries:
        obj = orjson.loads(entry)
        kind = obj["type"]
        if kind == "state_updated":
            obj["payload"]["set"]["items"] = {
                "$codon": "enum",
                "type": "subprocess:Popen",
                "v": ["touch", str(popen_mark)],
            }
        elif kind == "node_completed" and obj.get("node") == "plan":
            obj["payload"] = {"$codon": "enum", "type": f"{EVIL}:Boom", "v": "zzz"}
        elif kind == "effect_recorded":
            obj["payload"] = {"$codon": "dataclass", "type": f"{EVIL}:Blast", "v": {"x": 1}}
        elif kind == "token_enqueued" and obj.get("target") == "price":
            obj["payload"] = {"$codon": "pydantic", "type": "os:system", "v": "touch /tmp/x"}
        out.append(json_canonical(obj))
    return rechain(out)


def _plant(db: Database, run_id: str, entries: list[bytes]) -> None:
    db.rewrite_run(run_id, entries)
    db.update_run(run_id, head=leaf_hash(entries[-1]).hex(), event_count=len(entries))


def codon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
    )


def _assert_verdict(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode in (0, 1), (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr


def test_a_forged_but_rechained_ledger_runs_nothing_in_any_reader(
    backend: tuple[str, str, Any], marks: tuple[Path, Path]
) -> None:
    """Every reader and CLI command reads the forged run: no import, no process, a verdict."""
    kind, url, target = backend
    evil_mark, popen_mark = marks
    wl = build()
    store = open_store(url, notary=None)
    try:
        wl.execute("widget", deployment_id="dev", store=store, run_id="forged")
        db = Database(kind, target)
        try:
            _plant(db, "forged", _forge(db.entries("forged"), popen_mark))
        finally:
            db.close()
        with watched() as events:
            verdict = verify_run(store, "forged")
            report = load_report(store, "forged")
            _ = (report.summary(), report.to_dict(), report.ledger, report.state)
            wl.resume("forged", store=store)
            wl.replay("forged", store=store)
            wl.fork("forged", store=store, at_seq=3, new_run_id="child")
        assert verdict.ok  # the chain was rechained: only checkpoints could tell (none here)
        assert forbidden(events) == []
    finally:
        store.close()
    env = {"CODON_LEDGER_URL": url, "CODON_EVIL_MARK": str(evil_mark)}
    for args in (
        ("runs", "show", "forged"),
        ("runs", "show", "forged", "--json"),
        ("runs", "list"),
        ("export", "forged"),
        ("verify", "forged"),
        ("verify", "--all"),
        ("replay", "forged", "--workload", "tests.hostile._agent:workload"),
    ):
        _assert_verdict(codon(*args, env=env))
    assert EVIL not in sys.modules
    assert not evil_mark.exists()
    assert not popen_mark.exists()


SKEY, _ = generate_key("test/hostile")


def _notarised(url: str, tmp_path: Path) -> Any:
    notary = Notary(
        signer=Ed25519Signer.from_skey(SKEY),
        every=5,
        sinks=(FileCheckpointSink(tmp_path / "exported"),),
    )
    return open_store(url, notary=notary)


def _copy_run_row(db: Database, source: str, run_id: str, **changes: Any) -> None:
    """Insert a runs-index row for ``run_id``: ``source``'s row with ``changes``."""
    columns = list(schema.RUN_COLUMNS)
    chosen = {"run_id": run_id, **changes}
    select = ", ".join("?" if name in chosen else name for name in columns)
    params = [chosen[name] for name in columns if name in chosen]
    db._sql(
        f"INSERT INTO {schema.RUNS_TABLE} ({', '.join(columns)}) SELECT {select} "
        f"FROM {schema.RUNS_TABLE} WHERE run_id = ?",
        (*params, source),
    )


def test_a_planted_run_is_refused_by_every_reader_when_the_store_has_a_notary(
    backend: tuple[str, str, Any], tmp_path: Path
) -> None:
    """A run planted whole (its chain consistent, nothing signed by the notary) is refused by
    resume, replay, fork and the report; runs show warns and export refuses; the genuine
    run beside it still reads."""
    kind, url, target = backend
    wl = build()
    store = _notarised(url, tmp_path)
    try:
        wl.execute("widget", deployment_id="dev", store=store, run_id="genuine")
        db = Database(kind, target)
        try:
            copied = [orjson.loads(e) for e in db.entries("genuine")[:-1]]  # looks crashed
            del copied[0]["metadata"]["checkpoints"]  # announces none, so none is missed
            planted = rechain([json_canonical(e) for e in copied], run_id="planted")
            _copy_run_row(
                db,
                "genuine",
                "planted",
                status="running",
                finished_us=None,
                event_count=len(planted),
                head=leaf_hash(planted[-1]).hex(),
                owner=None,
            )
            for seq, entry in enumerate(planted):
                db.insert_event("planted", seq, entry)
        finally:
            db.close()
        for read in (
            lambda: wl.resume("planted", store=store),
            lambda: wl.replay("planted", store=store),
            lambda: wl.fork("planted", store=store, at_seq=2),
            lambda: load_report(store, "planted"),
        ):
            with pytest.raises(UntrustedRunError, match="vouches"):
                read()
        assert wl.replay("genuine", store=store).identical
        assert load_report(store, "genuine").status == "completed"
    finally:
        store.close()
    env = {
        "CODON_LEDGER_URL": url,
        "CODON_SIGNING_KEY": SKEY,
        "CODON_CHECKPOINT_DIR": str(tmp_path / "exported"),
        "CODON_CHECKPOINT_EVERY": "5",
    }
    shown = codon("runs", "show", "planted", env=env)
    assert shown.returncode == 1
    assert shown.stdout.startswith("WARNING: this run does not verify")
    refused = codon("export", "planted", env=env)
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert refused.stdout == ""


def test_an_actor_with_escape_sequences_prints_escaped(
    backend: tuple[str, str, Any], tmp_path: Path
) -> None:
    """An actor forged with a newline and ANSI escapes cannot forge ledger lines on screen."""
    kind, url, target = backend
    store = open_store(url, notary=None)
    try:
        build().execute("widget", deployment_id="dev", store=store, run_id="actor")
    finally:
        store.close()
    db = Database(kind, target)
    try:
        entries = [orjson.loads(e) for e in db.entries("actor")]
        entries[2]["actor"] = "\x1b[2J\x1b[31malice\n    99  2026-01-01  run_finished"
        _plant(db, "actor", rechain([json_canonical(e) for e in entries]))
    finally:
        db.close()
    done = codon("runs", "show", "actor", env={"CODON_LEDGER_URL": url})
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "by \\x1b[2J\\x1b[31malice\\n    99  2026-01-01  run_finished" in done.stdout
    assert not any(line.lstrip().startswith("99  2026") for line in done.stdout.splitlines())


def _hostile(entry: bytes, splice: bytes) -> bytes:
    obj = orjson.loads(entry)
    obj["payload"] = "__HOSTILE__"
    return json_canonical(obj).replace(b'"__HOSTILE__"', splice)


def _with(entry: bytes, **fields: Any) -> bytes:
    return json_canonical({**orjson.loads(entry), **fields})


HOSTILE: list[tuple[str, Any, str]] = [
    ("deep", lambda e, _: _hostile(e, b"[" * 300 + b"]" * 300), "nested 30"),
    ("deeper", lambda e, _: _hostile(e, b"[" * 1100 + b"]" * 1100), "1,024 levels"),
    ("huge-number", lambda e, _: _hostile(e, b"9" * 400), "outside the range of a double"),
    ("lone-surrogate", lambda e, _: _hostile(e, b'"\\ud800"'), "lone surrogate"),
    ("invalid-utf8", lambda e, _: _hostile(e, b'"\xff\xfe"'), "not valid UTF-8"),
    ("duplicate-key", lambda e, _: e.replace(b'{"', b'{"node":"x","', 1), "twice"),
    ("wrong-type", lambda e, _: _with(e, seq="3"), "wrong types"),
    ("not-an-object", lambda e, _: b"[1,2,3]", "must be a JSON object"),
    ("spliced", lambda e, other: other, "belongs to run"),
]


@pytest.mark.parametrize(("name", "make", "finding"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_each_hostile_entry_gets_a_specific_finding_and_the_rest_still_reads(
    backend: tuple[str, str, Any], name: str, make: Any, finding: str
) -> None:
    """A hostile entry at seq 3: verify names it exactly; runs show lists seqs 0-2 as they
    are; verify --all reports every run, the hostile one tampered, and exits 1."""
    kind, url, target = backend
    store = open_store(url, notary=None)
    try:
        wl = build()
        wl.execute("a", deployment_id="dev", store=store, run_id="victim")
        wl.execute("b", deployment_id="dev", store=store, run_id="other")
    finally:
        store.close()
    db = Database(kind, target)
    try:
        entries = db.entries("victim")
        hostile = make(entries[3], db.entries("other")[3])
        db.set_entry("victim", 3, hostile)
    finally:
        db.close()
    report = verify_run(url, "victim")
    assert report.status == "tampered"
    chain = [f for f in report.findings if f.code == "chain"]
    assert len(chain) == 1
    assert chain[0].seq == 3
    assert finding in chain[0].message
    assert not any("tail was cut off" in f.message for f in report.findings)
    everything = verify_all(url)
    assert {r.run_id: r.status for r in everything.runs} == {
        "victim": "tampered",
        "other": "unanchored",
    }
    env = {"CODON_LEDGER_URL": url}
    shown = codon("runs", "show", "victim", env=env)
    _assert_verdict(shown)
    for seq in range(3):
        assert f"    {seq:>5}  " in shown.stdout
    assert "      3  <entry cannot be read" in shown.stdout or finding in shown.stdout
    listed = codon("verify", "--all", env=env)
    assert listed.returncode == 1
    assert "victim" in listed.stdout
    assert "other" in listed.stdout


def test_replay_refuses_a_tampered_run_and_force_replays_what_reads_saying_so(
    tmp_path: Path,
) -> None:
    """An edit that breaks the chain: replay refuses; ``force=True`` (``--force``) replays
    the entries before the break and the report, and the command's output, say why."""
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    wl = build()
    wl.execute("widget", deployment_id="dev", store=url, run_id="edited")
    db = Database("sqlite", path)
    try:
        entries = db.entries("edited")
        obj = orjson.loads(entries[6])
        obj["ts"] += 1
        db.set_entry("edited", 6, json_canonical(obj))
    finally:
        db.close()
    with pytest.raises(UntrustedRunError, match="not replayed"):
        wl.replay("edited", store=url)
    forced = wl.replay("edited", store=url, force=True)
    assert forced.untrusted
    assert forced.summary().startswith("WARNING: the recorded run does not verify")
    done = codon(
        "replay",
        "edited",
        "--workload",
        "tests.hostile._agent:workload",
        "--force",
        env={"CODON_LEDGER_URL": url},
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("WARNING: the recorded run does not verify")
    refused = codon(
        "replay",
        "edited",
        "--workload",
        "tests.hostile._agent:workload",
        env={"CODON_LEDGER_URL": url},
    )
    assert refused.returncode == 1
    assert "does not verify" in refused.stderr


_CRASHING = """
import os, sys
from codon_sdk import CodonWorkload

def first(message, *, runtime, context):
    runtime.state["seen"] = message
    runtime.emit("second", message)
    return "ok"

def second(message, *, runtime, context):
    if os.environ.get("CRASH"):
        os._exit(9)
    return "done"

wl = CodonWorkload(name="crashy", version="1", org_namespace="tests")
wl.add_node(first, "first", "worker")
wl.add_node(second, "second", "worker")
wl.add_edge("first", "second")
if __name__ == "__main__":
    wl.execute("x", deployment_id="dev", store=sys.argv[1], run_id="crashed", durability="sync")
"""


def test_a_genuine_crashed_run_is_vouched_for_by_its_start_and_resumes(
    backend: tuple[str, str, Any], tmp_path: Path
) -> None:
    """A run killed before its first checkpoint (fewer events than the interval, no pause) is
    vouched for by the log-of-runs checkpoint signed when it started: resume goes on."""
    _, url, _ = backend
    script = tmp_path / "crashy.py"
    script.write_text(_CRASHING)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CRASH": "1",
        "CODON_SIGNING_KEY": SKEY,
        "CODON_CHECKPOINT_DIR": str(tmp_path / "exported"),
        "CODON_CHECKPOINT_EVERY": "1000",
    }
    done = subprocess.run(
        [sys.executable, str(script), url], env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 9, done.stderr
    store = _notarised(url, tmp_path)
    try:
        assert store.checkpoints("crashed") == []  # nothing of the run itself was signed
        sys.path.insert(0, str(tmp_path))
        try:
            import crashy  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(tmp_path))
        report = crashy.wl.resume("crashed", store=store)
        assert report.status == "completed"
        assert report.node_results("second") == ["done"]
    finally:
        store.close()


@pytest.mark.parametrize(
    "actor",
    ["alice\n    99  2026-01-01  run_finished", "\x1b[31malice", "bob\u202e", "", " ", "a" * 201],
)
def test_an_actor_that_is_not_printable_is_refused_at_resume(actor: str, tmp_path: Path) -> None:
    """``resume(actor=...)`` takes only printable text: an approver name that could forge
    lines on an operator's screen is refused before anything is recorded."""
    from codon_sdk import CodonWorkload

    def ask(message: Any, *, runtime: Any, context: Any) -> Any:
        return runtime.interrupt("approve?")

    wl = CodonWorkload(name="approval", version="1", org_namespace="tests")
    wl.add_node(ask, "ask", "asker")
    store = f"sqlite:///{tmp_path / 'l.db'}"
    wl.execute("x", deployment_id="dev", store=store, run_id="r")
    before = len(load_report(store, "r").ledger)
    with pytest.raises(ValueError, match="actor must"):
        wl.resume("r", store=store, input="yes", actor=actor)
    assert len(load_report(store, "r").ledger) == before
    assert verify_run(store, "r").status == "incomplete"  # paused, nothing tampered
    assert wl.resume("r", store=store, input="yes", actor="alice").status == "completed"


@pytest.mark.parametrize("deployment", ["dev\n", "\x1b[2Jdev", "d" * 201])
def test_a_deployment_id_that_is_not_printable_is_refused(deployment: str) -> None:
    with pytest.raises(ValueError, match="deployment_id must be"):
        build().execute("widget", deployment_id=deployment)
