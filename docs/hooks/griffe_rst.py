"""Griffe extension: the reST in the SDK's docstrings renders cleanly as Markdown.

The docstrings are written for people reading the source (and ``help()``), in a
light reST: Sphinx roles (``:class:`~codon_sdk.NodeSpec```) and literal blocks
introduced by ``::``. mkdocstrings renders Markdown, so this extension rewrites,
when the API reference is built and without touching the source:

- a role into inline code (``~a.b.C`` shown as ``C``, as Sphinx does);
- a ``::`` literal block into a fenced Python block (the ``::`` becomes ``:``, or
  disappears when it stands alone).
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|attr|mod|exc|obj|const):`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _literal_blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            out.append(line)
            i += 1
            continue
        head = line.rstrip()[:-2].rstrip()
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        indent = len(line) - len(line.lstrip())
        block: list[str] = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            block.append(lines[j])
            j += 1
        if not block:  # "::" without a literal block: leave the line alone
            out.append(line)
            i += 1
            continue
        while block and not block[-1].strip():
            block.pop()
        if head:
            out.append(f"{head}:")
        prefix = " " * indent
        code = textwrap.dedent("\n".join(block)).splitlines()
        out.extend(["", f"{prefix}```python", *(prefix + c for c in code), f"{prefix}```", ""])
        i = j
    return "\n".join(out)


def rewrite(text: str) -> str:
    """The docstring ``text`` with its reST roles and literal blocks made Markdown."""
    return _literal_blocks(_ROLE.sub(_role, text))


class ReSTToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
