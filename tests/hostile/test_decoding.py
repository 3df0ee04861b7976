"""Decoding ledger data never imports or calls what the data names, and never fails.

The tagged encodings name types (``"type": "module:qualname"``); before hardening, the
decoder imported any module named there and called the class. These tests plant such
names and check, with an audit hook, that nothing is imported or started.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.hostile._watch import EVIL, forbidden, forged_payloads, watched

from codon_sdk import RecordedError, TaggedValue, register_type
from codon_sdk.identity._canonical import canonical_bytes, decode, json_canonical, revive
from codon_sdk.identity._types import recorded_error


@pytest.fixture(autouse=True)
def evil_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    mark = tmp_path / "evil-mark"
    monkeypatch.setenv("CODON_EVIL_MARK", str(mark))
    sys.modules.pop(EVIL, None)
    return mark


@pytest.mark.parametrize(
    "payload", forged_payloads(), ids=lambda p: f"{p['$codon']}-{p.get('type')}"
)
def test_a_forged_tagged_value_decodes_inert_and_runs_nothing(
    payload: dict[str, Any], evil_mark: Path
) -> None:
    """A tag naming Popen, os.system, eval or a module with side effects decodes to an inert
    TaggedValue keeping what was recorded: no import, no call, no process."""
    with watched() as events:
        value = decode(orjson.dumps({"state": payload}))
    inert = value["state"]
    assert isinstance(inert, TaggedValue)
    assert inert.tag == payload["$codon"]
    assert inert.type_name == payload.get("type")
    assert inert.data == payload["v"]
    assert forbidden(events) == []
    assert EVIL not in sys.modules
    assert not evil_mark.exists()


def test_an_inert_value_encodes_back_to_exactly_what_was_read() -> None:
    """Writing a TaggedValue again (a resumed run carrying it on) keeps the recorded bytes."""
    raw = {"$codon": "dataclass", "type": "gone.module:Thing", "v": {"x": [1, {"$codon": "int"}]}}
    inert = revive(raw)
    assert isinstance(inert, TaggedValue)
    assert canonical_bytes(inert) == json_canonical(raw)
    assert orjson.loads(canonical_bytes(inert)) == raw
    assert canonical_bytes({"k": inert}) == b'{"k":' + canonical_bytes(inert) + b"}"
    assert revive(orjson.loads(canonical_bytes(inert))) == inert
    assert hash(inert) == hash(revive(raw))


class Mood(enum.Enum):
    CALM = "calm"


@dataclasses.dataclass(frozen=True)
class Reading:
    mood: Mood
    score: int


def test_a_registered_type_revives_and_an_unregistered_one_stays_inert() -> None:
    """Only classes on the allowlist come back to life: registered ones (and what this process
    encoded itself); another name is inert even when its module is imported."""
    register_type(Mood, Reading)
    value = Reading(Mood.CALM, 3)
    assert decode(canonical_bytes(value)) == value
    renamed = orjson.loads(canonical_bytes(value))
    renamed["type"] = "json:JSONDecoder"  # imported, a class, but never registered
    assert isinstance(revive(renamed), TaggedValue)


def test_the_tag_kind_must_match_the_registered_class() -> None:
    """A registered enum named under the dataclass tag (or the other way round) is inert."""
    register_type(Mood, Reading)
    wrong = {"$codon": "dataclass", "type": f"{__name__}:Mood", "v": {"x": 1}}
    assert isinstance(revive(wrong), TaggedValue)
    wrong_enum = {"$codon": "enum", "type": f"{__name__}:Reading", "v": 1}
    assert isinstance(revive(wrong_enum), TaggedValue)


MALFORMED = [
    {"$codon": "int", "v": "12x"},
    {"$codon": "int", "v": [1]},
    {"$codon": "int", "v": "9" * 5000},
    {"$codon": "float", "v": "Nope"},
    {"$codon": "tuple", "v": "abc"},
    {"$codon": "set", "v": [[1], [2]]},
    {"$codon": "frozenset", "v": 3},
    {"$codon": "map", "v": [[1, 2, 3]]},
    {"$codon": "map", "v": "x"},
    {"$codon": "bytes", "v": "!!!not base64"},
    {"$codon": "datetime", "v": "yesterday"},
    {"$codon": "date", "v": 20240101},
    {"$codon": "time", "v": None},
    {"$codon": "timedelta", "v": [1, 2]},
    {"$codon": "timedelta", "v": [10**30, 0, 0]},
    {"$codon": "decimal", "v": "one"},
    {"$codon": "uuid", "v": "not-a-uuid"},
    {"$codon": "path", "v": {"a": 1}},
    {"$codon": "enum", "v": "x"},
    {"$codon": "enum", "type": 7, "v": "x"},
]


@pytest.mark.parametrize("raw", MALFORMED, ids=lambda r: f"{r['$codon']}:{str(r['v'])[:12]}")
def test_a_malformed_encoding_is_inert_never_an_exception(raw: dict[str, Any]) -> None:
    """Every documented tag with the wrong data decodes to a TaggedValue instead of raising."""
    value = revive({"list": [raw]})
    assert value == {"list": [TaggedValue(raw)]}


def test_decoding_hostile_nesting_never_overflows_the_stack() -> None:
    """Nesting as deep as the JSON parser allows decodes without a RecursionError."""
    entry = b"[" * 1000 + b'{"$codon":"tuple","v":[1]}' + b"]" * 1000
    assert isinstance(decode(entry), list)


def test_a_recorded_standard_error_is_ours_and_still_its_class() -> None:
    """A recorded ValueError comes back as RecordedError that ``except ValueError`` catches,
    with the recorded type name, message and traceback; its __init__ is never called."""
    err = recorded_error("builtins:ValueError", "bad amount", "Traceback ...")
    assert isinstance(err, RecordedError)
    assert isinstance(err, ValueError)
    assert (err.type_name, str(err), err.traceback_text) == (
        "builtins:ValueError",
        "bad amount",
        "Traceback ...",
    )
    assert isinstance(recorded_error("builtins:TimeoutError", "slow"), OSError)


def test_a_recorded_error_naming_another_class_runs_nothing(evil_mark: Path) -> None:
    """Naming a class with side effects in its constructor gives a plain RecordedError."""
    with watched() as events:
        err = recorded_error(f"{EVIL}:BoomError", "boom")
        other = recorded_error("subprocess:CalledProcessError", "x")
    assert type(err) is RecordedError
    assert err.type_name == f"{EVIL}:BoomError"
    assert type(other) is RecordedError
    assert forbidden(events) == []
    assert not evil_mark.exists()


class Refused(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


def test_a_registered_error_class_is_matched_without_running_its_constructor() -> None:
    """A registered exception type with a constructor of its own is rebuilt as a subclass of
    it that ``except Refused`` catches, without calling ``Refused.__init__``."""
    register_type(Refused)
    err = recorded_error(f"{__name__}:Refused", "402: card declined")
    assert isinstance(err, Refused)
    assert isinstance(err, RecordedError)
    assert str(err) == "402: card declined"
