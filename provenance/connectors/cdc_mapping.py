"""CDC table mappings: the YAML files as pydantic models, compiled to what the normalizer runs.

A mapping file (``docs/cdc-mappings.md`` is its reference) is validated by the models below
(`MappingFile` and what it holds: frozen, unknown keys refused); a validation error becomes one
`MappingError` naming the file, the line, the table and the field. Each validated mapping is then
compiled once into `TableMapping` / `EventSpec` / `ValueSpec`: closures over a row, because they run
for every change event.

Every value a row gives is data, never code: a template is filled by plain concatenation or
`str.format` over column values (no attribute or index lookups: placeholders must be column names),
a JSON path is a small subset walked by hand (`JsonPath`), and conditions compare text.
"""

from __future__ import annotations

import dataclasses  # dataclasses.field where a class has a field named `field`
import logging
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from provenance.errors import EventError, MappingError
from provenance.events.model import OPS, Kind
from provenance.yamlfile import line_of, load_mapping, strip_lines

DEFAULT_MAPPINGS_PATH = Path(__file__).with_name("cdc_mappings.yaml")
log = logging.getLogger("provenance.connectors.cdc")

#: Debezium's op letters and the names mappings use
OPS_BY_LETTER = {"c": "create", "r": "read", "u": "update", "d": "delete"}
CHANGES = frozenset(OPS_BY_LETTER.values())
DEFAULT_ON = ("create", "read", "update")
UNITS = ("ms", "s", "us", "ns", "iso")
#: what `source:` can name: fields of the change event's ``source`` block, and three of the change itself
SOURCE_KEYS = ("ts_ms", "ts_us", "ts_ns", "lsn", "txId", "xmin", "db", "schema", "table", "snapshot", "name",
               "connector", "version", "file", "pos", "row", "server_id", "gtid", "sequence")
CHANGE_KEYS = ("op", "change", "event_ts_ms")
_TABLE_NAME = re.compile(r"^(\*|[A-Za-z0-9_$\-]+)\.[A-Za-z0-9_$\-]+$")
_NO_META: dict[str, Any] = {}

Row = dict[str, Any]
Resolve = Callable[..., Any]  # (row, meta=...) -> value


def text_of(value: Any) -> str:
    """The text form rows are compared and templated in (booleans as JSON writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if type(value) is str else str(value)


# -- JSON paths -----------------------------------------------------------------------------------
_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(-?\d+)\]|\['([^'\\]*)'\]|\["([^"\\]*)"\]""")


@dataclass(frozen=True)
class JsonPath:
    """``$`` followed by ``.name``, ``['name']`` or ``[index]`` steps: the subset a column's JSON needs.
    No filters, wildcards or scripts: a path from a mapping file selects, it never evaluates."""

    text: str
    steps: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        if not text.startswith("$"):
            raise ValueError(f"a JSON path starts with '$', not {text!r}")
        steps: list[str | int] = []
        pos = 1
        while pos < len(text):
            m = _STEP.match(text, pos)
            if m is None:
                raise ValueError(f"JSON path {text!r}: cannot read {text[pos:]!r} (use .name, ['name'] or [index])")
            name, index, quoted1, quoted2 = m.groups()
            steps.append(int(index) if index is not None else (name or quoted1 or quoted2 or ""))
            pos = m.end()
        return cls(text, tuple(steps))

    def find(self, value: Any) -> Any:
        """The value at this path (None where it leads nowhere); a string is parsed as JSON first."""
        if isinstance(value, str | bytes):
            value = parse_json(value, self.text)
        return self.walk(value)

    def walk(self, value: Any) -> Any:
        """The value at this path in parsed JSON (None where it leads nowhere)."""
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return None
                value = value[step]
            else:
                if not isinstance(value, dict):
                    return None
                value = value.get(step)
        return value


def parse_json(value: str | bytes, paths: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not JSON, for the path {paths}: {exc}") from None


def find_first(paths: tuple[JsonPath, ...], value: Any) -> Any:
    """The value at the first of ``paths`` that leads to a non-null one (a string is parsed once)."""
    if len(paths) == 1:
        return paths[0].find(value)
    if isinstance(value, str | bytes):
        value = parse_json(value, ", ".join(p.text for p in paths))
    for path in paths:
        found = path.walk(value)
        if found is not None:
            return found
    return None


# -- the file, as models ----------------------------------------------------------------------------
def _value_from_yaml(raw: Any) -> Any:
    """A value as written: a mapping (`ValueModel`), or a constant (a scalar); never a list."""
    if isinstance(raw, list):
        raise ValueError("a list is not a value (use first: [...] for the first non-null column or value)")
    if isinstance(raw, dict):
        return raw
    return {"const": raw}


class ValueModel(BaseModel):
    """How one value comes from a changed row (see docs/cdc-mappings.md, "Values")."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    const: Any = None
    field: str | None = Field(default=None, min_length=1)
    first: list[Annotated[str, Field(min_length=1)] | Value] | None = Field(default=None, min_length=1)
    template: str | None = None
    source: str | None = None
    object: dict[str, Value] | None = None
    json_path: str | list[str] | None = Field(default=None, alias="json")
    format: str | None = None
    map: dict[str, Any] | None = None
    default: Any = None
    unit: Literal["ms", "s", "us", "ns", "iso"] | None = None
    lower: bool = False

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            template_fields(value)
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None and value not in SOURCE_KEYS + CHANGE_KEYS:
            raise ValueError(f"source must be one of {', '.join(SOURCE_KEYS + CHANGE_KEYS)}, not {value!r}")
        return value

    @field_validator("json_path")
    @classmethod
    def _json(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("a list of JSON paths needs at least one")
        for text in [value] if isinstance(value, str) else value or ():
            JsonPath.parse(text)
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and value.replace("{{", "").replace("}}", "").count("{}") != 1:
            raise ValueError(f"format puts the value at its one '{{}}', as in 'table:///{{}}', not {value!r}")
        if value is not None:
            try:
                value.format("x")
            except (ValueError, IndexError, KeyError) as exc:
                raise ValueError(f"bad format {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_origin(self) -> ValueModel:
        given = [k for k in ("field", "first", "template", "source", "object") if getattr(self, k) is not None]
        if "const" in self.model_fields_set:
            given.append("const")
        if len(given) != 1:
            raise ValueError("needs exactly one of field, first, template, source, object (or a constant)")
        if self.json_path is not None and given[0] not in ("field", "first", "source"):
            raise ValueError("json applies to a column's value: use it with field or first")
        if self.first is not None and self.json_path is not None and any(
                isinstance(f, ValueModel) for f in self.first):
            raise ValueError("json applies to columns: with values among first, give each its own json")
        return self


Value = Annotated[ValueModel, BeforeValidator(_value_from_yaml)]
ValueModel.model_rebuild()  # `object` holds values: the annotation refers to the model itself


def template_fields(template: str) -> tuple[str, ...]:
    try:
        names = tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f is not None))
    except ValueError as exc:
        raise ValueError(f"bad template {template!r}: {exc}") from None
    if any(not n or not n.isidentifier() for n in names):
        raise ValueError(f"template placeholders must be column names, in {template!r}")
    return names


class ConditionModel(BaseModel):
    """A test of one column (``when:``); every test given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    is_null: bool | None = None  # not `null`: YAML reads that key as a null
    prefix: str | None = None
    not_prefix: str | None = None

    @model_validator(mode="after")
    def _some_test(self) -> ConditionModel:
        if not self.model_fields_set:
            raise ValueError("a condition needs a test: equals, not_equals, in, not_in, is_null, prefix or not_prefix")
        return self


def _condition_from_yaml(raw: Any) -> Any:
    """``column: value`` is ``column: {equals: value}``; ``column: [a, b]`` is ``{in: [a, b]}``."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, list):
        return {"in": raw}
    return {"equals": raw} if raw is not None else {"is_null": True}


Condition = Annotated[ConditionModel, BeforeValidator(_condition_from_yaml)]


class EventModel(BaseModel):
    """One canonical event a row makes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    when: dict[str, Condition] = {}
    op: Value
    ts: Value
    app_id: Value | None = None
    user: Value | None = None
    uri: Value | None = None
    dst: Value | None = None
    version: Value | None = None
    attrs: dict[str, Value] = {}

    @field_validator("op")
    @classmethod
    def _ops_of_kind(cls, op: ValueModel, info: Any) -> ValueModel:
        kind = info.data.get("kind")
        if kind is None:
            return op
        results = [op.const] if op.map is None else [*op.map.values(), op.default]
        allowed = OPS[kind]
        for result in results:
            if result is not None and result not in allowed:
                raise ValueError(f"field 'op' gives {result!r}, not an op of {kind.value} events "
                                 f"({', '.join(sorted(allowed))})")
        return op

    @model_validator(mode="after")
    def _needs(self) -> EventModel:
        op = self.op.const if self.op.map is None and "const" in self.op.model_fields_set else None
        need = needed_field(self.kind, op)
        if need is not None and getattr(self, need) is None:
            raise ValueError(f"needs field '{need}'")
        if self.kind is Kind.LINK and self.dst is None:
            raise ValueError("needs field 'dst' (the upstream)")
        if self.kind is Kind.TAG and "key" not in self.attrs:
            raise ValueError("needs attrs.key")
        if self.kind is Kind.DESCRIBE and op == "job" and "name" not in self.attrs:
            raise ValueError("needs attrs.name (the job described)")
        return self


def needed_field(kind: Kind, op: str | None) -> str | None:
    """The field an event of ``kind`` (and ``op``) cannot be made without: what it is about."""
    if kind is Kind.APP or (kind is Kind.DESCRIBE and op == "app"):
        return "app_id"
    if kind is Kind.DESCRIBE:
        return "uri" if op == "artifact" else None
    return "uri"


class TableModel(BaseModel):
    """The mapping of one table: which changes count, and the events a changed row makes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str
    source: str = Field(min_length=1)
    changes: tuple[str, ...] = DEFAULT_ON
    events: list[EventModel] = Field(min_length=1)

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _TABLE_NAME.match(value):
            raise ValueError(f"'table' must be 'schema.table' (or '*.table'), not {value!r}")
        return value

    @field_validator("changes", mode="before")
    @classmethod
    def _changes(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value or any(o not in CHANGES for o in value):
            raise ValueError(f"'changes' must list changes among {', '.join(sorted(CHANGES))}, not {value!r}")
        return tuple(value)


class MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    tables: list[TableModel] = []


# -- compiled --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValueSpec:
    """How one value of an event comes from a row, compiled: ``resolve(row, meta)`` gives it.

    ``meta`` is the change's Debezium ``source`` block plus ``op`` (the letter), ``change`` (create,
    read, update, delete) and ``event_ts_ms`` (the change event's own ``ts_ms``)."""

    const: Any = None
    field: str | None = None
    first: tuple[str | ValueSpec, ...] = ()  # columns, or values
    template: str | None = None
    template_fields: tuple[str, ...] = ()
    map: dict[str, Any] | None = None
    default: Any = None
    unit: str | None = None
    lower: bool = False
    source: str | None = None
    json_paths: tuple[JsonPath, ...] = ()  # the first that leads to a non-null value
    format: str | None = None
    members: tuple[tuple[str, tuple[str, ...], ValueSpec], ...] | None = None  # object: (key, key fields, value)

    resolve: Resolve = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolve", self._compile())

    def columns(self) -> tuple[str, ...]:
        first = tuple(c for f in self.first for c in ((f,) if isinstance(f, str) else f.columns()))
        return ((self.field,) if self.field else ()) + first + self.template_fields

    @property
    def is_null(self) -> bool:
        """A constant null (``key: null`` in an object: the property is removed)."""
        return (self.const is None and self.field is None and not self.first and self.template is None
                and self.source is None and self.members is None and self.default is None)

    def _compile(self) -> Resolve:
        """One closure per value, built once per mapping (this runs for every change). A template with
        a null column gives null, whatever the default."""
        lower, table, default, paths, fmt = self.lower, self.map, self.default, self.json_paths, self.format

        def post(value: Any) -> Any:
            if value is not None and paths:
                value = find_first(paths, value)
            if value is not None and lower:
                value = text_of(value).lower()
            if value is not None and fmt is not None:
                value = fmt.format(text_of(value))
            if value is None:
                return default
            if table is not None:
                return table.get(text_of(value), default)
            return value

        plain = not lower and table is None and default is None and not paths and fmt is None
        if self.field is not None:
            col = self.field
            if plain:
                return lambda row, meta=_NO_META: row.get(col)
            return lambda row, meta=_NO_META: post(row.get(col))
        if self.source is not None:
            key = self.source
            return lambda row, meta=_NO_META: post(meta.get(key))
        if self.first and all(isinstance(c, str) for c in self.first):
            cols = self.first

            def first(row: Row, meta: dict[str, Any] = _NO_META) -> Any:
                for c in cols:
                    value = row.get(c)  # type: ignore[arg-type]
                    if value is not None:
                        return value if plain else post(value)
                return None if plain else post(None)

            return first
        if self.first:  # values among them: each resolved (with its own post-processing) in turn
            getters = tuple(_column(c) if isinstance(c, str) else c.resolve for c in self.first)

            def first_value(row: Row, meta: dict[str, Any] = _NO_META) -> Any:
                for get in getters:
                    value = get(row, meta)
                    if value is not None:
                        return value if plain else post(value)
                return None if plain else post(None)

            return first_value
        if self.template is not None:
            return self._template(post, plain)
        if self.members is not None:
            members = self.members

            def build(row: Row, meta: dict[str, Any] = _NO_META) -> Any:
                out = {}
                for key, names, spec in members:
                    if names:  # a key templated from columns: no key where a column is null
                        parts = [row.get(n) for n in names]
                        if any(p is None for p in parts):
                            continue
                        key = key.format(**{n: text_of(p) for n, p in zip(names, parts, strict=True)})
                    value = spec.resolve(row, meta)
                    if value is not None or spec.is_null:  # a written null stays: it removes a property
                        out[key] = value
                return post(out) if out else post(None)

            return build
        const = self.const
        return lambda row, meta=_NO_META: const

    def _template(self, post: Callable[[Any], Any], plain: bool) -> Resolve:
        assert self.template is not None
        template, names = self.template, self.template_fields
        prefix, _, rest = template.partition("{")
        name, _, suffix = rest.partition("}")
        if names == (name,) and "{" not in suffix and "}" not in suffix and "{{" not in template:
            # "prefix{column}suffix", the usual shape: concatenation instead of str.format
            def fill(row: Row, meta: dict[str, Any] = _NO_META) -> Any:
                value = row.get(name)
                if value is None:
                    return None
                text = prefix + text_of(value) + suffix
                return text if plain else post(text)

            return fill

        def fill_many(row: Row, meta: dict[str, Any] = _NO_META) -> Any:
            parts = {c: row.get(c) for c in names}
            if any(v is None for v in parts.values()):
                return None
            text = template.format(**{k: text_of(v) for k, v in parts.items()})
            return text if plain else post(text)

        return fill_many


def _column(name: str) -> Resolve:
    return lambda row, meta=_NO_META: row.get(name)


def compile_value(model: ValueModel) -> ValueSpec:
    paths = [model.json_path] if isinstance(model.json_path, str) else model.json_path or []
    common: dict[str, Any] = {
        "map": {str(k): v for k, v in model.map.items()} if model.map is not None else None,
        "default": model.default, "unit": model.unit, "lower": model.lower, "format": model.format,
        "json_paths": tuple(JsonPath.parse(p) for p in paths),
    }
    if model.field is not None:
        return ValueSpec(field=model.field, **common)
    if model.first is not None:
        return ValueSpec(first=tuple(f if isinstance(f, str) else compile_value(f) for f in model.first), **common)
    if model.template is not None:
        return ValueSpec(template=model.template, template_fields=template_fields(model.template), **common)
    if model.source is not None:
        return ValueSpec(source=model.source, **common)
    if model.object is not None:
        members = tuple((key if "{" in key else key.replace("}}", "}"), template_fields(key) if "{" in key else (),
                         compile_value(v)) for key, v in model.object.items())
        return ValueSpec(members=members, **common)
    return ValueSpec(const=model.const, **common)


Predicate = Callable[[Row], bool]


def compile_condition(column: str, cond: ConditionModel) -> Predicate:
    """A test of one column, in text form (so ``1`` in a file matches the integer 1 in a row)."""
    tests: list[Callable[[Any], bool]] = []
    given = cond.model_fields_set
    if "equals" in given:
        want = None if cond.equals is None else text_of(cond.equals)
        tests.append(lambda v: (v is None) if want is None else (v is not None and text_of(v) == want))
    if "not_equals" in given:
        avoid = None if cond.not_equals is None else text_of(cond.not_equals)
        tests.append(lambda v: (v is not None) if avoid is None else (v is None or text_of(v) != avoid))
    if cond.in_ is not None:
        among = frozenset(text_of(x) for x in cond.in_ if x is not None)
        tests.append(lambda v: v is not None and text_of(v) in among)
    if cond.not_in is not None:
        outside = frozenset(text_of(x) for x in cond.not_in if x is not None)
        tests.append(lambda v: v is None or text_of(v) not in outside)
    if cond.is_null is not None:
        null = cond.is_null
        tests.append(lambda v: (v is None) == null)
    if cond.prefix is not None:
        pre = cond.prefix
        tests.append(lambda v: v is not None and text_of(v).startswith(pre))
    if cond.not_prefix is not None:
        npre = cond.not_prefix
        tests.append(lambda v: v is None or not text_of(v).startswith(npre))
    return lambda row: all(t(row.get(column)) for t in tests)


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
    when: tuple[Predicate, ...] = ()
    version: ValueSpec | None = None
    #: (name, spec) of the optional string fields this mapping fills
    values: tuple[tuple[str, ValueSpec], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple((name, vs) for name in ("app_id", "user", "uri", "dst")
                                                 if (vs := getattr(self, name)) is not None))

    def applies(self, row: Row) -> bool:
        return all(test(row) for test in self.when)


@dataclass(frozen=True)
class TableMapping:
    table: str  # "schema.table", "*" as the schema for any
    source: str
    on: frozenset[str]
    events: tuple[EventSpec, ...]
    origin: str
    line: int
    default: bool = False  # one of the built-in mappings: a user's mapping of the table replaces it

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
            every = [m for m in self.mappings if m.matches(schema, table)]
            hit = tuple([m for m in every if not m.default] or every)  # a user's mapping replaces the default
            self._cache[(schema, table)] = hit
        return hit

    def tables(self) -> list[str]:
        return sorted({m.table for m in self.mappings})

    #: changes seen of each table no mapping covers, since these mappings were loaded
    ignored: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def note_unmapped(self, table: str) -> None:
        """Count a change of an unmapped table; the first one of each table is logged (one warning a table)."""
        seen = self.ignored.get(table, 0)
        if not seen:
            log.warning("no table mapping for %s: its changes are ignored (mapped: %s; add one to cdc.mapping_files)",
                        table, ", ".join(self.tables()))
        self.ignored[table] = seen + 1


def compile_event(model: EventModel) -> EventSpec:
    def opt(v: ValueModel | None) -> ValueSpec | None:
        return compile_value(v) if v is not None else None

    return EventSpec(
        kind=model.kind, op=compile_value(model.op), ts=compile_value(model.ts), app_id=opt(model.app_id),
        user=opt(model.user), uri=opt(model.uri), dst=opt(model.dst),
        attrs=tuple((k, compile_value(v)) for k, v in model.attrs.items()),
        when=tuple(compile_condition(c, cond) for c, cond in model.when.items()), version=opt(model.version))


# -- loading ---------------------------------------------------------------------------------------
def load_table_mappings(files: Sequence[Path] = (), *, defaults: bool = True, text: str | None = None) -> TableMappings:
    """Mappings of ``files`` (first), then the defaults for tables the files do not map."""
    layers: list[list[TableMapping]] = []
    if text is not None:
        layers.append(parse_mappings(text, "<mappings>"))
    for path in files:
        try:
            content = Path(path).read_text()
        except OSError as exc:
            raise MappingError(f"cannot read table mapping file {path}: {exc}") from exc
        layers.append(parse_mappings(content, str(path)))
    mine = [m for layer in layers for m in layer]
    base = [dataclasses.replace(m, default=True) for m in parse_mappings(DEFAULT_MAPPINGS_PATH.read_text(),
                                                                         "cdc_mappings.yaml")] if defaults else []
    return TableMappings(tuple(mine + base))


def parse_mappings(text: str, origin: str) -> list[TableMapping]:
    raw = load_mapping(text, origin, MappingError, "a table mapping file must be a mapping with 'tables'")
    try:
        parsed = MappingFile.model_validate(strip_lines(raw))
    except ValidationError as exc:
        raise MappingError(_where(exc, raw, origin)) from None
    tables = raw.get("tables", [])
    return [TableMapping(t.table, t.source, frozenset(t.changes), tuple(compile_event(e) for e in t.events), origin,
                         int(tables[i].get("__line__", 0)))
            for i, t in enumerate(parsed.tables)]


def _where(exc: ValidationError, raw: dict[str, Any], origin: str) -> str:
    """The first error, worded for a person: file, line, table, event and field, then what is wrong."""
    errors = exc.errors()
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    kind, msg = str(err.get("type")), str(err.get("msg", "invalid")).removeprefix("Value error, ")
    line = line_of(raw, loc) or 1
    parts: list[str] = []
    rest = loc
    if loc[:1] == ("tables",) and len(loc) >= 2 and isinstance(loc[1], int):
        table = raw.get("tables", [])[loc[1]]
        name = table.get("table") if isinstance(table, dict) else None
        valid = isinstance(name, str) and _TABLE_NAME.match(name)
        parts.append(f"table {name}" if valid else f"table mapping #{loc[1] + 1}")
        rest = loc[2:]
        if rest[:1] == ("events",) and len(rest) >= 2 and isinstance(rest[1], int):
            event = table.get("events", [])[rest[1]] if isinstance(table, dict) else None
            ekind = event.get("kind") if isinstance(event, dict) else None
            parts.append(f"event #{rest[1] + 1}" + (f" ({ekind})" if isinstance(ekind, str) and ekind in
                                                    {k.value for k in Kind} else ""))
            rest = rest[2:]
    if kind == "extra_forbidden":
        where, unknown = rest[:-1], [str(e["loc"][-1]) for e in errors
                                     if e.get("type") == "extra_forbidden" and tuple(e["loc"][:-1]) == loc[:-1]]
        model = _model_at(where)
        known = ", ".join(sorted(f.alias or n for n, f in model.model_fields.items())) if model else ""
        msg = f"unknown key(s) {', '.join(sorted(unknown))}" + (f" (known: {known})" if known else "")
        rest = where
    elif kind == "missing":
        msg = f"needs {'field ' if len(rest) == 1 else ''}'{rest[-1]}'" if rest else "missing"
        rest = rest[:-1]
    elif kind == "enum" and rest[-1:] == ("kind",):
        msg = f"must be one of {', '.join(k.value for k in Kind)}"
    elif kind == "model_type" or kind == "dict_type":
        msg = "must be a mapping"
    field_path = _field_path(rest)
    named = rest and (msg.startswith(f"'{rest[0]}'") or msg.startswith(f"field '{rest[0]}'"))
    if field_path and not named:  # messages that name their key themselves read better without it twice
        parts.append(field_path)
    return f"{origin}, line {line}: " + ": ".join([*parts, msg])


def _field_path(rest: tuple[Any, ...]) -> str:
    """``field 'uri'``, ``attrs.key``, ``field 'op'`` … for the part of a location under an event or table,
    without the models' own wrapper steps."""
    names = [str(p) for p in rest if not isinstance(p, int) and not str(p).startswith("function-")]
    if not names:
        return ""
    if names[0] in ("attrs", "when") and len(names) >= 2:
        return f"{names[0]}.{names[1]}" + (f": {'.'.join(names[2:])}" if len(names) > 2 else "")
    return f"field '{names[0]}'" + (f": {'.'.join(names[1:])}" if len(names) > 1 else "")


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose keys a location under an event or a table names (for 'known: …' in messages)."""
    names = [p for p in path if not isinstance(p, int) and not str(p).startswith("function-")]
    if not names:
        return None
    if names[-1] in ("when",) or (len(names) >= 2 and names[-2] == "when"):
        return ConditionModel
    if names[-1] in ("op", "ts", "app_id", "user", "uri", "dst", "version") or (
            len(names) >= 2 and names[-2] in ("attrs", "object")):
        return ValueModel
    return None


def unmapped_tables(tables: Iterable[str], mappings: TableMappings) -> list[str]:
    """Captured tables no mapping covers (each is warned about once at start; their changes are ignored)."""
    out = []
    for name in tables:
        schema, _, table = name.partition(".")
        if not mappings.for_table(schema, table):
            out.append(name)
    return out
