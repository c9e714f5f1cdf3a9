"""The processor loop: the only place in the pipeline with side effects.

poll raw topics → normalize → infer → apply facts → re-resolve the lineage of touched artifacts →
dead-letter what failed → commit offsets. The offsets are recorded in the store in the same batch as
the writes, and a processor resumes from the store's offsets, so a crash re-delivers (harmless: every
write is idempotent) and never loses a record; the bus's committed offsets follow for monitoring.
"""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from provenance.bus.port import DEAD_LETTER_TOPIC, Bus, Consumer, Message, Record, offset_key
from provenance.errors import EventError, RecordRefused, StoreError
from provenance.events.model import Event
from provenance.graph.model import DerivedLineage, FactBatch, Touch
from provenance.graph.port import LineageStore
from provenance.processor.infer import infer
from provenance.processor.normalize import Normalizers
from provenance.processor.rules import Rules
from provenance.processor.versions import resolve_artifact, resolve_new_reads

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


#: what inference of a chunk gives: its facts, the records that failed as (index, error), and its events
Inferred = tuple[FactBatch, list[tuple[int, str]], int]
#: the same from a worker process, the facts as `FactBatch.to_bytes`
Packed = tuple[bytes, list[tuple[int, str]], int]


def infer_records(records: list[tuple[str, bytes]], rules: Rules, normalizers: Normalizers) -> Inferred:
    """normalize + infer over raw records: (facts, [(index, error)] of the records that failed, events).

    Pure, so it runs in worker processes as well as inline. A failing record contributes nothing.
    """
    # Decoding failures are common and cost nothing; inference rarely fails, and a record whose
    # inference failed half-way must contribute nothing, so then the chunk is redone record by record.
    facts = FactBatch()
    dead: list[tuple[int, str]] = []
    n_events = 0
    decoded: list[tuple[int, list[Event]]] = []
    for i, (topic, value) in enumerate(records):
        try:
            decoded.append((i, normalizers.normalize(topic, value)))
        except EventError as exc:
            dead.append((i, str(exc)))
    try:
        for _, events in decoded:
            for ev in events:
                infer(ev, rules, facts)
            n_events += len(events)
    except Exception:
        facts, n_events = FactBatch(), 0
        for i, events in decoded:
            batch = FactBatch()
            try:
                for ev in events:
                    infer(ev, rules, batch)
            except EventError as exc:
                dead.append((i, str(exc)))
                continue
            except Exception as exc:  # a bug in a rule must not stop the stream either
                dead.append((i, f"inference failed: {type(exc).__name__}: {exc}"))
                continue
            facts.extend(batch)
            n_events += len(events)
        dead.sort()
    return facts, dead, n_events


#: gen-0 threshold while processing (Python's default is 700): see `batch_gc`
_GC_THRESHOLDS = (100_000, 50, 100)
_gc_lock = threading.Lock()
_gc_users = 0
_gc_default = gc.get_threshold()


@contextmanager
def batch_gc() -> Iterator[None]:
    """Collect cyclic garbage far less often while batches are processed.

    A batch allocates hundreds of thousands of short-lived, acyclic objects (facts, touches, rows).
    With the default thresholds the collector runs every 700 allocations and, every so often, walks
    every object the process holds: a fifth to a third of the processor's time in `bench.breakdown`.
    Objects that existed before (rules, caches) are frozen out of collection; the thresholds come
    back when the last user leaves (several processor threads may process at once).
    """
    global _gc_users, _gc_default
    with _gc_lock:
        if _gc_users == 0:
            _gc_default = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*_GC_THRESHOLDS)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_default)
                gc.unfreeze()


_worker_rules: Rules | None = None
_worker_normalizers: Normalizers | None = None


def _init_worker(rules: Rules, normalizers: Normalizers, parent: int) -> None:
    global _worker_rules, _worker_normalizers
    _worker_rules, _worker_normalizers = rules, normalizers
    _exit_with_parent(parent)
    gc.freeze()  # a worker only processes batches: what it inherited stays, the rest is short-lived
    gc.set_threshold(*_GC_THRESHOLDS)


def _exit_with_parent(parent: int) -> None:
    """A worker must not outlive a processor that was killed: it would wait on its queue forever
    (a forked worker holds the write end of its own task pipe, so it never reads EOF)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the kernel signals us when the parent dies
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # portable fallback, and covers a parent that died before prctl took effect
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _infer_in_worker(records: list[tuple[str, bytes]]) -> Packed:
    assert _worker_rules is not None and _worker_normalizers is not None
    facts, dead, n_events = infer_records(records, _worker_rules, _worker_normalizers)
    return facts.to_bytes(), dead, n_events  # see FactBatch.to_bytes


class Processor:
    """Applies raw topics to the store. ``workers`` > 0 decodes and infers in that many processes,
    overlapped with the store writes of the previous batch (the store is written by this process only).
    """

    def __init__(
        self,
        bus: Bus,
        store: LineageStore,
        rules: Rules,
        normalizers: Normalizers,
        *,
        group: str = PROCESSOR_GROUP,
        batch_size: int = 5000,
        store_retries: int = 3,
        workers: int = 0,
    ) -> None:
        self.bus = bus
        self.store = store
        self.rules = rules
        self.normalizers = normalizers
        self.group = group
        self.batch_size = batch_size
        self.store_retries = store_retries
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._consumer: Consumer | None = None  # the group member, when the bus is group-managed
        self._subscribed: list[str] = []
        self._active: Consumer | None = None
        self._inflight: deque[tuple[list[Message], Future[Inferred] | Future[Packed]]] = deque()
        self._total = ProcessStats()
        self._on_batch: Callable[[ProcessStats], None] | None = None
        # called after each batch is in the store, with its facts and offsets (the search projection)
        self.listeners: list[Callable[[FactBatch, dict[str, int]], None]] = []

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # -- one batch ---------------------------------------------------------------------------
    def process(self, messages: list[Message]) -> ProcessStats:
        records = [(m.topic, m.value) for m in messages]
        return self._finish(messages, infer_records(records, self.rules, self.normalizers))

    def _submit(self, messages: list[Message], parallel: bool) -> Future[Inferred] | Future[Packed]:
        records = [(m.topic, m.value) for m in messages]
        if parallel and self.workers > 0:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                                 initializer=_init_worker,
                                                 initargs=(self.rules, self.normalizers, os.getpid()))
            return self._pool.submit(_infer_in_worker, records)
        done: Future[Inferred] = Future()
        done.set_result(infer_records(records, self.rules, self.normalizers))
        return done

    def _finish(self, messages: list[Message], inferred: Inferred) -> ProcessStats:
        start = time.perf_counter()
        facts, failed, n_events = inferred
        stats = ProcessStats(records=len(messages), events=n_events, batches=1)
        dead = [self._dead(messages[i], error) for i, error in failed]
        offsets: dict[str, int] = {}
        for m in messages:
            key = offset_key(m.topic, m.partition)
            offsets[key] = max(offsets.get(key, 0), m.offset + 1)
        try:
            self._with_retries(lambda: self._apply(facts, offsets))
        except Exception as exc:
            if isinstance(exc, StoreError) and not isinstance(exc, RecordRefused):
                raise  # the store is down or full: nothing was committed, the batch comes again (backpressure)
            # a value of the batch cannot be stored, or applying it hit a bug: find the records, dead-letter
            # them with the error, apply the rest; the stream goes on
            facts, refused = self._isolate(messages, {i for i, _ in failed})
            dead += [self._dead(messages[i], f"the store refused it: {error}") for i, error in refused]
            self._with_retries(lambda: self._apply(FactBatch(), offsets))
        for listener in self.listeners:
            listener(facts, offsets)
        if dead:
            self.bus.produce(DEAD_LETTER_TOPIC, dead)
            stats.dead_lettered = len(dead)
            stats.errors = [d.headers["error"] for d in dead[:10]]
        stats.seconds = time.perf_counter() - start
        return stats

    def _isolate(self, messages: list[Message], skip: set[int]) -> tuple[FactBatch, list[tuple[int, str]]]:
        """Apply the batch in halves, and halves of the halves, until each record the store refuses is alone:
        (the facts applied, [(index, why)] of the refused). Facts merge, so applying parts equals the whole."""
        applied = FactBatch()
        refused: list[tuple[int, str]] = []

        def attempt(part: list[int]) -> None:
            facts, _, _ = infer_records([(messages[i].topic, messages[i].value) for i in part], self.rules,
                                        self.normalizers)
            try:
                self._with_retries(lambda: self._apply(facts))
                applied.extend(facts)
            except Exception as exc:
                if isinstance(exc, StoreError) and not isinstance(exc, RecordRefused):
                    raise
                if len(part) == 1:
                    refused.append((part[0], str(exc) if isinstance(exc, RecordRefused)
                                    else f"applying it failed: {type(exc).__name__}: {exc}"))
                    return
                attempt(part[: len(part) // 2])
                attempt(part[len(part) // 2:])

        attempt([i for i in range(len(messages)) if i not in skip])
        return applied, sorted(refused)

    def _apply(self, facts: FactBatch, offsets: dict[str, int] | None = None) -> None:
        """Facts, then the lineage of every artifact they touched, in one store batch.

        Most touches of a popular input are reads that cannot change its versions: those are
        resolved against the stored versions alone (`resolve_new_reads`). Anything else re-resolves
        the artifact from all its touches (`resolve_artifact`): the stored ones, read before the
        batch's are written (none for an artifact seen for the first time, the common case of an
        output), merged with the batch's. Both give the same graph.
        """
        by_art: dict[str, list[Touch]] = {}
        for (app, uri, op, version, flow), (art, first, last) in facts.touches.items():
            t = Touch(app, uri, op, art, version, first, last, flow)
            ts = by_art.get(art)
            if ts is None:
                by_art[art] = [t]
            else:
                ts.append(t)
        reads_only: list[str] = []
        full: list[str] = []
        for a, ts in by_art.items():
            (full if any(t.op != "read" or t.version for t in ts) else reads_only).append(a)
        reads_only.sort()
        full.sort()
        with self.store.batch():
            before = self.store.artifact_touches(full)
            stored = self.store.stored_touches([t.key for a in reads_only for t in by_art[a]])
            self.store.apply_facts(facts)
            versions = self.store.versions(reads_only)
            added: list[DerivedLineage] = []
            again: list[str] = []
            for a in reads_only:
                now = [_widened(t, stored.get(t.key)) for t in by_art[a]]
                lin = resolve_new_reads(a, versions[a], now, stored)
                if lin is None:
                    again.append(a)
                else:
                    added.append(lin)
            self.store.add_lineage(added)
            self.store.replace_lineage(resolve_artifact(a, _merged(before[a], by_art[a])) for a in full)
            for i in range(0, len(again), 500):
                chunk = again[i : i + 500]
                touches = self.store.artifact_touches(chunk)
                self.store.replace_lineage(resolve_artifact(a, touches[a]) for a in chunk)
            if offsets:
                self.store.record_offsets(self.group, offsets)

    def _with_retries(self, fn: Callable[[], None]) -> None:
        for attempt in range(1, self.store_retries + 1):
            try:
                fn()
                return
            except RecordRefused:
                raise  # the same values are refused again: no waiting helps
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
        """Records on raw topics the store has not applied yet."""
        applied = self.store.applied_offsets(self.group)
        return sum(max(0, end - applied.get(offset_key(t, p), 0))
                   for t in self.bus.raw_topics() for p, end in self.bus.end_offsets(t).items())

    def _start_position(self, topic: str, partition: int) -> int | None:
        """Where a partition starts: where the store says this group stopped (the store is the truth)."""
        return self.store.applied_offsets(self.group).get(offset_key(topic, partition), 0)

    def _open_consumer(self) -> Consumer | None:
        """The embedded log gets a fresh consumer per catch-up (other processes may have applied records
        in between); a group-managed bus (Kafka) keeps one member for the processor's life, renewed when
        a new raw topic (a new source) appears."""
        topics = self.bus.raw_topics()
        if not topics:
            return None
        if not self.bus.group_managed:
            return self.bus.consumer(self.group, topics, self._start_position)
        if self._consumer is not None and self._subscribed != topics:
            self._drain()
            self._consumer.close()
            self._consumer = None
        if self._consumer is None:
            self._consumer = self.bus.consumer(self.group, topics, self._start_position)
            self._consumer.before_revoke = lambda _partitions: self._drain()
            self._subscribed = topics
        return self._consumer

    def prepare(self) -> None:
        """A listener that keeps a projection (the search index) may need to catch up with the store."""
        for listener in self.listeners:
            ensure = getattr(listener, "ensure_current", None)
            if ensure is not None:
                ensure()

    def _begin_listeners(self) -> None:
        """At the start of a loop: listeners note what they lack, and make up for it when the processor is
        idle (`flush_listeners`), so that batches are applied first, whatever a projection needs."""
        for listener in self.listeners:
            begin = getattr(listener, "begin", None)
            if begin is not None:
                begin()

    def flush_listeners(self) -> None:
        """Caught up: listeners that batch their work (the search index) write it now."""
        for listener in self.listeners:
            flush = getattr(listener, "flush", None)
            if flush is not None:
                flush()

    def catch_up(self, on_batch: Callable[[ProcessStats], None] | None = None,
                 stop: threading.Event | None = None) -> ProcessStats:
        """Process everything on the raw topics now, then return; or, when ``stop`` is set, after the
        batches in hand (they are applied and their offsets recorded)."""
        return self._loop(on_batch, until_caught_up=True, stop=stop)

    def run(self, stop: threading.Event, on_batch: Callable[[ProcessStats], None] | None = None) -> ProcessStats:
        """Process records as they arrive until ``stop`` is set (``provenance process``, ``serve``)."""
        return self._loop(on_batch, until_caught_up=False, stop=stop)

    def _loop(self, on_batch: Callable[[ProcessStats], None] | None, until_caught_up: bool,
              stop: threading.Event | None) -> ProcessStats:
        with batch_gc():
            return self._loop_batches(on_batch, until_caught_up, stop)

    def _loop_batches(self, on_batch: Callable[[ProcessStats], None] | None, until_caught_up: bool,
                      stop: threading.Event | None) -> ProcessStats:
        self._begin_listeners()
        self._total = ProcessStats()
        self._on_batch = on_batch
        consumer = self._open_consumer()
        if consumer is None:
            return self._total
        self._active = consumer
        # a group-managed bus is for streams of any size (and asking it for its end offsets costs round trips)
        parallel = self.workers > 0 and (not until_caught_up or self.bus.group_managed
                                         or self.pending() > 2 * self.batch_size)
        ok = False
        next_topic_check = time.monotonic() + 5.0
        try:
            flushed = False  # the first idle moment flushes: a listener behind the store catches up then
            while True:
                stopping = stop is not None and stop.is_set()  # then: finish what is in hand, read no more
                # keep the workers one batch ahead of the store
                while not stopping and len(self._inflight) < (self.workers + 1 if parallel else 1):
                    wait = 0.0 if self._inflight or (until_caught_up and not self.bus.group_managed) else 0.2
                    messages = consumer.poll(self.batch_size, timeout_s=wait)
                    if not messages:
                        break
                    self._inflight.append((messages, self._submit(messages, parallel)))
                if self._inflight:
                    self._finish_next()
                    flushed = False
                    continue
                if not flushed:
                    self.flush_listeners()  # idle: the index catches up with the store
                    flushed = True
                if stop is not None and self.bus.group_managed and time.monotonic() >= next_topic_check:
                    next_topic_check = time.monotonic() + 5.0
                    renewed = self._open_consumer()  # a new source's topic: join with it
                    if renewed is not None and renewed is not consumer:
                        consumer = self._active = renewed
                if stopping or (until_caught_up and consumer.at_end()):
                    ok = True
                    return self._total
        finally:
            if ok:
                self._drain()
            else:
                # a batch failed (the store is down): nothing from it on was applied or committed, but
                # the consumer has read past it; so the member is dropped, and the next one starts
                # from the offsets the store recorded.
                self._inflight.clear()
                if self._consumer is not None:
                    self._consumer.close()
                    self._consumer = None
            self._active = None
            if not self.bus.group_managed:
                consumer.close()

    def _finish_next(self) -> None:
        messages, future = self._inflight.popleft()
        facts, dead, n_events = future.result()
        if isinstance(facts, bytes):  # from a worker
            facts = FactBatch.from_bytes(facts)
        stats = self._finish(messages, (facts, dead, n_events))
        assert self._active is not None
        self._active.commit(messages)
        self._total.add(stats)
        if self._on_batch:
            self._on_batch(stats)

    def _drain(self) -> None:
        """Finish every batch in flight (before a rebalance takes partitions away, and at the end)."""
        while self._inflight:
            self._finish_next()


def _merged(stored: list[Touch], batch: list[Touch]) -> list[Touch]:
    """An artifact's stored touches with a batch's merged in (min first, max last time per key)."""
    if not stored:
        return batch
    out = {t.key: t for t in stored}
    for t in batch:
        out[t.key] = _widened(t, out.get(t.key))
    return list(out.values())


def _widened(t: Touch, stored: Touch | None) -> Touch:
    """A batch's touch merged with the stored one of the same key, if any (min first, max last time)."""
    if stored is None:
        return t
    return t._replace(first_ts=min(stored.first_ts, t.first_ts), last_ts=max(stored.last_ts, t.last_ts))


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
