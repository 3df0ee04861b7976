"""Retention on a real SQLite file and a real PostgreSQL schema: ``codon retention apply``
erases only runs that ended longer ago than the limit and are not held; per-workload
policies and legal holds decide the rest."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from codon_sdk import CodonWorkload, open_store, verify_run
from codon_sdk.errors import ConfigurationError
from codon_sdk.stores import (
    apply_retention,
    expired_runs,
    hold_run,
    legal_holds,
    retention_policies,
    set_retention,
)


def _workload(name: str) -> CodonWorkload:
    wl = CodonWorkload(name=name, version="1")

    def step(message: Any, *, runtime: Any, context: Any) -> Any:
        if message == "pause":
            return runtime.interrupt("wait")
        return message

    wl.add_node(step, name="step", role="r")
    return wl


def _codon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _erased(url: str, run_id: str) -> int:
    report = verify_run(url, run_id)
    assert not any(f.tamper for f in report.findings), report.summary()
    return sum(1 for f in report.findings if f.code == "erased")


def test_apply_older_than_erases_only_expired_ended_unheld_runs(ledger_url: str) -> None:
    wl = _workload("kept-for-a-while")
    old = wl.execute("old", deployment_id="d", store=ledger_url).run_id
    old_held = wl.execute("old-held", deployment_id="d", store=ledger_url).run_id
    old_paused = wl.execute("pause", deployment_id="d", store=ledger_url).run_id
    with open_store(ledger_url) as store:
        hold_run(store, old_held, reason="audit", actor="counsel")
    time.sleep(2.5)
    young = wl.execute("young", deployment_id="d", store=ledger_url).run_id
    dry = _codon("retention", "apply", "--older-than", "2s", "--ledger", ledger_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert old in dry.stdout
    assert young not in dry.stdout
    assert old_held not in dry.stdout
    assert old_paused not in dry.stdout  # paused: not ended
    assert _erased(ledger_url, old) == 0
    with open_store(ledger_url) as store:
        now = store.get_run(young).finished_us
        assert now is not None
        done = apply_retention(store, older_than_s=2, actor="ops", now=now)
        assert [e.run_id for e in done] == [old]
        events = store.get_run(old).event_count
        assert apply_retention(store, older_than_s=2, actor="ops", now=now) == []  # once
    assert _erased(ledger_url, old) == events  # every event of the expired run
    for kept in (old_held, old_paused, young):
        assert _erased(ledger_url, kept) == 0, kept


def test_workload_policies_decide_when_no_age_is_given(ledger_url: str) -> None:
    short, other = _workload("short-lived"), _workload("no-policy")
    a = short.execute("a", deployment_id="d", store=ledger_url).run_id
    b = other.execute("b", deployment_id="d", store=ledger_url).run_id
    with open_store(ledger_url) as store:
        set_retention(store, "short-lived", 30)
        assert retention_policies(store) == [("short-lived", 30)]
        now = store.get_run(a).started_us
        assert expired_runs(store, older_than_s=None, now=now + 29 * 86_400 * 10**6) == []
        later = expired_runs(store, older_than_s=None, now=now + 31 * 86_400 * 10**6)
        assert [info.run_id for info in later] == [a]  # the workload without a policy stays
        assert apply_retention(store, actor="ops") == []  # nothing expired yet
    assert _erased(ledger_url, a) == 0
    assert _erased(ledger_url, b) == 0
    cli = _codon(
        "retention", "set", "--workload", "short-lived", "--days", "0", "--ledger", ledger_url
    )
    assert cli.returncode == 0, cli.stderr
    listed = _codon("retention", "list", "--ledger", ledger_url)
    assert "no retention policy" in listed.stdout


def test_holds_are_listed_and_released(ledger_url: str) -> None:
    run_id = _workload("held").execute("x", deployment_id="d", store=ledger_url).run_id
    held = _codon("retention", "hold", run_id, "--reason", "case 17", "--ledger", ledger_url)
    assert held.returncode == 0, held.stderr
    with open_store(ledger_url) as store:
        (hold,) = legal_holds(store)
        assert (hold.run_id, hold.reason) == (run_id, "case 17")
    listed = _codon("retention", "list", "--ledger", ledger_url)
    assert run_id in listed.stdout
    assert "case 17" in listed.stdout
    erase = _codon("retention", "apply", "--older-than", "0s", "--ledger", ledger_url)
    assert erase.returncode == 0
    assert _erased(ledger_url, run_id) == 0
    released = _codon("retention", "release", run_id, "--ledger", ledger_url)
    assert released.returncode == 0, released.stderr
    twice = _codon("retention", "release", run_id, "--ledger", ledger_url)
    assert twice.returncode == 2
    assert "no legal hold" in twice.stderr


def test_bad_retention_settings_are_refused(sqlite_url: str) -> None:
    _workload("w").execute("x", deployment_id="d", store=sqlite_url)
    with open_store(sqlite_url) as store:
        for days in (-1, 1.5, "30"):
            with pytest.raises(ConfigurationError, match="whole number of days"):
                set_retention(store, "w", days)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="positive duration"):
            apply_retention(store, older_than_s=-5, actor="ops")
    bad = _codon("retention", "apply", "--older-than", "six months", "--ledger", sqlite_url)
    assert bad.returncode == 2
    assert "--older-than must be an age" in bad.stderr
