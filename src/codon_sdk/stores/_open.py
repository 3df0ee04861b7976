"""``open_store(url)``: open the ledger store a URL names, through the store registry
(``_registry``), where the built-in backends below are registered like any plug-in."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any, Final

from codon_sdk.errors import CodonError, InvalidStoreURLError, StoreError
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._notary import Notary
from codon_sdk.stores._registry import is_shared_scheme, open_url, register_built_in
from codon_sdk.stores._url import mask_url

__all__ = [
    "DEFAULT_LEDGER_URL",
    "close_shared",
    "default_ledger_url",
    "is_shared",
    "mask_url",
    "open_store",
    "reopen",
    "shared_store",
]

DEFAULT_LEDGER_URL: Final = "sqlite:///.codon/ledger.db"
_FROM_ENV: Any = object()


def default_ledger_url() -> str:
    """``CODON_LEDGER_URL`` if set, else ``sqlite:///.codon/ledger.db``."""
    return os.environ.get("CODON_LEDGER_URL") or DEFAULT_LEDGER_URL


def open_store(url: str | LedgerStore, *, notary: Any = _FROM_ENV, **options: Any) -> LedgerStore:
    """Open the ledger store a URL names.

    * ``memory://``: in this process only;
    * ``sqlite:///path.db`` (relative) or ``sqlite:////abs/path.db``: one SQLite file, WAL mode;
    * ``postgresql://user:password@host:port/db``: PostgreSQL (needs ``codon-sdk[postgres]``);
    * any scheme a plug-in registered (:func:`~codon_sdk.stores.register_store`, or an entry
      point in the group ``codon_sdk.stores``).

    A store instance is returned as is. ``options`` go to the backend's constructor.
    ``notary`` (a :class:`~codon_sdk.stores.Notary`, or None for none) signs the
    ledger's checkpoints; by default one is built from ``CODON_SIGNING_KEY``
    (see ``Notary.from_env``), and without that key there are no checkpoints.
    """
    if isinstance(url, LedgerStore):
        if notary is not _FROM_ENV:
            url.notary = notary
        return url
    store = open_url(url, options)
    store.notary = Notary.from_env() if notary is _FROM_ENV else notary
    return store


# --------------------------------------------------------------------------- built-in backends
# Registered exactly as a plug-in registers (``register_store``), each imported on first use.


def _open_memory(url: str, **options: Any) -> LedgerStore:
    from codon_sdk.stores._memory import MemoryStore

    return MemoryStore(**options)


def _open_sqlite(url: str, **options: Any) -> LedgerStore:
    from codon_sdk.stores._sqlite import SQLiteStore

    path = url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else ""
    if not path:
        raise InvalidStoreURLError(
            f"SQLite URL {url!r} names no file; use sqlite:///relative.db or "
            "sqlite:////absolute/path.db"
        )
    return SQLiteStore(path, **options)


def _open_postgres(url: str, **options: Any) -> LedgerStore:
    from codon_sdk.stores._postgres import PostgresStore

    return PostgresStore(url, **options)


register_built_in("memory", _open_memory)
register_built_in("sqlite", _open_sqlite)
for _scheme in ("postgresql", "postgres", "postgresql+psycopg"):
    # one store per URL for the process: a pool and a schema check cost too much per run
    register_built_in(_scheme, _open_postgres, shared=True)


# --------------------------------------------------------------------------- shared stores

_SHARED: dict[str, LedgerStore] = {}
_SHARED_LOCK = threading.Lock()
_AT_EXIT: list[Any] = []


def shared_store(url: str) -> LedgerStore:
    """The store this process shares for ``url`` (what ``execute(store=url)`` writes to).

    A store whose scheme was registered ``shared`` (PostgreSQL's) is opened on first
    use (notary from the environment, as :func:`open_store`), kept for every later run
    naming the same URL and closed when the process exits, so a run costs no connect,
    pool start or schema check (the schema is checked once per process). A shared store
    that was closed is opened again. Other URLs open a store per call, which the caller
    closes: a SQLite file is then whole (its write-ahead log checkpointed) when the run
    returns, so copying the file copies every run, and opening a file costs little;
    ``memory://`` opens a new, empty store each time.
    """
    if not is_shared_scheme(url):
        return open_store(url)
    with _SHARED_LOCK:
        store = _SHARED.get(url)
        if store is not None and not store.closed:
            return store
        store = open_store(url)
        if not _AT_EXIT:
            _AT_EXIT.append(atexit.register(close_shared))
        _SHARED[url] = store
        return store


def is_shared(store: LedgerStore) -> bool:
    """Whether ``store`` is one this process shares (never to be closed by a run)."""
    return any(held is store for held in list(_SHARED.values()))


def close_shared() -> None:
    """Close every shared store (at exit; tests call it to start afresh)."""
    with _SHARED_LOCK:
        held = list(_SHARED.values())
        _SHARED.clear()
    for store in held:
        store.close()


def reopen(store: LedgerStore, *, why: str) -> LedgerStore:
    """A new handle on the ledger that the closed ``store`` was opened on (from its URL),
    for a reader that outlived it; the caller closes it. ``StoreError`` saying ``why`` the
    store was needed and what to do when it cannot be reopened (an in-memory store, whose
    runs went with it, or a URL whose password ``store.url`` masks)."""
    if store.url.startswith("memory:"):
        raise StoreError(f"the in-memory ledger store was closed while {why}; keep it open")
    try:
        return open_store(store.url)
    except CodonError as exc:
        raise StoreError(
            f"the ledger store {store.url} was closed while {why}, and could not be opened "
            f"again from its URL ({exc}); keep the store open while you read"
        ) from exc
