"""Normalization: a raw bus record → canonical events. Pure.

Raw topics are ``prov.raw.<format>``. A `Normalizer` turns one record of its format into canonical
events (and raises `EventError` for a record it cannot use, which is then dead-lettered). A stack's
normalizers are held by a `Normalizers`, built at start from the one list of formats this package
reads (`provenance.formats`), each normalizer with its own configuration (the CDC normalizer with its
table mappings). An event's ``event_id`` may be left empty: inference derives it when it needs one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from provenance.bus.port import RAW_TOPIC_PREFIX
from provenance.errors import EventError
from provenance.events import Event

#: raw record value → events
Normalizer = Callable[[bytes], list[Event]]

#: the largest raw record a normalizer is given (a record is one change: anything larger is a mistake)
MAX_RECORD_BYTES = 4 * 1024 * 1024


class Normalizers:
    """The normalizers of one stack, by raw format."""

    def __init__(self, by_format: Mapping[str, Normalizer]) -> None:
        self._by_format = dict(by_format)

    def formats(self) -> list[str]:
        return sorted(self._by_format)

    def __contains__(self, fmt: object) -> bool:
        return fmt in self._by_format

    def unknown(self, fmt: str) -> str:
        """The message for a format nobody reads."""
        return f"unknown format {fmt!r} (known: {', '.join(self.formats())})"

    def normalize(self, topic: str, value: bytes) -> list[Event]:
        fmt = topic.removeprefix(RAW_TOPIC_PREFIX)
        fn = self._by_format.get(fmt)
        if fn is None:
            raise EventError(f"no normalizer for raw format {fmt!r} (known: {', '.join(self.formats())})")
        if len(value) > MAX_RECORD_BYTES:
            raise EventError(f"a record of {len(value)} bytes is over the {MAX_RECORD_BYTES} byte limit")
        try:
            return fn(value)
        except EventError:
            raise
        except Exception as exc:  # a normalizer's bug or a value it chokes on: this record, not the stream
            raise EventError(f"the {fmt} normalizer failed: {type(exc).__name__}: {str(exc)[:500]}") from exc
