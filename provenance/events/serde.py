"""The one place that owns the JSON shape of canonical events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from provenance.errors import EventError
from provenance.events.model import Event


def describe_validation(exc: ValidationError) -> str:
    """A one-line, human message for a pydantic validation error."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "event"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def event_from_dict(data: Any) -> Event:
    if not isinstance(data, dict):
        raise EventError(f"an event must be a JSON object, not {type(data).__name__}")
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        raise EventError(describe_validation(exc)) from exc


def event_from_json(text: str | bytes) -> Event:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventError(f"not JSON: {exc}") from exc
    return event_from_dict(data)


def event_to_dict(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), sort_keys=True, separators=(",", ":"))


def write_json_schema(path: Path) -> None:
    schema = Event.model_json_schema()
    schema["$id"] = "https://provenance.dev/schemas/event-v1.json"
    schema["title"] = "provenance canonical event (schema version 1)"
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
