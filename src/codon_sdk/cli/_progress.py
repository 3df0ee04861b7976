"""Progress of long CLI reads on stderr: shown when stderr is a terminal or with ``--progress``.

A :class:`Progress` is the ``on_page`` hook of :class:`~codon_sdk.stores.PagedEntries`: it
hears of every page read, with the position reached. A read that starts again from the top
is the next pass (counting the entries, checking them, writing them), so it names the pass.
On a terminal the line is redrawn in place; elsewhere (``--progress`` into a file or a pipe)
a line is written at most every few seconds and at the end of each pass. stdout is never
touched, so ``codon export`` output stays the ledger's exact bytes.
"""

from __future__ import annotations

import sys
import time
from typing import Final, TextIO

__all__ = ["Progress"]

#: Seconds between two reports: on a terminal, and into a file or pipe.
_TTY_EVERY: Final = 0.2
_LOG_EVERY: Final = 5.0


class Progress:
    """``on_page(position, rows)`` that reports ``label`` and how far each pass has read."""

    def __init__(
        self,
        label: str,
        total: int,
        passes: tuple[str, ...],
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = True if enabled else self.tty
        self.label, self.total, self.passes = label, max(total, 0), passes
        self.phase, self.position = 0, 0
        self._shown = 0.0
        self._open = False

    def __call__(self, position: int, rows: int) -> None:
        if not self.enabled:
            return
        if position - rows < self.position and position <= self.position:
            self._end_pass()
            self.phase += 1
        self.position = position
        now = time.monotonic()
        if now - self._shown >= (_TTY_EVERY if self.tty else _LOG_EVERY):
            self._shown = now
            self._show()

    def done(self) -> None:
        """The last pass ended: its final figure, and the line closed."""
        if self.enabled:
            self._end_pass()

    def _end_pass(self) -> None:
        if self.position or self._open:
            self._show()
            if self.tty:
                self.stream.write("\n")
            self._open = False
            self.stream.flush()

    def _show(self) -> None:
        name = self.passes[min(self.phase, len(self.passes) - 1)] if self.passes else "reading"
        share = f" ({100 * self.position // self.total}%)" if self.total else ""
        text = f"codon: {self.label}: {name} {self.position:,}/{self.total:,} entries{share}"
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
