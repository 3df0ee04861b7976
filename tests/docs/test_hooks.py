"""The site's build hooks: the CLI reference from the parser, API pages, reST in docstrings."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from codon_sdk.cli._main import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _walk(parser: argparse.ArgumentParser, prefix: str = "codon") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [(prefix, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_walk(sub, f"{prefix} {name}"))
    return found


def test_every_command_and_option_is_in_the_generated_reference() -> None:
    """Each command (at any depth) has a section, and each of its options and arguments a row."""
    cli = _hook("cli_reference")
    text = cli.render(build_parser())
    commands = _walk(build_parser())
    assert len(commands) >= 9
    for command, parser in commands:
        assert f"`{command}`\n" in text, command
        section = text.split(f"`{command}`\n", 1)[1]
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            for option in action.option_strings or [action.metavar or action.dest]:
                assert f"`{option}" in section, f"{command}: {option}"


def test_the_cli_page_asks_for_the_generated_reference() -> None:
    cli = _hook("cli_reference")
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert cli.MARKER in page
    rendered = cli.on_page_markdown(page, None, None, None)
    assert cli.MARKER not in rendered
    assert "`codon verify`" in rendered


def test_api_pages_are_generated_for_the_modules_the_nav_names() -> None:
    """One nav line per module: the hook turns reference/api/<module>.md into its page."""
    api = _hook("api_pages")
    nav = [{"API": ["reference/api/index.md", "reference/api/codon_sdk.stores.md"]}]
    assert api.api_modules(nav) == ["codon_sdk.stores"]
    assert "::: codon_sdk.stores" in api.module_page("codon_sdk.stores")


def test_rest_roles_and_literal_blocks_in_docstrings_become_markdown() -> None:
    """Sphinx roles render as inline code and ``::`` blocks as fenced Python blocks."""
    griffe_rst = _hook("griffe_rst")
    text = (
        "See :class:`~codon_sdk.NodeSpec` and :func:`open_store`. For example::\n\n"
        "    x = 1\n\nDone."
    )
    assert griffe_rst.rewrite(text) == (
        "See `NodeSpec` and `open_store`. For example:\n\n```python\nx = 1\n```\n\nDone."
    )
    assert griffe_rst.rewrite("::\n\n    y = 2\n") == "\n```python\ny = 2\n```\n"
