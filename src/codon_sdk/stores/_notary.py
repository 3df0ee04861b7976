"""The notary: signs a ledger's checkpoints and ships them somewhere outside the database.

A :class:`Notary` is attached to a store (``open_store(url, notary=...)``, or from
the environment, see :meth:`Notary.from_env`). Every durable run on that store
then gets a signed checkpoint (C2SP tlog-checkpoint, origin
``<ledger name>/run/<run id>``) every ``every`` events and whenever it ends or
pauses, stored in the same transaction as the events it covers; each finished
run also gets a line in the log of runs, whose own checkpoint (origin
``<ledger name>/runs``) is signed after it. ``run_started`` announces the
origin and interval, so a stripped checkpoint is noticed by verification.

Checkpoint sinks take each signed note out of the database (a directory, a
bucket, an auditor's inbox): a checkpoint held outside the database is what
lets ``verify`` say "verified" rather than "unanchored". Sinks are hooks: a
failing sink is logged (once per sink) and never fails a run.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from codon_sdk.errors import CheckpointError
from codon_sdk.ledger._checkpoint import Checkpoint, run_origin, runs_origin, sign_checkpoint
from codon_sdk.ledger._note import Ed25519Signer, Signer

__all__ = ["CheckpointSink", "FileCheckpointSink", "Notary"]

_log = logging.getLogger("codon_sdk")


class CheckpointSink(Protocol):
    """Receives every signed checkpoint note; must not raise (failures are logged).

    A sink that can also read back what it kept offers ``notes(run_id) -> list[bytes]``:
    resume, replay and fork then check a run against its exported checkpoints
    before trusting (and signing over) its history.
    """

    def __call__(self, *, run_id: str, origin: str, size: int, note: bytes) -> None:
        """Keep ``note`` (a signed checkpoint of ``origin`` at ``size``) outside the database."""


class FileCheckpointSink:
    """Writes each checkpoint to ``<directory>/<run id or "runs">/<size>.note``.

    ``codon verify RUN_ID --checkpoint <directory>/<run id>/<size>.note`` checks a
    run against one of them.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = pathlib.Path(directory)

    def __call__(self, *, run_id: str, origin: str, size: int, note: bytes) -> None:
        folder = self.directory / (_safe(run_id) if run_id else "runs")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{size}.note"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(note)
        os.replace(tmp, target)

    def notes(self, run_id: str) -> list[bytes]:
        """The checkpoint notes kept for ``run_id`` (``""``: the log of runs), by size."""
        folder = self.directory / (_safe(run_id) if run_id else "runs")
        if not folder.is_dir():
            return []
        files = [f for f in folder.glob("*.note") if f.stem.isdigit()]
        return [f.read_bytes() for f in sorted(files, key=lambda f: int(f.stem))]

    def __repr__(self) -> str:
        return f"FileCheckpointSink({str(self.directory)!r})"


def _safe(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


@dataclass(frozen=True, slots=True)
class Notary:
    """Who signs a ledger's checkpoints (``signer``), under which name, how often, and where
    the signed notes are shipped."""

    signer: Signer
    name: str = ""
    every: int = 1000
    sinks: tuple[CheckpointSink, ...] = ()
    _failed_sinks: set[int] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.signer, Signer):
            raise CheckpointError(f"notary signer must be a Signer, got {self.signer!r}")
        if type(self.every) is not int or self.every < 0:
            raise CheckpointError(
                f"checkpoint interval must be a non-negative number of events, got {self.every!r}"
            )
        if not self.name:
            object.__setattr__(self, "name", self.signer.name)

    @classmethod
    def from_env(cls) -> Notary | None:
        """A notary from ``CODON_SIGNING_KEY`` (a signer key, or the path of a file holding
        one), ``CODON_LEDGER_NAME``, ``CODON_CHECKPOINT_EVERY`` and ``CODON_CHECKPOINT_DIR``;
        None when no signing key is configured."""
        raw = os.environ.get("CODON_SIGNING_KEY", "").strip()
        if not raw:
            return None
        text = raw
        if not raw.startswith("PRIVATE+KEY+"):
            path = pathlib.Path(raw).expanduser()
            if not path.is_file():
                raise CheckpointError(
                    "CODON_SIGNING_KEY is neither a signer key (PRIVATE+KEY+...) nor the path of "
                    f"a file holding one ({path} does not exist); create one with `codon keygen`"
                )
            text = path.read_text(encoding="utf-8").strip()
        signer = Ed25519Signer.from_skey(text)
        every_text = os.environ.get("CODON_CHECKPOINT_EVERY", "1000")
        try:
            every = int(every_text)
        except ValueError:
            raise CheckpointError(
                f"CODON_CHECKPOINT_EVERY must be a number of events, got {every_text!r}"
            ) from None
        directory = os.environ.get("CODON_CHECKPOINT_DIR")
        sinks: tuple[CheckpointSink, ...] = (FileCheckpointSink(directory),) if directory else ()
        return cls(
            signer=signer, name=os.environ.get("CODON_LEDGER_NAME", ""), every=every, sinks=sinks
        )

    def origin(self, run_id: str) -> str:
        return run_origin(self.name, run_id)

    @property
    def runs_origin(self) -> str:
        return runs_origin(self.name)

    def announce(self, run_id: str) -> dict[str, Any]:
        """What ``run_started`` records about this run's checkpoints."""
        return {"origin": self.origin(run_id), "every": self.every, "signer": self.signer.name}

    def sign(self, origin: str, size: int, root: bytes) -> bytes:
        return sign_checkpoint(Checkpoint(origin=origin, size=size, root=root), [self.signer])

    def ship(self, run_id: str, origin: str, size: int, note: bytes) -> None:
        """Hand a signed note to every sink; a failing sink is logged once, never raised."""
        for sink in self.sinks:
            try:
                sink(run_id=run_id, origin=origin, size=size, note=note)
            except Exception as exc:
                if id(sink) not in self._failed_sinks:
                    self._failed_sinks.add(id(sink))
                    _log.warning(
                        "checkpoint sink %r failed (%s: %s); checkpoints stay in the database "
                        "but are not exported until it works again",
                        sink,
                        type(exc).__name__,
                        exc,
                    )

    def exported(self, run_id: str) -> list[bytes]:
        """Checkpoint notes of ``run_id`` that sinks able to read back still hold."""
        found: list[bytes] = []
        for sink in self.sinks:
            reader = getattr(sink, "notes", None)
            if callable(reader):
                try:
                    found.extend(reader(run_id))
                except Exception as exc:
                    _log.warning("could not read checkpoints back from %r: %s", sink, exc)
        return found

    @property
    def vkey(self) -> str | None:
        """The verifier key of this notary's signer, when the signer knows it."""
        return self.signer.vkey

    def checkpoints(
        self, run_id: str, sizes_and_roots: Sequence[tuple[int, bytes]]
    ) -> list[tuple[int, bytes]]:
        origin = self.origin(run_id)
        return [(size, self.sign(origin, size, root)) for size, root in sizes_and_roots]
