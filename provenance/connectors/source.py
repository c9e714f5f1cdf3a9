"""The source port: a connector that reads one source system and publishes its raw records to the bus.

To write a connector, subclass `Source` (as quix-streams' sources need only ``start``/``stop``):

- ``name`` says what it reads (shown in logs);
- ``run(stop)`` publishes as the source changes until ``stop`` is set, and returns how many records it
  published; it remembers its position durably only *after* the bus took the records (at least once,
  never skipped), so a restart goes on where it stopped;
- ``state()`` is where it is (positions, tables, counts).

A source that is read by looking again (a log file, a table's transaction log) subclasses
`PollingSource` and writes ``poll()`` (one pass); ``run`` then polls every ``interval_s``, and a
one-shot command calls ``poll()`` once. A source that pushes (the Debezium engine) writes ``run``.

Normalization is not a source's job: it publishes its native records on ``prov.raw.<format>`` and
the processor's normalizer for that format maps them (`provenance.formats`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any


class Source(ABC):
    name: str = "source"

    @abstractmethod
    def run(self, stop: threading.Event) -> int:
        """Publish as the source changes, until ``stop`` is set; returns the records published."""

    @abstractmethod
    def state(self) -> dict[str, Any]: ...


class PollingSource(Source):
    interval_s: float = 1.0

    @abstractmethod
    def poll(self) -> int:
        """Publish what is new; returns the records published."""

    def run(self, stop: threading.Event) -> int:
        total = 0
        while True:
            total += self.poll()
            if stop.wait(self.interval_s):
                return total
