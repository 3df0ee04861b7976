"""A module hostile ledger entries name: importing it, or building its class, leaves a mark.

Tests check that reading forged ledgers never imports this module (it is importable: the
test directory is on ``sys.path``) and never calls anything in it.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib

MARK = pathlib.Path(os.environ.get("CODON_EVIL_MARK", "/tmp/codon-evil-mark"))
MARK.write_text("imported")


class Boom(enum.Enum):
    A = "a"

    @classmethod
    def _missing_(cls, value: object) -> Boom:
        MARK.write_text(f"called with {value!r}")
        return cls.A


@dataclasses.dataclass
class Blast:
    x: object = None

    def __post_init__(self) -> None:
        MARK.write_text("constructed")


class BoomError(Exception):
    def __init__(self, *args: object) -> None:
        MARK.write_text("error constructed")
        super().__init__(*args)
