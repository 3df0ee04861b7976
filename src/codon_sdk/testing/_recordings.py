"""Recordings: the answers the protocol servers give, and which requests each fits.

A :class:`Recording` is one HTTP answer (status, headers, a JSON body or raw
bytes, optional stream chunks, optional faults) and a :class:`RequestMatch`
saying which requests it answers. A :class:`RecordedRequest` is what the server
received.

Recording files are JSON documents::

    {
      "format": "codon-openai-recordings/v1",
      "recordings": [
        {
          "name": "chat-capital-of-france",
          "request": {"path": "/v1/chat/completions",
                      "body": {"model": "gpt-4o-mini", "messages": [...]}},
          "match": ["path", "model", "request_hash"],
          "response": {"status": 200, "headers": {"x-request-id": "req_..."},
                       "body": {...}, "chunks": [...], "raw_body": "...",
                       "delay": 0.0, "chunk_delay": 0.0, "cut_after": null}
        }
      ]
    }

Only ``response`` is required. The match criteria are derived from ``request``:
its path, its body's ``model`` and the :func:`request_hash` of its conversation
(``messages`` for chat completions; ``input`` and ``instructions`` for the
Responses API; ``input`` for embeddings; ``messages`` and ``system`` for
Anthropic Messages). ``match`` narrows which of those are
used; a recording without ``request`` answers any request.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

__all__ = [
    "FORMAT",
    "MatchKey",
    "RecordedRequest",
    "Recording",
    "RequestMatch",
    "bundled_anthropic_recordings",
    "bundled_recordings",
    "error_body",
    "load_recordings",
    "recordings_from_json",
    "request_hash",
]

FORMAT = "codon-openai-recordings/v1"

MatchKey = Literal["path", "model", "request_hash"]
_MATCH_KEYS: tuple[MatchKey, ...] = ("path", "model", "request_hash")

# The part of each request body that identifies the conversation.
_HASHED_FIELDS: dict[str, tuple[str, ...]] = {
    "/v1/chat/completions": ("messages",),
    "/v1/responses": ("input", "instructions"),
    "/v1/embeddings": ("input",),
    "/v1/messages": ("messages", "system"),  # Anthropic Messages
}
_SECRET_HEADERS = frozenset({"authorization", "api-key", "openai-api-key", "x-api-key", "cookie"})


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request_hash(path: str, body: Any) -> str | None:
    """SHA-256 hex of the conversation part of a request body, or None if it has none.

    Chat completions hash ``messages``; the Responses API hashes ``input`` and
    ``instructions``; embeddings hash ``input``; Anthropic Messages hash ``messages``
    and ``system``. Keys are sorted first, so the
    hash does not depend on how the client ordered them.
    """
    fields = _HASHED_FIELDS.get(path)
    if fields is None or not isinstance(body, Mapping):
        return None
    picked = {name: body[name] for name in fields if body.get(name) is not None}
    if not picked:
        return None
    return hashlib.sha256(_canonical(picked)).hexdigest()


def error_body(
    message: str, *, type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI-shaped error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedRequest:
    """One request the server received.

    ``headers`` has lower-case names and includes ``authorization`` so tests can
    check the key was sent; it is left out of ``repr`` (use
    :attr:`redacted_headers` to print them).
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str] = field(repr=False)
    body: Any
    raw_body: bytes = field(repr=False)
    request_hash: str | None

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if isinstance(self.body, Mapping) else None
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return isinstance(self.body, Mapping) and self.body.get("stream") is True

    @property
    def redacted_headers(self) -> dict[str, str]:
        """The headers with credentials replaced by ``"<redacted>"``."""
        return {k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in self.headers.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestMatch:
    """Which requests a recording answers: every criterion that is set must agree.

    The empty match (the default) answers every request.
    """

    path: str | None = None
    model: str | None = None
    request_hash: str | None = None

    @classmethod
    def for_request(
        cls,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        by: Iterable[MatchKey] = _MATCH_KEYS,
    ) -> RequestMatch:
        """The match for requests like this one, on the criteria named in ``by``.

        ``RequestMatch.for_request("/v1/chat/completions", {"model": "gpt-4o-mini",
        "messages": [...]})`` answers that conversation with that model only.
        """
        keys = set(by)
        unknown = keys - set(_MATCH_KEYS)
        if unknown:
            raise ValueError(f"unknown match keys {sorted(unknown)}; use {list(_MATCH_KEYS)}")
        body = body or {}
        model = body.get("model")
        return cls(
            path=path if "path" in keys else None,
            model=model if "model" in keys and isinstance(model, str) else None,
            request_hash=request_hash(path, body) if "request_hash" in keys else None,
        )

    @property
    def specificity(self) -> int:
        """How many criteria are set; the most specific matching recording wins."""
        return sum(v is not None for v in (self.path, self.model, self.request_hash))

    def matches(self, request: RecordedRequest) -> bool:
        return (
            (self.path is None or self.path == request.path)
            and (self.model is None or self.model == request.model)
            and (self.request_hash is None or self.request_hash == request.request_hash)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """One answer of the OpenAI protocol server.

    - ``body``: the JSON response body. A streamed request gets it as server-sent
      events derived from this body, unless ``chunks`` is given.
    - ``chunks``: stream items sent verbatim, one SSE message each (chat
      completion chunks, or Responses API events whose ``type`` becomes the SSE
      ``event:`` line). Chat streams drop usage-only chunks unless the request
      set ``stream_options.include_usage``.
    - ``raw_body``: bytes served as-is instead of JSON (malformed bodies).
    - ``delay``: seconds to wait before answering (client timeouts).
    - ``chunk_delay``: seconds between stream items (time to first token).
    - ``cut_after``: close the connection after this many stream items, without
      ending the stream (a non-streamed body counts as one item).
    - ``match``: which requests this recording answers.
    """

    body: Any = None
    chunks: Sequence[Any] | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    match: RequestMatch = field(default_factory=RequestMatch)
    name: str = ""

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        if self.delay < 0 or self.chunk_delay < 0:
            raise ValueError(f"delays must be >= 0, got {self.delay!r} and {self.chunk_delay!r}")
        if self.cut_after is not None and self.cut_after < 0:
            raise ValueError(f"cut_after must be >= 0 or None, got {self.cut_after!r}")
        if self.chunks is not None and not isinstance(self.chunks, tuple):
            object.__setattr__(self, "chunks", tuple(self.chunks))
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        *,
        type: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        match: RequestMatch | None = None,
    ) -> Recording:
        """An OpenAI-shaped JSON error answer."""
        return cls(
            status=status,
            body=error_body(message, type=type, code=code),
            headers=dict(headers or {}),
            match=match or RequestMatch(),
            name=f"error-{status}",
        )

    @classmethod
    def rate_limit(
        cls, retry_after: float = 1.0, *, match: RequestMatch | None = None
    ) -> Recording:
        """A 429 with ``Retry-After`` (seconds; fractions allowed, the client honours them)."""
        after = f"{retry_after:g}"
        return cls.error(
            429,
            f"Rate limit reached for requests. Please try again in {after}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": after,
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{after}s",
            },
            match=match,
        )

    @classmethod
    def server_error(cls, status: int = 500, *, match: RequestMatch | None = None) -> Recording:
        """A 5xx as OpenAI sends it."""
        return cls.error(
            status,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
            match=match,
        )

    @classmethod
    def malformed(
        cls,
        raw_body: bytes = b'{"id": "chatcmpl-trunc',
        *,
        content_type: str = "application/json",
        match: RequestMatch | None = None,
    ) -> Recording:
        """A 200 whose body is not the JSON its content type promises."""
        return cls(
            raw_body=raw_body,
            headers={"content-type": content_type},
            match=match or RequestMatch(),
            name="malformed",
        )

    def delayed(self, seconds: float) -> Recording:
        """This answer, sent after ``seconds``."""
        return replace(self, delay=seconds)

    def cut(self, after: int) -> Recording:
        """This answer, with the connection closed after ``after`` stream items."""
        return replace(self, cut_after=after)

    def matching(self, match: RequestMatch) -> Recording:
        """This answer, for the requests ``match`` selects."""
        return replace(self, match=match)


# ---------------------------------------------------------------- JSON files

_RECORDING_KEYS = frozenset({"name", "request", "match", "response"})
_REQUEST_KEYS = frozenset({"path", "body", "method"})
_RESPONSE_KEYS = frozenset(
    {"status", "headers", "body", "chunks", "raw_body", "delay", "chunk_delay", "cut_after"}
)


def _expect(cond: bool, where: str, what: str, value: Any) -> None:
    if not cond:
        raise ValueError(f"{where}: {what}, got {value!r}")


def _object(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    _expect(isinstance(value, dict), where, "expected a JSON object", type(value).__name__)
    unknown = set(value) - allowed
    _expect(not unknown, where, f"unknown keys (allowed: {sorted(allowed)})", sorted(unknown))
    return cast(dict[str, Any], value)


def _number(response: dict[str, Any], key: str, where: str) -> float:
    value = response.get(key, 0.0)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    _expect(ok, f"{where}.{key}", "expected a number >= 0", value)
    return float(value)


def _match(entry: dict[str, Any], where: str) -> RequestMatch:
    request = _object(entry.get("request", {}), f"{where}.request", _REQUEST_KEYS)
    by = entry.get("match", list(_MATCH_KEYS))
    ok = isinstance(by, list) and set(by) <= set(_MATCH_KEYS)
    _expect(ok, f"{where}.match", f"expected a list drawn from {list(_MATCH_KEYS)}", by)
    if "path" not in request:
        _expect("body" not in request, f"{where}.request", "a body needs a path", request)
        return RequestMatch()
    path, body = request["path"], request.get("body", {})
    _expect(isinstance(path, str), f"{where}.request.path", "expected a string", path)
    _expect(isinstance(body, dict), f"{where}.request.body", "expected a JSON object", body)
    return RequestMatch.for_request(path, body, by=by)


def _recording(entry: Any, where: str) -> Recording:
    entry = _object(entry, where, _RECORDING_KEYS)
    _expect("response" in entry, where, "missing key 'response'", sorted(entry))
    response = _object(entry["response"], f"{where}.response", _RESPONSE_KEYS)
    headers = response.get("headers", {})
    ok = isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    _expect(ok, f"{where}.response.headers", "expected an object of strings", headers)
    chunks, raw, cut = response.get("chunks"), response.get("raw_body"), response.get("cut_after")
    _expect(
        chunks is None or isinstance(chunks, list), f"{where}.response.chunks", "a list", chunks
    )
    _expect(raw is None or isinstance(raw, str), f"{where}.response.raw_body", "a string", raw)
    cut_ok = cut is None or (isinstance(cut, int) and not isinstance(cut, bool) and cut >= 0)
    _expect(cut_ok, f"{where}.response.cut_after", "expected an integer >= 0", cut)
    status = response.get("status", 200)
    _expect(isinstance(status, int) and 100 <= status <= 599, where, "bad status", status)
    name = entry.get("name", where)
    _expect(isinstance(name, str), f"{where}.name", "expected a string", name)
    return Recording(
        body=response.get("body"),
        chunks=None if chunks is None else tuple(chunks),
        status=status,
        headers=headers,
        raw_body=None if raw is None else raw.encode(),
        delay=_number(response, "delay", f"{where}.response"),
        chunk_delay=_number(response, "chunk_delay", f"{where}.response"),
        cut_after=cut,
        match=_match(entry, where),
        name=name,
    )


def recordings_from_json(document: Any, *, source: str = "<json>") -> tuple[Recording, ...]:
    """Recordings from a parsed recording document (see the module docstring)."""
    doc = _object(document, source, frozenset({"format", "recordings"}))
    fmt = doc.get("format")
    _expect(fmt == FORMAT, f"{source}.format", f"expected {FORMAT!r}", fmt)
    entries = doc.get("recordings")
    if not isinstance(entries, list):
        raise ValueError(f"{source}.recordings: expected a list, got {entries!r}")
    return tuple(_recording(e, f"{source}: recordings[{i}]") for i, e in enumerate(entries))


def load_recordings(path: str | os.PathLike[str]) -> tuple[Recording, ...]:
    """Recordings from one JSON file, or from every ``*.json`` file of a directory, sorted."""
    root = Path(path)
    files: Sequence[Path] = sorted(root.glob("*.json")) if root.is_dir() else [root]
    loaded: list[Recording] = []
    for file in files:
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}: not valid JSON ({exc})") from exc
        loaded.extend(recordings_from_json(document, source=str(file)))
    return tuple(loaded)


def bundled_recordings(*names: str) -> tuple[Recording, ...]:
    """The OpenAI recordings shipped in ``codon_sdk/testing/recordings/``.

    ``names`` picks files by stem (``"chat_completions"``, ``"responses"``,
    ``"embeddings"``); none means all of them.
    """
    return _bundled("recordings", names)


def bundled_anthropic_recordings(*names: str) -> tuple[Recording, ...]:
    """The Anthropic Messages recordings shipped in ``codon_sdk/testing/recordings/anthropic/``.

    ``names`` picks files by stem (``"messages"``); none means all of them.
    """
    return _bundled("recordings/anthropic", names)


def _bundled(where: str, names: tuple[str, ...]) -> tuple[Recording, ...]:
    folder = resources.files("codon_sdk.testing").joinpath(where)
    available = {Path(f.name).stem: f for f in folder.iterdir() if f.name.endswith(".json")}
    missing = set(names) - set(available)
    if missing:
        raise ValueError(f"no bundled recordings {sorted(missing)}; have {sorted(available)}")
    loaded: list[Recording] = []
    for stem in sorted(names or available):
        document = json.loads(available[stem].read_text(encoding="utf-8"))
        loaded.extend(recordings_from_json(document, source=f"{where}/{stem}.json"))
    return tuple(loaded)
