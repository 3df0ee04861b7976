"""What a recorder keeps of a run besides its entries, so that its report need not decode them.

See :class:`Completions`, and the trusted readers of entry bytes recorded in this process.
"""

from __future__ import annotations

import re
from array import array

import orjson

__all__ = ["TYPE_AT_END", "Completions", "decode_type"]


class Completions:
    """What a report needs of each activation completed in this process, kept as it happens.

    Per completion: the seq of its ``node_completed`` entry, its node (an index into
    :attr:`names`), when its token was dequeued (microseconds after :attr:`base`) and
    how long it took until it completed (microseconds): 14 bytes per step, which lets
    a report serve results, durations and counts without decoding the ledger (see
    ``runtime/_report.py``). The 4-byte columns widen to 8 bytes if a value needs it
    (a run longer than 35 minutes).
    """

    __slots__ = ("base", "done", "dur", "ix", "names", "nodes", "start")

    def __init__(self, base: int) -> None:
        self.base = base
        self.done = array("I")
        self.nodes = array("H")
        self.start = array("i")
        self.dur = array("i")
        self.names: list[str] = []
        self.ix: dict[str, int] = {}

    def add(self, seq: int, node: str, t0: int, t1: int) -> None:
        """Record a completion (the generic path; the recorder's hot path inlines this)."""
        ix = self.ix.get(node)
        self.nodes.append(self.node_ix(node) if ix is None else ix)
        self.done.append(seq)
        try:
            self.start.append(t0 - self.base)
        except OverflowError:
            self.start = array("q", self.start)
            self.start.append(t0 - self.base)
        try:
            self.dur.append(t1 - t0)
        except OverflowError:
            self.dur = array("q", self.dur)
            self.dur.append(t1 - t0)

    def node_ix(self, node: str) -> int:
        """The index of ``node`` in :attr:`names` (added on first use)."""
        ix = self.ix.get(node)
        if ix is None:
            ix = self.ix[node] = len(self.names)
            self.names.append(node)
            if ix > 0xFFFF and self.nodes.typecode == "H":  # more node names than 2 bytes hold
                self.nodes = array("I", self.nodes)
        return ix


# Trusted readers of entries recorded in this process (canonical by construction): the top-level
# "type" and "v" are the last two members of every entry ("v" an integer), and a string value
# never holds an unescaped quote, so the last `"type":"...","v":1}` before the end of an entry is
# its type and the last `"ts":` its timestamp. Chunks separate entries with the 0x00 leaf prefix,
# a byte canonical JSON never holds.
TYPE_AT_END = re.compile(rb'"type":"((?:[^"\\]|\\.)*)","v":1}(?=\x00|$)')


def decode_type(raw: bytes) -> str:
    """The text of a JSON string's bytes (without its quotes)."""
    if b"\\" in raw:
        text: str = orjson.loads(b'"' + raw + b'"')
        return text
    return raw.decode("utf-8")
