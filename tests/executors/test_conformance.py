"""Every executor passes the same conformance suite (``codon_sdk.testing``)."""

from __future__ import annotations

import pytest

from codon_sdk.executors import Executor, InProcessExecutor, RayExecutor
from codon_sdk.testing import ExecutorConformance


class TestInProcessExecutor(ExecutorConformance):
    def make_executor(self) -> Executor:
        return InProcessExecutor()


class TestRayExecutor(ExecutorConformance):
    @pytest.fixture(autouse=True)
    def _cluster(self, ray_address: str) -> None:
        self.address = ray_address

    def make_executor(self) -> Executor:
        return RayExecutor(address=self.address)
