"""A local HTTP server that speaks the Anthropic Messages protocol from recordings.

Point the real ``anthropic`` client at it::

    with AnthropicProtocolServer(bundled_anthropic_recordings()) as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test")
        client.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=[...])
        assert server.requests[0].headers["x-api-key"] == "sk-ant-test"

It serves ``POST /v1/messages``, as JSON or, for ``"stream": true``, as
server-sent events (``message_start``, ``content_block_delta``, ``message_delta``,
``message_stop``... derived from the recording's body unless it has ``chunks``).
Recordings are picked as :class:`~codon_sdk.testing.OpenAIProtocolServer` picks
them (queued first, then the most specific match, then ``fallback``); a request
no recording answers gets an HTTP 500 ``api_error`` saying so, with its model and
hash. Errors are Anthropic-shaped (:func:`anthropic_error`).
"""

from __future__ import annotations

import json
import uuid

from codon_sdk.redaction import get_logger
from codon_sdk.testing._anthropic_wire import anthropic_error_body, message_stream
from codon_sdk.testing._recording_server import RecordingHandler, RecordingServer
from codon_sdk.testing._recordings import RecordedRequest, Recording

__all__ = ["AnthropicProtocolServer"]

_log = get_logger("codon_sdk.testing")
_MESSAGES = "/v1/messages"


class AnthropicProtocolServer(RecordingServer):
    """Threaded Anthropic-protocol server on 127.0.0.1 answering from recordings.

    Args:
        recordings: reusable recordings, as if passed to :meth:`add`.
        fallback: called for requests no recording matches; by default those get
            an HTTP 500.
        port: the port to bind; 0 (default) picks a free one.
    """

    label = "AnthropicProtocolServer"
    thread_name = "codon-anthropic-server"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``anthropic.Anthropic(base_url=...)``."""
        return self.url


class _Handler(RecordingHandler):
    request_id_header = "request-id"

    def _request_id(self) -> str:
        return f"req_011C{uuid.uuid4().hex[:20]}"

    def _known_path(self, path: str) -> bool:
        return path == _MESSAGES

    def _bad_json(self) -> dict[str, object]:
        message = "There was an issue with your request body: it is not valid JSON."
        return anthropic_error_body(message, type="invalid_request_error")

    def _unknown_path(self, method: str, path: str) -> dict[str, object]:
        return _not_found(path)

    def _unmatched(self, request: RecordedRequest) -> dict[str, object]:
        return _no_match(request)

    def _serve_body(self, recording: Recording, request: RecordedRequest) -> None:
        if request.stream and 200 <= recording.status < 300:
            try:
                items = message_stream(recording)
            except ValueError as exc:
                self._send_json(500, anthropic_error_body(str(exc), type="api_error"))
                return
            self._send_stream(recording, items)
            return
        if recording.body is None:
            message = (
                f"recording {recording.name!r} has only stream chunks; request was not streamed"
            )
            self._send_json(500, anthropic_error_body(message, type="api_error"))
            return
        payload = json.dumps(recording.body).encode()
        headers = self._headers(recording, "application/json")
        self._send_whole(recording.status, payload, headers, recording.cut_after)


AnthropicProtocolServer.handler = _Handler


def _not_found(path: str) -> dict[str, object]:
    return anthropic_error_body(f"Not found: {path}", type="not_found_error")


def _no_match(request: RecordedRequest) -> dict[str, object]:
    message = (
        f"No recording matched POST {request.path} (model={request.model!r}, "
        f"request_hash={request.request_hash!r}, stream={request.stream}). Add a Recording "
        "whose RequestMatch fits, enqueue one, or pass a fallback."
    )
    _log.debug("%s", message)
    return anthropic_error_body(message, type="api_error")
