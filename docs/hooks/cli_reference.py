"""MkDocs hook: the CLI reference, generated from ``codon``'s argument parser at build time.

A page holding the marker ``<!-- codon-cli-reference -->`` gets it replaced by one
section per command (every subcommand, at any depth): what it does, its usage
line, and a table of its arguments and options with their defaults. Nothing is
copied by hand, so the reference cannot drift from the parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- codon-cli-reference -->"


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, help, parser)`` of each direct subcommand, in the parser's order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(full command, help, parser)`` for the parser and every subcommand below it."""
    name = prefix or parser.prog
    yield name, parser.description or "", parser
    for sub_name, help_text, sub in _subcommands(parser):
        yield from _with_help(commands(sub, f"{name} {sub_name}"), help_text)


def _with_help(
    items: Iterator[tuple[str, str, argparse.ArgumentParser]], help_text: str
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    first = True
    for name, own, sub in items:
        yield name, (help_text or own) if first else own, sub
        first = False


def _sentence(text: str) -> str:
    """``text`` capitalised and ending with a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _names(action: argparse.Action) -> str:
    if action.option_strings:
        metavar = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
        return ", ".join(f"`{opt}{metavar}`" for opt in action.option_strings)
    return f"`{action.metavar or action.dest}`"


def _default(action: argparse.Action) -> str:
    if action.option_strings and action.nargs == 0:
        return ""
    if action.default in (None, argparse.SUPPRESS, []):
        return ""
    return f"`{action.default}`"


def _notes(action: argparse.Action) -> str:
    parts = [_escape(action.help or "")]
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        parts.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if isinstance(action, argparse._AppendAction):
        parts.append("repeatable")
    if action.required and action.option_strings:
        parts.append("required")
    if not action.option_strings and action.nargs == "?":
        parts.append("optional")
    return "; ".join(p for p in parts if p)


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
        and a.help != argparse.SUPPRESS
    ]


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage text without its ``usage:`` prefix (continuation lines dedented with it)."""
    prefix = "usage: "
    lines = parser.format_usage().strip().splitlines()
    lines[0] = lines[0].removeprefix(prefix)
    return "\n".join([lines[0], *(line.removeprefix(" " * len(prefix)) for line in lines[1:])])


def render(parser: argparse.ArgumentParser) -> str:
    """The Markdown reference of ``parser`` and all its subcommands."""
    out: list[str] = []
    for name, help_text, sub in commands(parser):
        level = "#" * min(2 + name.count(" "), 4)
        out.append(f"{level} `{name}`\n")
        if help_text:
            out.append(_sentence(help_text) + "\n")
        out.append(f"```text\n{_usage(sub)}\n```\n")
        children = list(_subcommands(sub))
        if children:
            out.append("| subcommand | what it does |\n|---|---|")
            out.extend(f"| `{name} {child}` | {_escape(text)} |" for child, text, _ in children)
            out.append("")
        actions = _arguments(sub)
        if actions:
            out.append("| argument | default | description |\n|---|---|---|")
            out.extend(f"| {_names(a)} | {_default(a)} | {_notes(a)} |" for a in actions)
            out.append("")
        if sub.epilog:
            out.append(f"{sub.epilog}\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from codon_sdk.cli._main import build_parser

    return markdown.replace(MARKER, render(build_parser()))
