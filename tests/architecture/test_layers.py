"""The layers and their seams, checked on the source (see docs/architecture.md).

- Nothing outside a package imports its private modules: another layer uses a package
  through its ``__init__`` face (``codon_sdk.runtime``, not ``codon_sdk.runtime._engine``).
- Imports run down the floors, never up: a layer uses the ones below it. An import under
  ``if TYPE_CHECKING:`` is an annotation, not a dependency, and may point anywhere.
- No import circles: between packages, nor between the modules of one package.
"""

from __future__ import annotations

import graphlib
from collections import defaultdict

import pytest
from tests.architecture._imports import Import, imports

FLOORS: dict[str, int] = {
    # the base every layer may use
    "codon_sdk._clock": 0,
    "codon_sdk._text": 0,
    "codon_sdk._version": 0,
    "codon_sdk._warn": 0,
    "codon_sdk.errors": 0,
    # the layers, bottom up
    "codon_sdk.redaction": 1,
    "codon_sdk.identity": 2,
    "codon_sdk.ledger": 3,
    "codon_sdk.stores": 4,
    "codon_sdk.telemetry": 5,
    "codon_sdk.sinks": 5,
    "codon_sdk.governance": 5,
    "codon_sdk.runtime": 6,
    "codon_sdk.replay": 7,
    "codon_sdk.integrations": 7,
    "codon_sdk.executors": 7,
    "codon_sdk.llm": 8,
    # the documented top-level face, and what is built on it
    "codon_sdk": 9,
    "codon_sdk.agents": 10,
    "codon_sdk.instrumentation": 10,
    "codon_sdk.testing": 10,
    "codon_sdk.ui": 10,
    "codon_sdk.cli": 11,
    "codon_sdk.__main__": 12,
    # integrations (their own distribution namespace)
    "codon": 12,
    "codon.instrumentation": 12,
}
INTEGRATIONS_FLOOR = 12  # every codon.instrumentation.<x>


def layer(module: str) -> str:
    """The package (layer) a module belongs to."""
    parts = module.split(".")
    if parts[0] == "codon":
        return ".".join(parts[:3])
    if len(parts) >= 2 and ".".join(parts[:2]) in FLOORS:
        return ".".join(parts[:2])
    return "codon_sdk"


def floor(layer_name: str) -> int:
    if layer_name.startswith("codon.instrumentation."):
        return INTEGRATIONS_FLOOR
    if layer_name not in FLOORS:
        pytest.fail(f"{layer_name} has no floor: add it to FLOORS in {__file__}")
    return FLOORS[layer_name]


def private_owner(target: str) -> str | None:
    """The package whose private module ``target`` names, if it names one."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if i >= 1 and part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def private_imports(found: list[Import]) -> list[str]:
    bad = []
    for imp in found:
        owner = private_owner(imp.target)
        if owner is None or owner == "codon_sdk":  # the base modules are shared by all
            continue
        if imp.importer != owner and not imp.importer.startswith(owner + "."):
            bad.append(f"{imp.where()}: {imp.target} (use {owner}'s face: {owner}/__init__.py)")
    return bad


def upward_imports(found: list[Import]) -> list[str]:
    bad = []
    for imp in found:
        if imp.typing_only:
            continue
        src, dst = layer(imp.importer), layer(imp.target)
        if src != dst and floor(dst) > floor(src):
            bad.append(f"{imp.where()}: {src} (floor {floor(src)}) imports {dst} ({floor(dst)})")
    return bad


def circles(edges: dict[str, set[str]]) -> list[str]:
    """Each import circle in ``edges``, as one line (empty when the graph has none)."""
    found = []
    graph = {node: set(targets) for node, targets in edges.items()}
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            found.append(" -> ".join(cycle))
            graph[cycle[1]].discard(cycle[0])  # break it and look for the next one
            continue
        return found


def package_edges(found: list[Import]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        src, dst = layer(imp.importer), layer(imp.target)
        if not imp.typing_only and src != dst:
            edges[src].add(dst)
    return edges


def module_edges(found: list[Import]) -> dict[str, set[str]]:
    """Imports between the modules of one package (a package's face excluded: it imports
    its modules by design, and they do not import it)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        if imp.typing_only or layer(imp.importer) != layer(imp.target):
            continue
        if imp.target == layer(imp.importer) or imp.importer == layer(imp.importer):
            continue
        edges[imp.importer].add(imp.target)
    return edges


@pytest.fixture(scope="module")
def found() -> list[Import]:
    return imports()


def test_no_layer_imports_another_ones_private_modules(found: list[Import]) -> None:
    assert private_imports(found) == []


def test_imports_run_down_the_floors(found: list[Import]) -> None:
    assert upward_imports(found) == []


def test_no_import_circles_between_packages(found: list[Import]) -> None:
    assert circles(package_edges(found)) == []


def test_no_import_circles_between_modules(found: list[Import]) -> None:
    assert circles(module_edges(found)) == []


def test_the_checks_catch_what_they_are_for() -> None:
    """Each rule flags a planted violation (so a passing check is not an empty one)."""
    planted = [
        Import(
            "codon.instrumentation.x._a",
            "codon/instrumentation/x/_a.py",
            "codon_sdk.runtime._engine",
            1,
            False,
        ),
        Import(
            "codon_sdk.stores._base", "codon_sdk/stores/_base.py", "codon_sdk.runtime", 2, False
        ),
        Import("codon_sdk.errors", "codon_sdk/errors.py", "codon_sdk.runtime", 3, True),
    ]
    assert len(private_imports(planted)) == 1
    assert upward_imports(planted) == [
        "codon_sdk/stores/_base.py:2: codon_sdk.stores (floor 4) imports codon_sdk.runtime (6)"
    ]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) != []
    assert circles({"a": {"b"}, "b": {"c"}}) == []
