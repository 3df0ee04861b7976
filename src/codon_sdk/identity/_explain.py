"""Identities that explain themselves: what went into each node's id, and why two differ.

A node's id is the hash of its NodeSpec fields, one of which is the code hash; the code
hash covers the function's own code and what it reads from outside (see
:mod:`codon_sdk.identity._codehash`). :func:`explain_node` lists each of those inputs as a
*part* with a short digest of exactly what it contributed, so two versions of a node can be
compared part by part: :func:`diff_parts` names, per changed node, the reasons (code,
signature, schema, model, a constant, a helper, a local type). Runs record each node's
parts in ``run_started``, so today's code can be compared with a recorded run too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codon_sdk._text import printable
from codon_sdk.identity._canonical import canonical_bytes
from codon_sdk.identity._codehash import code_fingerprint
from codon_sdk.identity._nodespec import NodeSpec

__all__ = [
    "IdentityDiff",
    "IdentityExplanation",
    "IdentityPart",
    "NodeChange",
    "NodeIdentity",
    "changed_joins",
    "diff_parts",
    "explain_node",
    "recorded_identity",
]

DIGEST_HEX = 12
"""Hex digits kept per part digest: enough to tell versions apart, small in ``run_started``."""

_READ_KINDS = {
    "value": "constant",
    "function": "helper",
    "class": "local type",
    "kind": "runtime state",
    "ignored": "ignored global",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityPart:
    """One input of a node's id: ``part`` names it (``"code"``, ``"constant GREETING"``),
    ``detail`` says what it is in words, ``digest`` is a hash prefix of what it contributed."""

    part: str
    detail: str
    digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeIdentity:
    """A node's id and every part that went into it."""

    node: str
    id: str
    code_hash: str
    basis: str
    parts: tuple[IdentityPart, ...]

    def digests(self) -> dict[str, str]:
        """``{part: digest}``: what ``run_started`` records and :func:`diff_parts` compares."""
        return {p.part: p.digest for p in self.parts}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeChange:
    """A node whose id differs, and the parts that make it differ."""

    node: str
    old_id: str
    new_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityDiff:
    """What differs between two versions of a workload, node by node."""

    old_logic_id: str
    new_logic_id: str
    changed: tuple[NodeChange, ...] = ()
    added_nodes: tuple[str, ...] = ()
    removed_nodes: tuple[str, ...] = ()
    added_edges: tuple[tuple[str, str], ...] = ()
    removed_edges: tuple[tuple[str, str], ...] = ()
    #: Join nodes whose sources were added, removed or reordered (see ``add_join``).
    changed_joins: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        """True when both versions have the same logic id."""
        return self.old_logic_id == self.new_logic_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_logic_id": self.old_logic_id,
            "new_logic_id": self.new_logic_id,
            "identical": self.identical,
            "changed": [
                {"node": c.node, "old_id": c.old_id, "new_id": c.new_id, "reasons": list(c.reasons)}
                for c in self.changed
            ],
            "added_nodes": list(self.added_nodes),
            "removed_nodes": list(self.removed_nodes),
            "added_edges": [list(e) for e in self.added_edges],
            "removed_edges": [list(e) for e in self.removed_edges],
            "changed_joins": list(self.changed_joins),
        }

    def __str__(self) -> str:
        if self.identical:
            return f"identical: logic id {self.new_logic_id[:12]}…"
        lines = [f"logic id {self.old_logic_id[:12]}… -> {self.new_logic_id[:12]}…"]
        for c in self.changed:
            lines.append(f"  changed  {c.node}: {', '.join(c.reasons)}")
        lines += [f"  added    {n}" for n in self.added_nodes]
        lines += [f"  removed  {n}" for n in self.removed_nodes]
        lines += [f"  edge +   {a} -> {b}" for a, b in self.added_edges]
        lines += [f"  edge -   {a} -> {b}" for a, b in self.removed_edges]
        lines += [f"  join ~   {n}" for n in self.changed_joins]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityExplanation:
    """A workload's logic id and, per node, what went into its id."""

    workload: str
    logic_id: str
    nodes: tuple[NodeIdentity, ...]
    edges: tuple[tuple[str, str], ...] = field(default=())
    #: Each join node with its sources, in the order its message lists them.
    joins: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def node(self, name: str) -> NodeIdentity:
        for n in self.nodes:
            if n.node == name:
                return n
        raise KeyError(f"no node {name!r}; nodes: {', '.join(n.node for n in self.nodes)}")

    def diff(self, newer: IdentityExplanation) -> IdentityDiff:
        """What changed from this version to ``newer``."""
        return diff_parts(
            self.logic_id,
            {n.node: (n.id, n.digests()) for n in self.nodes},
            self.edges,
            newer.logic_id,
            {n.node: (n.id, n.digests()) for n in newer.nodes},
            newer.edges,
            old_joins=dict(self.joins),
            new_joins=dict(newer.joins),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "logic_id": self.logic_id,
            "edges": [list(e) for e in self.edges],
            "joins": {node: list(sources) for node, sources in self.joins},
            "nodes": [
                {
                    "node": n.node,
                    "id": n.id,
                    "code_hash": n.code_hash,
                    "basis": n.basis,
                    "parts": [
                        {"part": p.part, "detail": p.detail, "digest": p.digest} for p in n.parts
                    ],
                }
                for n in self.nodes
            ],
        }

    def __str__(self) -> str:
        lines = [f"workload {self.workload}: logic id {self.logic_id}"]
        for n in self.nodes:
            lines.append(f"  node {n.node}: id {n.id[:16]}…  code {n.code_hash[:16]}… ({n.basis})")
            width = max((len(p.part) for p in n.parts), default=0)
            lines += [f"    {p.part:<{width}}  {p.digest}  {p.detail}" for p in n.parts]
        lines += [f"  join {node} <- {', '.join(sources)}" for node, sources in self.joins]
        return "\n".join(lines)


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()[:DIGEST_HEX]


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explain_node(node: str, spec: NodeSpec, fn: Callable[..., Any]) -> NodeIdentity:
    """Every input of ``spec.id`` for the node ``node`` whose callable is ``fn``."""
    fingerprint = code_fingerprint(fn)
    parts = [
        IdentityPart(
            part="namespace", detail=spec.org_namespace, digest=_digest(spec.org_namespace)
        ),
        IdentityPart(part="role", detail=spec.role, digest=_digest(spec.role)),
        IdentityPart(
            part="signature",
            detail=_short(spec.callable_signature),
            digest=_digest(spec.callable_signature),
        ),
        IdentityPart(
            part="input schema", detail=_short(spec.input_schema), digest=_digest(spec.input_schema)
        ),
        IdentityPart(
            part="output schema",
            detail=_short(spec.output_schema),
            digest=_digest(spec.output_schema),
        ),
    ]
    model = [spec.model_name, spec.model_version]
    if spec.model_name or spec.model_version:
        detail = " ".join(m for m in model if m)
        parts.append(IdentityPart(part="model", detail=detail, digest=_digest(model)))
    basis, own, reads = _split(fingerprint)
    parts.append(IdentityPart(part="code", detail=f"the function's {basis}", digest=_digest(own)))
    for name, read in sorted(reads.items()):
        parts.append(_read_part(name, read))
    return NodeIdentity(
        node=node, id=spec.id, code_hash=spec.code_hash, basis=basis, parts=tuple(parts)
    )


def _split(fingerprint: Any) -> tuple[str, Any, dict[str, Any]]:
    """(basis, the function's own code, what it reads) from a code fingerprint."""
    if isinstance(fingerprint, dict):
        if "ast" in fingerprint or "bytecode" in fingerprint:
            basis = "syntax tree" if "ast" in fingerprint else "bytecode (no source found)"
            own = {k: v for k, v in fingerprint.items() if k != "reads"}
            return basis, own, dict(fingerprint.get("reads") or {})
        if "partial" in fingerprint:
            basis, own, reads = _split(fingerprint["partial"])
            return f"{basis}, bound by functools.partial", [own, fingerprint], reads
        if "call" in fingerprint:
            basis, own, reads = _split(fingerprint["call"])
            return f"{basis} of {fingerprint['class']}.__call__", own, reads
        if "builtin" in fingerprint:
            return f"name {fingerprint['builtin']} (no Python code to hash)", fingerprint, {}
    return "description", fingerprint, {}


def _read_part(name: str, read: Mapping[str, Any]) -> IdentityPart:
    kind = next(iter(read), "kind")
    label = _READ_KINDS.get(kind, "read")
    value = read.get(kind)
    if kind == "value":
        detail = _short(canonical_bytes(value).decode("utf-8"))
    elif kind == "function":
        detail = f"code {_digest(value)}"
    elif kind == "class":
        detail = f"bases, fields and methods {_digest(value)}"
    elif kind == "ignored":
        detail = "listed in __codon_identity_ignore__: its name only"
    else:
        detail = f"a {value} (mutable: its name only)"
    return IdentityPart(part=f"{label} {name}", detail=detail, digest=_digest(read))


def _reasons(old: Mapping[str, str] | None, new: Mapping[str, str]) -> tuple[str, ...]:
    if old is None:
        return ("unknown (the run was recorded before identity parts were kept)",)
    reasons: list[str] = []
    for part in sorted(old.keys() | new.keys(), key=_part_order):
        before, after = old.get(part), new.get(part)
        if before == after:
            continue
        if before is None:
            reasons.append(f"{part} (new)")
        elif after is None:
            reasons.append(f"{part} (no longer read)")
        else:
            reasons.append(part)
    return tuple(reasons) or ("the spec's fields",)


_ORDER = ("code", "signature", "input schema", "output schema", "model", "namespace", "role")


def _part_order(part: str) -> tuple[int, str]:
    return (_ORDER.index(part) if part in _ORDER else len(_ORDER), part)


def diff_parts(
    old_logic_id: str,
    old_nodes: Mapping[str, tuple[str, Mapping[str, str] | None]],
    old_edges: Iterable[tuple[str, str]],
    new_logic_id: str,
    new_nodes: Mapping[str, tuple[str, Mapping[str, str]]],
    new_edges: Iterable[tuple[str, str]],
    *,
    old_joins: Any = None,
    new_joins: Mapping[str, Sequence[str]] | None = None,
) -> IdentityDiff:
    """Compare two versions given as ``{node: (id, {part: digest} or None)}``, edges and
    joins (``old_joins`` may be a recorded value of any shape)."""
    changed = tuple(
        NodeChange(
            node=name,
            old_id=old_nodes[name][0],
            new_id=new_nodes[name][0],
            reasons=_reasons(old_nodes[name][1], new_nodes[name][1]),
        )
        for name in sorted(old_nodes.keys() & new_nodes.keys())
        if old_nodes[name][0] != new_nodes[name][0]
    )
    before, after = set(map(tuple, old_edges)), set(map(tuple, new_edges))
    return IdentityDiff(
        old_logic_id=old_logic_id,
        new_logic_id=new_logic_id,
        changed=changed,
        added_nodes=tuple(sorted(new_nodes.keys() - old_nodes.keys())),
        removed_nodes=tuple(sorted(old_nodes.keys() - new_nodes.keys())),
        added_edges=tuple(sorted((a, b) for a, b in after - before)),
        removed_edges=tuple(sorted((a, b) for a, b in before - after)),
        changed_joins=tuple(changed_joins(old_joins, new_joins or {})),
    )


def changed_joins(recorded: Any, joins: Mapping[str, Sequence[str]]) -> list[str]:
    """The join nodes whose sources differ between ``recorded`` (a run's ``run_started``
    ``joins``, read as hostile data: anything but a mapping counts as no joins) and
    ``joins``; names shown escaped."""
    old = recorded if isinstance(recorded, Mapping) else {}

    def sources(table: Mapping[Any, Any], node: Any) -> Any:
        value = table.get(node)
        return list(value) if isinstance(value, (list, tuple)) else value

    return sorted(
        printable(str(n)) for n in old.keys() | joins.keys() if sources(old, n) != sources(joins, n)
    )


RecordedNodes = dict[str, tuple[str, Mapping[str, str] | None]]


def recorded_identity(
    started: Mapping[str, Any],
) -> tuple[str, RecordedNodes, list[tuple[str, str]]]:
    """(logic id, ``{node: (id, parts or None)}``, edges) from a ``run_started`` payload,
    read as the hostile data every ledger value is: anything of the wrong shape is skipped."""
    workload = started.get("workload")
    logic_id = str(workload.get("logic_id")) if isinstance(workload, Mapping) else "unknown"
    nodes: RecordedNodes = {}
    raw_nodes = started.get("nodes")
    for name, spec in (raw_nodes if isinstance(raw_nodes, Mapping) else {}).items():
        if isinstance(spec, Mapping):
            parts = spec.get("parts")
            clean = (
                {str(k): str(v) for k, v in parts.items()} if isinstance(parts, Mapping) else None
            )
            nodes[str(name)] = (str(spec.get("id")), clean)
    raw_edges = started.get("edges")
    edges = [
        (str(e[0]), str(e[1]))
        for e in (raw_edges if isinstance(raw_edges, list) else [])
        if isinstance(e, list) and len(e) == 2
    ]
    return logic_id, nodes, edges
