"""Docs are code: every page's examples run, and every ``codon`` command shown parses.

Each page with code runs in a fresh interpreter and a fresh temporary directory
(``_runner.py`` says what runs and which hidden set-ups a page may ask for).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codon_sdk.cli._main import build_parser

from ._runner import SKIPPED, Page, PageError, parse_page

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNNER = Path(__file__).with_name("_runner.py")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.relative_to(DOCS).parts)


def _page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


PAGES = _pages()
RUNNABLE = [p for p in PAGES if parse_page(p).runs]


def _clean_env() -> dict[str, str]:
    """The environment a reader starts from: none of this machine's Codon, OTel or OpenAI
    settings, so a page only sees what it sets itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODON_", "OTEL_", "OPENAI_"))}
    env.pop("ORG_NAMESPACE", None)
    return env


def test_the_site_has_pages_and_examples_that_run() -> None:
    """The collection below is not empty by accident: the pages exist and most have code."""
    assert len(PAGES) >= 10
    assert len(RUNNABLE) >= 8


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_every_code_block_names_its_language(path: Path) -> None:
    """A block without a language would silently not run; markers only precede blocks."""
    try:
        parse_page(path)
    except PageError as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize("path", RUNNABLE, ids=_page_id)
def test_page_examples_run(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The page's python blocks (and its bash blocks marked to run) run in order, unchanged."""
    page = parse_page(path)
    env = _clean_env()
    if "postgres" in page.setups:
        env["CODON_DOCS_PG_URL"] = request.getfixturevalue("pg_url")
    done = _run_page([sys.executable, "-W", "error", str(RUNNER), str(path)], tmp_path, env)
    if done.returncode == SKIPPED and not IN_CI:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, (
        f"{_page_id(path)} failed (exit {done.returncode})\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )


def _run_page(argv: list[str], cwd: Path, env: dict[str, str]) -> Any:
    """Run a page in its own process group; past the timeout, kill the whole group (a page
    that runs pytest or a server would otherwise leave its children running) and fail."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=110)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"{argv[-1]} did not finish in 110 s\n--- stdout\n{out}\n--- stderr\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _command_lines(page: Page) -> list[tuple[int, list[str]]]:
    """Each ``codon ...`` command in the page's bash blocks, as argv after ``codon``."""
    found = []
    for block in page.blocks:
        if block.lang != "bash":
            continue
        text = block.code.replace("\\\n", " ")
        for offset, line in enumerate(text.splitlines()):
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words = list(lexer)
            while words:
                cut = next(
                    (i for i, w in enumerate(words) if w in ("|", "||", "&&", ";", ">", "<")),
                    len(words),
                )
                command, words = words[:cut], words[cut + 1 :]
                if command[:1] == ["codon"]:
                    found.append((block.line + offset, command[1:]))
    return found


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_every_codon_command_shown_parses(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A documented ``codon`` command line names commands and options the parser has."""
    for line, argv in _command_lines(parse_page(path)):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            if exc.code != 0:
                pytest.fail(
                    f"{_page_id(path)}:{line}: `codon {shlex.join(argv)}` does not parse: "
                    f"{capsys.readouterr().err.strip()}"
                )
