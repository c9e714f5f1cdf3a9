"""Builds the configured adapters by their ``type`` (a registry, as OpenLineage's transport factory)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provenance.bus.embedded import EmbeddedLog
from provenance.bus.port import Bus
from provenance.config import Settings
from provenance.errors import ConfigError, ProvenanceError
from provenance.formats import build_normalizers
from provenance.graph.embedded import EmbeddedStore
from provenance.graph.port import LineageStore
from provenance.processor.normalize import Normalizers
from provenance.processor.rules import Rules, load_rules
from provenance.processor.runner import Processor, ProcessStats, processor_lock
from provenance.search.port import SearchIndex
from provenance.search.projection import SearchProjection

log = logging.getLogger(__name__)

def _kafka_bus(settings: Settings) -> Bus:
    from provenance.bus.kafka import KafkaBus  # confluent-kafka loads only when Kafka is configured

    c = settings.bus
    return KafkaBus(c.bootstrap_servers, partitions=c.partitions, replication_factor=c.replication_factor,
                    session_timeout_ms=c.session_timeout_ms, options=dict(c.options))


BUS_TYPES: dict[str, Callable[[Settings], Bus]] = {"embedded": lambda s: EmbeddedLog(s.log_path), "kafka": _kafka_bus}
def _neo4j_store(settings: Settings) -> LineageStore:
    from provenance.graph.neo4j import Neo4jStore  # the driver loads only when Neo4j is configured

    c = settings.store
    return Neo4jStore(c.uri, c.user, c.password.get_secret_value(), c.database)


STORE_TYPES: dict[str, Callable[[Settings], LineageStore]] = {
    "embedded": lambda s: EmbeddedStore(s.store_path),
    "neo4j": _neo4j_store,
}


def _embedded_search(settings: Settings) -> SearchIndex:
    from provenance.search.embedded import EmbeddedSearch  # tantivy loads only when search is used

    return EmbeddedSearch(settings.search_path)


def _elasticsearch(settings: Settings) -> SearchIndex:
    from provenance.search.elasticsearch import ElasticsearchSearch  # the client loads only when configured

    c = settings.search
    return ElasticsearchSearch(c.url, c.index, api_key=c.api_key.get_secret_value() if c.api_key else None)


SEARCH_TYPES: dict[str, Callable[[Settings], SearchIndex | None]] = {
    "embedded": _embedded_search,
    "elasticsearch": _elasticsearch,
    "none": lambda s: None,
}


def _pick(kind: str, registry: dict[str, Callable[[Settings], object]], name: str) -> Callable[[Settings], object]:
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ConfigError(f"unknown {kind} type {name!r} (known: {known})") from None


def create_bus(settings: Settings) -> Bus:
    factory = _pick("bus", BUS_TYPES, settings.bus.type)  # type: ignore[arg-type]
    return factory(settings)  # type: ignore[return-value]


def create_store(settings: Settings) -> LineageStore:
    factory = _pick("store", STORE_TYPES, settings.store.type)  # type: ignore[arg-type]
    return factory(settings)  # type: ignore[return-value]


def create_search(settings: Settings) -> SearchIndex | None:
    factory = _pick("search", SEARCH_TYPES, settings.search.type)  # type: ignore[arg-type]
    return factory(settings)  # type: ignore[return-value]


def create_rules(settings: Settings) -> Rules:
    return load_rules(settings.rules_file, [Path(p) for p in settings.extra_rules_files])


@dataclass
class Stack:
    settings: Settings
    bus: Bus
    store: LineageStore
    rules: Rules
    normalizers: Normalizers

    _processor: Processor | None = None
    _search: SearchIndex | None = None
    _search_opened: bool = False

    @property
    def search(self) -> SearchIndex | None:
        """The search index (None when configured off), opened on first use."""
        if not self._search_opened:
            self._search = create_search(self.settings)
            self._search_opened = True
        return self._search

    @property
    def processor(self) -> Processor:
        if self._processor is None:
            self._processor = Processor(self.bus, self.store, self.rules, self.normalizers,
                                        batch_size=self.settings.batch_size, workers=self.settings.processor_workers)
            if self.search is not None:
                self._processor.listeners.append(
                    SearchProjection(self.store, self.rules, self.search, self._processor.group))
        return self._processor

    def close(self) -> None:
        if self._processor is not None:
            self._processor.close()
        if self._search is not None:
            self._search.close()
        self.bus.close()
        self.store.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stack(settings: Settings) -> Stack:
    rules = create_rules(settings)  # validate the rules and mappings before opening anything
    normalizers = build_normalizers(settings)
    bus = create_bus(settings)
    try:
        store = create_store(settings)
    except BaseException:
        bus.close()
        raise
    return Stack(settings, bus, store, rules, normalizers)


def apply_pending(proc: Processor, settings: Settings,
                  on_batch: Callable[[ProcessStats], None] | None = None,
                  stop: threading.Event | None = None) -> None:
    """Under the home's processor lock: apply what the log holds (until ``stop``, after the batch in
    hand), or make sure the projections (the search index) reflect the store."""
    with processor_lock(settings.home):
        if proc.pending():
            proc.catch_up(on_batch, stop)
        else:
            proc.prepare()


class ProcessorHealth:
    """What the last background processor of a home said about itself (``HOME/processor-health.json``),
    for ``provenance status``: retrying after a failure, or stopped (with why), or nothing when well."""

    def __init__(self, home: Path) -> None:
        self.path = home / "processor-health.json"

    def _write(self, data: dict[str, object]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**data, "at": int(time.time() * 1000), "pid": os.getpid()}))
            tmp.replace(self.path)
        except OSError:
            log.warning("cannot write %s", self.path)  # a full disk, say: the log line above says what failed

    def retrying(self, error: str, failures: int, wait_s: float) -> None:
        self._write({"state": "retrying", "error": error, "failures": failures, "next_try_in_s": wait_s})

    def stopped(self, error: str) -> None:
        self._write({"state": "stopped", "error": error})

    def ok(self) -> None:
        self.path.unlink(missing_ok=True)

    def read(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def run_processor(settings: Settings, stop: threading.Event, *, idle_s: float = 0.2,
                  until_caught_up: bool = False,
                  on_batch: Callable[[ProcessStats], None] | None = None,
                  on_error: Callable[[ProvenanceError], None] | None = None,
                  max_failures: int = 8, backoff_s: tuple[float, float] = (0.5, 30.0)) -> None:
    """Apply the log until ``stop`` is set (or, with ``until_caught_up``, until it is all applied),
    with a stack of its own (its own store connection).

    On the embedded log it takes the home's processor lock for each catch-up only, so that CLI
    commands on the same home interleave with it. On Kafka it stays a member of the processors' group.
    A store or bus failure is reported and retried after a wait that doubles each time (from
    ``backoff_s[0]`` to ``backoff_s[1]`` seconds): nothing of a failed batch was committed, so nothing
    is lost. After ``max_failures`` failures in a row it gives up and raises the last one, so that a
    server's health check fails and a supervisor can restart it, rather than retrying blind forever.
    """
    with open_stack(settings) as stack:
        proc = stack.processor
        failures = 0
        health = ProcessorHealth(settings.home)
        while True:
            try:
                if until_caught_up and stack.bus.group_managed:
                    proc.catch_up(on_batch)
                elif stack.bus.group_managed:
                    proc.run(stop, on_batch)
                else:
                    apply_pending(proc, settings, on_batch, stop)
                if failures:
                    health.ok()
                failures = 0
                if until_caught_up:
                    return
                wait = idle_s
            except ProvenanceError as exc:
                failures += 1
                log.warning("processor: %s (failure %d of %d in a row)", exc, failures, max_failures)
                if on_error is not None:
                    on_error(exc)
                if failures >= max_failures:
                    health.stopped(str(exc))
                    raise
                wait = min(backoff_s[1], backoff_s[0] * 2 ** (failures - 1))
                health.retrying(str(exc), failures, wait)
            if stop.wait(wait):
                return
