"""Fixtures of the explorer's tests: one recorded ledger, one server and one headless
Chromium (Debian's ``chromium``, driven by Playwright) per test module.

Without chromium the browser tests skip, except under CI=true, where they fail: CI must
run them (``make test`` installs chromium first).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CODON_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"no chromium at {CHROMIUM}: `make test` installs Debian's chromium package"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the browser tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (never a browser Playwright downloads)."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context) that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    assert errors == [], f"script errors on the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    """Write a full-page screenshot as a test artefact (test-artifacts/ui/NAME.png)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path


@pytest.fixture(autouse=True)
def _org(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORG_NAMESPACE", "ui-tests")
    monkeypatch.delenv("CODON_LEDGER_URL", raising=False)
    monkeypatch.delenv("CODON_UI_TOKEN", raising=False)
