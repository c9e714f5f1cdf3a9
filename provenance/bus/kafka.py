"""Kafka adapter for the bus port (``confluent-kafka``, librdkafka underneath).

- Producing: an idempotent producer (``enable.idempotence``, ``acks=all``), so a retried send never
  duplicates or reorders a partition. Records are keyed (by app id, by the connectors), so one app's
  events land on one partition and stay in order. ``produce`` returns once every record is
  acknowledged; a full local queue makes it wait for deliveries (backpressure), never drop.
- Topics are created on first use with ``partitions`` partitions (idempotent: "already exists" is fine).
- Consuming: a consumer group with manual commits only (no auto-commit, no auto offset store). The
  caller commits after the store and the index took a batch. Where a partition starts is the caller's
  choice at each assignment (``start``: the processor asks its store, which is the truth), else the
  group's committed offset, else the earliest record. Before partitions are revoked, ``before_revoke``
  runs (the processor finishes its in-flight batches there) and what was handed to ``commit`` is
  committed synchronously.
- A topic whose name starts with ``^`` is a regular expression (librdkafka's convention): the
  processor subscribes to ``^prov\\.raw\\..*`` and so picks up the topics of new sources.

Broker quirk handled here: some Kafka-protocol brokers (Tansu) report a high watermark of the last
batch's base offset + 1. ``end_offsets`` therefore reads the last batch and takes its last offset + 1,
which is exact on every broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from provenance.bus.port import Bus, Consumer, Message, Record, StartPosition
from provenance.errors import BusError

log = logging.getLogger(__name__)

_OFFSET_STORED = -1000  # librdkafka: the group's committed offset (or auto.offset.reset)


def _kafka() -> Any:
    try:
        import confluent_kafka
        import confluent_kafka.admin
    except ImportError as exc:  # pragma: no cover - an install without the extra
        raise BusError("the Kafka bus needs confluent-kafka: pip install 'provenance[kafka]'") from exc
    return confluent_kafka


class KafkaBus(Bus):
    """A bus on Kafka topics. ``options`` are passed to librdkafka as they are (security, tuning)."""

    group_managed = True

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        partitions: int = 6,
        replication_factor: int = 1,
        session_timeout_ms: int = 10_000,
        options: dict[str, Any] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        ck = _kafka()
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.session_timeout_ms = session_timeout_ms
        self.timeout_s = timeout_s
        self._base = {"bootstrap.servers": bootstrap_servers, **(options or {})}
        self._admin = ck.admin.AdminClient(self._base)
        self._producer: Any = None
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._probe: Any = None

    # -- producing ---------------------------------------------------------------------------
    def _get_producer(self) -> Any:
        if self._producer is None:
            self._producer = _kafka().Producer({
                **self._base,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 200_000,
            })
        return self._producer

    def ensure_topic(self, topic: str) -> None:
        """Create ``topic`` (with ``partitions`` partitions) unless it exists."""
        if topic in self._known:
            return
        ck = _kafka()
        # all topics, not list_topics(topic=…): asking for one by name makes some brokers create it
        tm = self._metadata().topics.get(topic)
        if tm is None or tm.error is not None:
            futures = self._admin.create_topics(
                [ck.admin.NewTopic(topic, num_partitions=self.partitions, replication_factor=self.replication_factor)],
                operation_timeout=self.timeout_s)
            try:
                futures[topic].result(timeout=self.timeout_s)
            except ck.KafkaException as exc:
                if exc.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BusError(f"cannot create topic {topic!r}: {exc.args[0].str()}") from exc
        self._known.add(topic)

    def produce(self, topic: str, records: Sequence[Record]) -> list[int]:
        if not topic:
            raise BusError("topic name is empty")
        if not records:
            return []
        self.ensure_topic(topic)
        producer = self._get_producer()
        offsets: list[int] = [-1] * len(records)
        errors: list[str] = []

        def delivered(i: int) -> Callable[[Any, Any], None]:
            def cb(err: Any, msg: Any) -> None:
                if err is not None:
                    errors.append(err.str())
                else:
                    offsets[i] = msg.offset()
            return cb

        with self._lock:
            for i, r in enumerate(records):
                while True:
                    try:
                        producer.produce(topic, value=r.value, key=r.key.encode() if r.key is not None else None,
                                         headers=list(r.headers.items()) or None, on_delivery=delivered(i))
                        break
                    except BufferError:  # the local queue is full: wait for deliveries (backpressure)
                        producer.poll(0.05)
            left = producer.flush(self.timeout_s)
        if left:
            raise BusError(f"{left} record(s) to {topic!r} not acknowledged within {self.timeout_s:g} s "
                           f"(is the broker at {self.bootstrap_servers} up?)")
        if errors:
            raise BusError(f"produce to {topic!r} failed: {errors[0]}")
        return offsets

    # -- reading -----------------------------------------------------------------------------
    def consumer(self, group: str, topics: Sequence[str], start: StartPosition | None = None) -> KafkaConsumer:
        if not group:
            raise BusError("consumer group name is empty")
        for t in topics:
            if not t.startswith("^"):
                self.ensure_topic(t)
        return KafkaConsumer(self, group, list(topics), start)

    def _metadata(self) -> Any:
        try:
            return self._admin.list_topics(timeout=self.timeout_s)
        except _kafka().KafkaException as exc:
            raise BusError(f"cannot list topics at {self.bootstrap_servers}: {exc}") from exc

    def topics(self) -> list[str]:
        return sorted(t for t in self._metadata().topics if not t.startswith("__"))

    def partitions_of(self, topic: str) -> list[int]:
        tm = self._metadata().topics.get(topic)
        if tm is None or tm.error is not None:
            return []
        return sorted(tm.partitions)

    def end_offsets(self, topic: str) -> dict[int, int]:
        parts = self.partitions_of(topic)
        if not parts:
            return {0: 0}
        return {p: self._end_offset(topic, p) for p in parts}

    def _end_offset(self, topic: str, partition: int) -> int:
        ck = _kafka()
        with self._lock:
            if self._probe is None:
                self._probe = ck.Consumer({**self._base, "group.id": "prov-probe", "enable.auto.commit": False,
                                           "enable.partition.eof": True, "fetch.wait.max.ms": 10})
            tp = ck.TopicPartition(topic, partition)
            lo, hi = self._probe.get_watermark_offsets(tp, timeout=self.timeout_s)
            if hi <= lo:
                return max(int(hi), 0)
            self._probe.assign([ck.TopicPartition(topic, partition, hi - 1)])
            end, deadline = int(hi), time.monotonic() + self.timeout_s
            try:
                while time.monotonic() < deadline:
                    msgs = self._probe.consume(10_000, 0.5)
                    eof = False
                    for m in msgs:
                        if m.error() is None:
                            end = max(end, m.offset() + 1)
                        elif m.error().code() == ck.KafkaError._PARTITION_EOF:
                            eof = True
                    if eof:
                        break
            finally:
                self._probe.unassign()
            return int(end)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        ck = _kafka()
        parts = self.partitions_of(topic)
        if not parts:
            return {}
        c = ck.Consumer({**self._base, "group.id": group, "enable.auto.commit": False})
        try:
            got = c.committed([ck.TopicPartition(topic, p) for p in parts], timeout=self.timeout_s)
        except ck.KafkaException as exc:
            raise BusError(f"cannot read the offsets of group {group!r}: {exc}") from exc
        finally:
            c.close()
        return {tp.partition: tp.offset for tp in got if tp.offset >= 0}

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(self.timeout_s)
                close = getattr(self._producer, "close", None)  # newer confluent-kafka; older: destroyed when collected
                if close is not None:
                    close()  # or its threads go on reconnecting for as long as something holds it
                self._producer = None
            if self._probe is not None:
                self._probe.close()
                self._probe = None


class KafkaConsumer(Consumer):
    def __init__(self, bus: KafkaBus, group: str, topics: list[str], start: StartPosition | None) -> None:
        ck = _kafka()
        self._ck = ck
        self._bus = bus
        self.group = group
        self._topics = topics
        self._start = start
        self._c = ck.Consumer({
            **bus._base,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": bus.session_timeout_ms,
            "heartbeat.interval.ms": max(100, bus.session_timeout_ms // 4),
            "topic.metadata.refresh.interval.ms": 2000,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
        })
        self._assigned: set[tuple[str, int]] = set()
        self._joined = False
        self._pos: dict[tuple[str, int], int] = {}
        self._seeks: dict[tuple[str, int], int] = {}
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._c.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)

    # -- rebalancing -------------------------------------------------------------------------
    def _on_assign(self, c: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            offset = self._seeks.pop(key, None)
            if offset is None and self._start is not None:
                offset = self._start(tp.topic, tp.partition)
            tp.offset = offset if offset is not None else _OFFSET_STORED
            if offset is not None:
                self._pos[key] = offset
            self._assigned.add(key)
        c.assign(partitions)
        self._joined = True
        log.info("group %s: assigned %s", self.group,
                 ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions) or "nothing")

    def _on_revoke(self, c: Any, partitions: list[Any]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        log.info("group %s: revoked %s", self.group, ", ".join(f"{t}[{p}]" for t, p in keys) or "nothing")
        if self.before_revoke is not None:
            self.before_revoke(keys)
        self._commit_now([k for k in keys if k in self._uncommitted])
        for k in keys:
            self._assigned.discard(k)
            self._pos.pop(k, None)
        c.unassign()

    def _on_lost(self, c: Any, partitions: list[Any]) -> None:  # session expired: another member owns them now
        log.warning("group %s: lost %s", self.group, ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._assigned.discard(key)
            self._uncommitted.pop(key, None)
            self._pos.pop(key, None)
        c.unassign()

    # -- the port ----------------------------------------------------------------------------
    def poll(self, max_records: int = 1000, timeout_s: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + timeout_s
        out: list[Message] = []
        while True:
            left = max(0.0, deadline - time.monotonic())
            # wait only for the first records; then take what is already fetched, up to max_records
            wait = 0.0 if out or not timeout_s else min(left, 0.1)
            try:
                msgs = self._c.consume(max_records - len(out), wait)
            except self._ck.KafkaException as exc:
                raise BusError(f"consume failed: {exc}") from exc
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() == self._ck.KafkaError._PARTITION_EOF:
                        continue
                    if err.fatal():
                        raise BusError(f"consumer failed: {err.str()}")
                    log.warning("kafka consumer: %s", err.str())
                    continue
                key = m.key()
                out.append(Message(m.topic(), m.partition(), m.offset(), m.value() or b"",
                                   key.decode("utf-8", "replace") if key is not None else None,
                                   {k: (v or b"").decode("utf-8", "replace") for k, v in (m.headers() or [])},
                                   m.timestamp()[1]))
                self._pos[(m.topic(), m.partition())] = m.offset() + 1
            if len(out) >= max_records or (out and not msgs) or (not out and time.monotonic() >= deadline):
                return out

    def commit(self, messages: Iterable[Message]) -> None:
        for m in messages:
            key = (m.topic, m.partition)
            self._uncommitted[key] = max(self._uncommitted.get(key, 0), m.offset + 1)
        self._commit_now(list(self._uncommitted))

    def _commit_now(self, keys: list[tuple[str, int]]) -> None:
        owned = [k for k in keys if k in self._assigned]
        for k in keys:
            if k not in owned:
                self._uncommitted.pop(k, None)  # not ours any more: the store's offsets are the truth
        if not owned:
            return
        tps = [self._ck.TopicPartition(t, p, self._uncommitted[(t, p)]) for t, p in owned]
        try:
            self._c.commit(offsets=tps, asynchronous=False)
        except self._ck.KafkaException as exc:
            err = exc.args[0]
            if err.code() in (self._ck.KafkaError._NO_OFFSET,):
                return
            # a rebalance raced the commit; the new owner starts from the store's offsets, so nothing is lost
            log.warning("kafka commit for group %s failed: %s", self.group, err.str())
            return
        for k in owned:
            self._uncommitted.pop(k, None)

    def seek(self, topic: str, offset: int, partition: int = 0) -> None:
        if offset < 0:
            raise BusError("offset must be >= 0")
        key = (topic, partition)
        if key in self._assigned:
            try:
                self._c.seek(self._ck.TopicPartition(topic, partition, offset))
            except self._ck.KafkaException as exc:
                raise BusError(f"seek on {topic}[{partition}] failed: {exc}") from exc
        else:
            self._seeks[key] = offset  # applied when the group assigns the partition to us
        self._pos[key] = offset

    def position(self, topic: str, partition: int = 0) -> int:
        key = (topic, partition)
        if key in self._pos:
            return self._pos[key]
        return self._bus.committed(self.group, topic).get(partition, 0)

    def at_end(self) -> bool:
        """Joined the group, and read every record its partitions held when asked."""
        if not self._joined:
            return False
        for t, p in self._assigned:
            tp = self._ck.TopicPartition(t, p)
            # the high watermark the last fetch brought (no round trip); ask the broker when there is none
            lo, hi = self._c.get_watermark_offsets(tp, cached=True) or (-1, -1)
            if hi < 0:
                lo, hi = self._c.get_watermark_offsets(tp, timeout=self._bus.timeout_s)
            pos = self._pos.get((t, p))
            if pos is None:
                got = self._c.position([self._ck.TopicPartition(t, p)])[0].offset
                pos = got if got >= 0 else lo
            if pos < hi:
                return False
        return True

    def lag(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for t in self._topics:
            if t.startswith("^"):
                continue
            ends = self._bus.end_offsets(t)
            done = self._bus.committed(self.group, t)
            for p, end in ends.items():
                out[(t, p)] = max(0, end - done.get(p, 0))
        return out

    def close(self) -> None:
        try:
            self._c.close()  # leaves the group: revocation commits what was handed to commit()
        except RuntimeError:
            pass  # already closed
