"""Code identity: what a node *does* decides its NodeSpec id and the logic id.

Changing behaviour (an expression, a constant it reads, a helper it calls) changes
the ids; comments, docstrings, formatting, the file's place and the Python
process (``PYTHONHASHSEED``) do not. Modules are written to temp files and
imported, or run as scripts in fresh interpreters.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from codon_sdk import CodonWorkload, NodeSpec

BASE = """
PROMPT = "Summarise: "


def helper(text):
    return text.strip()


def summarise(message, *, runtime, context):
    text = helper(message["text"])
    return PROMPT + text[:10]
"""

# Same behaviour: comments, docstrings, quotes, parentheses, line breaks, trailing
# commas, blank lines, an unrelated function above (so every line number moves).
COSMETIC = '''
"""A module docstring that was not there before."""

# A comment at the top.
PROMPT = 'Summarise: '  # single quotes now


def unrelated():
    return 42


def helper(text):
    """Strip the text."""
    # a comment inside the helper
    return (text
            .strip())



def summarise(
    message,
    *,
    runtime,
    context,
):
    """Summarise the text of a message.

    Several lines of docstring.
    """
    # take the text
    text = helper(
        message["text"],
    )
    return (PROMPT + text[:10])  # done
'''

BEHAVIOUR_CHANGES = {
    "slice_length": BASE.replace("text[:10]", "text[:20]"),
    "operand_order": BASE.replace("PROMPT + text[:10]", "text[:10] + PROMPT"),
    "prompt_constant": BASE.replace('"Summarise: "', '"Summarize: "'),
    "helper_body": BASE.replace("text.strip()", "text.lower()"),
    "extra_statement": BASE.replace(
        "    return PROMPT", "    text = text.replace('a', 'b')\n    return PROMPT"
    ),
}


Loader = Callable[..., ModuleType]


@pytest.fixture
def load_module(tmp_path: Path) -> Iterator[Callable[..., ModuleType]]:
    """Write source to a fresh file under a unique module name and import it."""
    loaded: list[str] = []

    def load(source: str, directory: str = "mods") -> ModuleType:
        name = f"codon_codeid_{uuid.uuid4().hex}"
        folder = tmp_path / directory
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def ids_of(module: ModuleType) -> tuple[str, str]:
    """(NodeSpec id of ``summarise``, logic id of a one-node workload around it)."""
    spec = NodeSpec("summarise", "llm", module.summarise, org_namespace="acme")
    workload = CodonWorkload(name="Code Identity", version="1.0")
    workload.add_node(module.summarise, "summarise", "llm", org_namespace="acme")
    assert workload.nodes[0].id == spec.id
    return spec.id, workload.logic_id


def test_same_source_in_two_files_gives_the_same_ids(load_module: Loader) -> None:
    """The same code loaded from two different files and directories has the same ids."""
    assert ids_of(load_module(BASE, "one")) == ids_of(load_module(BASE, "two"))


def test_comments_docstrings_and_formatting_do_not_change_ids(load_module: Loader) -> None:
    """Reformatting, comments, docstrings and moved lines leave NodeSpec and logic ids alone."""
    assert ids_of(load_module(COSMETIC)) == ids_of(load_module(BASE))


@pytest.mark.parametrize("change", sorted(BEHAVIOUR_CHANGES))
def test_changing_what_the_node_does_changes_both_ids(load_module: Loader, change: str) -> None:
    """A changed expression, constant or helper gives a new NodeSpec id and a new logic id."""
    base_spec, base_logic = ids_of(load_module(BASE))
    new_spec, new_logic = ids_of(load_module(BEHAVIOUR_CHANGES[change]))
    assert new_spec != base_spec
    assert new_logic != base_logic


def test_behaviour_changes_are_all_distinct(load_module: Loader) -> None:
    """Each behaviour change yields its own id (no two different programs collide)."""
    spec_ids = {ids_of(load_module(src))[0] for src in BEHAVIOUR_CHANGES.values()}
    assert len(spec_ids) == len(BEHAVIOUR_CHANGES)


# ----------------------------------------------------------------- across processes

SCRIPT = """
import json
import os

from codon_sdk import CodonWorkload, NodeSpec

TAGS = frozenset({"alpha", "beta", "gamma", "delta", "epsilon", "zeta"})
LIMITS = {"max": 3}


def first(message, *, runtime, context):
    runtime.emit("second", sorted(TAGS))
    return message


def second(message, *, runtime, context):
    return {"n": len(message), "limit": LIMITS["max"]}


workload = CodonWorkload(name="Cross Process", version="1.0", description="ids")
workload.add_node(first, "first", "starter", org_namespace="acme")
workload.add_node(second, "second", "finisher", org_namespace="acme", model_name="m")
workload.add_edge("first", "second")
deployment = workload.deploy(
    "prod",
    {
        "models": {"llm": "gpt-4o", "embed": "e5"},
        "regions": {"eu", "us", "ap", "sa", "af"},
        "limits": (1, 2.5),
    },
)
print(json.dumps({
    "nodespec": NodeSpec("first", "starter", first, org_namespace="acme").id,
    "nodes": [spec.id for spec in workload.nodes],
    "logic": workload.logic_id,
    "deployment": deployment.id,
    "set_order": list(TAGS),
}))
"""


def _run_script(path: Path, seed: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "ORG_NAMESPACE"}
    env["PYTHONHASHSEED"] = seed
    done = subprocess.run(
        [sys.executable, str(path)],
        env=env,
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def cross_process_ids(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    """The script run under four hash seeds, plus a copy in another directory and name."""
    here = tmp_path_factory.mktemp("ids_a") / "agent.py"
    here.write_text(SCRIPT, encoding="utf-8")
    moved = tmp_path_factory.mktemp("ids_b") / "renamed_agent.py"
    moved.write_text(SCRIPT, encoding="utf-8")
    runs = [_run_script(here, seed) for seed in ("0", "1", "4242", "123456")]
    runs.append(_run_script(moved, "98765"))
    return runs


def test_hash_seeds_really_differ_between_the_processes(
    cross_process_ids: list[dict[str, object]],
) -> None:
    """Sanity: the processes iterate the same set in different orders (the seeds took effect)."""
    orders = {tuple(run["set_order"]) for run in cross_process_ids}  # type: ignore[arg-type]
    assert len(orders) > 1


@pytest.mark.parametrize("key", ["nodespec", "nodes", "logic", "deployment"])
def test_ids_are_equal_across_processes_and_hash_seeds(
    cross_process_ids: list[dict[str, object]], key: str
) -> None:
    """NodeSpec, logic and deployment ids are identical in every process, seed and location."""
    values = [json.dumps(run[key]) for run in cross_process_ids]
    assert len(set(values)) == 1, values


def test_ids_in_a_subprocess_equal_the_ids_in_this_process(
    cross_process_ids: list[dict[str, object]], load_module: Loader
) -> None:
    """The same source imported here yields the ids the scripts printed."""
    module = load_module(SCRIPT)
    assert [spec.id for spec in module.workload.nodes] == cross_process_ids[0]["nodes"]
    assert module.workload.logic_id == cross_process_ids[0]["logic"]
    assert module.deployment.id == cross_process_ids[0]["deployment"]
