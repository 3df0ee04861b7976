"""What ``initialize_telemetry`` will do, resolved from its arguments and the environment.

Pure (no OpenTelemetry SDK needed, no global state), so every rule is testable
in-process with a plain dict for the environment. The rules, per signal
(``traces`` and ``metrics``), first match wins:

protocol
    ``OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
    else ``grpc``. ``http/protobuf`` selects OTLP/HTTP; ``http/json`` is not
    supported by the Python exporters and falls back to ``http/protobuf`` (one
    warning); anything else falls back to ``grpc`` (one warning).
endpoint
    the ``endpoint`` argument (a base URL: ``/v1/traces`` and ``/v1/metrics`` are
    appended for HTTP), ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` (used as is),
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL), else the OpenTelemetry default
    of a local collector: ``http://localhost:4317`` (gRPC) or
    ``http://localhost:4318`` (HTTP).
headers
    ``OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS``, else ``OTEL_EXPORTER_OTLP_HEADERS``
    (W3C baggage format, as the OpenTelemetry exporters read them), then
    ``x-codon-api-key`` set from the ``api_key`` argument, else ``CODON_API_KEY``.
timeout
    ``OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT``, ``OTEL_EXPORTER_OTLP_TIMEOUT`` (in
    seconds, as the OpenTelemetry Python exporters read them), else 3 seconds.

Resource attributes Codon adds (the SDK adds ``OTEL_RESOURCE_ATTRIBUTES`` and
``OTEL_SERVICE_NAME`` underneath; these win over them): ``service.name`` from
the ``service_name`` argument; ``codon.organization.id`` from
``CODON_ORGANIZATION_ID`` (as on the spans); ``deployment.environment.name`` from the argument,
else ``CODON_DEPLOYMENT_ENVIRONMENT``; ``telemetry.distro.name`` and
``telemetry.distro.version`` naming this SDK.

Header values (the API key above all) never appear in a ``repr`` or a log line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.util.re import parse_env_headers

from codon_sdk._version import __version__
from codon_sdk.redaction import get_logger

__all__ = [
    "API_KEY_ENV",
    "API_KEY_HEADER",
    "DEFAULT_EXPORT_TIMEOUT_SECONDS",
    "DEFAULT_GRPC_ENDPOINT",
    "DEFAULT_HTTP_ENDPOINT",
    "ExportTarget",
    "Protocol",
    "Signal",
    "TelemetrySettings",
    "display_endpoint",
    "resolve_settings",
]

_log = get_logger("codon_sdk.telemetry")

Protocol = Literal["grpc", "http/protobuf"]
Signal = Literal["traces", "metrics"]

DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_EXPORT_TIMEOUT_SECONDS = 3.0
API_KEY_HEADER = "x-codon-api-key"
API_KEY_ENV = "CODON_API_KEY"
ORGANIZATION_ENV = "CODON_ORGANIZATION_ID"
DEPLOYMENT_ENV = "CODON_DEPLOYMENT_ENVIRONMENT"

_PREFIX = "OTEL_EXPORTER_OTLP_"
_SIGNAL_PATHS = ("/v1/traces", "/v1/metrics")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportTarget:
    """Where and how one signal is exported. ``headers`` is left out of ``repr``."""

    signal: Signal
    protocol: Protocol
    endpoint: str
    timeout: float
    headers: tuple[tuple[str, str], ...] = field(repr=False)

    @property
    def header_names(self) -> tuple[str, ...]:
        """The header names (values are secret)."""
        return tuple(name for name, _ in self.headers)


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetrySettings:
    """Everything ``initialize_telemetry`` resolved; equal settings mean an identical set-up."""

    traces: ExportTarget
    metrics: ExportTarget
    resource_attributes: tuple[tuple[str, str], ...]
    attach_to_existing: bool | None


def resolve_settings(
    *,
    api_key: str | None,
    service_name: str | None,
    endpoint: str | None,
    attach_to_existing: bool | None,
    deployment_environment: str | None,
    environ: Mapping[str, str],
) -> TelemetrySettings:
    """Apply the module's rules to the arguments and ``environ`` (see the module docstring)."""
    key = api_key or environ.get(API_KEY_ENV) or None
    return TelemetrySettings(
        traces=_target("traces", endpoint=endpoint, api_key=key, environ=environ),
        metrics=_target("metrics", endpoint=endpoint, api_key=key, environ=environ),
        resource_attributes=_resource_attributes(
            service_name=service_name,
            deployment_environment=deployment_environment or environ.get(DEPLOYMENT_ENV),
            organization_id=environ.get(ORGANIZATION_ENV),
        ),
        attach_to_existing=attach_to_existing,
    )


def display_endpoint(endpoint: str) -> str:
    """The endpoint without user info, query or fragment, safe for a log line."""
    parts = urlsplit(endpoint)
    if not parts.netloc:
        return endpoint.split("?", 1)[0]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _signal_env(environ: Mapping[str, str], signal: Signal, name: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_<SIGNAL>_<NAME>``, else ``OTEL_EXPORTER_OTLP_<NAME>`` (empty: unset)."""
    specific = environ.get(f"{_PREFIX}{signal.upper()}_{name}", "").strip()
    return specific or environ.get(f"{_PREFIX}{name}", "").strip() or None


def _target(
    signal: Signal, *, endpoint: str | None, api_key: str | None, environ: Mapping[str, str]
) -> ExportTarget:
    protocol = _protocol(signal, environ)
    return ExportTarget(
        signal=signal,
        protocol=protocol,
        endpoint=_endpoint(signal, protocol, endpoint, environ),
        timeout=_timeout(signal, environ),
        headers=_headers(signal, api_key, environ),
    )


def _protocol(signal: Signal, environ: Mapping[str, str]) -> Protocol:
    raw = (_signal_env(environ, signal, "PROTOCOL") or "grpc").lower()
    if raw == "grpc":
        return "grpc"
    if raw == "http/protobuf":
        return "http/protobuf"
    if raw == "http/json":
        _log.warning(
            "OTLP protocol 'http/json' is not supported for %s; using 'http/protobuf'", signal
        )
        return "http/protobuf"
    _log.warning(
        "unknown OTLP protocol %r for %s (expected 'grpc' or 'http/protobuf'); using 'grpc'",
        raw,
        signal,
    )
    return "grpc"


def _endpoint(
    signal: Signal, protocol: Protocol, argument: str | None, environ: Mapping[str, str]
) -> str:
    grpc = protocol == "grpc"
    if argument:
        return argument if grpc else _http_signal_url(argument, signal)
    specific = environ.get(f"{_PREFIX}{signal.upper()}_ENDPOINT", "").strip()
    if specific:
        return specific
    base = environ.get(f"{_PREFIX}ENDPOINT", "").strip()
    if grpc:
        return base or DEFAULT_GRPC_ENDPOINT
    return _http_signal_url(base or DEFAULT_HTTP_ENDPOINT, signal)


def _http_signal_url(base: str, signal: Signal) -> str:
    """``base`` with its signal path: ``http://host:4318`` -> ``http://host:4318/v1/traces``."""
    trimmed = base.rstrip("/")
    for suffix in _SIGNAL_PATHS:
        trimmed = trimmed.removesuffix(suffix)
    return f"{trimmed}/v1/{signal}"


def _timeout(signal: Signal, environ: Mapping[str, str]) -> float:
    raw = _signal_env(environ, signal, "TIMEOUT")
    if raw is None:
        return DEFAULT_EXPORT_TIMEOUT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        _log.warning(
            "invalid OTLP export timeout %r for %s (seconds > 0 expected); using %ss",
            raw,
            signal,
            DEFAULT_EXPORT_TIMEOUT_SECONDS,
        )
        return DEFAULT_EXPORT_TIMEOUT_SECONDS
    return seconds


def _headers(
    signal: Signal, api_key: str | None, environ: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    raw = _signal_env(environ, signal, "HEADERS") or ""
    headers = dict(parse_env_headers(raw, liberal=True))
    if api_key:
        headers[API_KEY_HEADER] = api_key
    return tuple(sorted(headers.items()))


def _resource_attributes(
    *,
    service_name: str | None,
    deployment_environment: str | None,
    organization_id: str | None,
) -> tuple[tuple[str, str], ...]:
    attributes = {
        "telemetry.distro.name": "codon-sdk",
        "telemetry.distro.version": __version__,
    }
    if service_name:
        attributes["service.name"] = service_name
    if organization_id:
        attributes["codon.organization.id"] = organization_id
    if deployment_environment:
        attributes["deployment.environment.name"] = deployment_environment
    return tuple(sorted(attributes.items()))
