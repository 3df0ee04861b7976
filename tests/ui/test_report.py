"""``codon report``: one self-contained HTML file, opened from file:// with every network
request blocked, renders the run page's views and sends no request anywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from . import _runs
from .conftest import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("ui-report") / "ledger.db"
    url = f"sqlite:///{path}"
    _runs.record_fanout(url)
    _runs.record_tampered(url, path)
    return {"url": url, "path": path, "dir": path.parent}


def _codon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codon_sdk", *args], capture_output=True, text=True, timeout=120
    )


def _report(ledger: dict[str, Any], run_id: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = ledger["dir"] / f"{run_id}.html"
    done = _codon("report", run_id, "--ledger", ledger["url"], "--out", str(out))
    return out, done


def _open_offline(page: Any, file: Path) -> list[str]:
    """Open ``file`` with every request but the file itself aborted; returns every request."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    file_url = file.resolve().as_uri()

    def route(r: Any) -> None:
        if r.request.url == file_url:
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.goto(file_url)
    return requests


def test_the_report_renders_offline_and_sends_no_request(page: Any, ledger: dict[str, Any]) -> None:
    out, done = _report(ledger, _runs.FANOUT)
    assert done.returncode == 0, done.stderr
    assert "verification at export: unanchored" in done.stdout
    html = out.read_text()
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(?!data:)', html)  # no fetch
    requests = _open_offline(page, out)
    page.get_by_test_id("graph-node").first.wait_for()
    assert "verification at export: unanchored" in page.locator("#mode").inner_text()
    nodes = page.locator("[data-testid=graph-node]").evaluate_all(
        "ns => ns.map(n => [n.dataset.node, n.dataset.activations])"
    )
    assert nodes == [["plan", "1"], ["research", "3"], ["review", "4"]]
    assert page.locator("[data-testid=timeline-bar]").count() == 8
    page.locator("[data-testid=activation-row][data-index='1']").click()
    page.get_by_test_id("llm-call").wait_for()
    assert page.get_by_test_id("llm-answer").inner_text().strip() == _runs.ANSWER
    assert "What is the capital of France?" in page.get_by_test_id("llm-prompt").inner_text()
    assert page.get_by_test_id("approver").inner_text() == _runs.APPROVER
    page.locator("[data-testid=panel-input] [data-testid=token-link]").click()
    assert page.get_by_test_id("lineage-emitter").inner_text() == "#0 plan (completed)"
    page.get_by_test_id("show-events").click()
    assert page.locator("[data-testid=event-row]").count() == 31
    screenshot(page, "report")
    assert requests == [out.resolve().as_uri()]  # no request left the page


def test_a_tampered_runs_report_says_tampered(page: Any, ledger: dict[str, Any]) -> None:
    out, done = _report(ledger, _runs.TAMPERED)
    assert done.returncode == 1
    assert "verification at export: tampered" in done.stdout
    assert "does not verify" in done.stderr
    requests = _open_offline(page, out)
    page.get_by_test_id("tampered-banner").wait_for()
    assert page.get_by_test_id("verification-badge").inner_text() == "tampered"
    assert "(tampered)" in page.title()
    page.get_by_test_id("finding-link").click()
    row = page.locator(f"[data-testid=event-row][data-seq='{_runs.TAMPERED_SEQ}']")
    row.wait_for()
    assert "highlight" in (row.get_attribute("class") or "")
    assert requests == [out.resolve().as_uri()]


def test_report_of_an_unknown_run_or_to_a_missing_directory_is_refused(
    ledger: dict[str, Any], tmp_path: Path
) -> None:
    done = _codon("report", "nope", "--ledger", ledger["url"], "--out", str(tmp_path / "x.html"))
    assert done.returncode == 2
    assert "no run 'nope'" in done.stderr
    assert not (tmp_path / "x.html").exists()
    done = _codon(
        "report", _runs.FANOUT, "--ledger", ledger["url"], "--out", str(tmp_path / "no/x.html")
    )
    assert done.returncode == 2
    assert "does not exist" in done.stderr
