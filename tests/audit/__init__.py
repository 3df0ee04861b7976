"""Acceptance suite of the provable audit trail and deterministic replay."""
