"""A run's entries read from its store a page at a time (``ReadEntries`` with ``start``/``end``).

:class:`PagedEntries` is a ``Sequence[bytes]`` that holds no more than one page of entries
(plus a table of where each page starts), whatever the run's length, so readers of a
million-event run (``codon runs show``, ``codon export``, :func:`~codon_sdk.load_report`)
run in flat memory. It is built by one pass over the run (:meth:`PagedEntries.scan`) that
counts the rows each page of seqs holds, so it is exactly the list ``store.read(run_id)``
returns, gaps in the seqs of a damaged ledger included: position ``i`` is the ``i``-th row in
seq order, whatever seq that row claims. Entries the run gains after the scan are not part of
it (a snapshot, as a list read at that moment would be).

:meth:`PagedEntries.expecting` skips that counting pass where the caller knows how many
entries an intact run holds (its runs index says so) and reads each page only when it is
reached: the sequence then *assumes* every page of seqs is full, notes each page that is
not (``diverged``), and :meth:`PagedEntries.confirm` says whether the assumption held (every
page read and full, no row past the last). Verification reads a run once this way and
falls back to :meth:`PagedEntries.scan` when it did not hold (a damaged or growing run).
"""

from __future__ import annotations

import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import Final, overload

from codon_sdk.errors import StoreError
from codon_sdk.stores._base import LedgerStore
from codon_sdk.stores._open import reopen

__all__ = ["DEFAULT_PAGE_SIZE", "PagedEntries"]

#: Entries per read: large enough that a round trip per page costs little, small enough
#: that a page of ordinary entries (a few hundred bytes each) stays around a megabyte.
DEFAULT_PAGE_SIZE: Final = 4096


class PagedEntries(Sequence[bytes]):
    """A run's entries, read from ``store`` one page of seqs at a time (see the module)."""

    def __init__(
        self,
        store: LedgerStore,
        run_id: str,
        pages: Sequence[tuple[int, int, int]],
        tail: list[bytes],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> None:
        #: (first seq, position of its first row, rows) of each page of seqs that held rows
        self._pages = tuple(pages)
        self._starts = [position for _, position, _ in self._pages]
        self._tail = tail  # rows past the last full page's seqs (a damaged ledger's far seqs)
        self._tail_at = sum(rows for _, _, rows in self._pages)
        self.store = store
        self.run_id = run_id
        self.page_size = page_size
        self._size = self._tail_at + len(tail)
        self._limit = self._size if limit is None else max(0, min(limit, self._size))
        self._held: tuple[int, list[bytes]] = (-1, [])  # (page index, its rows)
        self.on_page = on_page
        self._spare: LedgerStore | None = None  # ``store`` reopened, if it was closed
        #: :meth:`expecting`: the pages are assumed full; ``_seen`` holds those read and found
        #: so, ``diverged`` says one was not (the assumption failed: :meth:`confirm` is False)
        self._expected = False
        self._seen: set[int] = set()
        self.diverged = False
        #: called with ``(position of the first, rows)`` of every page read from the store
        self.on_rows: Callable[[int, list[bytes]], None] | None = None

    @classmethod
    def scan(
        cls,
        store: LedgerStore,
        run_id: str,
        *,
        page_size: int | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> PagedEntries:
        """Count run ``run_id``'s rows page by page (``RunNotFoundError`` for an unknown run).

        ``page_size`` entries per read (None: :data:`DEFAULT_PAGE_SIZE`); ``on_page(rows so
        far, rows in this page)`` is called after every read (progress)."""
        if page_size is None:
            page_size = DEFAULT_PAGE_SIZE
        if page_size < 1:
            raise ValueError(f"page_size must be a positive number of entries, got {page_size}")
        pages: list[tuple[int, int, int]] = []
        position, seq = 0, 0
        first: list[bytes] = []
        while True:
            read = store.read(run_id, seq, seq + page_size)
            rows = len(read)
            if not seq:
                first = read  # kept: most readers start there (a short run is all of it)
            if rows:
                pages.append((seq, position, rows))
            position += rows
            if on_page is not None:
                on_page(position, rows)
            seq += page_size
            if not rows:  # a short page may only be a gap (a damaged ledger): read on
                break
        # an intact run ends here; a damaged one may hold rows past a gap wider than a page:
        # those are read whole (``tail``), one read, as ``store.read`` would return them
        tail = store.read(run_id, seq)
        paged = cls(store, run_id, pages, tail, page_size=page_size, on_page=on_page)
        if first:
            paged._held = (0, first)
        return paged

    @classmethod
    def expecting(
        cls,
        store: LedgerStore,
        run_id: str,
        count: int,
        *,
        page_size: int | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> PagedEntries:
        """Run ``run_id`` as ``count`` entries in full pages of seqs, nothing read yet (see
        the module): reading a page that holds another number of rows than assumed raises
        ``StoreError`` and sets ``diverged``; :meth:`confirm` checks the rest."""
        if page_size is None:
            page_size = DEFAULT_PAGE_SIZE
        if page_size < 1:
            raise ValueError(f"page_size must be a positive number of entries, got {page_size}")
        count = max(0, count)
        pages = [(seq, seq, min(page_size, count - seq)) for seq in range(0, count, page_size)]
        paged = cls(store, run_id, pages, [], page_size=page_size, on_page=on_page)
        paged._expected = True
        return paged

    def confirm(self) -> bool:
        """Whether an :meth:`expecting` sequence is the run as ``store.read`` returns it: every
        page read (those not yet read are read now) held the rows assumed, and no row lies
        past the last page (True for a :meth:`scan`, which counted them)."""
        if not self._expected:
            return True
        try:
            for k in range(len(self._pages)):
                if k not in self._seen:
                    self._read(k)
            end = len(self._pages) * self.page_size
            if self._live().read(self.run_id, end, end + self.page_size):
                return False
            # a damaged ledger may hold rows past a gap wider than a page: one read, as scan
            return not self.diverged and not self._live().read(self.run_id, end + self.page_size)
        except StoreError:
            return False

    # ------------------------------------------------------------------ the sequence

    def __len__(self) -> int:
        return self._limit

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._limit)
            if step != 1:
                return [self._at(i) for i in range(start, stop, step)]
            out: list[bytes] = []
            while start < stop:  # a page at a time (a span of the chain walk: one slice)
                offset, rows = self._page_of(start)
                chunk = rows[start - offset : stop - offset]
                if not chunk:  # pragma: no cover - _read ensures a page holds its rows
                    raise IndexError(start)
                out += chunk
                start += len(chunk)
            return out
        if index < 0:
            index += self._limit
        if not 0 <= index < self._limit:
            raise IndexError(index)
        return self._at(index)

    def __iter__(self) -> Iterator[bytes]:
        for _, rows in self.pages():
            yield from rows

    def pages(self, start: int = 0) -> Iterator[tuple[int, list[bytes]]]:
        """``(position of the first, rows)`` page by page from position ``start``, each page
        read from the store as it is reached and not kept."""
        at = max(0, start)
        while at < self._limit:
            offset, rows = self._page_of(at)
            chunk = rows[at - offset : self._limit - offset]
            yield at, chunk
            at += len(chunk)

    def prefix(self, size: int) -> PagedEntries:
        """The first ``size`` entries as a view over the same pages (nothing read)."""
        view = PagedEntries(
            self.store,
            self.run_id,
            self._pages,
            self._tail,
            page_size=self.page_size,
            limit=min(size, self._limit),
            on_page=self.on_page,
        )
        view._held = self._held
        view._expected = self._expected
        return view

    def __repr__(self) -> str:
        return (
            f"PagedEntries({self._limit} entries of run {self.run_id!r}, pages of {self.page_size})"
        )

    # ------------------------------------------------------------------ reading

    def _at(self, position: int) -> bytes:
        offset, rows = self._page_of(position)
        return rows[position - offset]

    def _page_of(self, position: int) -> tuple[int, list[bytes]]:
        """The page holding ``position``: its first position and rows (read unless held)."""
        if position >= self._tail_at:
            return self._tail_at, self._tail
        k = bisect_right(self._starts, position) - 1
        held, rows = self._held
        if held != k:
            rows = self._read(k)
            self._held = (k, rows)
        return self._starts[k], rows

    def _live(self) -> LedgerStore:
        store = self.store
        if store.closed:  # the caller's store, closed before the report was read: reopen it
            if self._spare is None:
                self._spare = reopen(store, why=f"run {self.run_id!r} was still being read")
                weakref.finalize(self, self._spare.close)
            store = self._spare
        return store

    def _read(self, k: int) -> list[bytes]:
        seq, _, count = self._pages[k]
        store = self._live()
        rows = store.read(self.run_id, seq, seq + self.page_size)
        if self._expected and len(rows) != count:
            self.diverged = True
            raise StoreError(
                f"run {self.run_id!r} in {store.url} holds {len(rows)} rows at seqs {seq} to "
                f"{seq + self.page_size - 1}, not the {count} its runs index implies; read it "
                "with PagedEntries.scan"
            )
        self._seen.add(k)
        if len(rows) < count:  # the ledger is append-only: fewer rows than counted is damage
            raise StoreError(
                f"run {self.run_id!r} in {store.url} lost entries while it was being read "
                f"(seqs {seq} to {seq + self.page_size - 1} held {count} rows, now "
                f"{len(rows)}); run `codon verify`"
            )
        if self.on_page is not None:
            self.on_page(self._starts[k] + count, count)
        rows = rows[:count] if len(rows) > count else rows
        if self.on_rows is not None:
            self.on_rows(self._starts[k], rows)
        return rows
