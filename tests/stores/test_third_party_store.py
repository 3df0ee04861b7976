"""The acceptance point of the store registry: a store defined outside the package, registered
by URL scheme, passes the conformance suite that ships in ``codon_sdk.testing``.

``_third_party_store.JsonFileStore`` uses only the public names of ``codon_sdk.stores``;
every test of :class:`~codon_sdk.testing.StoreConformance` runs on it, opened through
``open_store("jsonfile:///...")``, that is through the registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk import CodonWorkload, open_store, register_store, verify_run
from codon_sdk.stores import LedgerStore, unregister_store
from codon_sdk.testing import StoreConformance

from ._third_party_store import SCHEME, JsonFileStore, open_json_store


@pytest.fixture(autouse=True, scope="module")
def _registered() -> Iterator[None]:
    register_store(SCHEME, open_json_store)
    yield
    unregister_store(SCHEME)


class TestJsonFileStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> LedgerStore:
        store = open_store(f"{SCHEME}:///{tmp_path}/ledger.json")
        assert type(store) is JsonFileStore
        return store


def _workload() -> CodonWorkload:
    wl = CodonWorkload(name="third party", version="1.0.0")

    def count(message: int, *, runtime: object, context: object) -> int:
        return message + 1

    wl.add_node(count, name="count", role="worker")
    return wl


def test_a_run_written_through_the_plugged_in_scheme_verifies_after_reopening(
    tmp_path: Path,
) -> None:
    """``execute(store=url)`` writes to the plug-in, whose file holds the run once reopened."""
    url = f"{SCHEME}:///{tmp_path}/runs.json"
    report = _workload().execute(41, deployment_id="dev", store=url)
    assert report.node_results("count") == [42]
    with open_store(url) as reopened:
        assert [r.run_id for r in reopened.runs()] == [report.run_id]
        assert reopened.get_run(report.run_id).status == "completed"
        assert verify_run(reopened, report.run_id).ok
