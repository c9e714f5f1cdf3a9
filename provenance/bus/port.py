"""The bus port: durable, ordered topics with consumer groups.

To write an adapter, subclass `Bus` and `Consumer`:

- ``produce(topic, records)`` returns only once the records are durable (acknowledged); it returns
  their offsets, which increase by one per record within a topic partition.
- ``consumer(group, topics)`` starts at the group's committed offset (the earliest record if the
  group never committed). ``poll`` returns records in offset order per partition. ``commit`` stores
  the next offset to read for each partition of the records it is given: a consumer that dies before
  committing re-reads them (at-least-once), which the processor makes harmless by being idempotent.
- ``seek`` moves a consumer anywhere (replay); ``lag`` says how far each partition is behind.

The dead-letter topic is an ordinary topic named by `DEAD_LETTER_TOPIC`; its records carry the
headers listed in `DEAD_LETTER_HEADERS`. Adapters translate driver errors into `BusError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: Raw topics are named ``prov.raw.<format>``; the processor reads every one of them.
RAW_TOPIC_PREFIX = "prov.raw."
DEAD_LETTER_TOPIC = "prov.dead-letter"
DEAD_LETTER_HEADERS = ("error", "source_topic", "partition", "offset", "attempts")


def raw_topic(fmt: str) -> str:
    return RAW_TOPIC_PREFIX + fmt


@dataclass(frozen=True, slots=True)
class Record:
    """What a producer hands to the bus."""

    value: bytes
    key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    """A record as stored, with its position."""

    topic: str
    partition: int
    offset: int
    value: bytes
    key: str | None
    headers: dict[str, str]
    timestamp: int  # append time, UTC ms


class Consumer(ABC):
    @abstractmethod
    def poll(self, max_records: int = 1000, timeout_s: float = 0.0) -> list[Message]:
        """Up to ``max_records`` records after the current position; waits up to ``timeout_s``."""

    @abstractmethod
    def commit(self, messages: Iterable[Message]) -> None:
        """Commit the offsets after the given messages for this consumer's group."""

    @abstractmethod
    def seek(self, topic: str, offset: int, partition: int = 0) -> None:
        """Move the position of one partition (replay from any offset)."""

    @abstractmethod
    def position(self, topic: str, partition: int = 0) -> int:
        """Next offset this consumer will read."""

    @abstractmethod
    def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed by the group, per (topic, partition)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    @abstractmethod
    def produce(self, topic: str, records: Sequence[Record]) -> list[int]:
        """Append records durably; returns their offsets."""

    @abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """A consumer in ``group`` subscribed to ``topics``."""

    @abstractmethod
    def topics(self) -> list[str]: ...

    @abstractmethod
    def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to be written, per partition."""

    @abstractmethod
    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets, per partition (absent: never committed)."""

    @abstractmethod
    def close(self) -> None: ...

    def raw_topics(self) -> list[str]:
        return sorted(t for t in self.topics() if t.startswith(RAW_TOPIC_PREFIX))

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
