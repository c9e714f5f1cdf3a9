"""The bus port: durable, ordered topics with consumer groups.

To write an adapter, subclass `Bus` and `Consumer`:

- ``produce(topic, records)`` returns only once the records are durable (acknowledged); it returns
  their offsets, which increase by one per record within a topic partition.
- ``consumer(group, topics, start)`` starts each partition where ``start(topic, partition)`` says,
  else at the group's committed offset (the earliest record if the group never committed). ``poll``
  returns at most ``max_records`` records, in offset order per partition, waiting up to ``timeout_s``
  for the first; a consumer may need a few polls before it sees anything (a Kafka consumer first joins
  its group), and ``at_end`` says whether it has read everything there was. ``commit`` stores
  the next offset to read for each partition of the records it is given: a consumer that dies before
  committing re-reads them (at-least-once), which the processor makes harmless by being idempotent.
- ``seek`` moves a consumer anywhere (replay); ``lag`` says how far each partition is behind.

The dead-letter topic is an ordinary topic named by `DEAD_LETTER_TOPIC`; its records carry the
headers listed in `DEAD_LETTER_HEADERS`. Adapters translate driver errors into `BusError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

#: Raw topics are named ``prov.raw.<format>``; the processor reads every one of them.
RAW_TOPIC_PREFIX = "prov.raw."
DEAD_LETTER_TOPIC = "prov.dead-letter"
DEAD_LETTER_HEADERS = ("error", "source_topic", "partition", "offset", "attempts")


#: called with (topic, partition) when a consumer takes a partition; the offset to start from, or None
StartPosition = Callable[[str, int], int | None]


def raw_topic(fmt: str) -> str:
    return RAW_TOPIC_PREFIX + fmt


def offset_key(topic: str, partition: int) -> str:
    """How a processor names a partition in the offsets it records: partition 0 is the topic's name
    alone, so a one-partition log and a Kafka topic agree; others are ``topic#N``."""
    return topic if partition == 0 else f"{topic}#{partition}"


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
    #: runs before a group takes partitions away (Kafka rebalances); the processor finishes its batches
    before_revoke: Callable[[list[tuple[str, int]]], None] | None = None

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
    def at_end(self) -> bool:
        """True once this consumer has read every record its partitions held when it asked."""

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
    #: True when the bus hands partitions to the members of a group (Kafka): consumers are then long-lived,
    #: and processing belongs to the processors of the group, not to every command that reads the store
    group_managed: bool = False

    @abstractmethod
    def produce(self, topic: str, records: Sequence[Record]) -> list[int]:
        """Append records durably; returns their offsets."""

    @abstractmethod
    def consumer(self, group: str, topics: Sequence[str], start: StartPosition | None = None) -> Consumer:
        """A consumer in ``group`` subscribed to ``topics`` (a name starting with ``^`` is a pattern)."""

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


def read_topic(bus: Bus, topic: str, limit: int, timeout_s: float = 30.0) -> list[Message]:
    """The first ``limit`` records of a topic (the dead letters), read by a throwaway group that commits nothing."""
    import time
    import uuid

    if topic not in bus.topics():
        return []
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    with bus.consumer(f"prov-reader-{uuid.uuid4().hex[:12]}", [topic], lambda _t, _p: 0) as consumer:
        while len(out) < limit and time.monotonic() < deadline:
            got = consumer.poll(limit - len(out), timeout_s=0.2)
            out.extend(got)
            if not got and consumer.at_end():
                break
    return sorted(out, key=lambda m: (m.timestamp, m.partition, m.offset))[:limit]
