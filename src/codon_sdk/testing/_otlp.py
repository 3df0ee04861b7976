"""A real OTLP receiver on loopback: gRPC and HTTP/protobuf, traces and metrics.

Point the real OpenTelemetry exporters at it::

    with OTLPReceiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        # or the HTTP exporter: endpoint=receiver.http_traces_url
        ...
        spans = receiver.wait_for_spans(3)

``make_down()`` refuses exports (gRPC ``UNAVAILABLE``, HTTP 503) and
``make_slow(seconds)`` answers each export that much later; ``make_healthy()``
restores normal service. Every attempt is logged in :attr:`OTLPReceiver.exports`.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from typing_extensions import Self

try:
    import grpc
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'The OTLP receiver needs grpcio and opentelemetry-proto: pip install "codon-sdk[otel]"'
    ) from err

from codon_sdk.testing._loopback import LoopbackHTTPServer, QuietHandler, Served, read_body
from codon_sdk.testing._otlp_records import (
    OTLPMetric,
    OTLPSpan,
    metrics_from_request,
    spans_from_request,
)

__all__ = ["OTLPExport", "OTLPReceiver"]

Signal = Literal["traces", "metrics"]
Transport = Literal["grpc", "http"]
Mode = Literal["healthy", "down", "slow"]
Outcome = Literal["accepted", "refused", "rejected"]

_SERVICES: dict[Signal, str] = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OTLPExport:
    """One export attempt: accepted, refused (receiver down) or rejected (bad payload).

    ``headers`` (gRPC metadata or HTTP headers, lower-case names) is left out of ``repr``.
    """

    transport: Transport
    signal: Signal
    outcome: Outcome
    items: int
    headers: Mapping[str, str] = field(repr=False)


class OTLPReceiver(Served):
    """OTLP receiver on 127.0.0.1 (ephemeral ports) for gRPC and HTTP/protobuf exporters.

    Thread-safe; a context manager. Received spans and metrics are kept in
    arrival order until :meth:`clear`.
    """

    def __init__(self, *, grpc_workers: int = 4) -> None:
        self._cond = threading.Condition()
        self._spans: list[OTLPSpan] = []
        self._metrics: list[OTLPMetric] = []
        self._exports: list[OTLPExport] = []
        self._mode: Mode = "healthy"
        self._delay = 0.0
        self._stopping = threading.Event()
        self._grpc_workers = grpc_workers
        self._grpc: Any = None
        self._grpc_pool: ThreadPoolExecutor | None = None
        self._grpc_port = 0
        self._http: _HTTPServer | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start both servers; returns the receiver."""
        if self._http is not None:
            raise RuntimeError("OTLPReceiver is already running; call stop() first")
        self._stopping.clear()
        pool = ThreadPoolExecutor(self._grpc_workers, thread_name_prefix="codon-otlp-grpc")
        server = grpc.server(pool)
        handlers = [self._grpc_handler("traces"), self._grpc_handler("metrics")]
        server.add_generic_rpc_handlers(handlers)
        self._grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc, self._grpc_pool = server, pool
        try:
            http = _HTTPServer(self)
        except OSError:
            self.stop()
            raise
        http.start(name=f"codon-otlp-http:{http.port}")
        self._http = http
        return self

    def stop(self) -> None:
        """Stop both servers, waking any export held by slow mode. Idempotent."""
        with self._cond:
            self._stopping.set()
            self._cond.notify_all()
        http, self._http = self._http, None
        if http is not None:
            http.stop()
        server, self._grpc = self._grpc, None
        if server is not None:
            server.stop(grace=None).wait()
        pool, self._grpc_pool = self._grpc_pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` for the gRPC exporters (with ``insecure=True``)."""
        self._require_running()
        return f"http://127.0.0.1:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``; HTTP exporters post to ``/v1/traces``, ``/v1/metrics``."""
        http = self._require_running()
        return f"http://127.0.0.1:{http.port}"

    @property
    def http_traces_url(self) -> str:
        return f"{self.http_endpoint}/v1/traces"

    @property
    def http_metrics_url(self) -> str:
        return f"{self.http_endpoint}/v1/metrics"

    def _require_running(self) -> _HTTPServer:
        if self._http is None:
            raise RuntimeError("OTLPReceiver is not running; call start() first")
        return self._http

    # ------------------------------------------------------------ modes

    @property
    def mode(self) -> Mode:
        return self._mode

    def make_down(self) -> None:
        """Refuse every export: gRPC ``UNAVAILABLE``, HTTP 503. Nothing is stored."""
        self._set_mode("down", 0.0)

    def make_slow(self, seconds: float) -> None:
        """Answer each export ``seconds`` late; data is stored when the answer goes out."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._set_mode("slow", seconds)

    def make_healthy(self) -> None:
        """Serve normally again; exports held by slow mode are answered at once."""
        self._set_mode("healthy", 0.0)

    def _set_mode(self, mode: Mode, delay: float) -> None:
        with self._cond:
            self._mode, self._delay = mode, delay
            self._cond.notify_all()

    # ------------------------------------------------------------ results

    @property
    def spans(self) -> tuple[OTLPSpan, ...]:
        with self._cond:
            return tuple(self._spans)

    @property
    def metrics(self) -> tuple[OTLPMetric, ...]:
        """Every metric of every accepted export, in arrival order (one per export)."""
        with self._cond:
            return tuple(self._metrics)

    @property
    def exports(self) -> tuple[OTLPExport, ...]:
        with self._cond:
            return tuple(self._exports)

    def spans_named(self, name: str) -> list[OTLPSpan]:
        return [s for s in self.spans if s.name == name]

    def metrics_named(self, name: str) -> list[OTLPMetric]:
        return [m for m in self.metrics if m.name == name]

    def clear(self) -> None:
        """Forget received spans, metrics and export attempts."""
        with self._cond:
            self._spans.clear()
            self._metrics.clear()
            self._exports.clear()

    def wait_for_spans(self, count: int = 1, timeout: float = 5.0) -> tuple[OTLPSpan, ...]:
        """All spans, once at least ``count`` have arrived; TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._spans) >= count, timeout):
                names = [s.name for s in self._spans]
                raise TimeoutError(
                    f"expected at least {count} spans within {timeout}s, got {len(names)}: {names}"
                )
            return tuple(self._spans)

    def wait_for_metrics(
        self, names: str | Iterable[str], timeout: float = 5.0
    ) -> dict[str, OTLPMetric]:
        """The latest metric of each name, once all have arrived; TimeoutError otherwise."""
        wanted = {names} if isinstance(names, str) else set(names)

        def latest() -> dict[str, OTLPMetric]:
            return {m.name: m for m in self._metrics if m.name in wanted}

        with self._cond:
            if not self._cond.wait_for(lambda: len(latest()) == len(wanted), timeout):
                have = sorted({m.name for m in self._metrics})
                missing = sorted(wanted - set(latest()))
                raise TimeoutError(
                    f"metrics {missing} did not arrive within {timeout}s; received {have}"
                )
            return latest()

    # ------------------------------------------------------------ ingestion

    def _admit(self, transport: Transport, signal: Signal, headers: Mapping[str, str]) -> bool:
        """Apply the mode; False when the export is refused.

        A slow-mode wait ends early when the mode changes or the receiver stops;
        the export is then treated by the new mode.
        """
        with self._cond:
            if self._mode == "slow":
                self._cond.wait_for(
                    lambda: self._stopping.is_set() or self._mode != "slow", self._delay
                )
            if self._stopping.is_set():
                return False
            if self._mode == "down":
                self._log(transport, signal, "refused", 0, headers)
                return False
            return True

    def _log(
        self,
        transport: Transport,
        signal: Signal,
        outcome: Outcome,
        items: int,
        headers: Mapping[str, str],
    ) -> None:
        export = OTLPExport(
            transport=transport, signal=signal, outcome=outcome, items=items, headers=headers
        )
        self._exports.append(export)

    def _ingest(
        self, transport: Transport, signal: Signal, payload: bytes, headers: Mapping[str, str]
    ) -> bool:
        """Decode and store one export; False when the payload is not valid protobuf."""
        message = ExportTraceServiceRequest if signal == "traces" else ExportMetricsServiceRequest
        try:
            decoded = message.FromString(payload)
        except Exception:  # google.protobuf.message.DecodeError (untyped module)
            self._reject(transport, signal, headers)
            return False
        if isinstance(decoded, ExportTraceServiceRequest):
            spans, metrics = spans_from_request(decoded), []
        else:
            spans, metrics = [], metrics_from_request(decoded)
        with self._cond:
            self._spans.extend(spans)
            self._metrics.extend(metrics)
            self._log(transport, signal, "accepted", len(spans) + len(metrics), headers)
            self._cond.notify_all()
        return True

    def _reject(self, transport: Transport, signal: Signal, headers: Mapping[str, str]) -> None:
        with self._cond:
            self._log(transport, signal, "rejected", 0, headers)

    def _grpc_handler(self, signal: Signal) -> Any:
        response = (
            ExportTraceServiceResponse if signal == "traces" else ExportMetricsServiceResponse
        )

        def export(payload: bytes, context: Any) -> bytes:
            headers = {k.lower(): str(v) for k, v in context.invocation_metadata()}
            if not self._admit("grpc", signal, headers):
                context.abort(grpc.StatusCode.UNAVAILABLE, "OTLP receiver is down (test mode)")
            if not self._ingest("grpc", signal, payload, headers):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "payload is not valid protobuf")
            return bytes(response().SerializeToString())

        identity: Callable[[bytes], bytes] = bytes
        handler = grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=identity, response_serializer=identity
        )
        return grpc.method_handlers_generic_handler(_SERVICES[signal], {"Export": handler})


class _HTTPServer(LoopbackHTTPServer):
    def __init__(self, owner: OTLPReceiver) -> None:
        super().__init__(_Handler)
        self.owner = owner


_PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/metrics": "metrics"}
_PROTOBUF = {"content-type": "application/x-protobuf"}


class _Handler(QuietHandler):
    server: _HTTPServer

    def do_POST(self) -> None:
        owner = self.server.owner
        payload = read_body(self)
        signal = _PATHS.get(self.path.split("?", 1)[0])
        if signal is None:
            self.send_bytes(404, b"", _PROTOBUF)
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if content_type != "application/x-protobuf":
            self.send_bytes(415, b"", _PROTOBUF)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not owner._admit("http", signal, headers):
            self.send_bytes(503, b"", _PROTOBUF)
            return
        try:
            payload = _decompress(payload, self.headers.get("Content-Encoding", ""))
        except (OSError, zlib.error, EOFError):
            owner._reject("http", signal, headers)
            self.send_bytes(400, b"", _PROTOBUF)
            return
        if not owner._ingest("http", signal, payload, headers):
            self.send_bytes(400, b"", _PROTOBUF)
            return
        response = (
            ExportTraceServiceResponse if signal == "traces" else ExportMetricsServiceResponse
        )
        self.send_bytes(200, bytes(response().SerializeToString()), _PROTOBUF)


def _decompress(payload: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(payload)
    if encoding == "deflate":
        return zlib.decompress(payload)
    return payload
