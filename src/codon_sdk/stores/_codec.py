"""How the SQL stores keep an entry: without what the row already holds.

A ledger entry is canonical JSON whose keys sort, so ``"prev"``, ``"run_id"`` and
``"seq"`` always sit side by side, and ``"type"`` then ``"v"`` always close it::

    {..."payload":0,"prev":"<64 hex>","run_id":"<id>","seq":5,"token_id":"t1",...
     ..."type":"node_completed","v":1}

The row holds the run id and the seq in its own columns, so a stored entry leaves
them out, keeps ``prev`` as its 32 raw bytes instead of 64 hex digits behind a key,
and replaces the closing ``"type"``/``"v"`` pair of a built-in event type by one
character. The stored form is ``~`` + kind + type code + the span's offset from the
end (decimal) + ``:`` + (kind ``p``: the 32 bytes of ``prev``) + the rest. Reading
(:func:`unpack`) puts back exactly the bytes that were hashed, so leaf hashes, Merkle
roots, checkpoints and proofs are those of the full entry and nothing the chain
commits to changes: about 125 of the 230 bytes of a typical event are not stored.

Each row decodes on its own (never from a neighbour), so an entry edited in place
breaks the chain exactly where it did when rows held the full entry, and the blame
of a finding does not move.

* kind ``p``: ``prev``, ``run_id`` and ``seq`` were cut;
* kind ``n``: only ``run_id`` and ``seq`` (an entry with no ``prev``: the first);
* kind ``~``: a verbatim entry that happens to begin with ``~``.

Anything else is stored verbatim: rows written before this encoding (which begin
with ``{``) read back as they are, so old ledgers keep verifying with no migration.
Rows are hostile input: a malformed header or an offset out of range decodes to
the stored bytes unchanged, which the chain check then reports as the entry at that
seq not being canonical JSON. Nothing here raises.
"""

from __future__ import annotations

from binascii import hexlify
from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson

from codon_sdk.stores._base import Entry, entry_bytes

__all__ = ["pack", "stored_rows", "unpack"]

_MARK: Final = 0x7E  # "~"
# Built-in types by code character. Append only: a code, once written, names its type forever.
_TYPES: Final = (
    "run_started",
    "token_enqueued",
    "token_dequeued",
    "node_started",
    "effect_recorded",
    "state_updated",
    "node_completed",
    "cache_hit",
    "node_retrying",
    "node_failed",
    "run_interrupted",
    "run_resumed",
    "runtime_stopped",
    "run_finished",
)
_CODES: Final = "abcdefghijklmnopqrstuvwxyz"
_SUFFIX: Final = {
    _CODES[i].encode(): b',"type":"' + name.encode() + b'","v":1}' for i, name in enumerate(_TYPES)
}
_CODE_OF: Final = {suffix: code for code, suffix in _SUFFIX.items()}
_TYPE_AT: Final = b',"type":"'
_NO_CODE: Final = b"0"
_PREV_KEY: Final = b'"prev":"'
_PREV_SPAN: Final = len(_PREV_KEY) + 64 + 2  # "prev":"<64 hex>",


def _tail(rid: bytes) -> bytes:
    """The cut span's ``run_id`` part, up to the seq digits (the same for a whole run)."""
    return b'"run_id":' + rid + b',"seq":'


def pack(run_id: str, first: int, entries: Sequence[bytes]) -> list[bytes]:
    """The stored forms of consecutive entries of ``run_id`` from seq ``first`` on."""
    tail = _tail(orjson.dumps(run_id))
    return [_pack(entry, tail, first + k) for k, entry in enumerate(entries)]


def stored_rows(run_id: str, entries: Sequence[Entry]) -> list[bytes]:
    """The stored forms of consecutive ``entries`` (checked seqs), as a store writes them."""
    return pack(run_id, entries[0][0], entry_bytes(entries)) if entries else []


def _verbatim(entry: bytes) -> bytes:
    return b"~~" + entry if entry[:1] == b"~" else entry


def _pack(entry: bytes, run_tail: bytes, seq: int) -> bytes:
    """Exact by construction: each cut piece is compared byte for byte with what
    :func:`_unpack` puts back (the tests check the round trip over arbitrary entries)."""
    if type(entry) is not bytes:  # not plain bytes (a backend's own type): kept as it is
        return entry
    tail = b"%b%d," % (run_tail, seq)
    at = entry.rfind(tail)
    if at <= 0:
        return _verbatim(entry)
    kind, prev, start = b"n", b"", at
    begin = at - _PREV_SPAN
    if begin > 0 and entry.startswith(_PREV_KEY, begin) and entry.startswith(b'",', at - 2):
        digits = entry[begin + len(_PREV_KEY) : at - 2]
        try:
            raw = bytes.fromhex(digits.decode("ascii"))
        except ValueError:
            raw = b""
        if len(raw) == 32 and hexlify(raw) == digits:
            kind, prev, start = b"p", raw, begin
    stop = at + len(tail)
    cut = entry.rfind(_TYPE_AT)
    code = _CODE_OF.get(entry[cut:]) if cut >= stop else None
    end = len(entry) if code is None else cut
    return b"~%b%b%d:%b%b%b" % (
        kind,
        code or _NO_CODE,
        end - stop,
        prev,
        entry[:start],
        entry[stop:end],
    )


def _unpack(stored: bytes, run_tail: bytes, seq: int) -> bytes:
    if not stored or stored[0] != _MARK:
        return stored
    kind = stored[1:2]
    if kind == b"~":
        return stored[2:]
    colon = stored.find(b":", 3, 24)
    digits = stored[3:colon]
    code = stored[2:3]
    suffix = _SUFFIX.get(code, b"")
    if colon < 0 or not digits.isdigit() or (code != _NO_CODE and not suffix):
        return stored
    if kind == b"p":
        if len(stored) < colon + 33:
            return stored
        body = stored[colon + 33 :]
        span = b'"prev":"%b",' % hexlify(stored[colon + 1 : colon + 33])
    elif kind == b"n":
        body, span = stored[colon + 1 :], b""
    else:
        return stored
    at = len(body) - int(digits)
    if at < 0:
        return stored
    return b"%b%b%b%d,%b%b" % (body[:at], span, run_tail, seq, body[at:], suffix)


def unpack(run_id: str, rows: Iterable[Sequence[Any]]) -> list[bytes]:
    """The entries of ``run_id`` from ``(seq, stored form)`` rows.

    The common row (kind ``p`` with a type code) is decoded inline, exactly as
    :func:`_unpack` decodes it (verification reads every row: a call per row costs a
    third of the read); every other row, and any the inline checks refuse, goes through
    :func:`_unpack`."""
    tail = _tail(orjson.dumps(run_id))
    out: list[bytes] = []
    add, suffixes, hexed = out.append, _SUFFIX, hexlify
    for seq, stored, *_ in rows:
        if type(stored) is not bytes:
            stored = bytes(stored)
        if stored[:2] == b"~p":
            colon = stored.find(b":", 3, 24)
            digits = stored[3:colon]
            suffix = suffixes.get(stored[2:3])
            if suffix and colon > 0 and digits.isdigit() and len(stored) >= colon + 33:
                body = stored[colon + 33 :]
                at = len(body) - int(digits)
                if at >= 0:
                    prev = hexed(stored[colon + 1 : colon + 33])
                    add(
                        b'%b"prev":"%b",%b%d,%b%b' % (body[:at], prev, tail, seq, body[at:], suffix)
                    )
                    continue
        add(_unpack(stored, tail, seq))
    return out
