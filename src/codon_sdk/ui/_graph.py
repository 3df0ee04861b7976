"""A workload's or a run's graph as Mermaid and Graphviz DOT text (``codon graph``).

Node names come from a ledger (or a workload's code) and are put in quoted labels with
every character that could end the label or start markup escaped, so a hostile name
stays a label.
"""

from __future__ import annotations

import re
from typing import Any

from codon_sdk import CodonWorkload
from codon_sdk._text import printable

__all__ = ["graph_of_workload", "to_dot", "to_mermaid"]


def graph_of_workload(workload: CodonWorkload) -> dict[str, Any]:
    """The graph document of a workload's definition (no activations)."""
    return {
        "nodes": [
            {
                "name": spec.name,
                "role": spec.role,
                "activations": 0,
                "status": "not run",
                "outcomes": {},
            }
            for spec in workload.nodes
        ],
        "edges": [[a, b] for a, b in workload.topology],
        "entry_nodes": list(workload.default_entry_nodes()),
    }


def _label(node: dict[str, Any]) -> str:
    text = printable(node.get("name"))
    if node.get("activations"):
        text += f" x{node['activations']}"
        failed = node.get("outcomes", {}).get("failed")
        if failed:
            text += f" ({failed} failed)"
    return text


def _ids(graph: dict[str, Any]) -> dict[str, str]:
    return {str(n.get("name")): f"n{i}" for i, n in enumerate(graph.get("nodes", []))}


_MERMAID_UNSAFE = re.compile(r'["<>&#;`|\[\](){}]')


def to_mermaid(graph: dict[str, Any]) -> str:
    """``flowchart LR`` with a node per graph node and a class per status."""
    ids = _ids(graph)
    lines = ["flowchart LR"]
    for node in graph.get("nodes", []):
        label = _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group())};", _label(node))
        lines.append(f'    {ids[str(node.get("name"))]}["{label}"]')
    for source, target in graph.get("edges", []):
        if source in ids and target in ids:
            lines.append(f"    {ids[source]} --> {ids[target]}")
    for node in graph.get("nodes", []):
        status = str(node.get("status", "not run")).replace(" ", "_")
        lines.append(f"    class {ids[str(node.get('name'))]} {status}")
    lines += [
        "    classDef completed fill:#e6f4ea,stroke:#1e7d32",
        "    classDef failed fill:#fdecea,stroke:#c62828",
        "    classDef interrupted fill:#fff4e5,stroke:#ef6c00",
        "    classDef running fill:#e3f2fd,stroke:#1565c0",
        "    classDef not_run fill:#f5f5f5,stroke:#9e9e9e",
    ]
    return "\n".join(lines) + "\n"


_COLOURS = {
    "completed": "#e6f4ea",
    "failed": "#fdecea",
    "interrupted": "#fff4e5",
    "running": "#e3f2fd",
}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: dict[str, Any]) -> str:
    """A ``digraph`` with filled boxes coloured by status."""
    ids = _ids(graph)
    lines = ["digraph codon {", "    rankdir=LR;", '    node [shape=box, style="rounded,filled"];']
    for node in graph.get("nodes", []):
        colour = _COLOURS.get(str(node.get("status")), "#f5f5f5")
        lines.append(
            f"    {ids[str(node.get('name'))]} [label={_dot_quote(_label(node))}, "
            f'fillcolor="{colour}"];'
        )
    for source, target in graph.get("edges", []):
        if source in ids and target in ids:
            lines.append(f"    {ids[source]} -> {ids[target]};")
    lines.append("}")
    return "\n".join(lines) + "\n"
