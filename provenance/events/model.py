"""The canonical event: the only thing the processor sees.

Every connector turns its source's native change records into these. They are frozen, keyword-only
and versioned; `provenance.events.serde` owns their JSON shape. ``event_id`` is deterministic: a
connector derives it from its source position or native id (`event_id_for`), and an event written
without one gets a content hash, so replays and duplicates collapse to one event.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1


class Kind(StrEnum):
    FILE = "file"
    APP = "app"
    TABLE_COMMIT = "table_commit"
    TAG = "tag"
    LINK = "link"
    DESCRIBE = "describe"


#: The operations each kind allows.
OPS: dict[Kind, frozenset[str]] = {
    Kind.FILE: frozenset({"create", "read", "write", "delete", "rename", "xattr_set", "xattr_remove"}),
    Kind.APP: frozenset({"submitted", "started", "finished", "failed", "killed"}),
    Kind.TABLE_COMMIT: frozenset({"commit"}),
    Kind.TAG: frozenset({"set", "remove"}),
    Kind.LINK: frozenset({"derived_from"}),
    # properties a source states about a thing without an access to it (OpenLineage facets): the op
    # names what is described
    Kind.DESCRIBE: frozenset({"app", "job", "artifact"}),
}

#: App states in the order they happen; a later state wins over an earlier one at the same instant.
APP_STATE_RANK = {"submitted": 0, "started": 1, "finished": 2, "failed": 2, "killed": 2}


def event_id_for(source: str, native_id: str) -> str:
    """A deterministic event id from the source and its native position or id."""
    return hashlib.sha256(f"{source}\x00{native_id}".encode()).hexdigest()[:32]


def to_ms(value: Any) -> int:
    """Event time as UTC milliseconds from an int (ms), a float (s) or an ISO-8601 string."""
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(round(value * 1000))
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"not an ISO-8601 time or epoch milliseconds: {value!r}") from exc
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(round(dt.timestamp() * 1000))


def ms_to_iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


# Already-normal local paths (the vast majority) skip parsing: only safe characters, no '.', '..' or
# empty segments, no trailing slash.
_SAFE = re.compile(r"[A-Za-z0-9_\-+,=~@:./]*")


def _plain(path: str) -> bool:
    if not _SAFE.fullmatch(path) or "//" in path or (path.endswith("/") and path != "/"):
        return False
    return not any(seg in (".", "..") for seg in path.split("/"))


_NORMAL: dict[str, str] = {}  # value → its normal form: paths repeat (popular inputs, outputs read back)


def normalize_uri(value: str) -> str:
    """``file:///abs/path`` for local files (a bare absolute path is accepted); other schemes kept.

    Paths are normalised (``a/../b`` → ``b``, no trailing slash) so that one file has one URI.
    """
    hit = _NORMAL.get(value)
    if hit is None:
        hit = _normalize_uri(value)
        if len(_NORMAL) >= 100_000:
            _NORMAL.clear()
        _NORMAL[value] = hit
    return hit


def _normalize_uri(value: str) -> str:
    if value.startswith("file:///") and _plain(value[7:]):
        return value
    if value.startswith("/") and _plain(value):
        return "file://" + value
    text = value.strip()
    if not text:
        raise ValueError("empty URI")
    if text.startswith("/"):
        text = "file://" + quote(text, safe="/@:+,=~!$&'()*;")
    parts = urlsplit(text)
    if not parts.scheme:
        raise ValueError(f"URI needs a scheme or an absolute path: {value!r}")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URI must be local (file:///path): {value!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"file URI must hold an absolute path: {value!r}")
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        return "file://" + quote(path, safe="/@:+,=~!$&'()*;")
    path = parts.path
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    rebuilt = f"{parts.scheme}://{parts.netloc}{path}"
    if parts.query:
        rebuilt += "?" + parts.query
    return rebuilt


#: the latest event time accepted: a fixed bound (not "now + x"), so a replay decides as the first run did
MAX_TS = 7_258_118_400_000  # 2200-01-01T00:00:00Z
MAX_TEXT = 16_384  # characters of a URI, an app id, a user, a source
MAX_ATTRS_DEPTH = 32  # nesting of attrs: objects and arrays within each other
MAX_ATTRS_ITEMS = 100_000  # strings, numbers, objects and arrays in attrs, all told


def text_problem(name: str, value: str) -> str | None:
    """What makes a string unusable as a name in the graph: a NUL (SQLite and JSON functions cut names at
    it), a lone surrogate (it cannot be written as UTF-8), or a length over `MAX_TEXT`."""
    if "\x00" in value:
        return f"{name} holds a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{name} holds a lone surrogate (not UTF-8)"
    if len(value) > MAX_TEXT:
        return f"{name} is {len(value)} characters long (at most {MAX_TEXT})"
    return None


def attrs_problem(attrs: dict[str, Any]) -> str | None:
    """Nesting over `MAX_ATTRS_DEPTH`, more than `MAX_ATTRS_ITEMS` values, or a bad string anywhere."""
    stack: list[tuple[Any, int]] = [(attrs, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_ATTRS_ITEMS:
            return f"attrs hold more than {MAX_ATTRS_ITEMS} values"
        if isinstance(value, str):
            if "\x00" in value or not value.isascii():
                problem = text_problem("an attrs value", value)
                if problem and "long" not in problem:
                    return problem
        elif isinstance(value, dict):
            if depth > MAX_ATTRS_DEPTH:
                return f"attrs are nested more than {MAX_ATTRS_DEPTH} deep"
            for k, v in value.items():
                if not isinstance(k, str) or (problem := text_problem("an attrs key", k)):
                    return problem or "attrs keys must be strings"
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_ATTRS_DEPTH:
                return f"attrs are nested more than {MAX_ATTRS_DEPTH} deep"
            stack.extend((v, depth + 1) for v in value)
    return None


def consistency_problem(kind: Kind, op: str, app_id: str | None, uri: str | None, dst: str | None,
                        attrs: dict[str, Any]) -> str | None:
    """What makes these fields inconsistent as one event, or None."""
    if op not in OPS[kind]:
        allowed = ", ".join(sorted(OPS[kind]))
        return f"op {op!r} is not valid for kind {kind.value!r} (one of: {allowed})"
    if kind is Kind.DESCRIBE:
        return _describe_problem(op, app_id, uri, attrs)
    if kind is Kind.APP and not app_id:
        return "an app event needs app_id"
    if kind is not Kind.APP and not uri:
        return f"a {kind.value} event needs uri"
    if (op == "rename" or kind is Kind.LINK) and not dst:
        return f"a {op} event needs dst"
    if kind is Kind.TAG and "key" not in attrs:
        return "a tag event needs attrs.key"
    if op in ("xattr_set", "xattr_remove") and "name" not in attrs:
        return f"an {op} event needs attrs.name (the extended attribute)"
    return None


def _describe_problem(op: str, app_id: str | None, uri: str | None, attrs: dict[str, Any]) -> str | None:
    if op == "app" and not app_id:
        return "a describe event of an app needs app_id"
    if op == "artifact" and not uri:
        return "a describe event of an artifact needs uri"
    if op == "job" and not (isinstance(attrs.get("name"), str) and attrs["name"].strip()):
        return "a describe event of a job needs attrs.name"
    if not isinstance(attrs.get("props", {}), dict):
        return "attrs.props of a describe event must be an object"
    return None


class Event(BaseModel):
    """One change in a source system, in canonical form (schema version 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    schema_version: int = Field(default=SCHEMA_VERSION, description="version of this event schema")
    event_id: str = Field(default="", description="deterministic id; derived from the content if empty")
    source: str = Field(min_length=1, description="connector that produced the event")
    kind: Kind
    op: str
    ts: int = Field(description="event time, UTC milliseconds since the epoch")
    app_id: str | None = None
    user: str | None = None
    uri: str | None = None
    dst: str | None = Field(default=None, description="rename target, or the upstream of a link")
    attrs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {value} (this build reads {SCHEMA_VERSION})")
        return value

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> int:
        try:
            ms = to_ms(value)
        except OverflowError:
            raise ValueError(f"event time {value!r} is out of range") from None
        if ms < 0:
            raise ValueError("event time before 1970")
        if ms >= MAX_TS:
            raise ValueError("event time after 2199 (a far-future time is a clock or unit error)")
        return ms

    @field_validator("source", "event_id", "op")
    @classmethod
    def _text(cls, value: str, info: Any) -> str:
        problem = text_problem(info.field_name, value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("uri", "dst", mode="before")
    @classmethod
    def _uri(cls, value: Any, info: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("a URI must be a string")
        if problem := text_problem(info.field_name, value):
            raise ValueError(problem)
        return normalize_uri(value)

    @field_validator("attrs")
    @classmethod
    def _attrs(cls, value: dict[str, Any]) -> dict[str, Any]:
        if problem := attrs_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("app_id", "user", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and (problem := text_problem(info.field_name, value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Event:
        problem = consistency_problem(self.kind, self.op, self.app_id, self.uri, self.dst, self.attrs)
        if problem:
            raise ValueError(problem)
        if not self.event_id:
            object.__setattr__(self, "event_id", self.content_id())
        return self

    def content_id(self) -> str:
        """Hash of everything but the id: equal content, equal id."""
        attrs = orjson.dumps(self.attrs, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                             default=str).decode() if self.attrs else ""
        body = "\x1f".join((str(self.schema_version), self.kind.value, self.op, str(self.ts), self.app_id or "\x00",
                             self.user or "\x00", self.uri or "\x00", self.dst or "\x00", attrs))
        return event_id_for(self.source, body)

    @property
    def key(self) -> str:
        """Bus key: events of one app stay in order; without an app, those of one path do."""
        return self.app_id or self.uri or self.event_id
