"""Change-data-capture of metadata databases: Debezium change events → canonical events.

Raw format ``debezium``: the record value is a Debezium change event as the JSON converter writes it,
with the schema envelope (``{"schema": …, "payload": …}``) or without. It comes from the Debezium
engine run by `DebeziumSource` (the embedded default) or from Kafka Connect (production: route the
connector's topics to ``prov.raw.debezium``, see ``connectors/``). Tombstones (a null value, after a
delete) carry nothing and make nothing.

Declarative table mappings (YAML, `load_table_mappings`) say what a changed row means: which
canonical events it makes, from which columns (``docs/cdc-mappings.md``; the models and their
compilation are in `provenance.connectors.cdc_mapping`). The defaults (``cdc_mappings.yaml``) cover a
Hopsworks-style file-provenance log and app-provenance log, Airflow ``dag_run``/``task_instance`` and
MLflow 3.x and 2.x. A mapping error fails at start naming the file, the line, the table and the field;
a change of a table no mapping covers is ignored, with one warning a table.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from provenance.bus.port import Bus, Record, raw_topic
from provenance.connectors.cdc_mapping import (
    CHANGES,
    DEFAULT_MAPPINGS_PATH,
    OPS_BY_LETTER,
    UNITS,
    EventSpec,
    JsonPath,
    TableMapping,
    TableMappings,
    ValueSpec,
    load_table_mappings,
    needed_field,
    unmapped_tables,
)
from provenance.connectors.source import Source
from provenance.errors import ConfigError, EventError, SourceError
from provenance.events import Event, event_from_dict
from provenance.events.model import Kind, event_id_for, to_ms

__all__ = ["CHANGES", "DEFAULT_MAPPINGS_PATH", "FORMAT", "UNITS", "CdcNormalizer", "DebeziumCapture",
           "DebeziumSource", "EventSpec", "JsonPath", "TableMapping", "TableMappings", "ValueSpec",
           "change_events", "change_events_of", "load_table_mappings", "record_unmapped", "recorded_unmapped",
           "run_debezium", "unmapped_tables"]

log = logging.getLogger(__name__)
FORMAT = "debezium"


# -- the normalizer -------------------------------------------------------------------------------
def _time(value: Any, unit: str | None) -> int:
    """Debezium's temporal values: epoch ms/µs/ns/days-free numbers, or ISO strings."""
    if isinstance(value, bool):
        raise ValueError("a time cannot be a boolean")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if unit in (None, "ms"):
            # Debezium's default adaptive mode: timestamp → epoch ms, timestamp(6) → µs; guess by size
            return int(value) if unit == "ms" or abs(value) < 10**14 else int(value // 1000)
        return int(value * {"s": 1000, "us": 0.001, "ns": 0.000001}.get(unit, 1))
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return _time(int(text), unit)
        return to_ms(text)
    if isinstance(value, datetime):
        return int(value.replace(tzinfo=value.tzinfo or UTC).timestamp() * 1000)
    raise ValueError(f"not a time: {value!r}")


def change_events(change: dict[str, Any], mappings: TableMappings) -> list[Event]:
    """The canonical events of one Debezium change event (the payload, without schema envelope).

    A change of a table no mapping covers makes nothing (it is warned about once per table: at the
    start of `provenance cdc`, and here in the processor's log); a change of a mapped table that
    cannot be used raises `EventError`, for the dead-letter topic."""
    source = change.get("source")
    letter = change.get("op")
    if not isinstance(source, dict) or not isinstance(letter, str):
        raise EventError("not a Debezium change event: needs 'source' and 'op'")
    if letter in ("t", "m"):  # truncate and logical-decoding messages: no rows
        return []
    change_kind = OPS_BY_LETTER.get(letter)
    if change_kind is None:
        raise EventError(f"unknown Debezium op {letter!r}")
    table = source.get("table")
    schema = source.get("schema") or source.get("db")
    if not table or not schema:
        raise EventError("Debezium change event without source.table and source.schema/db")
    found = mappings.for_table(str(schema), str(table))
    if not found:
        mappings.note_unmapped(f"{schema}.{table}")
        return []
    row = change.get("before") if change_kind == "delete" else change.get("after")
    if not isinstance(row, dict):
        raise EventError(f"{schema}.{table}: a {change_kind} without the row")
    meta = {**source, "op": letter, "change": change_kind, "event_ts_ms": change.get("ts_ms")}
    position = source.get("lsn") or f"{source.get('file')}:{source.get('pos')}:{source.get('row')}"
    row_id = hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:24]
    out: list[Event] = []
    for mapping in found:
        if change_kind not in mapping.on:
            continue
        for i, spec in enumerate(mapping.events):
            if spec.when and not spec.applies(row):
                continue
            ev = _event(spec, row, meta, mapping, f"{schema}.{table}:{letter}:{position}:{row_id}:{mapping.line}:{i}")
            if ev is not None:
                out.append(ev)
    return out


def _where(mapping: TableMapping) -> str:
    return f"{mapping.table} (mapping at {mapping.origin}, line {mapping.line})"


def _event(spec: EventSpec, row: dict[str, Any], meta: dict[str, Any], mapping: TableMapping,
           native_id: str) -> Event | None:
    try:
        op = spec.op.resolve(row, meta)
        if op is None:
            return None  # a state this mapping does not track
        data: dict[str, Any] = {"source": mapping.source, "kind": spec.kind.value, "op": str(op)}
        for name, vs in spec.values:
            v = vs.resolve(row, meta)
            if v is not None:
                data[name] = v if type(v) is str else str(v)
        need = needed_field(spec.kind, data["op"])
        if need is not None and not data.get(need):
            return None  # what the event is about came out null: nothing to say
        raw_ts = spec.ts.resolve(row, meta)
        attrs = {k: v for k, vs in spec.attrs if (v := vs.resolve(row, meta)) is not None}
        if spec.version is not None and (version := spec.version.resolve(row, meta)) is not None:
            attrs["version"] = version if type(version) is str else str(version)
    except EventError as exc:
        raise EventError(f"{_where(mapping)}: {exc}") from None
    if raw_ts is None:
        raise EventError(f"{_where(mapping)}: ts came out null (columns {', '.join(spec.ts.columns()) or 'none'})")
    if type(raw_ts) is int and spec.ts.unit == "ms":
        ts = raw_ts
    else:
        try:
            ts = _time(raw_ts, spec.ts.unit)
        except ValueError as exc:
            raise EventError(f"{_where(mapping)}: ts: {exc}") from None
    data["ts"] = ts
    data["attrs"] = attrs
    if op != "rename" and spec.kind is not Kind.LINK:
        data.pop("dst", None)
    data["event_id"] = event_id_for(mapping.source, native_id)
    try:
        return event_from_dict(data)  # the fast path for well-formed events; pydantic words the errors
    except EventError as exc:
        raise EventError(f"{_where(mapping)}: {exc}") from None


def change_events_of(value: bytes, mappings: TableMappings) -> list[Event]:
    """The canonical events of one raw Debezium record (with or without the schema envelope)."""
    if not value or value.strip() in (b"", b"null"):
        return []  # a tombstone
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"Debezium record is not JSON: {exc}") from None
    if isinstance(data, dict) and "payload" in data and "schema" in data:
        data = data["payload"]  # the JSON converter's schema envelope
        if data is None:
            return []
    if not isinstance(data, dict):
        raise EventError("a Debezium change event must be a JSON object")
    return change_events(data, mappings)


class CdcNormalizer:
    """The ``debezium`` raw format's normalizer, with its table mappings: those of ``files`` (read
    here, so a bad file fails at start naming its line), then the defaults (read on first use)."""

    def __init__(self, files: Sequence[Path] = (), *, mappings: TableMappings | None = None) -> None:
        self._files = tuple(files)
        self._mappings = mappings if mappings is not None else (load_table_mappings(self._files)
                                                                 if self._files else None)

    @property
    def mappings(self) -> TableMappings:
        if self._mappings is None:
            self._mappings = load_table_mappings(self._files)
        return self._mappings

    def __call__(self, value: bytes) -> list[Event]:
        return change_events_of(value, self.mappings)


UNMAPPED_FILE = "unmapped.json"


def record_unmapped(state_dir: Path, tables: list[str]) -> None:
    """Keep the captured tables no mapping covers (``provenance cdc`` at start), for `provenance status`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (UNMAPPED_FILE + ".tmp")
    tmp.write_bytes(orjson.dumps({"tables": tables}))
    tmp.replace(state_dir / UNMAPPED_FILE)


def recorded_unmapped(state_dir: Path) -> list[str]:
    """The unmapped tables the last ``provenance cdc`` warned about (none if it never ran)."""
    try:
        data = orjson.loads((state_dir / UNMAPPED_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    tables = data.get("tables") if isinstance(data, dict) else None
    return [str(t) for t in tables] if isinstance(tables, list) else []


# -- the Debezium engine as a connector -----------------------------------------------------------
@dataclass
class DebeziumSource:
    """One database captured by the embedded Debezium engine (pydbzengine, Java 17)."""

    name: str
    connector: str  # postgresql | mysql
    host: str
    port: int
    user: str
    password: str
    database: str
    tables: list[str]  # schema.table (PostgreSQL) or database.table (MySQL)
    properties: dict[str, str] = field(default_factory=dict)

    def engine_properties(self, offsets_file: Path, schema_history_file: Path) -> dict[str, str]:
        common = {
            "name": f"prov-{self.name}",
            "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
            "offset.storage.file.filename": str(offsets_file),
            "offset.flush.interval.ms": "1000",
            "database.hostname": self.host,
            "database.port": str(self.port),
            "database.user": self.user,
            "database.password": self.password,
            "topic.prefix": f"prov_{re.sub(r'[^A-Za-z0-9_]', '_', self.name)}",
            "table.include.list": ",".join(self.tables),
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "tombstones.on.delete": "false",  # a tombstone holds nothing for lineage
            "decimal.handling.mode": "string",
            "time.precision.mode": "connect",  # timestamps as epoch milliseconds
        }
        if self.connector == "postgresql":
            specific = {
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "database.dbname": self.database,
                "plugin.name": "pgoutput",
                # replication slots are per server, not per database: the slot names both
                "slot.name": re.sub(r"[^a-z0-9_]", "_", f"prov_{self.name}_{self.database}".lower())[:63],
                "publication.name": f"prov_{re.sub(r'[^a-z0-9_]', '_', self.name.lower())}",
                "publication.autocreate.mode": "filtered",
            }
        elif self.connector == "mysql":
            specific = {
                "connector.class": "io.debezium.connector.mysql.MySqlConnector",
                "database.server.id": str(5400 + (int(hashlib.sha256(self.name.encode()).hexdigest(), 16) % 1000)),
                "database.include.list": self.database,
                "schema.history.internal": "io.debezium.storage.file.history.FileSchemaHistory",
                "schema.history.internal.file.filename": str(schema_history_file),
            }
        else:
            raise ConfigError(f"cdc source {self.name!r}: connector must be postgresql or mysql, "
                              f"not {self.connector!r}")
        return {**common, **specific, **{k: str(v) for k, v in self.properties.items()}}


class DebeziumCapture(Source):
    """Databases captured by the embedded Debezium engine, as a source: every change goes on
    ``prov.raw.debezium`` as the JSON converter writes it (the CDC normalizer maps it)."""

    def __init__(self, bus: Bus, sources: list[DebeziumSource], state_dir: Path) -> None:
        self.bus, self.sources, self.state_dir = bus, sources, state_dir
        self.name = f"debezium: {', '.join(s.name for s in sources)}"
        self.published = 0

    def _produce(self, records: list[Record]) -> None:
        self.bus.produce(raw_topic(FORMAT), records)
        self.published += len(records)

    def run(self, stop: threading.Event) -> int:
        run_debezium(self.sources, self._produce, self.state_dir, stop)
        return self.published

    def state(self) -> dict[str, Any]:
        return {"published": self.published, "offsets": str(self.state_dir)}


def run_debezium(sources: Iterable[DebeziumSource], produce: Any, state_dir: Path, stop: Any,
                 on_batch: Any = None) -> None:
    """Run the Debezium engine for each source until ``stop`` is set, producing every change to the bus.

    ``produce(records)`` must return only when the records are durable: the engine records its
    source offsets only after the handler returned, so a crash re-reads (at least once), never skips.
    """
    from pydbzengine import BasePythonChangeHandler, DebeziumJsonEngine


    errors: list[BaseException] = []

    class Handler(BasePythonChangeHandler):
        def handleJsonBatch(self, records: list[Any]) -> None:
            batch = []
            for r in records:
                value = r.value()
                if value is None:
                    continue
                key = r.key()
                batch.append(Record(value=str(value).encode(), key=str(key) if key is not None else None,
                                    headers={"destination": str(r.destination())}))
            if batch:
                produce(batch)
                if on_batch is not None:
                    on_batch(len(batch))

    state_dir.mkdir(parents=True, exist_ok=True)
    engines = []
    threads = []
    for src in sources:
        props = src.engine_properties(state_dir / f"{src.name}.offsets", state_dir / f"{src.name}.history")
        # -Xrs: the JVM leaves SIGTERM and SIGINT to us, so a stop finishes the batch in hand
        engine = DebeziumJsonEngine(properties=props, handler=Handler(), jvm_opts=["-Xrs"])
        engines.append(engine)

        def run(e: Any = engine) -> None:
            try:
                e.run()
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)

        t = threading.Thread(target=run, name=f"debezium-{src.name}", daemon=True)
        t.start()
        threads.append(t)
    try:
        while not stop.wait(0.2):
            if errors:
                raise SourceError(f"the Debezium engine stopped: {errors[0]}")
            if not any(t.is_alive() for t in threads):
                raise SourceError("the Debezium engine stopped (see its log above)")
    finally:
        for e in engines:
            e.close()
        for t in threads:
            t.join(timeout=30)
