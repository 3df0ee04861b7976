"""Identities explain themselves: the parts of each node's id, the reasons two versions
differ (from a workload or a recorded run), and globals excluded from the identity."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from typing import Any

import orjson
from tests.cli.test_runs_cli import codon

from codon_sdk import CodonWorkload
from codon_sdk.identity import recorded_identity

AGENT = """
from __future__ import annotations

import dataclasses

from codon_sdk import CodonWorkload

GREETING = "hello"
LOG_PATH = "/var/log/agent.log"


@dataclasses.dataclass
class Reply:
    text: str


def helper(text: str) -> str:
    return f"{GREETING} {text}"


def answer(message: str, *, runtime, context) -> Reply:
    print(LOG_PATH)
    return Reply(helper(message))


def route(message: str, *, runtime, context) -> str:
    runtime.emit("answer", message)
    return message


workload = CodonWorkload(name="explain", version="1", org_namespace="tests")
workload.add_node(route, "route", "router")
workload.add_node(answer, "answer", "writer", model_name="gpt-4o-mini")
workload.add_edge("route", "answer")
"""

_names = itertools.count()


def _load(folder: Path, source: str) -> CodonWorkload:
    name = f"explained_{next(_names)}"
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    workload = module.workload
    assert isinstance(workload, CodonWorkload)
    return workload


def test_explain_identity_lists_every_part_of_each_node(tmp_path: Path) -> None:
    explained = _load(tmp_path, AGENT).explain_identity()
    answer = explained.node("answer")
    parts = {p.part: p for p in answer.parts}
    assert {
        "code",
        "signature",
        "input schema",
        "output schema",
        "model",
        "constant LOG_PATH",
        "helper helper",
        "local type Reply",
    } <= parts.keys()
    assert parts["constant LOG_PATH"].detail == '"/var/log/agent.log"'
    assert parts["model"].detail == "gpt-4o-mini"
    assert answer.basis == "syntax tree"
    text = str(explained)
    assert "node answer" in text
    assert "helper helper" in text
    assert explained.logic_id in text
    assert orjson.loads(orjson.dumps(explained.to_dict()))["nodes"][1]["node"] == "answer"


def _reasons(tmp_path: Path, before: str, after: str) -> dict[str, tuple[str, ...]]:
    assert before in AGENT
    old = _load(tmp_path, AGENT).explain_identity()
    new = _load(tmp_path, AGENT.replace(before, after)).explain_identity()
    diff = old.diff(new)
    assert not diff.identical
    return {c.node: c.reasons for c in diff.changed}


def test_a_diff_names_the_reason_each_node_changed(tmp_path: Path) -> None:
    assert _reasons(tmp_path, 'GREETING = "hello"', 'GREETING = "hi"') == {
        "answer": ("helper helper",)
    }
    assert _reasons(tmp_path, "    print(LOG_PATH)\n", "    print(LOG_PATH, 1)\n") == {
        "answer": ("code",)
    }
    assert _reasons(tmp_path, 'model_name="gpt-4o-mini"', 'model_name="gpt-4o"') == {
        "answer": ("model",)
    }
    assert _reasons(tmp_path, "    text: str\n", "    text: str\n    score: int = 0\n") == {
        "answer": ("output schema", "local type Reply")
    }
    assert _reasons(tmp_path, "def route(message: str,", "def route(message: bytes,") == {
        "route": ("code", "signature", "input schema")  # annotations are part of the code too
    }


def test_same_code_diffs_as_identical(tmp_path: Path) -> None:
    diff = _load(tmp_path, AGENT).explain_identity().diff(_load(tmp_path, AGENT).explain_identity())
    assert diff.identical
    assert diff.changed == ()
    assert str(diff).startswith("identical")


def test_a_global_listed_in_codon_identity_ignore_is_configuration_not_logic(
    tmp_path: Path,
) -> None:
    ignoring = AGENT.replace(
        'LOG_PATH = "/var/log/agent.log"',
        'LOG_PATH = "/var/log/agent.log"\n__codon_identity_ignore__ = ("LOG_PATH",)',
    )
    moved = ignoring.replace("/var/log/agent.log", "/tmp/agent.log")
    assert _load(tmp_path, ignoring).logic_id == _load(tmp_path, moved).logic_id
    part = {p.part: p for p in _load(tmp_path, ignoring).explain_identity().node("answer").parts}
    assert "ignored global LOG_PATH" in part
    plain_moved = AGENT.replace("/var/log/agent.log", "/tmp/agent.log")
    assert _load(tmp_path, AGENT).logic_id != _load(tmp_path, plain_moved).logic_id


def test_codon_identity_prints_the_parts_and_diffs_a_run_with_todays_code(
    tmp_path: Path,
) -> None:
    (tmp_path / "agent_v1.py").write_text(AGENT)
    (tmp_path / "agent_v2.py").write_text(AGENT.replace('GREETING = "hello"', 'GREETING = "hi"'))
    url = f"sqlite:///{tmp_path / 'l.db'}"
    _load(tmp_path, AGENT).execute("x", deployment_id="dev", store=url, run_id="r1")
    env = {"CODON_LEDGER_URL": url}

    shown = codon("identity", "agent_v1:workload", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "constant LOG_PATH" in shown.stdout
    assert "helper helper" in shown.stdout

    same = codon("identity", "diff", "run:r1", "agent_v1:workload", cwd=tmp_path, env=env)
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith("identical")

    changed = codon(
        "identity", "diff", "run:r1", "agent_v2:workload", "--json", cwd=tmp_path, env=env
    )
    assert changed.returncode == 1, changed.stderr
    body = orjson.loads(changed.stdout)
    assert [(c["node"], c["reasons"]) for c in body["changed"]] == [("answer", ["helper helper"])]

    missing = codon("identity", "diff", "run:nope", "agent_v1:workload", cwd=tmp_path, env=env)
    assert missing.returncode == 2
    assert "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_recorded_logic_of_the_wrong_shape_is_read_without_a_crash() -> None:
    hostile: dict[str, Any] = {
        "workload": ["not", "a", "dict"],
        "nodes": {
            "a": {"id": 1, "parts": ["x"]},
            "b": "junk",
            3: {"id": "i", "parts": {"code": 5}},
        },
        "edges": [["a", "b"], ["only-one"], "x", [1, 2]],
    }
    logic_id, nodes, edges = recorded_identity(hostile)
    assert logic_id == "unknown"
    assert nodes == {"a": ("1", None), "3": ("i", {"code": "5"})}
    assert edges == [("a", "b"), ("1", "2")]


def _fan_in(sources: list[str]) -> CodonWorkload:
    def node(message: Any, *, runtime: Any, context: Any) -> Any:
        return message

    workload = CodonWorkload(name="fan-in", version="1", org_namespace="tests")
    for name in ("a", "b", "write"):
        workload.add_node(node, name, "worker")
    for name in ("a", "b"):
        workload.add_edge(name, "write")
    workload.add_join(sources, "write")
    return workload


def test_explain_identity_lists_joins_and_a_diff_names_a_changed_join() -> None:
    one, other = _fan_in(["a", "b"]), _fan_in(["b", "a"])  # the message lists b first
    explained = one.explain_identity()
    assert explained.joins == (("write", ("a", "b")),)
    assert "join write <- a, b" in str(explained)
    assert explained.to_dict()["joins"] == {"write": ["a", "b"]}
    diff = explained.diff(other.explain_identity())
    assert not diff.identical
    assert diff.changed_joins == ("write",)
    assert "join ~   write" in str(diff)
    assert diff.changed == ()  # the nodes are the same: only the join changed


def test_a_runs_recorded_joins_diff_against_todays_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    report = _fan_in(["a", "b"]).execute("x", deployment_id="d", store=url, entry_nodes=["a"])
    (started,) = [e for e in report.events() if e.type == "run_started"]
    assert _fan_in(["a", "b"]).identity_diff(started.metadata).changed_joins == ()
    assert _fan_in(["b", "a"]).identity_diff(started.metadata).changed_joins == ("write",)
    forged = {**started.metadata, "joins": ["not", "a", "mapping"]}
    assert _fan_in(["a", "b"]).identity_diff(forged).changed_joins == ("write",)
