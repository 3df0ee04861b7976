"""Store conformance, the keyring of approvers: keys added, listed per workload, removed,
with :class:`~codon_sdk.stores.MemoryStore` as the reference."""

from __future__ import annotations

from codon_sdk.ledger import Ed25519Signer
from codon_sdk.stores import LedgerStore, add_approver, approver_keys, approvers, remove_approver

__all__ = ["ApproverConformance"]


def _vkey(name: str) -> str:
    return Ed25519Signer(name, bytes([len(name)]) * 32).vkey


class ApproverConformance:
    """``AddApprover``, ``ListApprovers`` and ``RemoveApprover``: the keyring round trips."""

    def test_an_empty_store_has_no_approvers(self, store: LedgerStore) -> None:
        assert approvers(store) == []
        assert approver_keys(store, "Refunds") == []

    def test_approvers_are_listed_per_workload_in_key_order(self, store: LedgerStore) -> None:
        alice, bob = _vkey("alice"), _vkey("bob")
        added = add_approver(store, "Refunds", bob)
        add_approver(store, "Refunds", alice)
        add_approver(store, "Payroll", alice)
        assert [k.vkey for k in approvers(store, "Refunds")] == sorted([alice, bob])
        assert [k.vkey for k in approvers(store, "Payroll")] == [alice]
        assert [(k.workload_name, k.vkey) for k in approvers(store)] == [
            ("Payroll", alice),
            *sorted([("Refunds", alice), ("Refunds", bob)]),
        ]
        held = next(k for k in approvers(store, "Refunds") if k.vkey == bob)
        assert held == added  # read back as stored, time included
        assert [v.vkey for v in approver_keys(store, "Refunds")] == sorted([alice, bob])

    def test_adding_a_key_twice_keeps_one_row(self, store: LedgerStore) -> None:
        alice = _vkey("alice")
        add_approver(store, "Refunds", alice)
        add_approver(store, "Refunds", alice)
        assert len(approvers(store, "Refunds")) == 1

    def test_a_removed_key_is_no_longer_an_approver(self, store: LedgerStore) -> None:
        alice, bob = _vkey("alice"), _vkey("bob")
        add_approver(store, "Refunds", alice)
        add_approver(store, "Refunds", bob)
        add_approver(store, "Payroll", alice)
        assert remove_approver(store, "Refunds", alice) is True
        assert remove_approver(store, "Refunds", alice) is False
        assert [k.vkey for k in approvers(store, "Refunds")] == [bob]
        assert [k.vkey for k in approvers(store, "Payroll")] == [alice]  # other workloads keep it
