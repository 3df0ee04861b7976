"""Ledger stores: where run ledgers live (memory, SQLite, PostgreSQL)."""
