"""How OpenAI responses, streams and errors are recorded in the ledger, and rebuilt from it.

openai's response types are pydantic models whose fields can have aliases
(``async_`` is sent as ``async``) and whose ``to_dict()`` keeps only the fields
the server sent, so the SDK's generic pydantic encoding does not give back an
equal object. Each one is recorded instead as the JSON the client received,
tagged with its class::

    {"codon.openai": 1, "type": "openai.types.chat.chat_completion:ChatCompletion",
     "data": {...by alias, as sent...}, "request_id": "req_..."}

and rebuilt with the class's own lenient ``construct`` (what the client itself
does), which gives back an equal object with the same ``to_dict()``. A stream
is recorded as ``{"codon.openai": 1, "stream": [<object>...], "outcome":
"completed" | "closed" | "failed", "error": <error> | None}``.

An error is recorded as its class, message and what the class needs to be
built again (status, body, safe response headers, method and URL without
query or credentials), so resume and replay raise the same class with the
same ``status_code``, ``body``, ``code`` and ``request_id``. Every string is
scrubbed of the client's API keys.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from typing import Any

import openai
from codon_sdk._text import printable
from codon_sdk.errors import ReplayError
from codon_sdk.identity._canonical import type_path
from codon_sdk.identity._types import allowed_type, recorded_error, remember_type
from codon_sdk.telemetry._genai import jsonable, scrub

__all__ = [
    "FORMAT_KEY",
    "decode_object",
    "decode_stream",
    "encode_error",
    "encode_object",
    "encode_stream",
    "rebuild_error",
    "safe_headers",
    "scrub_exception",
]

FORMAT_KEY = "codon.openai"
_VERSION = 1
_SAFE_HEADERS = frozenset(
    {
        "content-type",
        "x-request-id",
        "retry-after",
        "retry-after-ms",
        "openai-processing-ms",
        "openai-version",
        "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
    }
)


def _http() -> Any:
    """The HTTP library the installed openai client uses (``httpx2`` for openai 3, else httpx)."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:  # pragma: no cover - openai < 3
        return importlib.import_module("httpx")


def _openai_class(path: Any, base: type) -> Any:
    """The class ``path`` (``module:qualname``) names, when it is ``base`` or a subclass and
    either registered (``codon_sdk.identity``'s allowlist, which every response type this
    process recorded is on) or defined in an already-imported module of the ``openai``
    package. Ledger data never chooses what is imported: nothing is imported here, and
    module ``__getattr__`` hooks (lazy imports) are not consulted."""
    found = allowed_type(path)
    if found is None and isinstance(path, str):
        module_name, _, qualname = path.partition(":")
        if module_name == "openai" or module_name.startswith("openai."):
            obj: Any = sys.modules.get(module_name)
            for part in qualname.split(".") if obj is not None else ():
                namespace = getattr(obj, "__dict__", None)
                obj = namespace.get(part) if isinstance(namespace, dict) else None
            found = obj
    return found if isinstance(found, type) and issubclass(found, base) else None


# --------------------------------------------------------------------------- objects


def encode_object(obj: Any, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The recorded form of one response object (see the module docstring)."""
    dump = getattr(obj, "model_dump", None)
    if not callable(dump):
        return {FORMAT_KEY: _VERSION, "value": obj}
    data = dump(mode="json", by_alias=True, exclude_unset=True, warnings=False)
    remember_type(type(obj))
    out: dict[str, Any] = {FORMAT_KEY: _VERSION, "type": type_path(type(obj)), "data": data}
    request_id = getattr(obj, "_request_id", None)
    if isinstance(request_id, str):
        out["request_id"] = request_id
    if headers:
        out["headers"] = dict(headers)
    return out


def _check(record: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(record, Mapping) or record.get(FORMAT_KEY) != _VERSION:
        raise ReplayError(
            f"the ledger holds {type(record).__name__} where a recorded OpenAI {what} was "
            f"expected ({FORMAT_KEY} format {_VERSION}); was this effect recorded by another "
            "version of the instrumentation?"
        )
    return record


def decode_object(record: Any) -> Any:
    """The response object a record holds, rebuilt as the client builds it."""
    record = _check(record, "response")
    if "value" in record:
        return record["value"]
    cls = _openai_class(record.get("type"), openai.BaseModel)
    if cls is None:
        raise ReplayError(
            f"recorded OpenAI response type {printable(record.get('type'))!r} is not a response "
            "type of the installed openai package; install an openai version that has it"
        )
    data = record.get("data")
    if not isinstance(data, dict):
        raise ReplayError(
            f"the recorded OpenAI {cls.__name__} holds {type(data).__name__} where its "
            "fields were expected; the ledger entry is damaged"
        )
    obj = cls.construct(**data)
    request_id = record.get("request_id")
    if isinstance(request_id, str):
        obj._request_id = request_id
    return obj


def recorded_headers(record: Any) -> dict[str, str]:
    """The safe response headers kept with a record (for raw responses)."""
    headers = record.get("headers") if isinstance(record, Mapping) else None
    return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}


def encode_stream(
    chunks: list[Any], outcome: str, error: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The recorded form of a stream: its chunks, how it ended, and its error if it failed."""
    return {
        FORMAT_KEY: _VERSION,
        "stream": [encode_object(chunk) for chunk in chunks],
        "outcome": outcome,
        "error": dict(error) if error else None,
    }


def decode_stream(record: Any) -> tuple[list[Any], str, Mapping[str, Any] | None]:
    """``(chunks, outcome, error info)`` of a recorded stream."""
    record = _check(record, "stream")
    items = record.get("stream")
    if not isinstance(items, list):
        raise ReplayError("the ledger holds an OpenAI response where a stream was expected")
    error = record.get("error")
    return (
        [decode_object(item) for item in items],
        str(record.get("outcome") or "completed"),
        error if isinstance(error, Mapping) else None,
    )


# --------------------------------------------------------------------------- errors


def safe_headers(headers: Any) -> dict[str, str]:
    """The response headers worth keeping (request id, rate limits, retry-after); no cookies."""
    try:
        return {
            str(k).lower(): str(v) for k, v in headers.items() if str(k).lower() in _SAFE_HEADERS
        }
    except Exception:
        return {}


def _where(request: Any) -> dict[str, str]:
    """Method and URL of a request, without query string or credentials."""
    try:
        url = request.url
        port = f":{url.port}" if url.port else ""
        return {"method": str(request.method), "url": f"{url.scheme}://{url.host}{port}{url.path}"}
    except Exception:
        return {"method": "POST", "url": "https://api.openai.com/v1"}


def encode_error(exc: BaseException, secrets: tuple[str, ...]) -> dict[str, Any]:
    """What it takes to raise ``exc`` again, scrubbed of ``secrets``."""
    info: dict[str, Any] = {
        "type": type_path(type(exc)),
        "message": scrub(str(exc), secrets),
        "kind": "other",
    }
    if isinstance(exc, (openai.APIStatusError, openai.APIResponseValidationError)):
        info["kind"] = "status" if isinstance(exc, openai.APIStatusError) else "validation"
        info["message"] = scrub(exc.message, secrets)
        info["status_code"] = exc.status_code
        info["body"] = jsonable(exc.body, secrets)
        info["headers"] = {
            k: scrub(v, secrets) for k, v in safe_headers(exc.response.headers).items()
        }
        info.update(_where(exc.request))
    elif isinstance(exc, openai.APIConnectionError):
        info["kind"] = "connection"
        info["message"] = scrub(exc.message, secrets)
        info.update(_where(exc.request))
    elif isinstance(exc, openai.APIError):
        info["kind"] = "api"
        info["message"] = scrub(exc.message, secrets)
        info["body"] = jsonable(exc.body, secrets)
        info.update(_where(exc.request))
    elif isinstance(exc, json.JSONDecodeError):
        info["kind"] = "json"
        info["msg"] = exc.msg
        info["doc"] = scrub(exc.doc, secrets)
        info["pos"] = exc.pos
    return info


def scrub_exception(exc: BaseException, secrets: tuple[str, ...]) -> None:
    """Take ``secrets`` out of the text ``exc`` carries (args, message, body, doc), in place.

    The class and every other attribute stay as the client made them.
    """
    carried = (exc.args, getattr(exc, "message", None), getattr(exc, "body", None))
    if not secrets or not any(s in repr(carried) for s in secrets):
        return
    try:
        exc.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in exc.args)
        for name in ("message", "doc"):
            value = getattr(exc, name, None)
            if isinstance(value, str):
                setattr(exc, name, scrub(value, secrets))
        if getattr(exc, "body", None) is not None:
            exc.body = jsonable(exc.body, secrets)  # type: ignore[attr-defined]
    except Exception:  # an exception type that refuses new attributes keeps its text
        pass


def rebuild_error(info: Mapping[str, Any]) -> BaseException:
    """The exception ``info`` describes: the same class where it is one of the openai
    package's errors (or ``json.JSONDecodeError``), else a
    :class:`~codon_sdk.errors.RecordedError` naming it (see ``codon_sdk.identity``)."""
    name = info.get("type")
    message = str(info.get("message", ""))
    cls = _openai_class(name, openai.OpenAIError)
    if cls is None and name == "json.decoder:JSONDecodeError":
        cls = json.JSONDecodeError
    if cls is not None:
        try:
            built = _build(cls, str(info.get("kind")), message, info)
        except Exception:
            built = None
        if isinstance(built, BaseException):
            return built
    return recorded_error(name, message)


def _build(cls: Any, kind: str, message: str, info: Mapping[str, Any]) -> Any:
    http = _http()
    request = http.Request(str(info.get("method") or "POST"), str(info.get("url") or ""))
    body = info.get("body")
    if kind in ("status", "validation"):
        content = json.dumps(body).encode() if body is not None else b""
        response = http.Response(
            int(info.get("status_code") or 500),
            headers=dict(info.get("headers") or {}),
            content=content,
            request=request,
        )
        if kind == "validation":
            return cls(response, body, message=message)
        try:
            return cls(message, response=response, body=body)
        except TypeError:  # e.g. OAuthError(*, response, body)
            return cls(response=response, body=body)
    if kind == "connection":
        if issubclass(cls, openai.APITimeoutError):
            return cls(request)
        return cls(message=message, request=request)
    if kind == "api":
        return cls(message, request, body=body)
    if kind == "json":
        return cls(str(info.get("msg")), str(info.get("doc")), int(info.get("pos") or 0))
    return cls(message)
