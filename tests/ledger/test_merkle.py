"""RFC 6962/9162 Merkle trees: known answers, the recursive definition, proofs and misuse."""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codon_sdk.errors import ProofError
from codon_sdk.ledger._merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"  # copy of ../shared/testdata
VECTORS: dict[str, Any] = json.loads((TESTDATA / "merkle-rfc6962.json").read_text())
ROOTS_BY_SIZE: dict[str, str] = VECTORS["roots_by_size"]
VECTOR_LEAVES = [leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaves_hex"]]
LEAVES = [leaf_hash(b"leaf %d" % i) for i in range(300)]


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 section 2.1.1 defines it (recursive)."""
    if not leaves:
        return _sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _sha(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[tuple[bytes, str]]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1, each hash tagged with the side it sits on."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), (ref_mth(leaves[k:]), "R")]
    return [*ref_path(m - k, leaves[k:]), (ref_mth(leaves[:k]), "L")]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def _flip(h: bytes, at: int = 0) -> bytes:
    return h[:at] + bytes([h[at] ^ 0x01]) + h[at + 1 :]


# --- known answers ------------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    """The vector's empty-tree root is SHA-256(''), from root([]) and an empty accumulator."""
    expected = bytes.fromhex(VECTORS["empty_tree_root"])
    assert root([]) == expected == EMPTY_ROOT
    assert MerkleAccumulator().root() == expected
    assert MerkleAccumulator().size == 0


def test_leaf_hash_vectors() -> None:
    """leaf_hash prefixes 0x00: the vector's empty leaf and 'L123456' hashes."""
    assert leaf_hash(b"").hex() == VECTORS["empty_leaf_hash"]
    case = VECTORS["leaf_hash"]
    assert leaf_hash(case["input_ascii"].encode("ascii")).hex() == case["hash"]


def test_node_hash_vector() -> None:
    """node_hash prefixes 0x01 (the vector's children use 4-byte stand-ins, so hash directly)."""
    case = VECTORS["children_hash"]
    left, right = case["left_ascii"].encode(), case["right_ascii"].encode()
    assert _sha(b"\x01" + left + right).hex() == case["hash"]
    a, b = LEAVES[0], LEAVES[1]
    assert node_hash(a, b) == _sha(b"\x01" + a + b)


@pytest.mark.parametrize("size", sorted(int(n) for n in ROOTS_BY_SIZE))
def test_root_of_vector_leaves(size: int) -> None:
    """root() of the first n vector leaves equals the published root, for every n in the file."""
    assert root(VECTOR_LEAVES[:size]).hex() == ROOTS_BY_SIZE[str(size)]


def test_accumulator_matches_vector_roots_at_every_size() -> None:
    """Appending the vector leaves one by one gives each published root on the way."""
    acc = MerkleAccumulator()
    for i, h in enumerate(VECTOR_LEAVES, start=1):
        acc.append(h)
        assert acc.size == i
        assert acc.root().hex() == ROOTS_BY_SIZE[str(i)]


# --- root and accumulator -----------------------------------------------------------------


def test_root_equals_recursive_definition_for_sizes_0_to_300() -> None:
    """The level-by-level root equals RFC 9162's recursive MTH for every size up to 300."""
    for n in range(301):
        assert root(LEAVES[:n]) == ref_mth(LEAVES[:n]), n


def test_accumulator_equals_root_at_every_size_up_to_300() -> None:
    """The compact range gives root() of the prefix after every single append."""
    acc = MerkleAccumulator()
    for n in range(300):
        assert acc.root() == root(LEAVES[:n])
        acc.append(LEAVES[n])


@given(st.lists(st.integers(min_value=0, max_value=70), max_size=8))
def test_extend_in_batches_equals_append_one_by_one(batches: list[int]) -> None:
    """extend() (level at a time) keeps the same compact range as append() after every batch,
    whatever the sizes the batches split the leaves into."""
    batched, single = MerkleAccumulator(), MerkleAccumulator()
    taken = 0
    for size in batches:
        leaves = LEAVES[taken : taken + size]
        taken += len(leaves)
        batched.extend(leaves)
        for h in leaves:
            single.append(h)
        assert batched.size == single.size == taken
        assert batched.root() == single.root() == root(LEAVES[:taken])
        assert repr(batched) == repr(single)


@pytest.mark.parametrize(
    ("bad", "message"),
    [(b"x" * 31, "leaf hash #3 must be 32 bytes"), ("a" * 32, "leaf hash #3 must be bytes")],
)
def test_extend_names_the_first_bad_leaf_and_keeps_the_tree(bad: object, message: str) -> None:
    acc = MerkleAccumulator(LEAVES[:2])
    with pytest.raises(ProofError, match=message):
        acc.extend([LEAVES[2], bad, LEAVES[3]])
    assert (acc.size, acc.root()) == (2, root(LEAVES[:2]))


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=150))
def test_accumulator_equals_root_for_any_leaves(leaves: list[bytes]) -> None:
    """For arbitrary leaf hashes, the accumulator root equals root() at every size."""
    acc = MerkleAccumulator()
    assert acc.root() == root([])
    for n, h in enumerate(leaves, start=1):
        acc.append(h)
        assert (acc.size, acc.root()) == (n, root(leaves[:n]))


def test_accumulator_keeps_one_hash_per_set_bit_of_its_size() -> None:
    """Memory is O(log n): the compact range holds popcount(size) hashes."""
    acc = MerkleAccumulator(LEAVES[:255])
    assert len(acc._range) == 8
    acc.append(LEAVES[255])
    assert len(acc._range) == 1


def test_accumulator_copy_is_independent_and_extend_appends() -> None:
    """copy() forks the state; extend() equals repeated append."""
    acc = MerkleAccumulator(LEAVES[:10])
    twin = acc.copy()
    twin.extend(LEAVES[10:20])
    assert acc.size == 10
    assert acc.root() == root(LEAVES[:10])
    assert twin.size == 20
    assert twin.root() == root(LEAVES[:20])
    assert "size=20" in repr(twin)


def test_root_of_large_tree_needs_no_recursion_per_leaf() -> None:
    """root() and the accumulator run within a tight recursion limit (iterative code)."""
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(5000)]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 25)
    try:
        got = root(leaves)
        acc_root = MerkleAccumulator(leaves).root()
    finally:
        sys.setrecursionlimit(limit)
    assert got == acc_root == ref_mth(leaves)


@pytest.mark.parametrize(
    "bad", [b"\x00" * 31, b"\x00" * 33, "00" * 32, bytearray(32), None], ids=repr
)
def test_hashing_rejects_values_that_are_not_32_byte_hashes(bad: Any) -> None:
    """root, node_hash and append refuse non-hashes with a ProofError naming the value."""
    with pytest.raises(ProofError, match="leaf hash #1"):
        root([LEAVES[0], bad])
    with pytest.raises(ProofError, match="right child hash"):
        node_hash(LEAVES[0], bad)
    acc = MerkleAccumulator([LEAVES[0]])
    with pytest.raises(ProofError, match="leaf hash #1"):
        acc.append(bad)
    assert acc.size == 1


# --- inclusion ----------------------------------------------------------------------------


def test_inclusion_proofs_match_rfc_and_verify_for_all_sizes_1_to_70() -> None:
    """Every (index, size) up to 70: the path is RFC 9162's PATH and it verifies."""
    for n in range(1, 71):
        r = root(LEAVES[:n])
        for i in range(n):
            proof = inclusion_proof(LEAVES, i, n)
            assert proof == [h for h, _ in ref_path(i, LEAVES[:n])], (i, n)
            assert verify_inclusion(LEAVES[i], i, n, proof, r), (i, n)


def test_inclusion_proof_size_defaults_to_number_of_leaves() -> None:
    """Without a size the whole list is the tree."""
    assert inclusion_proof(LEAVES[:9], 4) == inclusion_proof(LEAVES, 4, 9)


def _inclusion_case(data: st.DataObject) -> tuple[int, int, list[bytes], bytes]:
    n = data.draw(st.integers(1, 70), label="size")
    i = data.draw(st.integers(0, n - 1), label="index")
    return n, i, inclusion_proof(LEAVES, i, n), root(LEAVES[:n])


@settings(max_examples=300)
@given(st.data())
def test_inclusion_fails_when_a_hash_is_altered(data: st.DataObject) -> None:
    """Flipping any bit of any path hash, of the leaf hash or of the root fails verification."""
    n, i, proof, r = _inclusion_case(data)
    at = data.draw(st.integers(0, 31), label="byte")
    assert not verify_inclusion(_flip(LEAVES[i], at), i, n, proof, r)
    assert not verify_inclusion(LEAVES[i], i, n, proof, _flip(r, at))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="path position")
        bad = [*proof[:k], _flip(proof[k], at), *proof[k + 1 :]]
        assert not verify_inclusion(LEAVES[i], i, n, bad, r)


@settings(max_examples=300)
@given(st.data())
def test_inclusion_fails_when_a_hash_is_added_or_removed(data: st.DataObject) -> None:
    """A path with one hash too many (anywhere) or one too few (any one) fails."""
    n, i, proof, r = _inclusion_case(data)
    k = data.draw(st.integers(0, len(proof)), label="insert at")
    extra = data.draw(st.sampled_from([LEAVES[299], r, LEAVES[i], *proof]), label="extra")
    assert not verify_inclusion(LEAVES[i], i, n, [*proof[:k], extra, *proof[k:]], r)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="remove at")
        assert not verify_inclusion(LEAVES[i], i, n, proof[:k] + proof[k + 1 :], r)


@settings(max_examples=300)
@given(st.data())
def test_inclusion_fails_when_the_index_is_altered(data: st.DataObject) -> None:
    """The same leaf and path at any other index (inside or outside the tree) fails."""
    n, i, proof, r = _inclusion_case(data)
    j = data.draw(st.integers(0, n + 5).filter(lambda j: j != i), label="other index")
    assert not verify_inclusion(LEAVES[i], j, n, proof, r)
    assert not verify_inclusion(LEAVES[j % n], j % n, n, proof, r) or j % n == i


@settings(max_examples=300)
@given(st.data())
def test_inclusion_fails_when_the_size_is_altered(data: st.DataObject) -> None:
    """Another size fails against the root that size has (what its checkpoint would sign).

    Against the original root, RFC 9162 verification depends on the size only
    through the shape of the path, so another size passes exactly when it gives
    the same shape; the signed checkpoint is what binds size and root together.
    """
    n, i, proof, r = _inclusion_case(data)
    m = data.draw(st.integers(1, 140).filter(lambda m: m != n), label="other size")
    assert not verify_inclusion(LEAVES[i], i, m, proof, root(LEAVES[:m]))
    same_shape = [s for _, s in ref_path(i, LEAVES[:n])] == [
        s for _, s in ref_path(i, LEAVES[:m])
    ] and i < m
    assert verify_inclusion(LEAVES[i], i, m, proof, r) == same_shape


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "root_"),
    [
        pytest.param(LEAVES[3], 3, 3, [], root(LEAVES[:3]), id="index equals size"),
        pytest.param(LEAVES[3], 9, 4, [], root(LEAVES[:4]), id="index beyond size"),
        pytest.param(LEAVES[0], -1, 4, [], root(LEAVES[:4]), id="negative index"),
        pytest.param(LEAVES[0], 0, 0, [], EMPTY_ROOT, id="empty tree"),
        pytest.param(LEAVES[0], 0, -2, [], EMPTY_ROOT, id="negative size"),
        pytest.param(LEAVES[1], True, 2, [LEAVES[0]], root(LEAVES[:2]), id="bool index"),
        pytest.param(LEAVES[0], 0, 1.0, [], LEAVES[0], id="float size"),
        pytest.param(LEAVES[0][:31], 0, 1, [], LEAVES[0], id="short leaf hash"),
        pytest.param(LEAVES[0], 0, 1, [], LEAVES[0] + b"\x00", id="long root"),
        pytest.param(LEAVES[0], 0, 2, [LEAVES[1][:16]], root(LEAVES[:2]), id="short path hash"),
        pytest.param(LEAVES[0], 0, 2, [LEAVES[1].hex()], root(LEAVES[:2]), id="hex str in path"),
        pytest.param(LEAVES[0], 0, 2, LEAVES[1], root(LEAVES[:2]), id="path is bytes"),
        pytest.param(LEAVES[0], 0, 2, None, root(LEAVES[:2]), id="path is None"),
        pytest.param(None, 0, 1, [], LEAVES[0], id="leaf is None"),
    ],
)
def test_verify_inclusion_returns_false_for_malformed_arguments(
    leaf: Any, index: Any, size: Any, proof: Any, root_: Any
) -> None:
    """Bad indices, sizes, hash lengths and types give False, never an exception."""
    assert verify_inclusion(leaf, index, size, proof, root_) is False


def test_single_leaf_tree_proves_its_leaf_with_an_empty_path() -> None:
    """In a tree of one leaf the root is the leaf hash and the path is empty."""
    assert inclusion_proof(LEAVES, 0, 1) == []
    assert verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])


@pytest.mark.parametrize(
    ("index", "size", "match"),
    [(5, 5, "outside a tree of size 5"), (-1, 5, "outside"), (0, 0, "outside"), (0, 400, "0..300")],
)
def test_inclusion_proof_refuses_indices_and_sizes_that_do_not_exist(
    index: int, size: int, match: str
) -> None:
    """Asking for a proof outside the tree raises ProofError naming the value."""
    with pytest.raises(ProofError, match=match):
        inclusion_proof(LEAVES, index, size)


# --- consistency --------------------------------------------------------------------------


def test_consistency_proofs_match_rfc_and_verify_for_all_sizes_up_to_64() -> None:
    """Every 0 < m < n <= 64: the proof is RFC 9162's PROOF and it verifies."""
    for n in range(1, 65):
        new_root = root(LEAVES[:n])
        for m in range(1, n):
            proof = consistency_proof(LEAVES, m, n)
            assert proof == ref_subproof(m, LEAVES[:n], True), (m, n)
            assert verify_consistency(m, n, root(LEAVES[:m]), new_root, proof), (m, n)


def test_consistency_between_equal_sizes_is_an_empty_proof_of_equal_roots() -> None:
    """m == n: the proof is empty and verifies only when both roots are the same."""
    r = root(LEAVES[:7])
    assert consistency_proof(LEAVES, 7, 7) == []
    assert verify_consistency(7, 7, r, r, [])
    assert not verify_consistency(7, 7, r, root(LEAVES[:8]), [])
    assert not verify_consistency(7, 7, r, r, [LEAVES[0]])


def test_consistency_from_the_empty_tree_is_empty_and_needs_the_empty_root() -> None:
    """m == 0: the proof is empty; the old root must be the empty-tree root."""
    r = root(LEAVES[:7])
    assert consistency_proof(LEAVES, 0, 7) == []
    assert verify_consistency(0, 7, EMPTY_ROOT, r, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 7, LEAVES[0], r, [])
    assert not verify_consistency(0, 7, EMPTY_ROOT, r, [LEAVES[0]])


def test_consistency_proof_defaults_new_size_and_refuses_impossible_sizes() -> None:
    """new_size defaults to all leaves; old > new or new > available raises ProofError."""
    assert consistency_proof(LEAVES[:9], 3) == consistency_proof(LEAVES, 3, 9)
    with pytest.raises(ProofError, match="old tree size 10"):
        consistency_proof(LEAVES, 10, 9)
    with pytest.raises(ProofError, match="tree size 301"):
        consistency_proof(LEAVES, 1, 301)
    with pytest.raises(ProofError, match="old tree size -1"):
        consistency_proof(LEAVES, -1, 9)


def _consistency_case(data: st.DataObject) -> tuple[int, int, list[bytes], bytes, bytes]:
    n = data.draw(st.integers(2, 64), label="new size")
    m = data.draw(st.integers(1, n - 1), label="old size")
    proof = consistency_proof(LEAVES, m, n)
    return m, n, proof, root(LEAVES[:m]), root(LEAVES[:n])


@settings(max_examples=300)
@given(st.data())
def test_consistency_fails_when_a_hash_is_altered(data: st.DataObject) -> None:
    """Flipping a bit of any proof hash, of the old root or of the new root fails."""
    m, n, proof, old, new = _consistency_case(data)
    at = data.draw(st.integers(0, 31), label="byte")
    k = data.draw(st.integers(0, len(proof) - 1), label="proof position")
    bad = [*proof[:k], _flip(proof[k], at), *proof[k + 1 :]]
    assert not verify_consistency(m, n, old, new, bad)
    assert not verify_consistency(m, n, _flip(old, at), new, proof)
    assert not verify_consistency(m, n, old, _flip(new, at), proof)
    assert not verify_consistency(m, n, new, old, proof)


@settings(max_examples=300)
@given(st.data())
def test_consistency_fails_when_a_hash_is_added_or_removed(data: st.DataObject) -> None:
    """A proof with an extra hash anywhere, or missing any one hash, fails."""
    m, n, proof, old, new = _consistency_case(data)
    k = data.draw(st.integers(0, len(proof)), label="insert at")
    extra = data.draw(st.sampled_from([LEAVES[299], old, new, *proof]), label="extra")
    assert not verify_consistency(m, n, old, new, [*proof[:k], extra, *proof[k:]])
    k = data.draw(st.integers(0, len(proof) - 1), label="remove at")
    assert not verify_consistency(m, n, old, new, proof[:k] + proof[k + 1 :])


@settings(max_examples=300)
@given(st.data())
def test_consistency_fails_when_a_size_is_altered(data: st.DataObject) -> None:
    """Another old size fails, against its own root or the original one; another new size
    fails against the root of that size (the pair its checkpoint would sign)."""
    m, n, proof, old, new = _consistency_case(data)
    m2 = data.draw(st.integers(1, n + 3).filter(lambda x: x != m), label="other old size")
    assert not verify_consistency(m2, n, old, new, proof)
    assert not verify_consistency(m2, n, root(LEAVES[:m2]), new, proof)
    n2 = data.draw(st.integers(m, 80).filter(lambda x: x != n), label="other new size")
    assert not verify_consistency(m, n2, old, root(LEAVES[:n2]), proof)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((5, 4, LEAVES[0], LEAVES[1], [LEAVES[2]]), id="old larger than new"),
        pytest.param((-1, 4, EMPTY_ROOT, LEAVES[1], []), id="negative old size"),
        pytest.param((1, 2, LEAVES[0], root(LEAVES[:2]), []), id="empty proof"),
        pytest.param((1, 2, LEAVES[0][:31], root(LEAVES[:2]), [LEAVES[1]]), id="short old root"),
        pytest.param((1, 2, LEAVES[0], root(LEAVES[:2]), [b"x"]), id="short proof hash"),
        pytest.param((1, 2, LEAVES[0], root(LEAVES[:2]), LEAVES[1]), id="proof is bytes"),
        pytest.param((1, 2, LEAVES[0], root(LEAVES[:2]), None), id="proof is None"),
        pytest.param((1, 2.0, LEAVES[0], root(LEAVES[:2]), [LEAVES[1]]), id="float size"),
        pytest.param((True, 2, LEAVES[0], root(LEAVES[:2]), [LEAVES[1]]), id="bool size"),
    ],
)
def test_verify_consistency_returns_false_for_malformed_arguments(args: tuple[Any, ...]) -> None:
    """Impossible sizes, short hashes and wrong types give False, never an exception."""
    assert verify_consistency(*args) is False
