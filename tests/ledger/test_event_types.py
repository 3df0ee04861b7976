"""The table of ledger event types: each built-in type declared once, every consumer handles
every role it can be given, and a name the table does not declare follows the explicit
custom rule (replay compares it as a decision), never a fall-through.
"""

from __future__ import annotations

import ast
import enum
from pathlib import Path
from typing import Any

import orjson
import pytest

import codon_sdk
import codon_sdk.ledger as ledger
from codon_sdk import CodonWorkload, check_chain
from codon_sdk.ledger import (
    BUILTIN_TYPES,
    CUSTOM_EVENT,
    EVENT_TYPES,
    RUN_FINISHED,
    RUN_STARTED,
    RUN_STATUSES,
    TERMINAL_STATUSES,
    ChainRole,
    EventType,
    ReplayRole,
    ReportRole,
    ResumeRole,
    event_type,
)
from codon_sdk.ledger._chain import walk_chain
from codon_sdk.ledger._merkle import leaf_hash

SRC = Path(codon_sdk.__file__).resolve().parents[1]
DOCS = SRC.parent / "docs"

#: Each consumer and the role it reads from every event type.
CONSUMERS: dict[str, tuple[type[enum.Enum], str]] = {
    "resume": (ResumeRole, "codon_sdk/runtime/_rebuild.py"),
    "replay": (ReplayRole, "codon_sdk/runtime/_compare.py"),
    "report": (ReportRole, "codon_sdk/runtime/_report.py"),
    "chain": (ChainRole, "codon_sdk/ledger/_chain.py"),
}


def _roles_named(path: Path, role: type[enum.Enum]) -> set[str]:
    """The members of ``role`` that the module at ``path`` names (``Role.MEMBER``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == role.__name__
    }


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_every_consumer_handles_every_role_it_can_be_given(consumer: str) -> None:
    """A consumer names each member of its role enum (its dispatch handles it): a role added
    to the table for a new event type fails here until the consumer is taught it."""
    role, module = CONSUMERS[consumer]
    assert _roles_named(SRC / module, role) == {member.name for member in role}


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_the_declared_types_use_exactly_the_roles_of_each_consumer(consumer: str) -> None:
    """Every role a consumer handles is given to some declared type or to the custom rule, and
    every declared type (and the rule) has one: no dead role, no type without a treatment."""
    role, _ = CONSUMERS[consumer]
    given = [getattr(t, consumer) for t in (*EVENT_TYPES, CUSTOM_EVENT)]
    assert all(isinstance(r, role) for r in given)
    assert set(given) == set(role)


def test_each_builtin_type_is_declared_once_and_named_by_one_constant() -> None:
    names = [t.name for t in EVENT_TYPES]
    assert len(names) == len(set(names)) == 17
    assert frozenset(names) == BUILTIN_TYPES
    constants = {
        name: getattr(ledger, name)
        for name in ledger.__all__
        if name.isupper() and isinstance(getattr(ledger, name), str)
    }
    assert set(constants.values()) == BUILTIN_TYPES
    assert all(value == name.lower() for name, value in constants.items())
    assert all(event_type(t.name) is t for t in EVENT_TYPES)
    assert [t.name for t in EVENT_TYPES if not t.written] == ["node_started"]


@pytest.mark.parametrize("name", ["acme.approved", "langgraph.invocation", "Run_Started", ""])
def test_a_name_the_table_does_not_declare_follows_the_custom_rule(name: str) -> None:
    spec = event_type(name)
    assert spec is CUSTOM_EVENT
    assert spec.replay is ReplayRole.DECISION
    assert (spec.resume, spec.report, spec.chain) == (
        ResumeRole.IGNORE,
        ReportRole.PLAIN,
        ChainRole.LINK,
    )


def test_terminal_statuses_are_the_run_statuses_run_finished_records() -> None:
    statuses = set(RUN_STATUSES)
    assert sorted(TERMINAL_STATUSES) == ["completed", "failed", "stopped"]
    assert sorted(statuses - TERMINAL_STATUSES) == ["interrupted", "running"]


# --------------------------------------------------------------------------- no literals


def _spelled(tree: ast.AST) -> list[tuple[int, str]]:
    """Built-in type names spelled as literals where code decides by type: comparisons,
    ``case`` patterns and dict keys."""
    found: list[tuple[int, str]] = []

    def literals(node: ast.AST | None) -> None:
        for sub in ast.walk(node) if node is not None else ():
            if isinstance(sub, ast.Constant) and sub.value in BUILTIN_TYPES:
                found.append((sub.lineno, str(sub.value)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                literals(side)
        elif isinstance(node, ast.MatchValue):
            literals(node.value)
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                literals(key)
    return found


def test_no_module_spells_a_builtin_type_where_it_decides_by_type() -> None:
    """Code that treats events by type names the constants (or, better, the roles) of the
    table; only the table spells the names."""
    table = SRC / "codon_sdk" / "ledger" / "_event_types.py"
    offenders = [
        f"{path.relative_to(SRC)}:{line}: {name!r}"
        for path in sorted(SRC.rglob("*.py"))
        if path != table
        for line, name in _spelled(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_literal_check_finds_a_spelled_type() -> None:
    source = (
        'if ev.type == "node_completed": pass\n'
        'x = {"run_resumed": 1}\n'
        'match k:\n    case "token_enqueued": pass\n'
    )
    assert [name for _, name in _spelled(ast.parse(source))] == [
        "node_completed",
        "run_resumed",
        "token_enqueued",
    ]


# --------------------------------------------------------------------------- the chain rules


def _chain(types: list[str]) -> list[bytes]:
    """A well-formed run of events of the given types (canonical entries, linked)."""
    entries: list[bytes] = []
    prev: str | None = None
    for seq, kind in enumerate(types):
        obj: dict[str, Any] = {"v": 1, "run_id": "r", "seq": seq, "type": kind, "ts": 10 + seq}
        if prev is not None:
            obj["prev"] = prev
        if kind == RUN_FINISHED:
            obj["metadata"] = {"events": seq}
        entry = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        prev = leaf_hash(entry).hex()
        entries.append(entry)
    return entries


@pytest.mark.parametrize("spec", [*EVENT_TYPES, CUSTOM_EVENT], ids=lambda t: t.name)
def test_the_chain_rules_place_each_type_by_its_declared_role(spec: EventType) -> None:
    """In the middle of a run only an OPEN or CLOSE type breaks the chain; only OPEN may
    come first; a PAUSE is listed as a pause."""
    name = "acme.approved" if spec is CUSTOM_EVENT else spec.name
    middle = check_chain(_chain([RUN_STARTED, name, "acme.after", RUN_FINISHED]))
    assert middle.ok is (spec.chain in (ChainRole.PAUSE, ChainRole.LINK)), middle
    if spec.chain is ChainRole.OPEN:
        assert middle.bad_seq == 1
        assert "may only be the first event" in str(middle.problem)
    if spec.chain is ChainRole.CLOSE:
        assert middle.bad_seq == 2
        assert "follows run_finished" in str(middle.problem)
    first = check_chain(_chain([name, RUN_FINISHED]))
    assert first.ok is (spec.chain is ChainRole.OPEN), first
    walk = walk_chain(_chain([RUN_STARTED, name, RUN_FINISHED]))
    assert walk.pauses == ([1] if spec.chain is ChainRole.PAUSE else [])


# --------------------------------------------------------------------------- replay


APPROVAL = {"by": "ada"}


def _approve(message: Any, *, runtime: Any, context: Any) -> Any:
    runtime.record_event("acme.approved", metadata=dict(APPROVAL))
    runtime.emit("ship", message)
    return "approved"


def _ship(message: Any, *, runtime: Any, context: Any) -> Any:
    return f"shipped {message}"


def _workload() -> CodonWorkload:
    wl = CodonWorkload(name="Approvals", version="1.0", org_namespace="tests")
    wl.add_node(_approve, "approve", "reviewer")
    wl.add_node(_ship, "ship", "worker")
    wl.add_edge("approve", "ship")
    return wl


def test_replay_compares_a_custom_event_as_a_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A custom type is compared by the explicit rule: same metadata, identical; other
    metadata, a ``custom audit events differ`` divergence at the recording activation."""
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = _workload().execute("parcel", deployment_id="dev", store=store)
    assert report.status == "completed"
    same = _workload().replay(report.run_id, store=store)
    assert same.identical, [str(d) for d in same.divergences]
    monkeypatch.setitem(APPROVAL, "by", "grace")
    changed = _workload().replay(report.run_id, store=store)
    assert not changed.identical
    (first,) = changed.divergences
    assert first.what == "custom audit events differ"
    assert first.node == "approve"
    assert first.expected == [("acme.approved", {"by": "ada"})]
    assert first.actual == [("acme.approved", {"by": "grace"})]


# --------------------------------------------------------------------------- the docs


def render_table() -> str:
    """The roles table of ``docs/concepts/ledger.md``, from :data:`EVENT_TYPES`."""
    rows = [
        "| type | resume | replay comparison | report | chain |",
        "|---|---|---|---|---|",
    ]
    for spec in (*EVENT_TYPES, CUSTOM_EVENT):
        if spec is CUSTOM_EVENT:
            name = "*any other name* (custom)"
        else:
            name = f"`{spec.name}`" + ("" if spec.written else " (reserved, not written)")
        roles = (spec.resume, spec.replay, spec.report, spec.chain)
        rows.append(f"| {name} | " + " | ".join(r.value for r in roles) + " |")
    return "\n".join(rows) + "\n"


def test_the_ledger_page_shows_the_table_of_event_types() -> None:
    """The page's roles table is the table itself (regenerate it with ``render_table``)."""
    page = (DOCS / "concepts" / "ledger.md").read_text(encoding="utf-8")
    assert render_table() in page


def test_resume_has_a_handler_for_every_role() -> None:
    """Resume dispatches through one mapping from role to handler, covering every role."""
    from codon_sdk.runtime._rebuild import HANDLERS

    assert set(HANDLERS) == set(ResumeRole)
