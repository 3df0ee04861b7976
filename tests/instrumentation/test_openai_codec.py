"""Every OpenAI response type, stream chunk and error survives the ledger round trip.

Objects come from the real client; each goes through the recorded form, the
SDK's canonical ledger bytes and back, and must come out the same class, equal,
with the same ``to_dict()`` (fields the server did not send stay unset).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import openai
import pytest

from codon.instrumentation.openai._codec import (
    decode_object,
    decode_stream,
    encode_error,
    encode_object,
    encode_stream,
    rebuild_error,
)
from codon_sdk.identity._canonical import canonical_bytes, decode
from codon_sdk.testing import Recording

from ._openai_support import API_KEY, FOX, FRANCE, HAIKU, PRIMES, WEATHER, serving, sync_client


def _through_ledger(value: Any) -> Any:
    return decode(canonical_bytes(value))


def _same(original: Any, again: Any) -> None:
    assert type(again) is type(original)
    assert again == original
    assert again.to_dict() == original.to_dict()


@pytest.fixture(scope="module")
def live_objects() -> dict[str, list[Any]]:
    """One of every response and stream item the instrumentation records."""
    found: dict[str, list[Any]] = {}
    with serving() as server, sync_client(server) as client:
        found["chat"] = [
            client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE),
            client.chat.completions.create(model="gpt-4o-mini", messages=WEATHER),
            client.chat.completions.create(model="o4-mini", messages=PRIMES),
        ]
        found["chat chunks"] = [
            *client.chat.completions.create(
                model="gpt-4o-mini",
                messages=FRANCE,
                stream=True,
                stream_options={"include_usage": True},
            ),
            *client.chat.completions.create(model="gpt-4o-mini", messages=WEATHER, stream=True),
        ]
        found["responses"] = [
            client.responses.create(**HAIKU),
            client.responses.create(model="gpt-4.1-mini", input=WEATHER),
        ]
        found["response events"] = [
            *client.responses.create(**HAIKU, stream=True),
            *client.responses.create(model="gpt-4.1-mini", input=WEATHER, stream=True),
        ]
        found["embeddings"] = [
            client.embeddings.create(model="text-embedding-3-small", input=FOX),
            client.embeddings.create(
                model="text-embedding-3-small", input=FOX, encoding_format="float"
            ),
        ]
    return found


@pytest.mark.parametrize(
    "kind", ["chat", "chat chunks", "responses", "response events", "embeddings"]
)
def test_every_recorded_object_comes_back_equal(
    live_objects: dict[str, list[Any]], kind: str
) -> None:
    """Chat completions, chunks, Responses API objects and events, embeddings round trip."""
    for original in live_objects[kind]:
        _same(original, decode_object(_through_ledger(encode_object(original))))


def test_aliased_fields_round_trip() -> None:
    """A function call item has an aliased field (async_ / "async") and still round trips."""
    with serving() as server, sync_client(server) as client:
        response = client.responses.create(model="gpt-4.1-mini", input=WEATHER)
    again = decode_object(_through_ledger(encode_object(response)))
    _same(response.output[0], again.output[0])
    assert "async_" not in (again.output[0].model_extra or {})


def test_request_id_is_kept(live_objects: dict[str, list[Any]]) -> None:
    """The served object carries the x-request-id the live one had."""
    original = live_objects["chat"][0]
    assert original._request_id
    assert decode_object(_through_ledger(encode_object(original)))._request_id == (
        original._request_id
    )


def test_a_stream_record_keeps_chunks_outcome_and_error(
    live_objects: dict[str, list[Any]],
) -> None:
    """A failed stream's record gives back its chunks, how it ended and its error."""
    chunks = live_objects["response events"][:3]
    failure = {"type": "openai:APIError", "message": "boom", "kind": "other"}
    back, outcome, error = decode_stream(_through_ledger(encode_stream(chunks, "failed", failure)))
    assert outcome == "failed"
    assert error == failure
    for original, again in zip(chunks, back, strict=True):
        _same(original, again)


ERRORS = [
    Recording.rate_limit(retry_after=3),
    Recording.server_error(502),
    Recording.error(401, f"Incorrect API key provided: {API_KEY}", type="invalid_request_error"),
    Recording.error(404, "no such model", type="invalid_request_error", code="model_not_found"),
    Recording.error(422, "unprocessable", type="invalid_request_error"),
    Recording.malformed(),
]


@pytest.mark.parametrize("answer", ERRORS, ids=lambda r: r.name)
def test_client_errors_are_rebuilt_as_the_same_class(answer: Recording) -> None:
    """The rebuilt error has the class, message, status, body and code; never the key."""
    with (
        serving(answer) as server,
        sync_client(server) as client,
        pytest.raises(Exception) as caught,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=FRANCE)
    live = caught.value
    info = _through_ledger(encode_error(live, (API_KEY,)))
    assert API_KEY not in json.dumps(info)
    again = rebuild_error(info)
    assert type(again) is type(live)
    assert str(again) == str(live).replace(API_KEY, "<redacted>")
    if isinstance(live, openai.APIStatusError):
        assert isinstance(again, openai.APIStatusError)
        assert again.status_code == live.status_code
        assert again.code == live.code
        assert again.request_id == live.request_id
        restored = json.dumps(again.body, sort_keys=True).replace("<redacted>", API_KEY)
        assert restored == json.dumps(live.body, sort_keys=True)
    if isinstance(live, json.JSONDecodeError):
        assert isinstance(again, json.JSONDecodeError)
        assert (again.msg, again.doc, again.pos) == (live.msg, live.doc, live.pos)


def test_an_error_class_outside_the_allowlist_becomes_a_recorded_error() -> None:
    """A recorded error naming a class that is not one of openai's (gone from today's code,
    or chosen by whoever edited the ledger) is raised as ours, naming it; nothing imported."""
    from codon_sdk import RecordedError

    again = rebuild_error({"type": "gone.module:Vanished", "message": "x", "kind": "other"})
    assert isinstance(again, RecordedError)
    assert again.type_name == "gone.module:Vanished"
    assert str(again) == "x"
    assert "gone.module" not in sys.modules
