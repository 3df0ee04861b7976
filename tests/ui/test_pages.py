"""The explorer's pages in headless Chromium over a real server and a real ledger.

One ledger, one server and one browser serve the whole module; each test opens its own
page. Screenshots of each page go to test-artifacts/ui/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from codon_sdk import open_store, verify_run
from codon_sdk.ui import ExplorerServer

from . import _runs
from .conftest import screenshot

pytestmark = pytest.mark.browser

SMALL = 60


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("ui-pages") / "ledger.db"
    url = f"sqlite:///{path}"
    _runs.record_fanout(url)
    today = _runs.record_replayed(url)
    _runs.record_small(url, SMALL)
    _runs.record_concurrent(url)
    _runs.record_flaky(url)
    _runs.record_fork(url)
    _runs.record_tampered(url, path)
    return {"url": url, "path": path, "today": today}


@pytest.fixture(scope="module")
def server(ledger: dict[str, Any]) -> Iterator[ExplorerServer]:
    store = open_store(ledger["url"])
    try:
        with ExplorerServer(store, port=0, workloads={"counter": ledger["today"]}) as running:
            yield running
    finally:
        store.close()


def _rows(page: Any) -> list[str]:
    return page.locator("[data-testid=run-row]").evaluate_all(
        "rows => rows.map(r => r.dataset.runId)"
    )


def _llm_metadata(url: str) -> dict[str, Any]:
    """The recorded LLM call of the fan-out run, read straight from the store."""
    with open_store(url) as store:
        for entry in store.read(_runs.FANOUT):
            ev = orjson.loads(entry)
            if ev["type"] == "effect_recorded" and "llm" in ev.get("metadata", {}):
                return ev["metadata"]["llm"]  # type: ignore[no-any-return]
    raise AssertionError("the fan-out run recorded no LLM call")


def test_runs_page_lists_runs_newest_first_with_their_verdicts(
    page: Any, server: ExplorerServer
) -> None:
    page.goto(server.base_url + "/")
    page.wait_for_selector("[data-testid=run-row]")
    ids = _rows(page)
    assert ids[0] == _runs.TAMPERED  # recorded last
    assert len(ids) == 50  # one page of the 66 runs
    assert page.get_by_test_id("pager").inner_text().startswith("1\u201350 of ")
    tampered = page.locator(f"[data-run-id='{_runs.TAMPERED}'] [data-testid=verification]")
    assert tampered.inner_text() == "tampered"
    small = page.locator("[data-run-id='small-029'] [data-testid=verification]")
    assert small.inner_text() == "unanchored"
    forked = page.locator(f"[data-run-id='{_runs.FORKED}']")
    assert "forked from small-001" in forked.inner_text()
    screenshot(page, "runs-page")
    page.get_by_test_id("next").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=pager]')?.innerText?.startsWith('51')"
    )
    assert _runs.FANOUT in _rows(page)  # the oldest run is on the second page
    assert f"forks: {_runs.FORKED}" in page.locator("[data-run-id='small-001']").inner_text()


def test_filters_narrow_the_runs_page(page: Any, server: ExplorerServer) -> None:
    page.goto(server.base_url + "/")
    page.wait_for_selector("[data-testid=run-row]")
    page.get_by_test_id("filter-workload").fill("research")
    page.get_by_test_id("apply-filters").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=run-row]').length === 1")
    assert _rows(page) == [_runs.FANOUT]
    row = page.locator("[data-testid=run-row]")
    assert "completed" in row.inner_text()
    assert "$0.0000" in row.inner_text()  # the LLM call's cost is on the runs page
    page.goto(server.base_url + "/#/?deployment=staging&q=small-01")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=run-row]').length === 5")
    assert _rows(page) == ["small-019", "small-017", "small-015", "small-013", "small-011"]
    page.get_by_test_id("filter-status").select_option("failed")
    page.get_by_test_id("apply-filters").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=pager]')?.innerText === 'no runs match'"
    )
    assert _rows(page) == []


def test_run_page_shows_graph_timeline_activation_llm_call_and_approver(
    page: Any, server: ExplorerServer, ledger: dict[str, Any]
) -> None:
    page.goto(server.base_url + f"/#/runs/{_runs.FANOUT}")
    page.wait_for_selector("[data-testid=graph-node]")
    nodes = page.locator("[data-testid=graph-node]").evaluate_all(
        "ns => ns.map(n => [n.dataset.node, n.dataset.activations, n.dataset.status])"
    )
    assert nodes == [
        ["plan", "1", "completed"],
        ["research", "3", "completed"],  # the fan-out
        ["review", "4", "completed"],  # one paused, then resumed, and two more
    ]
    bars = page.locator("[data-testid=timeline-bar]").evaluate_all(
        "bs => bs.map(b => [b.dataset.node, b.dataset.outcome])"
    )
    assert bars[4] == ["review", "interrupted"]
    assert len(bars) == 8
    assert page.get_by_test_id("verification-badge").inner_text() == "unanchored"
    # the activation panel: the research activation that asked the model
    page.locator("[data-testid=activation-row][data-index='1']").click()
    call = page.get_by_test_id("llm-call")
    call.wait_for()
    llm = _llm_metadata(ledger["url"])
    assert page.get_by_test_id("llm-model").inner_text() == llm["response_model"]
    assert "What is the capital of France?" in page.get_by_test_id("llm-prompt").inner_text()
    assert page.get_by_test_id("llm-answer").inner_text().strip() == _runs.ANSWER
    assert page.get_by_test_id("llm-cost").inner_text() == f"${llm['cost_usd']:.6f}"
    usage = llm["usage"]
    assert page.get_by_test_id("llm-tokens").inner_text() == (
        f"{usage['input_tokens']} in / {usage['output_tokens']} out"
    )
    assert '"part": 0' in page.get_by_test_id("panel-input").inner_text()
    assert page.get_by_test_id("panel-result").inner_text().strip() == _runs.ANSWER
    assert "note.found" in page.get_by_test_id("panel-custom").inner_text()
    # token lineage: the input token came from plan's activation, and caused this one
    page.locator("[data-testid=panel-input] [data-testid=token-link]").click()
    page.get_by_test_id("lineage-detail").wait_for()
    assert page.get_by_test_id("lineage-emitter").inner_text() == "#0 plan (completed)"
    assert page.get_by_test_id("lineage-caused").inner_text().strip() == "#1 research (completed)"
    # who approved what
    approval = page.get_by_test_id("approval-row")
    assert page.get_by_test_id("approver").inner_text() == _runs.APPROVER
    assert "approve the finding" in approval.inner_text()
    assert _runs.ANSWER in approval.inner_text()
    # the interrupted activation, and the one resumed after approval
    page.locator("[data-testid=activation-row][data-index='4']").click()
    page.get_by_test_id("panel-interrupt").wait_for()
    assert "approve the finding" in page.get_by_test_id("panel-interrupt").inner_text()
    page.locator("[data-testid=activation-row][data-index='5']").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=activation-detail]')?.dataset.index === '5'"
    )
    assert "resumed after approval" in page.get_by_test_id("activation-panel").inner_text()
    screenshot(page, "run-page")


def test_compare_with_a_diverged_replay_highlights_the_first_divergence(
    page: Any, server: ExplorerServer
) -> None:
    page.goto(server.base_url + f"/#/runs/{_runs.REPLAYED}")
    page.get_by_test_id("replay-link").click()
    banner = page.get_by_test_id("first-divergence")
    banner.wait_for()
    assert "First divergent decision: activation #0 (count)" in banner.inner_text()
    assert "changed nodes: count" in page.get_by_test_id("logic-change").inner_text()
    left = page.locator("[data-testid=compare-left] [data-testid=compare-row]")
    right = page.locator("[data-testid=compare-right] [data-testid=compare-row]")
    assert left.nth(0).get_attribute("data-diverged") == "yes"
    assert "11" in left.nth(0).inner_text()  # recorded: 10 + 1
    assert "12" in right.nth(0).inner_text()  # today's code: 10 + 2
    screenshot(page, "compare-replay")
    page.goto(server.base_url + "/#/compare?left=small-001&right=small-002")
    page.get_by_test_id("first-divergence").wait_for()
    assert "activation #0 (count): input" in page.get_by_test_id("first-divergence").inner_text()
    assert "Logic id unchanged" in page.get_by_test_id("logic-change").inner_text()


def test_a_run_tampered_in_the_database_shows_tampered_and_links_to_the_event(
    page: Any, server: ExplorerServer, ledger: dict[str, Any]
) -> None:
    finding = verify_run(ledger["url"], _runs.TAMPERED).findings[0]
    assert finding.seq == _runs.TAMPERED_SEQ
    page.goto(server.base_url + f"/#/runs/{_runs.TAMPERED}")
    page.get_by_test_id("tampered-banner").wait_for()
    assert page.get_by_test_id("verification-badge").inner_text() == "tampered"
    link = page.get_by_test_id("finding-link")
    assert link.inner_text() == f"event #{finding.seq}"
    assert finding.message in page.get_by_test_id("finding").inner_text()
    link.click()
    row = page.locator(f"[data-testid=event-row][data-seq='{finding.seq}']")
    row.wait_for()
    assert "highlight" in (row.get_attribute("class") or "")
    assert "999" in row.inner_text()  # the forged value, shown as what the database holds
    screenshot(page, "tampered-run")


def test_a_running_runs_page_updates_by_itself(
    page: Any, server: ExplorerServer, ledger: dict[str, Any]
) -> None:
    live = _runs.LiveRun(ledger["url"])
    live.start()
    try:
        with open_store(live.url) as store:
            for _ in range(200):
                if store.has_run(live.run_id) and store.get_run(live.run_id).event_count >= 5:
                    break
                page.wait_for_timeout(25)
        page.goto(server.base_url + f"/#/runs/{live.run_id}")
        page.get_by_test_id("graph-node").first.wait_for()
        assert page.get_by_test_id("run-status").inner_text() == "running"
        before = int(page.get_by_test_id("event-count").inner_text())
        page.evaluate("window.__sameDocument = true")
        live.go()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=run-status]')?.innerText === 'completed'",
            timeout=15_000,
        )
        after = int(page.get_by_test_id("event-count").inner_text())
        assert after > before
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        c = page.locator("[data-testid=graph-node][data-node='c']")
        assert c.get_attribute("data-activations") == "1"
        screenshot(page, "live-run")
    finally:
        live.join()


def test_an_unknown_run_gives_a_page_that_says_so(page: Any, server: ExplorerServer) -> None:
    page.goto(server.base_url + "/#/runs/no-such-run")
    error = page.get_by_test_id("error")
    error.wait_for()
    assert re.search(r"no run 'no-such-run' in this ledger", error.inner_text())
    assert "HTTP 404" in error.inner_text()
    page.goto(server.base_url + "/")
    page.wait_for_selector("[data-testid=run-row]")  # the server keeps serving


def test_the_readme_screenshot_is_of_the_run_page(page: Any, server: ExplorerServer) -> None:
    """docs/images/run-page.png is made by this test (written only when it is missing or
    CODON_UPDATE_SCREENSHOTS=1), so the picture in the README is the page as it is."""
    import os

    target = Path(__file__).resolve().parents[2] / "docs" / "images" / "run-page.png"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server.base_url + f"/#/runs/{_runs.FANOUT}")
    page.locator("[data-testid=activation-row][data-index='1']").click()
    page.get_by_test_id("llm-call").wait_for()
    if os.environ.get("CODON_UPDATE_SCREENSHOTS") == "1" or not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=False)
    assert target.stat().st_size > 10_000


def test_the_timeline_shows_concurrency_retries_and_the_error(
    page: Any, server: ExplorerServer
) -> None:
    page.goto(server.base_url + f"/#/runs/{_runs.CONCURRENT}")
    page.get_by_test_id("timeline-bar").first.wait_for()
    lanes = page.locator("[data-testid=timeline-bar][data-node='work']").evaluate_all(
        "bs => bs.map(b => b.dataset.lane).sort()"
    )
    assert lanes == ["0", "1", "2"]  # three activations at once, three lanes
    screenshot(page, "concurrent-run")
    page.goto(server.base_url + f"/#/runs/{_runs.FLAKY}")
    bar = page.locator("[data-testid=timeline-bar][data-node='flaky']")
    bar.wait_for()
    assert (bar.get_attribute("data-outcome"), bar.get_attribute("data-retries")) == ("failed", "1")
    assert page.get_by_test_id("run-status").inner_text() == "failed"
    page.locator("[data-testid=activation-row][data-index='0']").click()
    error = page.get_by_test_id("panel-error")
    error.wait_for()
    assert "ValueError: upstream said no to job-7" in error.inner_text()
    assert "attempt 0: ValueError" in page.get_by_test_id("activation-panel").inner_text()
    screenshot(page, "failed-run")


def test_code_identity_says_whether_todays_code_still_has_it(
    page: Any, server: ExplorerServer
) -> None:
    page.goto(server.base_url + f"/#/runs/{_runs.REPLAYED}")
    page.locator("[data-testid=activation-row][data-index='0']").click()
    page.get_by_test_id("code-today").wait_for()
    assert page.get_by_test_id("code-today").inner_text() == "changed"  # count's code changed
    page.locator("[data-testid=activation-row][data-index='1']").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=activation-detail]')?.dataset.index === '1'"
    )
    assert page.get_by_test_id("code-today").inner_text() == "same"
    assert "changed" in page.get_by_test_id("identity").inner_text()
