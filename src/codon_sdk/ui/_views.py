"""The JSON documents the API serves, built from a :class:`RunView` (no HTTP here).

Every list is a page (``items``, ``offset``, ``limit``, ``total``, ``next_offset``); every
value that came from the ledger is sent as JSON data, never markup: the pages put it in
the document as text.
"""

from __future__ import annotations

from typing import Any

from codon_sdk import CodonWorkload
from codon_sdk.errors import ExplorerError
from codon_sdk.ledger import (
    EFFECT_RECORDED,
    NODE_COMPLETED,
    NODE_FAILED,
    NODE_RETRYING,
    RUN_INTERRUPTED,
    STATE_UPDATED,
    TOKEN_ENQUEUED,
)
from codon_sdk.ui._explorer import Explorer, page
from codon_sdk.ui._model import Activation, RunView, clip

__all__ = [
    "activation_detail",
    "activations_page",
    "answer_text",
    "events_page",
    "llm_call",
    "run_detail",
]


def run_detail(
    explorer: Explorer, run_id: str, workloads: dict[str, CodonWorkload] | None = None
) -> dict[str, Any]:
    """The run page's header: summary, verdict with findings, graph, approvals, identity."""
    info = explorer.info(run_id)
    view = explorer.view(info)
    summary = explorer.summary(info)
    today = _today(workloads or {}, info.workload_name)
    return {
        "run": summary,
        "verification": _verification(view),
        "graph": view.graph(),
        "approvals": view.approvals,
        "interrupts": view.interrupts,
        "pending": view.pending_question(),
        "custom_events": len(view.custom),
        "unreadable": view.unreadable,
        "context": clip(view.started.get("context")),
        "code": _identity(view, today),
        "finished": view.finished,
    }


def _verification(view: RunView) -> dict[str, Any]:
    report = view.verification
    assert report is not None  # a recorded run is always verified
    findings = []
    for f in report.findings:
        act = _activation_of(view, f.seq) if f.seq is not None else None
        findings.append(
            {
                "seq": f.seq,
                "code": f.code,
                "message": f.message,
                "tamper": f.tamper,
                "activation": act,
            }
        )
    return {
        "status": report.status,
        "ok": report.ok,
        "event_count": report.event_count,
        "head": report.head,
        "root": report.root,
        "checked": list(report.checked),
        "anchors": list(report.anchors),
        "findings": findings,
    }


def _activation_of(view: RunView, seq: int) -> int | None:
    return view.activation_at(seq)


def _today(workloads: dict[str, CodonWorkload], name: str) -> CodonWorkload | None:
    return workloads.get(name)


def _identity(view: RunView, today: CodonWorkload | None) -> dict[str, Any]:
    """Each node's recorded code identity, and whether today's code still has it."""
    nodes: dict[str, Any] = {}
    current = {spec.name: spec for spec in today.nodes} if today is not None else {}
    for name, spec in view.node_specs().items():
        spec = spec if isinstance(spec, dict) else {}
        now = current.get(name)
        nodes[name] = {
            "node_id": spec.get("id"),
            "code_hash": spec.get("code_hash"),
            "role": spec.get("role"),
            "today": None
            if today is None
            else ("absent" if now is None else "same" if now.id == spec.get("id") else "changed"),
        }
    return {
        "logic_id": view.logic_id,
        "compared_with_today": today is not None,
        "today_logic_id": None if today is None else today.logic_id,
        "nodes": nodes,
    }


def activations_page(
    view: RunView, offset: int, limit: int, node: str | None = None
) -> dict[str, Any]:
    acts = view.activations if node is None else [a for a in view.activations if a.node == node]
    items = [a.to_dict() for a in acts[offset : offset + limit]]
    return page(items, offset, limit, len(acts))


def events_page(view: RunView, offset: int, limit: int, kind: str | None = None) -> dict[str, Any]:
    if kind is None:
        seqs: list[int] | range = range(offset, min(view.event_count, offset + limit))
        return page(view.events(seqs), offset, limit, view.event_count)
    if kind == "custom":
        chosen = view.custom
    else:
        chosen = [s for s in range(view.event_count) if view.event(s).get("type") == kind]
    return page(view.events(chosen[offset : offset + limit]), offset, limit, len(chosen))


def activation_detail(view: RunView, index: int) -> dict[str, Any]:
    """Everything the activation panel shows of one activation."""
    if not 0 <= index < len(view.activations):
        raise ExplorerError(
            f"run {view.run_id!r} has {len(view.activations)} activation(s); there is no "
            f"activation {index}",
            status=404,
            code="activation_not_found",
        )
    act = view.activations[index]
    events = view.events(act.seqs)
    token = view.tokens.get(act.token_id)
    given = view.event(token.seq) if token is not None else None
    out: dict[str, Any] = {
        **act.to_dict(),
        "input": None
        if given is None
        else {
            "token_id": act.token_id,
            "from": given.get("node"),
            "seq": token.seq if token else None,
            "payload": given.get("payload"),
        },
        "result": None,
        "error": None,
        "emitted": [],
        "state": [],
        "effects": [],
        "llm": [],
        "custom": [],
        "retries_detail": [],
        "interrupt": None,
        "events": events,
        "code": view.node_specs().get(act.node),
    }
    _fill(out, act, events)
    return out


def _fill(out: dict[str, Any], act: Activation, events: list[dict[str, Any]]) -> None:
    previous_ts: int | None = None
    for ev in events:
        kind, md = ev.get("type"), ev.get("metadata") or {}
        if kind == NODE_COMPLETED:
            out["result"] = ev.get("payload")
        elif kind == NODE_FAILED:
            out["error"] = {"seq": ev["seq"], **_error(md)}
        elif kind == NODE_RETRYING:
            out["retries_detail"].append({"seq": ev["seq"], **_error(md)})
        elif kind == TOKEN_ENQUEUED:
            out["emitted"].append(
                {
                    "token_id": ev.get("token_id"),
                    "target": ev.get("target"),
                    "payload": ev.get("payload"),
                    "seq": ev["seq"],
                }
            )
        elif kind == STATE_UPDATED:
            out["state"].append({"seq": ev["seq"], "change": ev.get("payload")})
        elif kind == EFFECT_RECORDED:
            out["effects"].append({"seq": ev["seq"], "name": md.get("name"), "metadata": md})
            if isinstance(md.get("llm"), dict):
                out["llm"].append(llm_call(ev, previous_ts))
        elif kind == RUN_INTERRUPTED:
            out["interrupt"] = {
                "seq": ev["seq"],
                "reason": md.get("reason"),
                "payload": md.get("payload"),
            }
        elif ev.get("custom"):
            out["custom"].append({"seq": ev["seq"], "type": kind, "metadata": md})
        if isinstance(ev.get("ts"), int):
            previous_ts = ev["ts"]
    del act  # the activation's fields are already in ``out``


def _error(md: dict[str, Any]) -> dict[str, Any]:
    return {
        "error_type": md.get("error_type"),
        "message": md.get("exception"),
        "attempt": md.get("attempt"),
        "timeout": bool(md.get("timeout")),
    }


def llm_call(ev: dict[str, Any], previous_ts: int | None) -> dict[str, Any]:
    """One LLM call as recorded: model, prompt, answer, tokens, cost, latency."""
    llm = ev["metadata"]["llm"]
    request = llm.get("request") if isinstance(llm.get("request"), dict) else {}
    usage = llm.get("usage") if isinstance(llm.get("usage"), dict) else {}
    ts = ev.get("ts")
    return {
        "seq": ev["seq"],
        "provider": llm.get("provider"),
        "operation": llm.get("operation"),
        "model": llm.get("response_model") or llm.get("request_model"),
        "request_model": llm.get("request_model"),
        "prompt": _prompt(request),
        "answer": answer_text(ev.get("payload")),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "cost_usd": llm.get("cost_usd"),
        "latency_ms": None
        if previous_ts is None or not isinstance(ts, int)
        else max(0, ts - previous_ts) / 1000,
    }


def _prompt(request: dict[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    if isinstance(messages, list):
        return [
            {"role": str(m.get("role")), "content": m.get("content")}
            for m in messages
            if isinstance(m, dict)
        ]
    out = []
    if request.get("instructions") is not None:
        out.append({"role": "instructions", "content": request.get("instructions")})
    if request.get("input") is not None:
        out.append({"role": "input", "content": request.get("input")})
    return out


def answer_text(payload: Any) -> Any:
    """The model's answer in a recorded response (chat or responses API), else the payload."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return payload
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and message.get("content") is not None:
            return message.get("content")
    texts: list[str] = [
        part["text"]
        for item in data.get("output") or ()
        if isinstance(item, dict)
        for part in item.get("content") or ()
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    return "".join(texts) if texts else clip(data)
