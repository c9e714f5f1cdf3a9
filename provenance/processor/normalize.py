"""Normalization: a raw bus record → canonical events. Pure.

Raw topics are ``prov.raw.<format>``; each format has one normalizer here. Connectors add theirs
with `register`. ``canonical`` is the simplest raw format: one canonical event per record.
"""

from __future__ import annotations

from collections.abc import Callable

from provenance.bus.port import RAW_TOPIC_PREFIX
from provenance.errors import EventError
from provenance.events import Event, event_from_json
from provenance.processor.rules import Rules

#: raw record value, and the rules (whose CDC table mappings the ``debezium`` format reads) → events;
#: an event's ``event_id`` may be left empty, since inference derives it when it needs one
Normalizer = Callable[[bytes, Rules], list[Event]]

_NORMALIZERS: dict[str, Normalizer] = {}


def register(fmt: str, fn: Normalizer) -> None:
    _NORMALIZERS[fmt] = fn


def formats() -> list[str]:
    return sorted(_NORMALIZERS)


def normalize_record(topic: str, value: bytes, rules: Rules) -> list[Event]:
    fmt = topic.removeprefix(RAW_TOPIC_PREFIX)
    fn = _NORMALIZERS.get(fmt)
    if fn is None:
        raise EventError(f"no normalizer for raw format {fmt!r} (known: {', '.join(formats())})")
    return fn(value, rules)


def _canonical(value: bytes, rules: Rules) -> list[Event]:
    # inference reads an event's id only for an app-less link (`infer`), so it is not derived here
    return [event_from_json(value, derive_id=False)]


register("canonical", _canonical)

from provenance.connectors import cdc as _cdc  # noqa: E402
from provenance.connectors import hdfs as _hdfs  # noqa: E402
from provenance.connectors import openlineage as _openlineage  # noqa: E402, F401 - registers its format
from provenance.connectors import s3 as _s3  # noqa: E402

register(_cdc.FORMAT, _cdc.normalize)
register(_hdfs.FORMAT, _hdfs.normalize)
register(_s3.FORMAT, _s3.normalize)
