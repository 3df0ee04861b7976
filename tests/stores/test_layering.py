"""The stores layer imports only what lies below it, and its modules import no circle.

Read from the source (every import, at module level or inside a function): the stores
sit above ``errors``, ``_clock``, ``redaction`` and ``ledger`` and below the runtime, so
no arrow runs up to a floor above; ``_open`` and the backends share ``mask_url`` through
``_url`` instead of importing each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import codon_sdk.stores

STORES = Path(codon_sdk.stores.__file__).parent
ABOVE = (
    "codon_sdk.runtime",
    "codon_sdk.replay",
    "codon_sdk.agents",
    "codon_sdk.cli",
    "codon_sdk.ui",
    "codon_sdk.telemetry",
    "codon_sdk.llm",
    "codon_sdk.testing",
    "codon_sdk.instrumentation",
    "codon",
)


def imports(path: Path) -> set[str]:
    """The modules ``path`` imports (``from pkg import submodule`` counts as the submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                is_module = (STORES / f"{alias.name}.py").exists()
                found.add(child if node.module == "codon_sdk.stores" and is_module else node.module)
    return found


def graph() -> dict[str, set[str]]:
    return {
        f"codon_sdk.stores.{path.stem}": imports(path)
        for path in sorted(STORES.glob("_*.py"))
        if path.stem != "__init__"
    }


def test_no_store_module_imports_a_layer_above_the_stores() -> None:
    upward = {
        (module, target)
        for module, targets in graph().items()
        for target in targets
        if any(target == above or target.startswith(f"{above}.") for above in ABOVE)
    }
    assert upward == set()


def test_the_store_modules_import_no_circle() -> None:
    edges = graph()
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(edges.get(module, set())):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif target in edges:
                visit(target, [*path, target])

    for module in edges:
        visit(module, [module])
    assert circles == []
    assert "codon_sdk.stores._open" not in edges["codon_sdk.stores._postgres"]
