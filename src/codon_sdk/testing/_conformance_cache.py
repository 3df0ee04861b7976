"""Store conformance, the cache by identity: lookups, the first entry for a key winning,
replacement, with :class:`~codon_sdk.stores.MemoryStore` as the reference."""

from __future__ import annotations

from codon_sdk.stores import CacheEntry, LedgerStore

__all__ = ["CacheConformance"]


def _entry(key: str, run_id: str = "run-a", seq: int = 7) -> CacheEntry:
    return CacheEntry(
        key=key, node_id="n" * 64, run_id=run_id, seq=seq, leaf="ab" * 32, created_us=1_000
    )


class CacheConformance:
    """``LookupCache`` and ``PutCache``: what is stored is read back as it was."""

    def test_an_unknown_cache_key_is_none(self, store: LedgerStore) -> None:
        assert store.lookup_cache("k" * 64) is None

    def test_a_cache_entry_is_read_back_as_stored(self, store: LedgerStore) -> None:
        entry = _entry("a" * 64)
        assert store.put_cache(entry) is True
        assert store.lookup_cache("a" * 64) == entry
        assert store.lookup_cache("b" * 64) is None

    def test_the_first_cache_entry_for_a_key_wins(self, store: LedgerStore) -> None:
        first, second = _entry("c" * 64), _entry("c" * 64, run_id="run-b", seq=9)
        assert store.put_cache(first) is True
        assert store.put_cache(second) is False
        assert store.lookup_cache("c" * 64) == first

    def test_a_replacing_put_takes_the_held_entrys_place(self, store: LedgerStore) -> None:
        first, second = _entry("d" * 64), _entry("d" * 64, run_id="run-b", seq=9)
        store.put_cache(first)
        assert store.put_cache(second, replace=True) is True
        assert store.lookup_cache("d" * 64) == second
        assert store.put_cache(_entry("e" * 64), replace=True) is True
