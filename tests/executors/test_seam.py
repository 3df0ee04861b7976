"""The executor seam without a cluster: options checked, the default kept in process."""

from __future__ import annotations

import os
from typing import Any

import pytest

from codon_sdk import CodonWorkload
from codon_sdk.errors import WorkloadRegistrationError
from codon_sdk.executors import ActivationCall, Executor, InProcessExecutor


def _echo(message: Any, *, runtime: Any, context: Any) -> Any:
    return message


@pytest.mark.parametrize(
    "resources",
    [{"num_cpus": -1}, {"num_gpus": "half"}, {"": 1}, ["num_cpus"], {"num_cpus": float("inf")}],
)
def test_add_node_refuses_resources_that_are_not_names_to_amounts(resources: Any) -> None:
    wl = CodonWorkload(name="R", version="1")
    with pytest.raises(WorkloadRegistrationError, match="'echo'"):
        wl.add_node(_echo, "echo", "worker", resources=resources)


def test_resources_are_not_part_of_the_identity() -> None:
    a, b = CodonWorkload(name="R", version="1"), CodonWorkload(name="R", version="1")
    a.add_node(_echo, "echo", "worker", resources={"num_cpus": 1, "gpu_box": 0.5})
    b.add_node(_echo, "echo", "worker")
    assert a.logic_id == b.logic_id


def test_an_executor_that_is_not_one_is_refused_before_the_run() -> None:
    wl = CodonWorkload(name="R", version="1")
    wl.add_node(_echo, "echo", "worker")
    with pytest.raises(TypeError, match="executor must be"):
        wl.execute("x", deployment_id="dev", executor="ray://nowhere")  # type: ignore[arg-type]


class _Counting(Executor):
    """A custom executor: sees each activation, runs it here, counts it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []
        self.started = self.closed = 0

    def start(self) -> None:
        self.started += 1

    def close(self) -> None:
        self.closed += 1

    async def run(self, activation: ActivationCall) -> Any:
        self.seen.append((activation.node, activation.token_id, activation.attempt))
        return await activation.run_here()


def test_a_custom_executor_sees_every_activation_and_is_started_and_closed() -> None:
    wl = CodonWorkload(name="R", version="1")
    wl.add_node(_echo, "echo", "worker")
    counting = _Counting()
    report = wl.execute(os.getpid(), deployment_id="dev", executor=counting)
    assert report.node_results("echo") == [os.getpid()]
    assert counting.seen == [("echo", "t1", 0)]
    assert (counting.started, counting.closed) == (1, 1)


def test_the_in_process_executor_keeps_the_engine_fast_path() -> None:
    assert InProcessExecutor().in_process
