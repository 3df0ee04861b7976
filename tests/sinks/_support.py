"""A list-backed sink (a real AuditSink, in memory) whose delivery can be failed or blocked."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from codon_sdk.sinks import AuditEntry, AuditSink


class ListSink(AuditSink):
    """Keeps every delivery; ``down`` makes deliveries raise; ``gate`` blocks them."""

    def __init__(self, max_buffer: int = 10_000) -> None:
        self.max_buffer = max_buffer
        self.got: list[AuditEntry] = []
        self.down = False
        self.attempts = 0
        self.gate = threading.Event()
        self.gate.set()

    def deliver(self, entries: Sequence[AuditEntry]) -> None:
        self.attempts += 1
        self.gate.wait()
        if self.down:
            raise ConnectionError("sink is down")
        self.got.extend(entries)

    def of(self, run_id: str) -> list[tuple[str, bytes]]:
        return [(e.key, e.entry) for e in self.got if e.run_id == run_id]
