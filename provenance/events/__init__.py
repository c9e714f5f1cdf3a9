"""Canonical event model (schema version 1) and its JSON form."""

from provenance.events.model import (
    APP_STATE_RANK,
    OPS,
    SCHEMA_VERSION,
    Event,
    Kind,
    event_id_for,
    ms_to_iso,
    normalize_uri,
    to_ms,
)
from provenance.events.serde import (
    describe_validation,
    event_from_dict,
    event_from_json,
    event_to_dict,
    event_to_json,
    write_json_schema,
)

__all__ = [
    "APP_STATE_RANK",
    "OPS",
    "SCHEMA_VERSION",
    "Event",
    "Kind",
    "describe_validation",
    "event_from_dict",
    "event_from_json",
    "event_id_for",
    "event_to_dict",
    "event_to_json",
    "ms_to_iso",
    "normalize_uri",
    "to_ms",
    "write_json_schema",
]
