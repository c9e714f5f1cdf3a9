"""HDFS audit log → file events (raw format ``hdfs-audit``).

The NameNode's audit logger (``FSNamesystem.audit``, usually ``hdfs-audit.log``) writes one line per
namespace operation, tab-separated ``key=value`` fields after the log prefix::

    2026-03-02 09:00:10,123 INFO FSNamesystem.audit: allowed=true<TAB>ugi=alice (auth:SIMPLE)<TAB>ip=/10.0.0.5
    <TAB>cmd=open<TAB>src=/data/raw/a.csv<TAB>dst=null<TAB>perm=null<TAB>proto=rpc
    <TAB>callerContext=SPARK_DRIVER_application_1_0001_1

(one line; ``<TAB>`` is a tab). ``ugi`` is the user (``alice/host@REALM (auth:KERBEROS)``, or
``svc (auth:PROXY) via alice`` for a proxy user: the real user is the one named), ``callerContext``
is set by YARN/Spark/Hive clients and carries the YARN application id
(``application_<cluster ts>_<n>``), which is the app. Commands:
``open`` reads, ``create``/``append``/``truncate``/``concat`` write, ``delete`` deletes, ``rename``
renames (``src`` → ``dst``); namespace reads (``listStatus``, ``getfileinfo``, …) and denied
operations (``allowed=false``) are not lineage.

`AuditLogTailer` follows a log file (and its rotation) and publishes each line as
``{"fs": "hdfs://namenode:8020", "line": "…"}``, keyed by application id; the file system's URI
prefix travels with the line, so the processor needs no configuration to replay it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from provenance.bus.port import Bus, Record, raw_topic
from provenance.connectors.source import PollingSource
from provenance.errors import EventError
from provenance.events import Event
from provenance.events.model import Kind, event_id_for

FORMAT = "hdfs-audit"
_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[,.]\d{1,6})?)\s+\w+\s+[\w.$]+:\s*(.*)$")
_APP_ID = re.compile(r"application_\d+_\d+")
_UGI_USER = re.compile(r"^([^\s/@]+)")
COMMANDS = {"open": "read", "create": "create", "append": "write", "truncate": "write", "concat": "write",
            "delete": "delete", "rename": "rename"}


def parse_line(line: str) -> tuple[int, dict[str, str]] | None:
    """(UTC ms, fields) of an audit line, or None for a line that is not an audit record."""
    m = _PREFIX.match(line.rstrip("\n"))
    if not m:
        return None
    stamp, body = m.groups()
    fields: dict[str, str] = {}
    for part in body.split("\t"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    if "cmd" not in fields:
        return None
    text = stamp.replace(",", ".").replace(" ", "T")
    ts = datetime.fromisoformat(text).replace(tzinfo=UTC)  # NameNodes log in UTC here; see README
    return int(ts.timestamp() * 1000), fields


def user_of(ugi: str) -> str | None:
    """The real user of a ``ugi`` field (the proxied one for ``x (auth:PROXY) via y``)."""
    if not ugi or ugi == "null":
        return None
    if " via " in ugi:
        ugi = ugi.rsplit(" via ", 1)[1]
    m = _UGI_USER.match(ugi.strip())
    return m.group(1) if m else None


def app_of(caller_context: str | None) -> str | None:
    if not caller_context:
        return None
    m = _APP_ID.search(caller_context)
    return m.group(0) if m else None


def line_events(line: str, fs: str = "hdfs://") -> list[Event]:
    parsed = parse_line(line)
    if parsed is None:
        raise EventError(f"not an HDFS audit line: {line[:200]!r}")
    ts, f = parsed
    op = COMMANDS.get(f["cmd"])
    if op is None or f.get("allowed", "true") != "true":
        return []
    src = f.get("src")
    if not src or src == "null":
        return []
    base = fs.rstrip("/")

    def uri(path: str) -> str:
        return f"{base}{path}" if path.startswith("/") else f"{base}/{path}"

    dst = f.get("dst")
    if op == "rename" and (not dst or dst == "null"):
        raise EventError(f"HDFS rename without dst: {line[:200]!r}")
    return [Event(
        event_id=event_id_for("hdfs", line.strip()), source="hdfs", kind=Kind.FILE, op=op, ts=ts,
        app_id=app_of(f.get("callerContext")), user=user_of(f.get("ugi", "")), uri=uri(src),
        dst=uri(dst) if op == "rename" and dst else None,
        attrs={k: v for k, v in (("ip", f.get("ip", "").lstrip("/")), ("cmd", f["cmd"])) if v},
    )]


def normalize(value: bytes) -> list[Event]:
    text = value.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"HDFS audit record is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("line"), str):
            raise EventError('an HDFS audit record must be {"fs": …, "line": …}')
        return line_events(data["line"], str(data.get("fs") or "hdfs://"))
    return line_events(text)


@dataclass
class TailResult:
    lines: int = 0
    published: int = 0
    skipped: int = 0  # lines that are not audit records (stack traces, other loggers)


class AuditLogTailer:
    """Publishes new lines of an audit log; remembers its position (inode and offset) in ``state``.

    A rotated log (a new inode at the path) is read from its start, after the rest of the old one
    when log4j's rotation kept it beside (``<name>.1``).
    """

    def __init__(self, bus: Bus, state: Path, fs: str = "hdfs://") -> None:
        self.bus, self.state, self.fs = bus, state, fs
        self.topic = raw_topic(FORMAT)

    def _load(self) -> dict[str, dict[str, int]]:
        try:
            data = json.loads(self.state.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict[str, int]]) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        tmp.replace(self.state)

    def tail(self, path: Path, on_progress: Callable[[int], None] | None = None) -> TailResult:
        """Publish what was appended since the last call (whole lines only)."""
        data = self._load()
        key = str(path.resolve())
        pos = data.get(key, {})
        result = TailResult()
        st = path.stat()
        rotated = path.with_name(path.name + ".1")
        if pos and pos.get("inode") != st.st_ino and rotated.exists() and rotated.stat().st_ino == pos.get("inode"):
            self._read(rotated, pos.get("offset", 0), rotated.stat().st_ino, key, data, result, on_progress)
            pos = {}
        offset = pos.get("offset", 0) if pos.get("inode") == st.st_ino and pos.get("offset", 0) <= st.st_size else 0
        self._read(path, offset, st.st_ino, key, data, result, on_progress)
        return result

    def _read(self, path: Path, offset: int, inode: int, key: str, data: dict[str, dict[str, int]],
              result: TailResult, on_progress: Callable[[int], None] | None) -> None:
        with path.open("rb") as f:
            f.seek(offset)
            batch: list[Record] = []
            while True:
                raw = f.readline()
                if not raw or not raw.endswith(b"\n"):
                    break  # a line still being written is read next time
                offset += len(raw)
                result.lines += 1
                line = raw.decode("utf-8", "replace").rstrip("\n")
                parsed = parse_line(line)
                if parsed is None:
                    result.skipped += 1
                    continue
                batch.append(Record(value=orjson.dumps({"fs": self.fs, "line": line}),
                                    key=app_of(parsed[1].get("callerContext")) or parsed[1].get("src")))
                if len(batch) >= 5000:
                    result.published += len(self.bus.produce(self.topic, batch))
                    data[key] = {"inode": inode, "offset": offset}
                    self._save(data)
                    batch = []
                    if on_progress:
                        on_progress(result.published)
            if batch:
                result.published += len(self.bus.produce(self.topic, batch))
        data[key] = {"inode": inode, "offset": offset}
        self._save(data)


class HdfsAuditSource(PollingSource):
    """NameNode audit logs as a source: appended lines become ``hdfs-audit`` records."""

    def __init__(self, bus: Bus, state: Path, logs: list[Path], fs: str = "hdfs://") -> None:
        self.tailer = AuditLogTailer(bus, state, fs)
        self.logs = logs
        self.name = f"hdfs audit log: {', '.join(map(str, logs))}"
        self.total = TailResult()

    def poll(self) -> int:
        published = 0
        for log in self.logs:
            r = self.tailer.tail(log)
            self.total.lines += r.lines
            self.total.published += r.published
            self.total.skipped += r.skipped
            published += r.published
        return published

    def state(self) -> dict[str, object]:
        return {"positions": self.tailer._load(), "lines": self.total.lines, "published": self.total.published,
                "skipped": self.total.skipped}
