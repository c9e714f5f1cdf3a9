"""Change-data-capture of metadata databases: Debezium change events → canonical events.

Raw format ``debezium``: the record value is a Debezium change event as the JSON converter writes it,
with the schema envelope (``{"schema": …, "payload": …}``) or without. It comes from the Debezium
engine run by `DebeziumSource` (the embedded default) or from Kafka Connect (production: route the
connector's topics to ``prov.raw.debezium``, see ``connectors/``). Tombstones (a null value, after a
delete) carry nothing and make nothing.

Declarative table mappings (YAML, `load_table_mappings`) say what a changed row means: which
canonical events it makes, from which columns. The defaults (``cdc_mappings.yaml``) cover a
Hopsworks-style file-provenance log and app-provenance log, Airflow ``dag_run``/``task_instance``
and MLflow ``runs``/``model_versions``/``registered_models``. A mapping error fails at start naming
the file, the line, the table and the field.
"""

from __future__ import annotations

import dataclasses  # dataclasses.field where a class has a field named `field`
import hashlib
import re
import string
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from provenance.bus.port import Bus, Record, raw_topic
from provenance.connectors.source import Source
from provenance.errors import ConfigError, EventError, MappingError, SourceError
from provenance.events import Event, event_from_dict
from provenance.events.model import OPS, Kind, event_id_for, to_ms
from provenance.yamlfile import load_mapping

DEFAULT_MAPPINGS_PATH = Path(__file__).with_name("cdc_mappings.yaml")
FORMAT = "debezium"

#: Debezium's op letters and the names mappings use
OPS_BY_LETTER = {"c": "create", "r": "read", "u": "update", "d": "delete"}
CHANGES = frozenset(OPS_BY_LETTER.values())
DEFAULT_ON = frozenset({"create", "read", "update"})
UNITS = ("ms", "s", "us", "ns", "iso")
_EVENT_KEYS = {"kind", "op", "ts", "app_id", "user", "uri", "dst", "attrs"}
_VALUE_KEYS = {"field", "first", "template", "map", "default", "unit", "lower"}
_TABLE_KEYS = {"table", "source", "changes", "events"}
_TABLE_NAME = re.compile(r"^(\*|[A-Za-z0-9_$\-]+)\.[A-Za-z0-9_$\-]+$")


# -- mappings -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValueSpec:
    """How one value of an event comes from a row."""

    const: Any = None
    field: str | None = None
    first: tuple[str, ...] = ()
    template: str | None = None
    template_fields: tuple[str, ...] = ()
    map: dict[str, Any] | None = None
    default: Any = None
    unit: str | None = None
    lower: bool = False

    resolve: Callable[[dict[str, Any]], Any] = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolve", self._compile())

    def columns(self) -> tuple[str, ...]:
        return ((self.field,) if self.field else ()) + self.first + self.template_fields

    def _compile(self) -> Callable[[dict[str, Any]], Any]:
        """``resolve(row)``: this value from a row, as one closure built once per mapping (the
        per-record path of CDC). A template with a null column gives null, whatever the default."""
        lower, table, default = self.lower, self.map, self.default

        def post(value: Any) -> Any:
            if value is not None and lower:
                value = str(value).lower()
            if value is None:
                return default
            if table is not None:
                return table.get(value if type(value) is str else _text(value), default)
            return value

        plain = not lower and table is None and default is None
        if self.field is not None:
            col = self.field
            if plain:
                return lambda row: row.get(col)
            return lambda row: post(row.get(col))
        if self.first:
            cols = self.first

            def first(row: dict[str, Any]) -> Any:
                for c in cols:
                    value = row.get(c)
                    if value is not None:
                        return value if plain else post(value)
                return None if plain else post(None)

            return first
        if self.template is not None:
            template, names = self.template, self.template_fields
            prefix, _, rest = template.partition("{")
            name, _, suffix = rest.partition("}")
            if names == (name,) and "{" not in suffix and "}" not in suffix and "{{" not in template:
                # "prefix{column}suffix", the usual shape: concatenation instead of str.format
                def fill(row: dict[str, Any]) -> Any:
                    value = row.get(name)
                    if value is None:
                        return None
                    text = prefix + (value if type(value) is str else _text(value)) + suffix
                    return text if plain else post(text)

                return fill

            def fill_many(row: dict[str, Any]) -> Any:
                parts = {c: row.get(c) for c in names}
                if any(v is None for v in parts.values()):
                    return None
                text = template.format(**{k: _text(v) for k, v in parts.items()})
                return text if plain else post(text)

            return fill_many
        const = self.const
        return lambda row: const


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class EventSpec:
    kind: Kind
    op: ValueSpec
    ts: ValueSpec
    app_id: ValueSpec | None = None
    user: ValueSpec | None = None
    uri: ValueSpec | None = None
    dst: ValueSpec | None = None
    attrs: tuple[tuple[str, ValueSpec], ...] = ()
    #: (name, spec) of the optional string fields this mapping fills
    values: tuple[tuple[str, ValueSpec], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple((name, vs) for name in ("app_id", "user", "uri", "dst")
                                                 if (vs := getattr(self, name)) is not None))


@dataclass(frozen=True)
class TableMapping:
    table: str  # "schema.table", "*" as the schema for any
    source: str
    on: frozenset[str]
    events: tuple[EventSpec, ...]
    origin: str
    line: int

    def matches(self, schema: str, table: str) -> bool:
        want_schema, _, want_table = self.table.partition(".")
        return want_table == table and want_schema in ("*", schema)


@dataclass(frozen=True)
class TableMappings:
    mappings: tuple[TableMapping, ...] = ()
    _cache: dict[tuple[str, str], tuple[TableMapping, ...]] = field(default_factory=dict, compare=False, repr=False)

    def for_table(self, schema: str, table: str) -> tuple[TableMapping, ...]:
        hit = self._cache.get((schema, table))
        if hit is None:
            hit = tuple(m for m in self.mappings if m.matches(schema, table))
            self._cache[(schema, table)] = hit
        return hit

    def tables(self) -> list[str]:
        return sorted({m.table for m in self.mappings})


def load_table_mappings(files: Sequence[Path] = (), *, defaults: bool = True, text: str | None = None) -> TableMappings:
    """Mappings of ``files`` (first), then the defaults for tables the files do not map."""
    layers: list[list[TableMapping]] = []
    if text is not None:
        layers.append(_parse_file(text, "<mappings>"))
    for path in files:
        try:
            content = Path(path).read_text()
        except OSError as exc:
            raise MappingError(f"cannot read table mapping file {path}: {exc}") from exc
        layers.append(_parse_file(content, str(path)))
    mine = [m for layer in layers for m in layer]
    mapped = {m.table for m in mine}
    base = [m for m in _parse_file(DEFAULT_MAPPINGS_PATH.read_text(), "cdc_mappings.yaml")
            if m.table not in mapped] if defaults else []
    return TableMappings(tuple(mine + base))


def _parse_file(text: str, origin: str) -> list[TableMapping]:
    data = load_mapping(text, origin, MappingError, "a table mapping file must be a mapping with 'tables'")
    tables = data.get("tables", [])
    if not isinstance(tables, list):
        raise MappingError(f"{origin}, line {data.get('__lines__', {}).get('tables', 1)}: 'tables' must be a list")
    return [_parse_table(t, origin, i) for i, t in enumerate(tables)]


def _parse_table(raw: Any, origin: str, index: int) -> TableMapping:
    if not isinstance(raw, dict):
        raise MappingError(f"{origin}: table mapping #{index + 1} must be a mapping")
    line = int(raw.get("__line__", 0))
    lines = raw.get("__lines__", {})
    name = raw.get("table")
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise MappingError(f"{origin}, line {lines.get('table', line)}: table mapping #{index + 1}: 'table' must be "
                           f"'schema.table' (or '*.table'), not {name!r}")

    def fail(what: str, at: int | None = None) -> MappingError:
        return MappingError(f"{origin}, line {at or line}: table {name}: {what}")

    unknown = set(raw) - _TABLE_KEYS - {"__line__", "__lines__"}
    if unknown:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_TABLE_KEYS))})")
    source = raw.get("source")
    if not isinstance(source, str) or not source:
        raise fail("needs 'source' (a non-empty string: what its events say they come from)")
    on = raw.get("changes", sorted(DEFAULT_ON))
    if not isinstance(on, list) or not on or any(o not in CHANGES for o in on):
        raise fail(f"'changes' must list changes among {', '.join(sorted(CHANGES))}, not {on!r}",
                   lines.get("changes"))
    events = raw.get("events")
    if not isinstance(events, list) or not events:
        raise fail("needs 'events' (a list)", lines.get("events"))
    specs = tuple(_parse_event(e, i, fail) for i, e in enumerate(events))
    return TableMapping(name, source, frozenset(on), specs, origin, line)


def _parse_event(raw: Any, index: int, fail: Any) -> EventSpec:
    if not isinstance(raw, dict):
        raise fail(f"event #{index + 1} must be a mapping")
    line = int(raw.get("__line__", 0))
    lines = raw.get("__lines__", {})
    unknown = set(raw) - _EVENT_KEYS - {"__line__", "__lines__"}
    if unknown:
        raise fail(f"event #{index + 1}: unknown field(s) {', '.join(sorted(unknown))} "
                   f"(known: {', '.join(sorted(_EVENT_KEYS))})", line)
    try:
        kind = Kind(str(raw.get("kind")))
    except ValueError:
        raise fail(f"event #{index + 1}: field 'kind' must be one of {', '.join(k.value for k in Kind)}, "
                   f"not {raw.get('kind')!r}", lines.get("kind", line)) from None

    def value(key: str, required: bool = False) -> ValueSpec | None:
        if key not in raw:
            if required:
                raise fail(f"event #{index + 1} ({kind.value}): needs field '{key}'", line)
            return None
        return _parse_value(raw[key], f"event #{index + 1} ({kind.value}): field '{key}'", fail,
                            lines.get(key, line))

    op = value("op", True)
    assert op is not None
    allowed = OPS[kind]
    for result in ([op.const] if op.map is None else [*op.map.values(), *([op.default] if op.default else [])]):
        if result is not None and result not in allowed:
            raise fail(f"event #{index + 1} ({kind.value}): field 'op' gives {result!r}, not an op of "
                       f"{kind.value} events ({', '.join(sorted(allowed))})", lines.get("op", line))
    ts = value("ts", True)
    assert ts is not None
    if ts.unit is not None and ts.unit not in UNITS:
        raise fail(f"event #{index + 1}: field 'ts': unit must be one of {', '.join(UNITS)}", lines.get("ts", line))
    if kind is Kind.APP and "app_id" not in raw:
        raise fail(f"event #{index + 1} (app): needs field 'app_id'", line)
    if kind is not Kind.APP and "uri" not in raw:
        raise fail(f"event #{index + 1} ({kind.value}): needs field 'uri'", line)
    if kind is Kind.LINK and "dst" not in raw:
        raise fail(f"event #{index + 1} (link): needs field 'dst' (the upstream)", line)
    attrs_raw = raw.get("attrs", {})
    if not isinstance(attrs_raw, dict):
        raise fail(f"event #{index + 1}: field 'attrs' must be a mapping", lines.get("attrs", line))
    attr_lines = attrs_raw.get("__lines__", {})
    attrs = tuple((k, _parse_value(v, f"event #{index + 1}: attrs.{k}", fail, attr_lines.get(k, line)))
                  for k, v in attrs_raw.items() if k not in ("__line__", "__lines__"))
    if kind is Kind.TAG and not any(k == "key" for k, _ in attrs):
        raise fail(f"event #{index + 1} (tag): needs attrs.key", line)
    return EventSpec(kind, op, ts, value("app_id"), value("user"), value("uri"), value("dst"), attrs)


def _parse_value(raw: Any, what: str, fail: Any, line: int) -> ValueSpec:
    if not isinstance(raw, dict):
        if isinstance(raw, list):
            raise fail(f"{what}: a list is not a value (use first: [...] for the first non-null column)", line)
        return ValueSpec(const=raw)
    unknown = set(raw) - _VALUE_KEYS - {"__line__", "__lines__"}
    if unknown:
        raise fail(f"{what}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_VALUE_KEYS))})",
                   line)
    sources = [k for k in ("field", "first", "template") if k in raw]
    if len(sources) != 1:
        raise fail(f"{what}: needs exactly one of field, first, template", line)
    spec: dict[str, Any] = {"default": raw.get("default"), "unit": raw.get("unit"), "lower": bool(raw.get("lower"))}
    if "map" in raw:
        m = raw["map"]
        if not isinstance(m, dict):
            raise fail(f"{what}: map must be a mapping of values to results", line)
        spec["map"] = {str(k): v for k, v in m.items() if k not in ("__line__", "__lines__")}
    if spec["unit"] is not None and spec["unit"] not in UNITS:
        raise fail(f"{what}: unit must be one of {', '.join(UNITS)}", line)
    if "field" in raw:
        if not isinstance(raw["field"], str) or not raw["field"]:
            raise fail(f"{what}: field must name a column", line)
        return ValueSpec(field=raw["field"], **spec)
    if "first" in raw:
        cols = raw["first"]
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) and c for c in cols):
            raise fail(f"{what}: first must list column names", line)
        return ValueSpec(first=tuple(cols), **spec)
    template = raw["template"]
    if not isinstance(template, str):
        raise fail(f"{what}: template must be a string", line)
    try:
        names = tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f is not None))
    except ValueError as exc:
        raise fail(f"{what}: bad template {template!r}: {exc}", line) from None
    if any(not n or not n.isidentifier() for n in names):
        raise fail(f"{what}: template placeholders must be column names, in {template!r}", line)
    return ValueSpec(template=template, template_fields=names, **spec)


def unmapped_tables(tables: Iterable[str], mappings: TableMappings) -> list[str]:
    """Captured tables no mapping covers (checked at start: their changes would all be dead letters)."""
    out = []
    for name in tables:
        schema, _, table = name.partition(".")
        if not mappings.for_table(schema, table):
            out.append(name)
    return out


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
    """The canonical events of one Debezium change event (the payload, without schema envelope)."""
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
        raise EventError(f"no table mapping for {schema}.{table} (mapped: {', '.join(mappings.tables())}); "
                         "add one to cdc.mapping_files")
    row = change.get("before") if change_kind == "delete" else change.get("after")
    if not isinstance(row, dict):
        raise EventError(f"{schema}.{table}: a {change_kind} without the row")
    position = source.get("lsn") or f"{source.get('file')}:{source.get('pos')}:{source.get('row')}"
    row_id = hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:24]
    out: list[Event] = []
    for mapping in found:
        if change_kind not in mapping.on:
            continue
        for i, spec in enumerate(mapping.events):
            ev = _event(spec, row, mapping, f"{schema}.{table}:{letter}:{position}:{row_id}:{mapping.line}:{i}")
            if ev is not None:
                out.append(ev)
    return out


def _where(mapping: TableMapping) -> str:
    return f"{mapping.table} (mapping at {mapping.origin}, line {mapping.line})"


def _event(spec: EventSpec, row: dict[str, Any], mapping: TableMapping, native_id: str) -> Event | None:
    op = spec.op.resolve(row)
    if op is None:
        return None  # a state this mapping does not track
    data: dict[str, Any] = {"source": mapping.source, "kind": spec.kind.value, "op": str(op)}
    for name, vs in spec.values:
        v = vs.resolve(row)
        if v is not None:
            data[name] = v if type(v) is str else str(v)
    if not data.get("app_id" if spec.kind is Kind.APP else "uri"):
        return None
    raw_ts = spec.ts.resolve(row)
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
    data["attrs"] = {k: v for k, vs in spec.attrs if (v := vs.resolve(row)) is not None}
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
