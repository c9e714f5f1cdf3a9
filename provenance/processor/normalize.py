"""Normalization: a raw bus record → canonical events. Pure.

Raw topics are ``prov.raw.<format>``; each format has one normalizer here. Connectors add theirs
with `register`. ``canonical`` is the simplest raw format: one canonical event per record.
"""

from __future__ import annotations

from collections.abc import Callable

from provenance.bus.port import RAW_TOPIC_PREFIX
from provenance.errors import EventError
from provenance.events import Event, event_from_json

Normalizer = Callable[[bytes], list[Event]]

_NORMALIZERS: dict[str, Normalizer] = {}


def register(fmt: str, fn: Normalizer) -> None:
    _NORMALIZERS[fmt] = fn


def formats() -> list[str]:
    return sorted(_NORMALIZERS)


def normalize_record(topic: str, value: bytes) -> list[Event]:
    fmt = topic.removeprefix(RAW_TOPIC_PREFIX)
    fn = _NORMALIZERS.get(fmt)
    if fn is None:
        raise EventError(f"no normalizer for raw format {fmt!r} (known: {', '.join(formats())})")
    return fn(value)


def _canonical(value: bytes) -> list[Event]:
    return [event_from_json(value)]


register("canonical", _canonical)

from provenance.connectors import openlineage as _openlineage  # noqa: E402, F401 - registers its format
