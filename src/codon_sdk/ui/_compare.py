"""Compare two runs, or a run and its replay with today's code, activation by activation.

Activations are paired in the order they started; the first pair whose node, input,
result or emitted tokens differ is the first divergent decision. The logic-id change is
named by the nodes whose recorded identities differ.
"""

from __future__ import annotations

from typing import Any

from codon_sdk import CodonWorkload
from codon_sdk.errors import ExplorerError, ReplayError
from codon_sdk.ledger import NODE_COMPLETED, TOKEN_ENQUEUED
from codon_sdk.ui._explorer import Explorer
from codon_sdk.ui._model import RunView, clip

__all__ = ["compare_runs", "compare_replay", "decisions"]

_SHOWN = 200  # activations listed per side (the first divergence is always among them)


def decisions(view: RunView) -> list[dict[str, Any]]:
    """What each activation decided: node, input, result, emitted payloads, outcome."""
    out = []
    for act in view.activations:
        events = view.events(act.seqs)
        token = view.tokens.get(act.token_id)
        result = next((e.get("payload") for e in events if e.get("type") == NODE_COMPLETED), None)
        out.append(
            {
                "index": act.index,
                "node": act.node,
                "token_id": act.token_id,
                "seq": act.start_seq,
                "outcome": act.outcome,
                "input": None if token is None else view.event(token.seq).get("payload"),
                "result": result,
                "emitted": [
                    [e.get("target"), e.get("payload")]
                    for e in events
                    if e.get("type") == TOKEN_ENQUEUED
                ],
            }
        )
    return out


def _first_divergence(
    left: list[dict[str, Any]], right: list[dict[str, Any]]
) -> dict[str, Any] | None:
    for i, (a, b) in enumerate(zip(left, right, strict=False)):
        for what in ("node", "input", "result", "emitted", "outcome"):
            if a[what] != b[what]:
                return {
                    "index": i,
                    "what": what,
                    "left": clip(a[what]),
                    "right": clip(b[what]),
                    "node": a["node"],
                    "left_seq": a["seq"],
                    "right_seq": b["seq"],
                }
    if len(left) != len(right):
        i = min(len(left), len(right))
        return {
            "index": i,
            "what": "activation count",
            "left": len(left),
            "right": len(right),
            "node": (left[i] if i < len(left) else right[i])["node"],
            "left_seq": left[i]["seq"] if i < len(left) else None,
            "right_seq": right[i]["seq"] if i < len(right) else None,
        }
    return None


def _logic(left: RunView, right: RunView) -> dict[str, Any]:
    a, b = left.node_specs(), right.node_specs()
    changed = sorted(n for n in a.keys() & b.keys() if _id(a[n]) != _id(b[n]))
    return {
        "left": left.logic_id,
        "right": right.logic_id,
        "changed": left.logic_id != right.logic_id,
        "changed_nodes": changed,
        "added_nodes": sorted(b.keys() - a.keys()),
        "removed_nodes": sorted(a.keys() - b.keys()),
    }


def _id(spec: Any) -> Any:
    return spec.get("id") if isinstance(spec, dict) else None


def _side(view: RunView, acts: list[dict[str, Any]], status: str | None) -> dict[str, Any]:
    return {
        "run_id": view.run_id,
        "status": status,
        "verification": None if view.verification is None else view.verification.status,
        "activations": [
            {
                **a,
                "input": clip(a["input"]),
                "result": clip(a["result"]),
                "emitted": clip(a["emitted"]),
            }
            for a in acts[:_SHOWN]
        ],
        "activation_count": len(acts),
    }


def compare_runs(explorer: Explorer, left_id: str, right_id: str) -> dict[str, Any]:
    """Two recorded runs side by side, with the first divergent decision."""
    left_info, right_info = explorer.info(left_id), explorer.info(right_id)
    left, right = explorer.view(left_info), explorer.view(right_info)
    la, ra = decisions(left), decisions(right)
    return {
        "kind": "runs",
        "left": _side(left, la, left_info.status),
        "right": _side(right, ra, right_info.status),
        "first_divergence": _first_divergence(la, ra),
        "logic": _logic(left, right),
    }


def compare_replay(
    explorer: Explorer, run_id: str, workloads: dict[str, CodonWorkload]
) -> dict[str, Any]:
    """A recorded run and its replay with today's code (the workload given to ``codon ui``)."""
    info = explorer.info(run_id)
    workload = workloads.get(info.workload_name)
    if workload is None:
        raise ExplorerError(
            f"run {run_id!r} is of workload {info.workload_name!r}, which this explorer was not "
            "given: start it with --workload MODULE:ATTR to replay runs with today's code",
            status=409,
            code="workload_not_loaded",
        )
    recorded = explorer.view(info)
    if recorded.verification is None or not recorded.verification.ok:
        raise ExplorerError(
            f"run {run_id!r} does not verify; it is not replayed (replay needs a record that "
            "checks: see the run page's findings)",
            status=409,
            code="run_untrusted",
        )
    try:
        outcome = workload.replay(run_id, store=explorer.store)
    except ReplayError as exc:
        raise ExplorerError(
            f"cannot replay run {run_id!r}: {exc}", status=409, code="replay_failed"
        ) from exc
    entries = list(outcome.report.entries) if outcome.report is not None else []
    replayed = RunView(f"{run_id} (replay)", entries, None)
    la, ra = decisions(recorded), decisions(replayed)
    first = outcome.first_divergence
    logic = _logic(recorded, replayed)
    logic.update(
        {
            "left": outcome.recorded_logic_id,
            "right": outcome.replay_logic_id,
            "changed": outcome.logic_changed,
            "changed_nodes": list(outcome.logic_diff.get("changed_nodes", [])),
        }
    )
    return {
        "kind": "replay",
        "left": _side(recorded, la, outcome.recorded_status),
        "right": _side(replayed, ra, outcome.replay_status),
        "identical": outcome.identical,
        "first_divergence": None
        if first is None
        else {
            "seq": first.seq,
            "node": first.node,
            "token_id": first.token_id,
            "what": first.what,
            "left": clip(first.expected),
            "right": clip(first.actual),
            "text": str(first),
            "index": _index_at(recorded, first.seq),
        },
        "divergences": len(outcome.divergences),
        "logic": logic,
    }


def _index_at(view: RunView, seq: int) -> int | None:
    i = view.activation_at(seq)
    return None if i is None else i
