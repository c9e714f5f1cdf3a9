"""The one place that owns the JSON shape of canonical events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from provenance.errors import EventError
from provenance.events.model import (
    MAX_TEXT,
    MAX_TS,
    OPS,
    SCHEMA_VERSION,
    Event,
    Kind,
    attrs_problem,
    consistency_problem,
    normalize_uri,
)


def describe_validation(exc: ValidationError) -> str:
    """A one-line, human message for a pydantic validation error."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "event"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


_FIELDS = frozenset(Event.model_fields)
_KINDS = {k.value: k for k in Kind}


def _plain_str(value: Any) -> bool:
    return isinstance(value, str) and value != "" and value == value.strip()


def _fast(data: dict[str, Any], derive_id: bool = True) -> Event | None:
    """The common, well-formed event without the validator machinery; None means "validate fully".

    Accepts only what `Event` accepts unchanged (epoch-ms ``ts``, trimmed strings, known kind/op,
    consistent fields), so both paths build the same event; anything else goes to pydantic, which
    also writes the error messages. Without ``derive_id``, an event that came without an id keeps
    an empty one (`Event.content_id` gives it when asked).
    """
    if not _FIELDS.issuperset(data) or data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        return None
    kind = _KINDS.get(data.get("kind"))  # type: ignore[arg-type]
    ts, op, source = data.get("ts"), data.get("op"), data.get("source")
    if (kind is None or type(ts) is not int or not 0 <= ts < MAX_TS or not _plain_str(source)
            or not isinstance(op, str)):
        return None
    app_id, user, uri, dst = data.get("app_id"), data.get("user"), data.get("uri"), data.get("dst")
    for v in (source, op, app_id, user, uri, dst):
        if v is not None and (not _plain_str(v) or "\x00" in v or len(v) > MAX_TEXT or not v.isascii()):
            return None  # the validators word what is wrong (a non-ASCII name is checked there, rarely)
    attrs = data.get("attrs", {})
    event_id = data.get("event_id", "")
    if not isinstance(attrs, dict) or not isinstance(event_id, str) or event_id != event_id.strip():
        return None
    if attrs and attrs_problem(attrs):
        return None
    try:
        uri = None if uri is None else normalize_uri(uri)
        dst = None if dst is None else normalize_uri(dst)
    except ValueError:
        return None
    if consistency_problem(kind, op, app_id, uri, dst, attrs):
        return None
    # What Event.model_construct does, without its per-field default machinery (22 µs → 1 µs):
    # the fields are all present and checked above; test_fast_path_* pins the equivalence.
    ev = object.__new__(Event)
    fields = {"schema_version": SCHEMA_VERSION, "event_id": event_id, "source": source, "kind": kind, "op": op,
              "ts": ts, "app_id": app_id, "user": user, "uri": uri, "dst": dst, "attrs": attrs}
    object.__setattr__(ev, "__dict__", fields)
    object.__setattr__(ev, "__pydantic_fields_set__", set(data))
    object.__setattr__(ev, "__pydantic_extra__", None)
    object.__setattr__(ev, "__pydantic_private__", None)
    if not event_id and derive_id:
        fields["event_id"] = ev.content_id()
    return ev


def event_from_dict(data: Any, *, derive_id: bool = True) -> Event:
    """A validated event. ``derive_id=False`` is for a reader that needs an id only now and then (the
    processor: an app-less link): an event without one may then come back with ``event_id == ""``
    rather than pay for hashing its content (4 µs, about a sixth of the worker's time on an event)."""
    if not isinstance(data, dict):
        raise EventError(f"an event must be a JSON object, not {type(data).__name__}")
    fast = _fast(data, derive_id)
    if fast is not None:
        return fast
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        raise EventError(describe_validation(exc)) from exc


def event_from_json(text: str | bytes, *, derive_id: bool = True) -> Event:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc}") from exc
    return event_from_dict(data, derive_id=derive_id)


def event_to_dict(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), sort_keys=True, separators=(",", ":"))


def json_schema() -> dict[str, Any]:
    """The canonical event's JSON Schema as readers need it: ``ts`` as epoch ms, seconds or an ISO-8601
    time (the model stores ms), and for each kind the ops it allows and the fields it needs."""
    schema = Event.model_json_schema()
    schema["$id"] = "https://provenance.dev/schemas/event-v1.json"
    schema["title"] = "provenance canonical event (schema version 1)"
    schema["description"] = "One change in a source system, in canonical form. See docs/events.md."
    props = schema["properties"]
    props["ts"] = {"title": "Ts", "description": "event time: UTC milliseconds since the epoch (an integer), "
                   "seconds (a number with a fraction), or an ISO-8601 time (UTC when it has no offset)",
                   "anyOf": [{"type": "integer", "minimum": 0}, {"type": "number", "minimum": 0},
                             {"type": "string", "format": "date-time"}]}
    needs = {Kind.APP: ["app_id"], Kind.FILE: ["uri"], Kind.TABLE_COMMIT: ["uri"], Kind.TAG: ["uri"],
             Kind.LINK: ["uri", "dst"], Kind.DESCRIBE: []}
    rules: list[dict[str, Any]] = []
    for kind in Kind:
        then: dict[str, Any] = {"properties": {"op": {"enum": sorted(OPS[kind])}}, "required": needs[kind]}
        rules.append({"if": {"properties": {"kind": {"const": kind.value}}, "required": ["kind"]}, "then": then})
    rules.append({"if": {"properties": {"op": {"const": "rename"}}, "required": ["op"]}, "then": {"required": ["dst"]}})
    rules.append({"if": {"properties": {"kind": {"const": "tag"}}, "required": ["kind"]},
                  "then": {"properties": {"attrs": {"required": ["key"]}}}})
    rules.append({"if": {"properties": {"kind": {"const": "table_commit"}}, "required": ["kind"]},
                  "then": {"properties": {"attrs": {"required": ["version"]}}}})
    for op, need in (("app", {"required": ["app_id"]}), ("artifact", {"required": ["uri"]}),
                     ("job", {"properties": {"attrs": {"required": ["name"]}}, "required": ["attrs"]})):
        rules.append({"if": {"properties": {"kind": {"const": "describe"}, "op": {"const": op}},
                             "required": ["kind", "op"]}, "then": need})
    schema["allOf"] = rules
    return schema


def write_json_schema(path: Path) -> None:
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
