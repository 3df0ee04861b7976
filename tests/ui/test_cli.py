"""``codon ui``, ``codon graph`` and the per-activation ``codon runs show``, as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import _runs


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("ui-cli") / "ledger.db"
    url = f"sqlite:///{path}"
    _runs.record_fanout(url)
    _runs.record_tampered(url, path)
    (path.parent / "today.py").write_text(
        "from tests.ui._runs import counter_workload\nworkload = counter_workload(2)\n"
    )
    return {"url": url, "path": path, "dir": path.parent}


def _codon(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_runs_show_prints_each_activation_with_llm_calls_interrupts_and_approvals(
    ledger: dict[str, Any],
) -> None:
    done = _codon("runs", "show", _runs.FANOUT, "--ledger", ledger["url"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "  activations:" in out
    assert "#1    research [t2] completed" in out
    assert '          input   {"part":0,"topic":"otters"}' in out
    assert f'          result  "{_runs.ANSWER}"' in out
    assert re.search(r"llm     gpt-4o-mini\S*: 27 in / 8 out tokens, \$0\.0000\d+", out)
    assert '          asks    "approve the finding"; payload {"finding":' in out
    assert "#5    review [t5] completed" in out
    assert "(resumed)" in out
    assert f'approved: {_runs.APPROVER} answered "approve the finding"' in out


def test_runs_show_warns_above_a_tampered_run(ledger: dict[str, Any]) -> None:
    done = _codon("runs", "show", _runs.TAMPERED, "--ledger", ledger["url"])
    assert done.returncode == 1
    first = done.stdout.splitlines()[0]
    assert "does not verify" in first or "tampered" in first.lower()
    assert "#0    count [t1] completed" in done.stdout


def test_graph_prints_a_run_as_mermaid_and_dot(ledger: dict[str, Any]) -> None:
    mermaid = _codon("graph", _runs.FANOUT, "--ledger", ledger["url"])
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.splitlines()[:4] == [
        "flowchart LR",
        '    n0["plan x1"]',
        '    n1["research x3"]',
        '    n2["review x4"]',
    ]
    assert "    n0 --> n1" in mermaid.stdout
    dot = _codon("graph", _runs.FANOUT, "--ledger", ledger["url"], "--format", "dot")
    assert dot.stdout.startswith("digraph codon {")
    assert '    n2 [label="review x4", fillcolor="#e6f4ea"];' in dot.stdout
    assert "    n1 -> n2;" in dot.stdout


def test_graph_prints_a_workload_definition(ledger: dict[str, Any]) -> None:
    done = _codon("graph", "--workload", "today:workload", cwd=ledger["dir"])
    assert done.returncode == 0, done.stderr
    assert '    n0["count"]' in done.stdout
    assert "    n0 --> n1" in done.stdout


def test_graph_needs_a_run_or_a_workload(ledger: dict[str, Any]) -> None:
    done = _codon("graph", "--ledger", ledger["url"])
    assert done.returncode == 2
    assert "RUN_ID or --workload" in done.stderr
    done = _codon("graph", "nope", "--ledger", ledger["url"])
    assert done.returncode == 2
    assert "no run 'nope'" in done.stderr


def test_ui_beyond_loopback_without_a_token_is_refused(ledger: dict[str, Any]) -> None:
    done = _codon("ui", "--ledger", ledger["url"], "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert "needs a token" in done.stderr
    assert "CODON_UI_TOKEN" in done.stderr


def test_ui_without_a_ledger_says_where_it_looked(tmp_path: Path) -> None:
    done = _codon("ui", "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert "no ledger at sqlite:///.codon/ledger.db" in done.stderr


def test_ui_over_an_unreachable_store_says_so() -> None:
    done = _codon("ui", "--ledger", "postgresql://postgres@127.0.0.1:1/none", "--port", "0")
    assert done.returncode == 2
    assert "cannot open ledger" in done.stderr


def test_ui_prints_its_url_and_serves_the_ledger(ledger: dict[str, Any]) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "CODON_UI_TOKEN": "a-token-of-twenty-chars",
    }
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codon_sdk",
            "ui",
            "--ledger",
            ledger["url"],
            "--port",
            "0",
            "--workload",
            "today:workload",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ledger["dir"],
        env=env,
    ) as proc:
        _served(proc)


def _served(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/\?token=a-token-of-twenty-chars)", line)
        assert match, line
        with httpx.Client(timeout=30) as http:
            page = http.get(match.group(1))
            assert page.status_code == 200
            runs = http.get(match.group(1).split("?")[0] + "api/runs").json()
            assert {r["run_id"] for r in runs["items"]} == {_runs.FANOUT, _runs.TAMPERED}
            bare = httpx.get(match.group(1).split("?")[0] + "api/runs")
            assert bare.status_code == 401  # a token given on loopback is required too
    finally:
        proc.terminate()
        proc.wait(10)
