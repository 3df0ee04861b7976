"""``codon runs list`` and ``codon runs show``, run as the real command
(``python -m codon_sdk``) against ledgers written by real runs: exit codes, text, ``--json``,
the ledger URL from ``--ledger`` / ``CODON_LEDGER_URL`` / the default, and bad ledgers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from codon_sdk import CodonWorkload, WorkloadRuntimeError
from codon_sdk.stores import open_store

LIST_KEYS = {
    "run_id",
    "status",
    "workload_name",
    "workload_version",
    "logic_id",
    "deployment_id",
    "started_at",
    "finished_at",
    "event_count",
}


def codon(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    """Run ``codon ARGS`` in a new process; return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )


def codon_json(*args: str) -> Any:
    done = codon(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_clean_failure(done: Any, code: int | None = None) -> None:
    """A failure the user can act on: a message, no traceback, the given (or any) exit code."""
    assert done.returncode != 0
    if code is not None:
        assert done.returncode == code, done.stderr
    assert done.stderr.startswith("codon: "), done.stderr
    assert "Traceback" not in done.stderr


def support_workload() -> CodonWorkload:
    """triage -> answer (asks a human when the ticket says so) ; answer fails on "boom"."""

    def triage(ticket: Any, *, runtime: Any, context: Any) -> Any:
        runtime.state["ticket"] = ticket
        runtime.emit("answer", ticket)
        return "triaged"

    def answer(ticket: Any, *, runtime: Any, context: Any) -> Any:
        if ticket == "boom":
            raise RuntimeError("model unavailable")
        if ticket.startswith("ask"):
            approval = runtime.interrupt("approve the answer", payload={"ticket": ticket})
            runtime.state["approval"] = approval
        return f"answered {ticket}"

    workload = CodonWorkload(name="support-bot", version="2.1", org_namespace="cli-tests")
    workload.add_node(triage, "triage", "router")
    workload.add_node(answer, "answer", "llm")
    workload.add_edge("triage", "answer")
    return workload


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    """A SQLite ledger with four runs: completed, interrupted, failed, and resumed by alice."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    workload = support_workload()
    workload.execute("hello", deployment_id="prod", store=url, run_id="run-completed")
    workload.execute("ask-1", deployment_id="prod", store=url, run_id="run-interrupted")
    with pytest.raises(WorkloadRuntimeError):
        workload.execute("boom", deployment_id="prod", store=url, run_id="run-failed")
    workload.execute("ask-2", deployment_id="prod", store=url, run_id="run-resumed")
    workload.resume("run-resumed", store=url, input={"ok": True}, actor="alice")
    return url


# --------------------------------------------------------------------------- runs list


def test_runs_list_json_is_an_array_of_runs_with_every_documented_field(ledger: str) -> None:
    runs = codon_json("runs", "list", "--ledger", ledger)
    assert isinstance(runs, list)
    assert {r["run_id"] for r in runs} == {
        "run-completed",
        "run-interrupted",
        "run-failed",
        "run-resumed",
    }
    logic_id = support_workload().logic_id
    with open_store(ledger) as store:
        for row in runs:
            assert row.keys() >= LIST_KEYS
            info = store.get_run(row["run_id"])
            assert row["status"] == info.status
            assert (row["workload_name"], row["workload_version"]) == ("support-bot", "2.1")
            assert (row["logic_id"], row["deployment_id"]) == (logic_id, "prod")
            assert row["event_count"] == len(store.read(row["run_id"])) == info.event_count
            started = datetime.fromisoformat(row["started_at"])
            assert started.utcoffset() is not None
            assert started == info.started_at
            if row["status"] == "interrupted":
                assert row["finished_at"] is None
            else:
                assert datetime.fromisoformat(row["finished_at"]) >= started
    statuses = {r["run_id"]: r["status"] for r in runs}
    assert statuses == {
        "run-completed": "completed",
        "run-interrupted": "interrupted",
        "run-failed": "failed",
        "run-resumed": "completed",
    }


def test_runs_list_shows_newest_first(ledger: str) -> None:
    runs = codon_json("runs", "list", "--ledger", ledger)
    started = [r["started_at"] for r in runs]
    assert started == sorted(started, reverse=True)
    assert runs[0]["run_id"] == "run-resumed"


def test_runs_list_text_has_a_line_per_run_with_status_workload_and_events(ledger: str) -> None:
    done = codon("runs", "list", "--ledger", ledger)
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split()[:3] == ["RUN", "ID", "STATUS"]
    rows = {line.split()[0]: line.split() for line in lines}
    assert set(rows) == {"run-completed", "run-interrupted", "run-failed", "run-resumed"}
    with open_store(ledger) as store:
        for run_id, cells in rows.items():
            info = store.get_run(run_id)
            assert cells[1] == info.status
            assert cells[2] == "support-bot:2.1"
            assert cells[3] == str(info.event_count)


def test_runs_list_filters_by_status_workload_and_limit(ledger: str) -> None:
    paused = codon_json("runs", "list", "--ledger", ledger, "--status", "interrupted")
    assert [r["run_id"] for r in paused] == ["run-interrupted"]
    assert codon_json("runs", "list", "--ledger", ledger, "--workload", "other-bot") == []
    assert len(codon_json("runs", "list", "--ledger", ledger, "--limit", "2")) == 2


def test_runs_list_refuses_an_unknown_status_naming_the_valid_ones(ledger: str) -> None:
    done = codon("runs", "list", "--ledger", ledger, "--status", "paused")
    assert_clean_failure(done, 2)
    assert "'paused'" in done.stderr
    assert "interrupted" in done.stderr


def test_runs_list_on_an_empty_ledger_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).close()
    done = codon("runs", "list", "--ledger", url)
    assert (done.returncode, done.stdout.strip()) == (0, "no runs")
    assert codon_json("runs", "list", "--ledger", url) == []


def test_a_missing_ledger_file_is_a_usage_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ledger.db"
    done = codon("runs", "list", "--ledger", f"sqlite:///{missing}")
    assert_clean_failure(done, 2)
    assert str(missing) in done.stderr
    assert not missing.exists()


def test_the_ledger_url_comes_from_codon_ledger_url_then_the_default_file(
    ledger: str, tmp_path: Path
) -> None:
    from_env = codon("runs", "list", "--json", env={"CODON_LEDGER_URL": ledger})
    assert from_env.returncode == 0, from_env.stderr
    assert len(json.loads(from_env.stdout)) == 4
    # with neither, ./.codon/ledger.db of the current directory
    workdir = tmp_path / "project"
    default = workdir / ".codon" / "ledger.db"
    support_workload().execute("hi", deployment_id="dev", store=f"sqlite:///{default}", run_id="d1")
    done = codon("runs", "list", "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert [r["run_id"] for r in json.loads(done.stdout)] == ["d1"]
    # --ledger wins over the environment
    both = codon("runs", "list", "--json", "--ledger", ledger, env={"CODON_LEDGER_URL": "bad://"})
    assert both.returncode == 0, both.stderr


@pytest.mark.postgres
def test_runs_list_and_show_read_a_postgres_ledger(pg_url: str) -> None:
    import psycopg

    schema = f"cli_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    try:
        support_workload().execute("hello", deployment_id="prod", store=url, run_id="pg-run")
        runs = codon_json("runs", "list", "--ledger", url)
        assert [(r["run_id"], r["status"]) for r in runs] == [("pg-run", "completed")]
        shown = codon_json("runs", "show", "pg-run", "--ledger", url)
        assert shown["run"]["event_count"] == len(shown["events"])
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# --------------------------------------------------------------------------- runs show


def test_runs_show_text_summarises_the_run_and_lists_its_ledger_with_the_actor(
    ledger: str,
) -> None:
    done = codon("runs", "show", "run-resumed", "--ledger", ledger)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("run run-resumed: completed")
    with open_store(ledger) as store:
        count = store.get_run("run-resumed").event_count
    assert f"events      {count}" in out
    assert support_workload().logic_id in out
    ledger_lines = out.split("  ledger:\n", 1)[1].splitlines()
    assert len(ledger_lines) == count
    (resumed,) = [line for line in ledger_lines if "run_resumed" in line]
    assert resumed.endswith("by alice")
    assert "run_interrupted" in out


def test_runs_show_json_has_the_run_its_state_results_and_every_event(ledger: str) -> None:
    shown = codon_json("runs", "show", "run-resumed", "--ledger", ledger)
    listed = {r["run_id"]: r for r in codon_json("runs", "list", "--ledger", ledger)}
    assert shown["run"].keys() >= LIST_KEYS
    assert {k: shown["run"][k] for k in LIST_KEYS} == {
        k: listed["run-resumed"][k] for k in LIST_KEYS
    }
    events = shown["events"]
    assert [e["seq"] for e in events] == list(range(shown["run"]["event_count"]))
    assert events[0]["type"] == "run_started"
    assert events[-1]["type"] == "run_finished"
    (resumed,) = [e for e in events if e["type"] == "run_resumed"]
    assert resumed["actor"] == "alice"
    assert resumed["metadata"]["input"] == {"ok": True}
    assert shown["state"] == {"ticket": "ask-2", "approval": {"ok": True}}
    assert shown["results"] == {"triage": ["triaged"], "answer": ["answered ask-2"]}


def test_runs_show_works_for_interrupted_and_failed_runs(ledger: str) -> None:
    paused = codon_json("runs", "show", "run-interrupted", "--ledger", ledger)
    assert paused["run"]["status"] == "interrupted"
    assert paused["events"][-1]["type"] == "run_interrupted"
    assert paused["events"][-1]["metadata"]["payload"] == {"ticket": "ask-1"}
    failed = codon("runs", "show", "run-failed", "--ledger", ledger)
    assert failed.returncode == 0, failed.stderr
    assert failed.stdout.startswith("run run-failed: failed")
    assert "model unavailable" in failed.stdout


def test_runs_show_works_while_the_run_is_still_executing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    inside, release = threading.Event(), threading.Event()

    def slow(message: Any, *, runtime: Any, context: Any) -> Any:
        inside.set()
        release.wait(30)
        return "done"

    workload = CodonWorkload(name="live", version="1", org_namespace="cli-tests")
    workload.add_node(slow, "slow", "r")
    runner = threading.Thread(
        target=workload.execute,
        args=(None,),
        kwargs={"deployment_id": "d", "store": url, "run_id": "live", "durability": "sync"},
    )
    runner.start()
    try:
        assert inside.wait(30)
        shown = codon_json("runs", "show", "live", "--ledger", url)
        listed = codon_json("runs", "list", "--ledger", url)
    finally:
        release.set()
        runner.join(30)
    assert shown["run"]["status"] == "running"
    assert shown["run"]["finished_at"] is None
    # sync commits at step boundaries: the run's start and seed are there, the activation
    # still running is not
    assert [e["type"] for e in shown["events"]] == ["run_started", "token_enqueued"]
    assert [(r["run_id"], r["status"]) for r in listed] == [("live", "running")]


def test_runs_show_of_an_unknown_run_names_it_with_exit_code_2(ledger: str) -> None:
    done = codon("runs", "show", "no-such-run", "--ledger", ledger)
    assert_clean_failure(done, 2)
    assert "'no-such-run'" in done.stderr
    assert done.stdout == ""


# --------------------------------------------------------------------------- bad ledgers


def test_a_corrupt_ledger_file_fails_cleanly_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"not a database at all\n" * 300)
    for args in (("runs", "list"), ("runs", "show", "x")):
        done = codon(*args, "--ledger", f"sqlite:///{path}")
        assert_clean_failure(done)
        assert "ledger.db" in done.stderr
        assert "damaged" in done.stderr
    assert path.read_bytes() == b"not a database at all\n" * 300


def test_a_ledger_from_a_newer_sdk_fails_cleanly_and_is_left_alone(
    ledger: str, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE codon_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'schema_version'"
        )
        rows = conn.execute("SELECT run_id, seq, entry FROM codon_events").fetchall()
    conn.close()
    done = codon("runs", "list", "--ledger", ledger)
    assert_clean_failure(done)
    assert "upgrade codon-sdk" in done.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT run_id, seq, entry FROM codon_events").fetchall() == rows
    conn.close()


def test_an_unreachable_postgres_ledger_fails_cleanly_without_the_password() -> None:
    done = codon("runs", "list", "--ledger", "postgresql://codon:s3cr3t@127.0.0.1:1/ledger")
    assert_clean_failure(done)
    assert "s3cr3t" not in done.stderr
    assert "postgresql://codon:***@127.0.0.1:1/ledger" in done.stderr


@pytest.mark.parametrize("url", ["mysql://host/db", "ledger.db", "sqlite://"])
def test_a_malformed_ledger_url_is_a_usage_error(url: str) -> None:
    done = codon("runs", "list", "--ledger", url)
    assert_clean_failure(done, 2)
    assert "URL" in done.stderr or "scheme" in done.stderr


def test_runs_list_pages_with_after_and_says_how_to_get_the_next_page(ledger: str) -> None:
    every = [r["run_id"] for r in codon_json("runs", "list", "--ledger", ledger)]
    assert len(every) == 4
    first = codon("runs", "list", "--ledger", ledger, "--limit", "3")
    assert first.returncode == 0, first.stderr
    assert f"add --after {every[2]} for the next page" in first.stdout
    rest = codon_json("runs", "list", "--ledger", ledger, "--limit", "3", "--after", every[2])
    assert [r["run_id"] for r in rest] == every[3:]
    last = codon("runs", "list", "--ledger", ledger, "--after", every[2])
    assert "next page" not in last.stdout


def test_runs_list_filters_by_deployment_parent_and_time(ledger: str) -> None:
    workload = support_workload()
    workload.execute("hello", deployment_id="staging", store=ledger, run_id="run-staging")
    child = workload.fork("run-completed", at_seq=1, store=ledger)
    by_deployment = codon_json("runs", "list", "--ledger", ledger, "--deployment", "staging")
    assert [r["run_id"] for r in by_deployment] == ["run-staging"]
    children = codon_json("runs", "list", "--ledger", ledger, "--parent", "run-completed")
    assert [r["run_id"] for r in children] == [child.run_id]
    assert len(codon_json("runs", "list", "--ledger", ledger, "--since", "1h")) == 6
    assert codon_json("runs", "list", "--ledger", ledger, "--until", "2000-01-01") == []
    assert codon_json("runs", "list", "--ledger", ledger, "--since", "2099-01-01T00:00+02:00") == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--since", "yesterday"], "--since must be an ISO 8601 time"),
        (["--until", "5 parsecs"], "--until must be an ISO 8601 time"),
        (["--after", "no-such-run"], "no-such-run"),
        (["--limit", "0"], "--limit must be a positive number"),
    ],
)
def test_runs_list_bad_paging_and_time_options_exit_2_with_one_line(
    ledger: str, args: list[str], said: str
) -> None:
    done = codon("runs", "list", "--ledger", ledger, *args)
    assert_clean_failure(done, 2)
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
