"""The OpenAI protocol server, driven by the real ``openai`` client over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

import codon_sdk.testing as kit
from codon_sdk.testing import (
    OpenAIProtocolServer,
    Recording,
    RequestMatch,
    bundled_recordings,
    echo_fallback,
    load_recordings,
    recordings_from_json,
    request_hash,
)

API_KEY = "sk-test-do-not-log-4f1c"
FRANCE = [
    {"role": "system", "content": "You are a concise geography assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
WEATHER = [{"role": "user", "content": "What's the weather in Paris right now?"}]
PRIMES = [
    {"role": "developer", "content": "You are a careful math tutor. Show only the final answer."},
    {"role": "user", "content": "How many prime numbers are there between 1 and 50?"},
]
HAIKU: dict[str, Any] = {
    "model": "o4-mini",
    "instructions": "You are a poet who answers only in haiku.",
    "input": "Write a haiku about the sea.",
}
HAIKU_TEXT = "Waves fold into foam\nsalt wind carries gull voices\nthe tide keeps its time"
HELLO: Any = [{"role": "user", "content": "Hi"}]
FOX = ["The quick brown fox", "jumps over the lazy dog"]
FOX_VECTOR_0 = [0.0123, -0.0456, 0.0789, -0.0234, 0.0567, -0.0891, 0.0345, -0.0678]


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Every test stops what it started: no thread outlives it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads leaked: {extra}"


@pytest.fixture
def server() -> Iterator[OpenAIProtocolServer]:
    with OpenAIProtocolServer(bundled_recordings()) as running:
        yield running


@pytest.fixture
def client(server: OpenAIProtocolServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as c:
        yield c


def test_public_surface_is_sorted_and_every_name_resolves() -> None:
    """``codon_sdk.testing.__all__`` is sorted, and each name (lazy ones too) imports."""
    assert kit.__all__ == sorted(kit.__all__)
    for name in kit.__all__:
        assert getattr(kit, name) is not None
    assert set(kit.__all__) <= set(dir(kit))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = kit.nope


def test_base_url_is_loopback_with_v1_prefix(server: OpenAIProtocolServer) -> None:
    """The server binds 127.0.0.1 on an ephemeral port and exposes the /v1 base URL."""
    assert server.port > 0
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"


# ---------------------------------------------------------------- endpoints


def test_chat_completion_comes_from_the_matching_recording(client: openai.OpenAI) -> None:
    """A recorded conversation answers with its recorded body, usage details included."""
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 35

    reasoning = client.chat.completions.create(model="o4-mini", messages=PRIMES)
    usage = reasoning.usage
    assert usage is not None
    assert usage.prompt_tokens_details
    assert usage.completion_tokens_details
    assert usage.prompt_tokens_details.cached_tokens == 1152
    assert usage.completion_tokens_details.reasoning_tokens == 320


def test_tool_call_completion_round_trips_the_tool_call(client: openai.OpenAI) -> None:
    """finish_reason, tool call id, name and JSON arguments reach the client intact."""
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=WEATHER)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}


def test_streamed_chat_with_include_usage_ends_with_a_usage_chunk(client: openai.OpenAI) -> None:
    """Recorded chunks stream in order; include_usage adds the final choices-less usage chunk."""
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=FRANCE,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The capital of France is Paris."
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 35
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_streamed_chat_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    """Without stream_options.include_usage the recorded usage chunk is left out."""
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, stream=True)
    chunks = list(stream)
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_chat_stream_is_sse_framed_and_ends_with_done(client: openai.OpenAI) -> None:
    """On the wire: text/event-stream, one ``data:`` line per chunk, then ``data: [DONE]``."""
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=FRANCE,
        stream=True,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][len("data: ") :])["object"] == "chat.completion.chunk"


def test_stream_derived_from_a_body_reassembles_tool_calls_and_usage(
    client: openai.OpenAI,
) -> None:
    """A recording with only a body still streams: role, argument deltas, finish, usage."""
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=WEATHER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    calls = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert calls[0].id == "call_Xy7Qm2Lk9Vb4Nt1Rs8Pw3Hd"
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    arguments = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 19


def test_responses_api_returns_output_text_and_usage_details(client: openai.OpenAI) -> None:
    """The Responses API body parses: output_text, cached and reasoning token details."""
    response = client.responses.create(**HAIKU)
    assert response.output_text == HAIKU_TEXT
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 1152
    assert response.usage.output_tokens_details.reasoning_tokens == 192


def test_responses_api_stream_emits_the_documented_event_sequence(client: openai.OpenAI) -> None:
    """created, in_progress, item/part/text events with numbered sequence, then completed."""
    events = list(client.responses.create(**HAIKU, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "response.output_item.added" in types
    assert "response.content_part.done" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = [e for e in events if e.type == "response.output_text.done"]
    assert deltas == done[0].text == HAIKU_TEXT
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None
    assert completed.response.usage.output_tokens_details.reasoning_tokens == 192


def test_responses_stream_helper_assembles_the_final_response(client: openai.OpenAI) -> None:
    """The client's ``responses.stream`` helper accepts our events and builds the response."""
    with client.responses.stream(**HAIKU) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == HAIKU_TEXT

    messages: Any = WEATHER
    with client.responses.stream(model="gpt-4.1-mini", input=messages) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    call = final.output[0]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "celsius"}


def test_embeddings_default_base64_decodes_to_the_recorded_vectors(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """The client asks for base64; the server packs float32 and the client decodes it."""
    result = client.embeddings.create(model="text-embedding-3-small", input=FOX)
    assert server.requests[-1].body["encoding_format"] == "base64"
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx(FOX_VECTOR_0, rel=1e-6)
    assert result.usage.prompt_tokens == 10


def test_embeddings_float_format_returns_the_recorded_floats(client: openai.OpenAI) -> None:
    """With encoding_format="float" the recorded numbers come back exactly."""
    result = client.embeddings.create(
        model="text-embedding-3-small", input=FOX, encoding_format="float"
    )
    assert result.data[0].embedding == FOX_VECTOR_0


def test_async_client_gets_completions_and_streams(server: OpenAIProtocolServer) -> None:
    """AsyncOpenAI works against the same server, plain and streamed."""

    async def scenario() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key=API_KEY, max_retries=0
        ) as client:
            completion = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=FRANCE,
            )
            stream = await client.responses.create(**HAIKU, stream=True)
            text = "".join(
                [e.delta async for e in stream if e.type == "response.output_text.delta"]
            )
            return completion.choices[0].message.content, text

    content, text = asyncio.run(scenario())
    assert content == "The capital of France is Paris."
    assert text == HAIKU_TEXT


def test_concurrent_requests_are_served_in_parallel(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """The server is threaded: eight simultaneous calls all get their answer."""

    def call(_: int) -> str | None:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        return completion.choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, range(8)))
    assert answers == ["The capital of France is Paris."] * 8
    assert len(server.requests) == 8


# ---------------------------------------------------------------- faults


def test_rate_limit_surfaces_as_rate_limit_error_with_retry_after(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """A 429 (max_retries=0) raises RateLimitError carrying Retry-After and the error code."""
    server.enqueue(Recording.rate_limit(retry_after=7))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"


def test_client_retries_after_rate_limits_then_succeeds(server: OpenAIProtocolServer) -> None:
    """The client honours a short Retry-After, retries, and the next answer succeeds."""
    server.enqueue(Recording.rate_limit(retry_after=0.01), Recording.rate_limit(retry_after=0.01))
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=2) as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert completion.choices[0].message.content == "The capital of France is Paris."
    retry_counts = [r.headers["x-stainless-retry-count"] for r in server.requests]
    assert retry_counts == ["0", "1", "2"]


def test_rate_limit_after_the_last_retry_raises(server: OpenAIProtocolServer) -> None:
    """When every attempt is rate limited, RateLimitError surfaces after the retries."""
    server.enqueue(*[Recording.rate_limit(retry_after=0.01)] * 2)
    with (
        openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=1) as client,
        pytest.raises(openai.RateLimitError),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert len(server.requests) == 2


def test_server_error_surfaces_as_internal_server_error(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """A recorded 500 raises InternalServerError with OpenAI's error type."""
    server.enqueue(Recording.server_error())
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


def test_malformed_json_body_raises_the_clients_decode_error(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """A truncated application/json body: the client raises json.JSONDecodeError (ValueError)."""
    server.enqueue(Recording.malformed())
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)


def test_non_json_body_fails_strict_response_validation(server: OpenAIProtocolServer) -> None:
    """With strict validation, an HTML body raises APIResponseValidationError."""
    server.enqueue(Recording.malformed(b"<html>502 Bad Gateway</html>", content_type="text/html"))
    with (
        openai.OpenAI(
            base_url=server.base_url,
            api_key=API_KEY,
            max_retries=0,
            _strict_response_validation=True,
        ) as client,
        pytest.raises(openai.APIResponseValidationError),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)


def test_delayed_answer_times_out_the_client(server: OpenAIProtocolServer) -> None:
    """An answer slower than the client's timeout raises APITimeoutError."""
    recording = bundled_recordings("chat_completions")[0]
    server.enqueue(recording.delayed(30.0))
    with (
        openai.OpenAI(
            base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=0.2
        ) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)


def test_delay_within_the_timeout_still_answers(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """A delay shorter than the timeout only slows the answer down."""
    server.enqueue(bundled_recordings("chat_completions")[0].delayed(0.05))
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert completion.choices[0].message.content == "The capital of France is Paris."


def test_stream_cut_midway_raises_while_iterating(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """The connection closes after three chunks: those arrive, then iteration raises."""
    server.enqueue(bundled_recordings("chat_completions")[0].cut(after=3))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE, stream=True)
    received: list[str | None] = []

    def drain() -> None:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)

    with pytest.raises(openai.APIConnectionError):
        drain()
    assert received == ["", "The", " capital"]


def test_cut_before_a_plain_body_is_a_connection_error(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """cut_after=0 on a non-streamed answer sends headers only, then closes."""
    server.enqueue(bundled_recordings("chat_completions")[0].cut(after=0))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)


# ---------------------------------------------------------------- matching and scripting


def test_requests_match_on_model_and_conversation(client: openai.OpenAI) -> None:
    """Same conversation with another model, or another conversation: no recording matches."""
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=FRANCE)
    other = [{"role": "user", "content": "What is the capital of Spain?"}]
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=other)


def test_most_specific_matching_recording_wins(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """A model-wide recording answers new conversations; a conversation-exact one beats it."""
    body = dict(bundled_recordings("chat_completions")[0].body)
    body["choices"] = [{**body["choices"][0], "message": {"role": "assistant", "content": "Hi."}}]
    server.add(Recording(body=body, match=RequestMatch(model="gpt-4o-mini")))
    other = [{"role": "user", "content": "Hello?"}]
    fresh = client.chat.completions.create(model="gpt-4o-mini", messages=other)
    assert fresh.choices[0].message.content == "Hi."
    exact = client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert exact.choices[0].message.content == "The capital of France is Paris."


def test_request_hash_does_not_depend_on_key_order() -> None:
    """The conversation hash is over canonical JSON; other body fields do not count."""
    a = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    b = {"temperature": 1, "messages": [{"content": "hi", "role": "user"}]}
    assert request_hash("/v1/chat/completions", a) == request_hash("/v1/chat/completions", b)
    assert request_hash("/v1/chat/completions", {"model": "x"}) is None
    assert request_hash("/v1/unknown", a) is None


def test_queued_recordings_are_served_once_in_order_before_added_ones(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """enqueue() scripts answers FIFO, each served once, ahead of the reusable library."""
    first = Recording.server_error(503)
    second = Recording.error(400, "bad", type="invalid_request_error")
    server.enqueue(first, second)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    assert server.pending == ()
    assert client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE).id


def test_queued_recording_waits_for_a_request_it_matches(
    client: openai.OpenAI, server: OpenAIProtocolServer
) -> None:
    """A queued answer for embeddings is not consumed by a chat request."""
    server.enqueue(Recording.server_error(match=RequestMatch(path="/v1/embeddings")))
    assert client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE).id
    assert len(server.pending) == 1
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="text-embedding-3-small", input=FOX)
    assert server.pending == ()


def test_unmatched_request_gets_a_500_naming_path_model_and_hash(client: openai.OpenAI) -> None:
    """No fallback by default: the 500's JSON error says no recording matched, and which."""
    other = [{"role": "user", "content": "Unrecorded question"}]
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=other)
    digest = request_hash("/v1/chat/completions", {"messages": other})
    assert digest is not None
    message = str(caught.value)
    assert "No recording matched POST /v1/chat/completions" in message
    assert "'gpt-4o-mini'" in message
    assert digest in message
    assert caught.value.code == "no_recording_matched"


def test_echo_fallback_is_opt_in_and_deterministic() -> None:
    """With fallback=echo_fallback every endpoint answers, the same way every time."""
    with (
        OpenAIProtocolServer(fallback=echo_fallback) as server,
        openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client,
    ):
        messages: Any = [{"role": "user", "content": "ping"}]
        one = client.chat.completions.create(model="m", messages=messages)
        two = client.chat.completions.create(model="m", messages=messages)
        assert one.choices[0].message.content == "echo: ping"
        assert one.id == two.id
        assert one.usage == two.usage
        streamed = client.chat.completions.create(model="m", messages=messages, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == "echo: ping"
        assert client.responses.create(model="m", input="pong").output_text == "echo: pong"
        vectors = client.embeddings.create(model="e", input=["a", "b"], dimensions=4)
        again = client.embeddings.create(model="e", input=["a", "b"], dimensions=4)
        assert [len(d.embedding) for d in vectors.data] == [4, 4]
        assert vectors.data[0].embedding == again.data[0].embedding != vectors.data[1].embedding


def test_requests_record_the_key_but_never_show_or_log_it(
    client: openai.OpenAI, server: OpenAIProtocolServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The Authorization header is kept for assertions; repr and logs never contain the key."""
    caplog.set_level(logging.DEBUG, logger="codon_sdk.testing")
    client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.model == "gpt-4o-mini"
    assert request.stream is False
    assert request.body["messages"] == FRANCE
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.redacted_headers["authorization"] == "<redacted>"
    assert API_KEY not in repr(request)
    assert caplog.records, "the server logs request lines at DEBUG"
    assert API_KEY not in caplog.text


def test_unknown_paths_answer_404_like_the_api(client: openai.OpenAI) -> None:
    """GET /v1/models and other paths get OpenAI's 'Invalid URL' 404."""
    with pytest.raises(openai.NotFoundError, match="Invalid URL"):
        client.models.list()


def test_stop_closes_idle_keep_alive_connections(server: OpenAIProtocolServer) -> None:
    """stop() does not wait for clients to hang up; later calls fail to connect."""
    client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
        server.stop()  # the client still holds a pooled keep-alive connection
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    finally:
        client.close()


# ---------------------------------------------------------------- recording files


def test_recordings_load_from_a_json_file(tmp_path: Path) -> None:
    """A hand-written recording file loads, matches its request and serves its response."""
    document = {
        "format": "codon-openai-recordings/v1",
        "recordings": [
            {
                "name": "greeting",
                "request": {
                    "path": "/v1/chat/completions",
                    "body": {"model": "gpt-4o-mini", "messages": HELLO},
                },
                "response": {
                    "status": 429,
                    "headers": {"Retry-After": "3"},
                    "body": {"error": {"message": "slow down", "type": "requests", "code": None}},
                },
            }
        ],
    }
    path = tmp_path / "greeting.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    [recording] = load_recordings(tmp_path)
    assert recording.name == "greeting"
    assert recording.status == 429
    assert recording.headers == {"retry-after": "3"}
    assert recording.match.model == "gpt-4o-mini"
    assert recording.match.request_hash
    with (
        OpenAIProtocolServer(load_recordings(path)) as server,
        openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client,
        pytest.raises(openai.RateLimitError, match="slow down"),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"recordings": []}, "format"),
        ({"format": "codon-openai-recordings/v1", "recordings": [{"respnse": {}}]}, "respnse"),
        ({"format": "codon-openai-recordings/v1", "recordings": [{}]}, "missing key 'response'"),
        (
            {"format": "codon-openai-recordings/v1", "recordings": [{"response": {"delay": -1}}]},
            "delay",
        ),
        (
            {
                "format": "codon-openai-recordings/v1",
                "recordings": [{"match": ["prompt"], "response": {}}],
            },
            "match",
        ),
    ],
)
def test_malformed_recording_documents_are_rejected_with_the_offending_key(
    document: Any, complaint: str
) -> None:
    """Typos and bad values raise ValueError naming what was wrong."""
    with pytest.raises(ValueError, match=complaint):
        recordings_from_json(document)


def test_bundled_recordings_cover_every_endpoint() -> None:
    """The shipped files hold chat, Responses API and embeddings recordings."""
    paths = {r.match.path for r in bundled_recordings()}
    assert paths == {"/v1/chat/completions", "/v1/responses", "/v1/embeddings"}
    with pytest.raises(ValueError, match="no bundled recordings"):
        bundled_recordings("nope")


def test_recording_rejects_impossible_values() -> None:
    """Status codes, delays and cut points are validated on construction."""
    with pytest.raises(ValueError, match="status"):
        Recording(status=42)
    with pytest.raises(ValueError, match="delays"):
        Recording(delay=-1)
    with pytest.raises(ValueError, match="cut_after"):
        Recording(cut_after=-1)
    with pytest.raises(ValueError, match="unknown match keys"):
        RequestMatch.for_request("/v1/embeddings", {}, by=["prompt"])  # type: ignore[list-item]
