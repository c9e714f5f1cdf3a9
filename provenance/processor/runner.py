"""The processor loop: the only place in the pipeline with side effects.

poll raw topics → normalize → infer → apply facts → re-resolve the lineage of touched artifacts →
dead-letter what failed → commit offsets. Offsets are committed only after the store accepted the
batch, so a crash re-delivers (harmless: every write is idempotent) and never loses a record.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from provenance.bus.port import DEAD_LETTER_TOPIC, Bus, Message, Record
from provenance.errors import EventError, StoreError
from provenance.graph.model import FactBatch
from provenance.graph.port import LineageStore
from provenance.processor.infer import infer
from provenance.processor.normalize import normalize
from provenance.processor.rules import Rules
from provenance.processor.versions import resolve_artifact

PROCESSOR_GROUP = "prov-processor"


@dataclass
class ProcessStats:
    records: int = 0
    events: int = 0
    dead_lettered: int = 0
    batches: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, other: ProcessStats) -> None:
        self.records += other.records
        self.events += other.events
        self.dead_lettered += other.dead_lettered
        self.batches += other.batches
        self.seconds += other.seconds
        self.errors.extend(other.errors[-10:])


class Processor:
    def __init__(
        self,
        bus: Bus,
        store: LineageStore,
        rules: Rules,
        *,
        group: str = PROCESSOR_GROUP,
        batch_size: int = 5000,
        store_retries: int = 3,
    ) -> None:
        self.bus = bus
        self.store = store
        self.rules = rules
        self.group = group
        self.batch_size = batch_size
        self.store_retries = store_retries

    # -- one batch ---------------------------------------------------------------------------
    def process(self, messages: list[Message]) -> ProcessStats:
        stats = ProcessStats(records=len(messages), batches=1)
        start = time.perf_counter()
        facts = FactBatch()
        dead: list[Record] = []
        for m in messages:
            try:
                events = normalize(m)
                batch = FactBatch()
                for ev in events:
                    batch.extend(infer(ev, self.rules))
            except EventError as exc:
                dead.append(self._dead(m, str(exc)))
                continue
            except Exception as exc:  # a bug in a rule must not stop the stream either
                dead.append(self._dead(m, f"inference failed: {type(exc).__name__}: {exc}"))
                continue
            facts.extend(batch)
            stats.events += len(events)
        dirty = sorted({t.artifact for t in facts.touches})
        self._with_retries(lambda: self._apply(facts, dirty))
        if dead:
            self.bus.produce(DEAD_LETTER_TOPIC, dead)
            stats.dead_lettered = len(dead)
            stats.errors = [d.headers["error"] for d in dead[:10]]
        stats.seconds = time.perf_counter() - start
        return stats

    def _apply(self, facts: FactBatch, dirty: list[str]) -> None:
        self.store.apply_facts(facts)
        for i in range(0, len(dirty), 500):
            chunk = dirty[i : i + 500]
            touches = self.store.artifact_touches(chunk)
            self.store.replace_lineage(resolve_artifact(a, touches[a]) for a in chunk)

    def _with_retries(self, fn: Callable[[], None]) -> None:
        for attempt in range(1, self.store_retries + 1):
            try:
                fn()
                return
            except StoreError:
                if attempt == self.store_retries:
                    raise  # backpressure: nothing is committed, the batch comes again
                time.sleep(0.2 * 2**attempt)

    def _dead(self, m: Message, error: str) -> Record:
        attempts = int(m.headers.get("attempts", "0")) + 1
        return Record(
            value=m.value,
            key=m.key,
            headers={
                "error": error[:2000],
                "source_topic": m.topic,
                "partition": str(m.partition),
                "offset": str(m.offset),
                "attempts": str(attempts),
            },
        )

    # -- loops -------------------------------------------------------------------------------
    def pending(self) -> int:
        """Records on raw topics the group has not committed yet."""
        total = 0
        for t in self.bus.raw_topics():
            end = sum(self.bus.end_offsets(t).values())
            done = sum(self.bus.committed(self.group, t).values())
            total += max(0, end - done)
        return total

    def catch_up(self, on_batch: Callable[[ProcessStats], None] | None = None) -> ProcessStats:
        """Process everything on the raw topics now, then return."""
        total = ProcessStats()
        topics = self.bus.raw_topics()
        if not topics:
            return total
        with self.bus.consumer(self.group, topics) as consumer:
            while True:
                messages = consumer.poll(self.batch_size, timeout_s=0)
                if not messages:
                    return total
                stats = self.process(messages)
                consumer.commit(messages)
                total.add(stats)
                if on_batch:
                    on_batch(stats)

    def run_forever(self, should_stop: Callable[[], bool], idle_s: float = 0.2) -> ProcessStats:
        total = ProcessStats()
        while not should_stop():
            topics = self.bus.raw_topics()
            if not topics:
                time.sleep(idle_s)
                continue
            with self.bus.consumer(self.group, topics) as consumer:
                while not should_stop() and set(self.bus.raw_topics()) == set(topics):
                    messages = consumer.poll(self.batch_size, timeout_s=idle_s)
                    if messages:
                        total.add(self.process(messages))
                        consumer.commit(messages)
        return total


@contextmanager
def processor_lock(home: Path) -> Iterator[None]:
    """One embedded processor at a time per home: others wait, then see what it applied."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / "processor.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
