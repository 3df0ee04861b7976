"""One file, one logic id, however it is loaded (issue: identity at work, item 1).

The same workload file is run as a script, imported by module name, run with ``runpy``
and imported from a file path, each in a fresh process: all four print the same
logic id. Annotations naming the file's own types (``message: State``) used to name
the module the file was loaded as (``__main__.State`` against ``agentmod.State``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

AGENT = """
from __future__ import annotations

import dataclasses
import enum

from codon_sdk import CodonWorkload

GREETING = "hello"


class Mode(enum.Enum):
    FAST = "fast"


@dataclasses.dataclass
class State:
    text: str
    mode: Mode = Mode.FAST

    def shout(self) -> str:
        return self.text.upper()


def helper(state: State) -> str:
    return f"{GREETING} {state.shout()}"


def step(message: State, *, runtime, context) -> State:
    return State(helper(message))


wl = CodonWorkload(name="loading", version="1", org_namespace="tests")
wl.add_node(step, "step", "worker")

if __name__ == "__main__":
    print(wl.logic_id)
"""

LOADERS = {
    "script": ["{agent}"],
    "import": ["-c", "import agentmod; print(agentmod.wl.logic_id)"],
    "runpy": ["-c", "import runpy; print(runpy.run_path({agent!r})['wl'].logic_id)"],
    "file-path": [
        "-c",
        textwrap.dedent(
            """\
            import importlib.util, sys
            spec = importlib.util.spec_from_file_location("loaded_by_path", {agent!r})
            module = importlib.util.module_from_spec(spec)
            sys.modules["loaded_by_path"] = module
            spec.loader.exec_module(module)
            print(module.wl.logic_id)
            """
        ),
    ],
}


def _logic_id(folder: Path, loader: str, source: str) -> str:
    agent = folder / "agentmod.py"
    agent.write_text(source)
    args = [a.format(agent=str(agent)) for a in LOADERS[loader]]
    done = subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_one_file_has_one_logic_id_however_it_is_loaded(tmp_path: Path) -> None:
    ids = {loader: _logic_id(tmp_path, loader, AGENT) for loader in LOADERS}
    assert len(set(ids.values())) == 1, ids


@pytest.mark.parametrize(
    ("change", "before", "after"),
    [
        ("code", "return State(helper(message))", "return State(helper(message) + '!')"),
        ("constant", 'GREETING = "hello"', 'GREETING = "hi"'),
        ("helper", 'return f"{GREETING} {state.shout()}"', 'return f"{GREETING}, {state.shout()}"'),
        ("local type's field", "    text: str\n", "    text: str\n    extra: int = 0\n"),
        ("local type's method", "return self.text.upper()", "return self.text.lower()"),
        ("local type's default", "mode: Mode = Mode.FAST", "mode: Mode | None = None"),
    ],
)
def test_a_change_to_what_the_node_does_changes_the_id(
    change: str, before: str, after: str, tmp_path: Path
) -> None:
    assert before in AGENT
    original = _logic_id(tmp_path, "import", AGENT)
    assert _logic_id(tmp_path, "import", AGENT.replace(before, after)) != original, change


def test_reformatting_and_comments_keep_the_id(tmp_path: Path) -> None:
    reformatted = AGENT.replace(
        "def helper(state: State) -> str:\n",
        "def helper(  # says hello\n    state: State,\n) -> str:\n    '''Greets.'''\n",
    ).replace("class State:\n", "class State:  # the message\n")
    assert reformatted != AGENT
    assert _logic_id(tmp_path, "script", reformatted) == _logic_id(tmp_path, "import", AGENT)
