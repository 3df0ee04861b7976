"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs (pure, no I/O).

The tree over leaves ``d[0:n]`` is the one of RFC 9162 section 2.1.1::

    MTH({})      = SHA-256()                                  the empty tree
    MTH({d0})    = SHA-256(0x00 || d0)                        a leaf hash
    MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  k = largest power of 2 < n

Every function here takes *leaf hashes* (32-byte ``SHA-256(0x00 || entry)``
values: :func:`leaf_hash`), never entries, so the ledger can hash each entry once.
:func:`root` hashes level by level (pair neighbours, promote an odd last node),
which gives the same root as the recursive definition without recursing per leaf.
:class:`MerkleAccumulator` keeps the compact range (one subtree root per set bit
of the size) so a writer can follow a growing tree in O(log n) memory.

Proofs are lists of 32-byte hashes in the order of RFC 9162 (from the leaf up).
The ``verify_*`` functions implement the verification algorithms of sections
2.1.3.2 and 2.1.4.2 and return ``False`` for anything that does not check out,
malformed arguments included (wrong types, sizes, indices, hash lengths, extra or
missing hashes); they never raise. The ``*_proof`` builders raise
:class:`~codon_sdk.errors.ProofError` when asked for a proof that does not exist.

Consistency edge cases RFC 9162 leaves open: between equal sizes the proof is
empty and the two roots must be equal; from size 0 the proof is empty and the old
root must be the empty-tree root (every tree extends the empty one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

from codon_sdk.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleAccumulator",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    h = _sha256(_LEAF)
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)`` of two 32-byte hashes."""
    _check_hash(left, "left child hash")
    _check_hash(right, "right child hash")
    return _sha256(_NODE + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of the given leaf hashes; :data:`EMPTY_ROOT` for none."""
    level = _checked_list(leaf_hashes)
    return _root(level) if level else EMPTY_ROOT


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, size: int | None = None
) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree of the first ``size`` leaf hashes (RFC 9162 2.1.3).

    ``size`` defaults to ``len(leaf_hashes)``. Raises :class:`ProofError` unless
    ``0 <= index < size <= len(leaf_hashes)``.
    """
    leaves = _checked_list(leaf_hashes)
    size = _checked_size(size, len(leaves))
    if not _is_count(index) or index >= size:
        raise ProofError(
            f"leaf index {index!r} is outside a tree of size {size}; "
            f"ask for an index in 0..{size - 1}"
        )
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_root(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_root(leaves[lo : lo + k]))
            lo += k
    path.reverse()
    return path


def consistency_proof(
    leaf_hashes: Sequence[bytes], old_size: int, new_size: int | None = None
) -> list[bytes]:
    """Proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size`` (2.1.4.1).

    ``new_size`` defaults to ``len(leaf_hashes)``. The proof is empty when the
    sizes are equal or ``old_size`` is 0. Raises :class:`ProofError` unless
    ``0 <= old_size <= new_size <= len(leaf_hashes)``.
    """
    leaves = _checked_list(leaf_hashes)
    new_size = _checked_size(new_size, len(leaves))
    if not _is_count(old_size) or old_size > new_size:
        raise ProofError(
            f"old tree size {old_size!r} must be an integer in 0..{new_size} (the new size)"
        )
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(_root(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_root(leaves[lo : lo + k]))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        path.append(_root(leaves[lo:hi]))
    path.reverse()
    return path


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows ``leaf_hash`` at ``index`` in the tree ``(size, root)`` (2.1.3.2)."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_count(index) and _is_count(size)):
        return False
    if index >= size or not _is_path(proof):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    RFC 9162 section 2.1.4.2, plus the edge cases in the module docstring.
    """
    if not (_is_count(old_size) and _is_count(new_size) and _is_hash(old_root)):
        return False
    if not (_is_hash(new_root) and _is_path(proof)) or old_size > new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class MerkleAccumulator:
    """A growing Merkle tree kept as its compact range: O(log n) memory, O(1) amortised appends.

    >>> acc = MerkleAccumulator()
    >>> acc.append(leaf_hash(b"entry"))
    >>> acc.size, acc.root() == root([leaf_hash(b"entry")])
    (1, True)
    """

    __slots__ = ("_range", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._size = 0
        # Roots of the perfect subtrees that make up the tree, largest (leftmost) first:
        # one per set bit of ``_size``.
        self._range: list[bytes] = []
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf hash (32 bytes) to the right edge of the tree."""
        if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE:
            _check_hash(leaf_hash, f"leaf hash #{self._size}")
        stack, h, n = self._range, leaf_hash, self._size
        while n & 1:  # merge equal-sized subtrees, as a binary counter carries
            h = _sha256(_NODE + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order (the same tree as :meth:`append` one by one).

        Works a level at a time: the new nodes of each height are hashed in pairs
        by one comprehension, after taking over the range's node of that height
        (the left neighbour of the first new node) when there is one. A run's
        writer feeds thousands of leaves at once, so this is its hot loop.
        """
        level = list(leaf_hashes)
        if set(map(type, level)) - {bytes} or set(map(len, level)) - {HASH_SIZE}:
            for n, h in enumerate(level):  # name the first bad one
                _check_hash(h, f"leaf hash #{self._size + n}")
        if not level:
            return
        stack, size = self._range, self._size
        self._size = size + len(level)
        kept: list[bytes] = []  # the new range's nodes, smallest height first
        while level:
            if size & 1:
                level.insert(0, stack.pop())
            if len(level) & 1:
                kept.append(level.pop())
            level = [
                _sha256(_NODE + left + right).digest()
                for left, right in zip(level[::2], level[1::2], strict=True)
            ]
            size >>= 1
        stack.extend(reversed(kept))

    def root(self) -> bytes:
        """Root of the tree of all leaves so far (O(log n)); :data:`EMPTY_ROOT` when empty."""
        stack = self._range
        if not stack:
            return EMPTY_ROOT
        r = stack[-1]
        for left in reversed(stack[:-1]):
            r = _sha256(_NODE + left + r).digest()
        return r

    def copy(self) -> MerkleAccumulator:
        """An independent accumulator in the same state."""
        twin = MerkleAccumulator()
        twin._size = self._size
        twin._range = list(self._range)
        return twin

    def __repr__(self) -> str:
        return f"MerkleAccumulator(size={self._size}, root={self.root().hex()})"


def _root(level: list[bytes]) -> bytes:
    """Root of a non-empty list of checked hashes, level by level (no recursion)."""
    sha, node = _sha256, _NODE
    while len(level) > 1:
        pairs = iter(level)
        nxt = [sha(node + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
        if len(level) & 1:  # the last node has no sibling at this level: promote it
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _checked_list(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    leaves = list(leaf_hashes)
    if set(map(type, leaves)) - {bytes} or set(map(len, leaves)) - {HASH_SIZE}:
        for i, h in enumerate(leaves):
            _check_hash(h, f"leaf hash #{i}")
    return leaves


def _checked_size(size: int | None, available: int) -> int:
    if size is None:
        return available
    if not _is_count(size) or size > available:
        raise ProofError(
            f"tree size {size!r} must be an integer in 0..{available} "
            f"(the number of leaf hashes given)"
        )
    return size


def _check_hash(value: object, what: str) -> None:
    if not isinstance(value, bytes):
        raise ProofError(f"{what} must be bytes, got {type(value).__name__}: {value!r}")
    if len(value) != HASH_SIZE:
        raise ProofError(
            f"{what} must be {HASH_SIZE} bytes (a SHA-256 digest), got {len(value)}: "
            f"{value.hex()}; pass leaf hashes (leaf_hash(entry)), not entries"
        )


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_path(proof: object) -> bool:
    if isinstance(proof, (bytes, str)) or not isinstance(proof, Sequence):
        return False
    return all(_is_hash(p) for p in proof)
