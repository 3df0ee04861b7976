"""The notary: signs a ledger's checkpoints and ships them somewhere outside the database.

A :class:`Notary` is attached to a store (``open_store(url, notary=...)``, or from
the environment, see :meth:`Notary.from_env`). Every durable run on that store
then gets a signed checkpoint (C2SP tlog-checkpoint, origin
``<ledger name>/run/<run id>``) every ``every`` events and whenever it ends or
pauses, stored in the same transaction as the events it covers; each run also
gets a start and a finish line in the log of runs, whose own checkpoint (origin
``<ledger name>/runs``) is signed after each. ``run_started`` announces the
origin and interval, so a stripped checkpoint is noticed by verification.

The log of runs gets a start line when a run begins and a finish line when it
ends; after each commit that adds one, :func:`sign_runs_log` signs a checkpoint
of the whole log, stores it and ships it, best effort (a failure is logged: the
next run's start or end signs again, and ``verify`` notes the uncovered lines).

Checkpoint sinks take each signed note out of the database (a directory, a
bucket, an auditor's inbox): a checkpoint held outside the database is what
lets ``verify`` say "verified" rather than "unanchored". Sinks are hooks: a
failing sink is logged (once per sink) and never fails a run.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from codon_sdk.errors import CheckpointError
from codon_sdk.ledger import (
    Checkpoint,
    Ed25519Signer,
    Note,
    Signer,
    leaf_hash,
    merkle_root,
    run_leaf,
    run_origin,
    runs_origin,
    sign_checkpoint,
)
from codon_sdk.redaction import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from codon_sdk.stores._base import LedgerStore

__all__ = ["CheckpointSink", "FileCheckpointSink", "Notary", "run_folder", "sign_runs_log"]

_log = get_logger("codon_sdk")


class CheckpointSink(Protocol):
    """Receives every signed checkpoint note; must not raise (failures are logged).

    A sink that can also read back what it kept offers ``notes(run_id) -> list[bytes]``:
    resume, replay and fork then check a run against its exported checkpoints
    before trusting (and signing over) its history.
    """

    def __call__(self, *, run_id: str, origin: str, size: int, note: bytes) -> None:
        """Keep ``note`` (a signed checkpoint of ``origin`` at ``size``) outside the database."""


class FileCheckpointSink:
    """Writes each checkpoint to ``<directory>/<folder of the run>/<size>.note``, the log of
    runs' to ``<directory>/runs/<size>.note``.

    A run's folder is its id percent-encoded (:func:`run_folder`): ``[a-z0-9_-]`` stay as
    they are (a uuid-hex run id is its own folder name), every other character becomes
    ``%XX`` per UTF-8 byte with uppercase hex digits, so two run ids never share a folder,
    not even on a case-insensitive file system, and none leaves the directory or lands in
    ``runs``. ``codon verify RUN_ID --checkpoint-dir <directory>`` reads them back.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = pathlib.Path(directory)

    def __call__(self, *, run_id: str, origin: str, size: int, note: bytes) -> None:
        folder = self.directory / (run_folder(run_id) if run_id else _RUNS_FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{size}.note"
        # a temporary name of this writer's own: two threads or processes signing the same
        # size at once must not move each other's file away
        tmp = folder / f".{size}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(note)
        os.replace(tmp, target)

    def notes(self, run_id: str) -> list[bytes]:
        """The checkpoint notes kept for ``run_id`` (``""``: the log of runs), by size.

        Only notes whose origin is this run's (``<ledger name>/run/<run id>``, or
        ``<ledger name>/runs``) are returned: a folder written by an earlier SDK, which
        mapped ids to folders by replacing unsafe characters with ``_``, may hold several
        runs' notes (``acme/42`` and ``acme:42`` both in ``acme_42``). A note in the run's
        own folder that does not parse is returned as it is, for ``verify`` to report.
        """
        suffix = f"/run/{run_id}" if run_id else "/runs"
        own = self.directory / (run_folder(run_id) if run_id else _RUNS_FOLDER)
        found = _read_notes(own, suffix, keep_unparsed=True)
        legacy = _legacy_folder(run_id)
        if legacy is not None and legacy != own.name:
            found += _read_notes(self.directory / legacy, suffix, keep_unparsed=False)
        found.sort(key=lambda item: item[0])
        return [note for _, note in found]

    def __repr__(self) -> str:
        return f"FileCheckpointSink({str(self.directory)!r})"


_RUNS_FOLDER = "runs"
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
#: Longest folder name written as the encoding itself (file systems allow 255 bytes, some
#: encrypted ones about 140); longer encodings become ``=sha256-<hex>``, a form no encoding
#: takes (``=`` is always encoded).
MAX_FOLDER_NAME = 120


def run_folder(run_id: str) -> str:
    """The folder name of a run's checkpoints: injective, safe, never ``runs`` (see
    :class:`FileCheckpointSink`)."""
    encoded = "".join(
        c if c in _KEPT else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in run_id
    )
    if encoded == _RUNS_FOLDER:  # the log of runs' folder: encode the first character too
        encoded = "%72" + encoded[1:]
    if not encoded or len(encoded) > MAX_FOLDER_NAME:
        digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"=sha256-{digest}"
    return encoded


def _legacy_folder(run_id: str) -> str | None:
    """The folder an earlier SDK used for ``run_id``, when it stays inside the directory."""
    if not run_id:
        return None
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return None if name in ("", ".", "..") else name


def _read_notes(
    folder: pathlib.Path, suffix: str, *, keep_unparsed: bool
) -> list[tuple[int, bytes]]:
    if not folder.is_dir():
        return []
    out: list[tuple[int, bytes]] = []
    for path in folder.glob("*.note"):
        if not path.stem.isdigit():
            continue
        note = path.read_bytes()
        origin = _origin(note)
        if origin is None:
            if keep_unparsed:
                out.append((int(path.stem), note))
        elif _belongs(origin, suffix):
            out.append((int(path.stem), note))
    return out


def _belongs(origin: str, suffix: str) -> bool:
    """Whether ``origin`` is ``<some ledger name><suffix>``. For the log of runs (``/runs``)
    an origin ``.../run/runs`` is taken for the run called ``runs``, whose notes an earlier
    SDK wrote to the same folder (so a ledger whose name ends in ``/run`` is not told apart)."""
    if not origin.endswith(suffix) or len(origin) == len(suffix):
        return False
    return suffix != "/runs" or not origin.endswith("/run/runs")


def _origin(note: bytes) -> str | None:
    """A checkpoint note's origin (its first line), or None when it does not parse."""
    try:
        return Checkpoint.parse(Note.parse(note).text).origin
    except (CheckpointError, ValueError):
        return None


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


def sign_runs_log(store: LedgerStore, notary: Notary, *, run_id: str) -> None:
    """Sign a checkpoint of the log of runs up to and including the newest line of
    ``run_id`` (the line this process just committed), store it and ship it.

    The checkpoint covers exactly that prefix, never lines after it: a line someone
    planted in the database after it is never signed over by a genuine run, and a run's
    start line is vouched for by the checkpoint of exactly its position (see
    ``runtime/_trust.py``). Best effort: the line is committed already; a failure is
    logged (the run then has to be vouched for by its own checkpoints).
    """
    try:
        logged = store.runs_log()
        mine = [n for n, (_, rid, _, _) in enumerate(logged) if rid == run_id]
        if not mine:
            return
        prefix = logged[: mine[-1] + 1]
        leaves = [leaf_hash(run_leaf(rid, size, root)) for _, rid, size, root in prefix]
        note = notary.sign(notary.runs_origin, len(leaves), merkle_root(leaves))
        store.put_checkpoint("", len(leaves), note)
        notary.ship("", notary.runs_origin, len(leaves), note)
    except Exception as exc:
        _log.warning("could not sign the log of runs after run %s: %s", run_id, exc)
