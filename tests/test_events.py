from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance.errors import EventError
from provenance.events import Event, event_from_json, event_id_for, event_to_json, normalize_uri
from provenance.events.serde import write_json_schema

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_and_normalisation() -> None:
    e = Event(source="fs", kind="file", op="read", ts="2026-01-01T00:00:00Z", uri="/a/b/../c.csv", app_id="x")
    assert e.uri == "file:///a/c.csv"
    assert e.ts == 1767225600000
    assert e.schema_version == 1
    assert e.key == "x"


def test_event_id_is_deterministic_from_content() -> None:
    a = Event(source="fs", kind="file", op="read", ts=5, uri="file:///a", attrs={"x": 1, "y": 2})
    b = Event(source="fs", kind="file", op="read", ts=5, uri="/a", attrs={"y": 2, "x": 1})
    c = Event(source="fs", kind="file", op="read", ts=6, uri="/a")
    assert a.event_id == b.event_id != c.event_id
    assert event_id_for("s", "1") == event_id_for("s", "1") != event_id_for("s", "2")


def test_round_trip_through_json() -> None:
    e = Event(source="launcher", kind="app", op="started", ts=7, app_id="a", user="u", attrs={"pid": 3})
    assert event_from_json(event_to_json(e)) == e


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"source": "fs", "kind": "file", "op": "run", "ts": 1, "uri": "/a"}, "op 'run' is not valid for kind 'file'"),
        ({"source": "fs", "kind": "file", "op": "read", "ts": 1}, "a file event needs uri"),
        ({"source": "l", "kind": "app", "op": "started", "ts": 1}, "an app event needs app_id"),
        ({"source": "fs", "kind": "file", "op": "rename", "ts": 1, "uri": "/a"}, "a rename event needs dst"),
        ({"source": "fs", "kind": "file", "op": "read", "ts": "yesterday", "uri": "/a"}, "ts: not an ISO-8601"),
        ({"source": "fs", "kind": "file", "op": "read", "ts": 1, "uri": "relative/p"}, "URI needs a scheme"),
        ({"source": "fs", "kind": "nope", "op": "read", "ts": 1, "uri": "/a"}, "kind:"),
        ({"source": "fs", "kind": "file", "op": "read", "ts": 1, "uri": "/a", "extra": 1}, "extra: Extra inputs"),
        ({"schema_version": 9, "source": "fs", "kind": "file", "op": "read", "ts": 1, "uri": "/a"},
         "unsupported schema_version 9"),
        ({"source": "fs", "kind": "tag", "op": "set", "ts": 1, "uri": "/a"}, "a tag event needs attrs.key"),
    ],
)
def test_invalid_events_say_what_is_wrong(record: dict[str, object], message: str) -> None:
    with pytest.raises(EventError) as info:
        event_from_json(json.dumps(record))
    assert message in str(info.value)


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(EventError, match="not JSON"):
        event_from_json(b"{nope")
    with pytest.raises(EventError, match="must be a JSON object"):
        event_from_json(b"[1]")


def test_uri_normalisation() -> None:
    assert normalize_uri("file:///x//y/./z/") == "file:///x/y/z"
    assert normalize_uri("s3://bucket/k/") == "s3://bucket/k"
    assert normalize_uri("/with space") == "file:///with%20space"
    with pytest.raises(ValueError, match="must be local"):
        normalize_uri("file://host/x")


def test_published_json_schema_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "s.json"
    write_json_schema(fresh)
    published = ROOT / "docs" / "event.schema.json"
    assert published.read_text() == fresh.read_text(), "regenerate: python -m provenance.events.schema"


@pytest.mark.parametrize(
    "record",
    [
        {"source": "fs", "kind": "file", "op": "read", "ts": 5, "uri": "/a/b.csv", "app_id": "x"},
        {"source": "fs", "kind": "file", "op": "read", "ts": 5, "uri": "/a/./b.csv", "app_id": "x", "event_id": "e"},
        {"source": "fs", "kind": "file", "op": "rename", "ts": 5, "uri": "/a", "dst": "/b", "attrs": {"k": [1]}},
        {"source": "l", "kind": "app", "op": "started", "ts": "2026-01-01T00:00:00Z", "app_id": "a", "user": "u"},
        {"source": " fs ", "kind": "file", "op": "read", "ts": 5, "uri": "/a"},
        {"source": "fs", "kind": "file", "op": "read", "ts": 5, "uri": "/a", "user": ""},
        {"source": "fs", "kind": "file", "op": "read", "ts": 5.5, "uri": "/a"},
    ],
)
def test_fast_path_builds_exactly_what_the_model_validates(record: dict[str, object]) -> None:
    fast = event_from_json(json.dumps(record))
    full = Event.model_validate(record)
    assert fast == full and fast.event_id == full.event_id


@pytest.mark.parametrize("given", ["", "e-1"])
def test_an_event_read_without_deriving_its_id_differs_only_in_the_id_it_did_not_bring(given: str) -> None:
    record = {"source": "fs", "kind": "file", "op": "read", "ts": 5, "uri": "/a/b.csv", "app_id": "x",
              "event_id": given}
    full = Event.model_validate(record)
    lazy = event_from_json(json.dumps(record), derive_id=False)
    assert lazy.event_id == given  # empty stays empty; a given id is kept
    assert lazy.model_copy(update={"event_id": full.event_id}) == full
    assert lazy.content_id() == full.content_id() and (given or full.content_id()) == full.event_id


def test_the_published_schema_accepts_every_example_and_refuses_a_wrong_op() -> None:
    """What the schema tells a producer is what the processor takes: ISO or epoch-ms times, the ops of
    each kind, the fields each kind needs."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "event.schema.json").read_text()))
    lines = [json.loads(ln) for ln in (ROOT / "examples" / "loan_pipeline.jsonl").read_text().splitlines() if ln]
    assert any(isinstance(e["ts"], str) for e in lines)
    assert [list(validator.iter_errors(e)) for e in lines] == [[] for _ in lines]
    for wrong in ({"source": "x", "kind": "file", "op": "started", "ts": 1, "uri": "/a"},
                  {"source": "x", "kind": "app", "op": "started", "ts": 1},
                  {"source": "x", "kind": "file", "op": "rename", "ts": 1, "uri": "/a"}):
        assert list(validator.iter_errors(wrong)), wrong
        with pytest.raises(EventError):
            event_from_json(json.dumps(wrong))
