"""The store registry: ``register_store`` and the ``codon_sdk.stores`` entry-point group.

Entry points are real: each test that needs one writes an installed distribution's
metadata (a ``*.dist-info`` directory with ``METADATA`` and ``entry_points.txt``) into
a directory it puts on ``sys.path``, where ``importlib.metadata`` finds it as it finds
any installed package. Bad input gets a ``StorePluginError`` naming the plug-in and
what to do.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codon_sdk import CodonWorkload, StorePluginError, open_store, register_store
from codon_sdk.errors import InvalidStoreURLError
from codon_sdk.stores import ENTRY_POINT_GROUP, MemoryStore, SQLiteStore, unregister_store
from codon_sdk.stores._open import is_shared, shared_store

from ._third_party_store import JsonFileStore, open_json_store, open_not_a_store

ROOT = Path(__file__).resolve().parents[2]
#: The plug-in module as this test process imported it (entry points name it so).
PLUGIN = open_json_store.__module__


@pytest.fixture
def scheme() -> Iterator[str]:
    """A scheme of this test's own, unregistered again after it."""
    name = "tp-" + os.urandom(4).hex()
    yield name
    unregister_store(name)


def install(site: Path, dist: str, entry_points: dict[str, str], version: str = "1.0") -> None:
    """Write the metadata of an installed distribution ``dist`` whose entry points in the
    store group are ``entry_points`` (scheme -> ``module:attribute``)."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on ``sys.path`` to install distributions' metadata (and modules) into."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    importlib.invalidate_caches()
    return path


# --------------------------------------------------------------------------- register_store


def test_a_registered_scheme_opens_its_store_with_the_url_and_options(
    scheme: str, tmp_path: Path
) -> None:
    seen: list[tuple[str, dict[str, object]]] = []

    def factory(url: str, **options: object) -> MemoryStore:
        seen.append((url, options))
        return MemoryStore()

    register_store(scheme, factory)
    url = f"{scheme.upper()}://anything/at/all"
    store = open_store(url, notary=None, flavour="plain")
    assert isinstance(store, MemoryStore)
    assert store.notary is None
    assert seen == [(url, {"flavour": "plain"})]


def test_registering_a_taken_scheme_names_the_holder_and_replace(
    scheme: str, tmp_path: Path
) -> None:
    register_store(scheme, open_json_store)
    with pytest.raises(StorePluginError) as caught:
        register_store(scheme, open_not_a_store)
    message = str(caught.value)
    assert f"store scheme {scheme!r} is already registered to {PLUGIN}.open_json_store" in message
    assert f"{PLUGIN}.open_not_a_store cannot take it" in message
    assert "replace=True" in message
    assert isinstance(open_store(f"{scheme}:///{tmp_path}/a.json"), JsonFileStore)


def test_replace_true_replaces_and_the_same_factory_again_is_no_conflict(
    scheme: str, tmp_path: Path
) -> None:
    register_store(scheme, open_not_a_store)
    register_store(scheme, open_json_store, replace=True)
    register_store(scheme, open_json_store)
    assert isinstance(open_store(f"{scheme}:///{tmp_path}/a.json"), JsonFileStore)


def test_a_built_in_scheme_is_taken_like_any_other(tmp_path: Path) -> None:
    with pytest.raises(StorePluginError, match=r"'sqlite' is already registered to .*built in"):
        register_store("sqlite", open_json_store)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/l.db"), SQLiteStore)


@pytest.mark.parametrize("bad", ["", "my store", "json://", "1abc", "café", None])
def test_a_scheme_that_is_no_url_scheme_is_refused(bad: object) -> None:
    with pytest.raises(StorePluginError, match="is not a URL scheme"):
        register_store(bad, open_json_store)  # type: ignore[arg-type]


def test_a_factory_that_is_not_callable_is_refused(scheme: str) -> None:
    with pytest.raises(StorePluginError, match="is not callable"):
        register_store(scheme, "open_json_store")  # type: ignore[arg-type]


def test_a_factory_that_returns_no_store_is_named_with_what_it_returned(scheme: str) -> None:
    register_store(scheme, open_not_a_store)
    with pytest.raises(StorePluginError) as caught:
        open_store(f"{scheme}://user:hunter2@host/db")
    message = str(caught.value)
    assert f"{PLUGIN}.open_not_a_store (register_store())" in message
    assert "returned builtins.dict" in message
    assert "not a LedgerStore" in message
    assert "hunter2" not in message


def test_an_unknown_scheme_lists_the_known_ones_and_how_to_add_one(scheme: str) -> None:
    register_store(scheme, open_json_store)
    with pytest.raises(InvalidStoreURLError) as caught:
        open_store("mysql://user:hunter2@host/db")
    message = str(caught.value)
    assert "unknown ledger store scheme 'mysql'" in message
    assert "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db" in message
    assert "postgresql://..." in message
    assert "postgres://" not in message
    assert f"{scheme}://" in message
    assert ENTRY_POINT_GROUP in message
    assert "register_store(scheme, factory)" in message
    assert "hunter2" not in message


def test_only_a_scheme_registered_shared_is_shared_by_execute(scheme: str, tmp_path: Path) -> None:
    register_store(scheme, open_json_store)
    url = f"{scheme}:///{tmp_path}/a.json"
    first = shared_store(url)
    assert shared_store(url) is not first
    assert not is_shared(first)
    register_store(scheme, open_json_store, replace=True, shared=True)
    first = shared_store(url)
    assert shared_store(url) is first
    assert is_shared(first)


# --------------------------------------------------------------------------- entry points


def test_an_installed_entry_point_plugs_its_scheme_in(
    site: Path, scheme: str, tmp_path: Path
) -> None:
    install(site, "codon-jsonfile", {scheme: f"{PLUGIN}:open_json_store"})
    url = f"{scheme}:///{tmp_path}/ledger.json"
    report = _counter().execute(1, deployment_id="dev", store=url)
    with open_store(url) as store:
        assert isinstance(store, JsonFileStore)
        assert store.get_run(report.run_id).status == "completed"


def test_an_installed_scheme_is_listed_before_it_is_loaded(site: Path, scheme: str) -> None:
    install(site, "codon-jsonfile", {scheme: "no_such_module_anywhere:factory"})
    with pytest.raises(InvalidStoreURLError, match=rf"{scheme}://"):
        open_store("nosuchscheme://x")


def test_an_entry_point_that_fails_to_import_names_itself_and_its_distribution(
    site: Path, scheme: str
) -> None:
    (site / "broken_codon_store.py").write_text("import codon_dependency_not_installed\n")
    install(site, "broken-codon-store", {scheme: "broken_codon_store:open"}, version="2.5")
    with pytest.raises(StorePluginError) as caught:
        open_store(f"{scheme}:///x.db")
    message = str(caught.value)
    assert f"entry point {scheme} = broken_codon_store:open" in message
    assert "distribution broken-codon-store 2.5" in message
    assert "failed to import: ModuleNotFoundError" in message
    assert "codon_dependency_not_installed" in message
    assert "uninstall" in message
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_an_entry_point_that_names_no_callable_is_refused(site: Path, scheme: str) -> None:
    install(site, "odd-codon-store", {scheme: f"{PLUGIN}:NOT_A_FACTORY"})
    with pytest.raises(StorePluginError, match=r"names 'a string.*', which is not callable"):
        open_store(f"{scheme}:///x.db")


def test_two_distributions_with_one_scheme_are_both_named(site: Path, scheme: str) -> None:
    install(site, "first-store", {scheme: f"{PLUGIN}:open_json_store"})
    install(site, "second-store", {scheme: f"{PLUGIN}:open_not_a_store"})
    with pytest.raises(StorePluginError) as caught:
        open_store(f"{scheme}:///x.db")
    message = str(caught.value)
    assert "more than one installed store plug-in" in message
    assert "first-store 1.0" in message
    assert "second-store 1.0" in message
    assert "replace=True" in message


def test_code_registration_wins_over_an_entry_point_of_the_same_scheme(
    site: Path, scheme: str, tmp_path: Path
) -> None:
    install(site, "broken-store", {scheme: "no_such_module_anywhere:factory"})
    register_store(scheme, open_json_store)
    assert isinstance(open_store(f"{scheme}:///{tmp_path}/a.json"), JsonFileStore)


def test_the_cli_reads_a_ledger_through_an_installed_plugin(site: Path, tmp_path: Path) -> None:
    """``codon runs list --ledger jsonfile:///...`` in a fresh interpreter: the scheme comes
    from the installed entry point alone."""
    install(site, "codon-jsonfile", {"jsonfile": "tests.stores._third_party_store:open_json_store"})
    url = f"jsonfile:///{tmp_path}/ledger.json"
    store = open_json_store(url)
    report = _counter().execute(1, deployment_id="dev", store=store)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "codon_sdk", "runs", "list", "--ledger", url, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [run["run_id"] for run in json.loads(done.stdout)] == [report.run_id]


def _counter() -> CodonWorkload:
    wl = CodonWorkload(name="counter", version="1.0.0")

    def count(message: int, *, runtime: object, context: object) -> int:
        return message + 1

    wl.add_node(count, name="count", role="worker")
    return wl
