"""Opening a sink from a URL, and catching a sink up from the ledger store."""

from __future__ import annotations

import atexit
import contextlib
import threading
import urllib.parse
from collections.abc import Iterable

from codon_sdk._text import printable
from codon_sdk.errors import InvalidSinkURLError
from codon_sdk.ledger import leaf_hash
from codon_sdk.sinks._base import AuditSink
from codon_sdk.sinks._entry import AuditEntry
from codon_sdk.stores import LedgerStore

__all__ = ["catch_up", "open_sink", "run_sink"]

_shared: dict[str, AuditSink] = {}
_shared_lock = threading.Lock()
_NATS_OPTIONS = {"stream": str, "subject": str, "timeout": float, "duplicate_window": float}


def open_sink(sink: str | AuditSink) -> AuditSink:
    """An audit sink from a URL (an :class:`AuditSink` is returned as it is).

    ``nats://host:port[,host2:port]?stream=NAME&subject=PREFIX&timeout=S&duplicate_window=S``
    (also ``tls://``) opens a :class:`~codon_sdk.sinks.NatsSink`; every query option is
    optional (defaults ``CODON_AUDIT``, ``codon.audit``, 2 s, 120 s).
    """
    if isinstance(sink, AuditSink):
        return sink
    if not isinstance(sink, str):
        raise InvalidSinkURLError(
            f"audit_sink must be an AuditSink or a URL such as nats://127.0.0.1:4222, got "
            f"{type(sink).__name__}"
        )
    parts = urllib.parse.urlsplit(sink)
    if parts.scheme not in ("nats", "tls") or not parts.netloc:
        raise InvalidSinkURLError(
            f"cannot open audit sink {printable(sink)!r}: the URL must be "
            "nats://host:port[?stream=NAME&subject=PREFIX] (the one built-in sink); pass an "
            "AuditSink object for any other"
        )
    options: dict[str, object] = {}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        kind = _NATS_OPTIONS.get(key)
        if kind is None:
            raise InvalidSinkURLError(
                f"audit sink URL option {printable(key)!r} is unknown; known: "
                f"{', '.join(sorted(_NATS_OPTIONS))}"
            )
        try:
            options[key] = kind(values[-1])
        except ValueError:
            raise InvalidSinkURLError(
                f"audit sink URL option {key}={printable(values[-1])!r} is not a number"
            ) from None
    servers = [f"{parts.scheme}://{host}" for host in parts.netloc.split(",") if host]
    from codon_sdk.sinks._nats import NatsSink

    return NatsSink(servers, **options)  # type: ignore[arg-type]


def run_sink(sink: str | AuditSink | None) -> AuditSink | None:
    """(the runtime) The sink a run feeds: an object as given; a URL opens one sink per URL
    and process, shared by every run given that URL (one connection, one relay), closed
    at exit."""
    if sink is None:
        return None
    if not isinstance(sink, str):
        return open_sink(sink)  # the sink itself, or an error naming what was given
    with _shared_lock:
        found = _shared.get(sink)
        if found is None:
            found = _shared[sink] = open_sink(sink)
        return found


@atexit.register
def _close_shared() -> None:
    """At exit, each sink opened by URL gets up to 2 s to deliver what is pending (the rest
    stays in the ledger, for ``catch_up`` or the next process's relay)."""
    with _shared_lock:
        sinks = list(_shared.values())
        _shared.clear()
    for sink in sinks:
        with contextlib.suppress(Exception):  # exiting: never mask the program's outcome
            sink.close(timeout=2.0)


def catch_up(
    store: LedgerStore, sink: AuditSink, run_ids: Iterable[str] | None = None
) -> dict[str, int]:
    """Deliver to ``sink`` what it lacks of each run (every run of ``store`` when
    ``run_ids`` is None), from the seq its :meth:`~AuditSink.cursor` names; return how
    many entries each run was sent. Synchronous: a sink failure raises (nothing of a
    run is skipped; calling again goes on from the sink's cursor)."""
    ids = [info.run_id for info in store.runs()] if run_ids is None else list(run_ids)
    sent: dict[str, int] = {}
    for run_id in ids:
        count = store.get_run(run_id).event_count
        start = max(0, min(sink.cursor(run_id), count))
        sent[run_id] = count - start
        while start < count:
            end = min(count, start + sink.batch_size)
            batch = [
                AuditEntry(run_id=run_id, seq=start + k, entry=e, leaf=leaf_hash(e))
                for k, e in enumerate(store.read(run_id, start, end))
            ]
            sink.deliver(batch)
            sink.acknowledged(run_id, end)
            start = end
    return sent
