"""Delta Lake transaction-log tailer: each ``_delta_log/<version>.json`` commit → canonical events.

A commit becomes a ``table_commit`` event: version, operation and its parameters, commit time, the
added and removed files, and the committing app and user when the commit metadata names them
(``prov.app_id``, ``prov.user``, written by jobs that `provenance run` starts). A commit that read
an earlier version (``readVersion``, e.g. a DELETE or MERGE), or that keeps the data of the version
before it (an append, any commit but a whole-table overwrite), also yields a read of that version by
the same app, so version N+1 is drawn as derived from version N: personal data in version 1 is
still in version 2 after an append.

Event ids are derived from the table and version, so tailing a table again, or from two places,
adds nothing twice. The tailer remembers the next version to read per table in a small state file.
Commits whose JSON was already removed by log retention cannot be read; they are reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.bus.port import Bus, Record, raw_topic
from provenance.connectors.source import PollingSource
from provenance.events.model import event_id_for

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_LOG_FILE = re.compile(r"^(\d{20})\.(?:json|checkpoint(?:\.\d+\.\d+)?\.parquet)$")
_PROV_KEYS = ("prov.app_id", "prov.user")


@dataclass
class TailResult:
    events: int = 0
    commits: int = 0
    tables: int = 0
    missing: list[str] = field(default_factory=list)  # tables/versions that could not be read, and why


def find_table_root(path: str | Path) -> Path | None:
    """The table directory of a path inside a Delta table (``…/table/_delta_log/…`` → ``…/table``)."""
    parts = Path(path).parts
    if "_delta_log" not in parts:
        return None
    return Path(*parts[: parts.index("_delta_log")])


Writer = tuple[str, str | None, str | None]  # app id, user, process (proc key) that wrote a commit file


def commit_events(table: Path, version: int, actions: list[dict[str, Any]],
                  writer: Writer | None = None) -> list[dict[str, Any]]:
    """Canonical events of one commit (pure: the tailer and the tests share it). ``writer`` (app id,
    user, process) names the committing app when the commit metadata does not, e.g. from file capture; its
    process, when fanotify saw which one wrote the commit file, makes the commit that process's
    (``attrs.proc``, ``attrs.tier: "process"``)."""
    info: dict[str, Any] = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
    added = [a["add"]["path"] for a in actions if "add" in a]
    removed = [a["remove"]["path"] for a in actions if "remove" in a]
    uri = table.resolve().as_uri()
    app = info.get("prov.app_id") or None
    user = info.get("prov.user") or None
    if app is None and writer is not None:
        app, user = writer[0], user or writer[1]
    proc = {"proc": writer[2], "tier": "process"} if writer is not None and writer[2] and writer[0] == app else {}
    ts = info.get("timestamp") or max((a["add"].get("modificationTime", 0) for a in actions if "add" in a), default=0)
    attrs: dict[str, Any] = {
        "version": version,
        "operation": info.get("operation", "UNKNOWN"),
        "operation_parameters": info.get("operationParameters", {}),
        "added": added,
        "removed": removed,
        "num_files": len(added),
        "commit_info": {k: info[k] for k in _PROV_KEYS if k in info},
        **proc,
    }
    metrics = info.get("operationMetrics") or {}
    if "num_added_rows" in metrics:
        attrs["num_rows"] = metrics["num_added_rows"]
    commit: dict[str, Any] = {"source": "delta", "kind": "table_commit", "op": "commit", "ts": int(ts), "uri": uri,
                              "event_id": event_id_for("delta", f"{uri}@{version}"), "attrs": attrs}
    if app:
        commit["app_id"] = app
    if user:
        commit["user"] = user
    events = [commit]
    if not app:
        return events
    read = info.get("readVersion")
    reads = {read} if isinstance(read, int) and 0 <= read < version else set()
    if version > 0 and carries_over(info):
        reads.add(version - 1)
    for n in sorted(reads):
        suffix = "read" if n == read else "carry"
        events.append({"source": "delta", "kind": "file", "op": "read", "ts": int(ts), "app_id": app,
                       "uri": f"delta://{table.resolve()}@{n}",
                       "event_id": event_id_for("delta", f"{uri}@{version}:{suffix}"),
                       "attrs": {"reason": "the commit read it" if n == read else
                                 "the commit keeps the previous version's data (e.g. an append)", **proc},
                       **({"user": user} if user else {})})
    return events


_REPLACING = {"CREATE TABLE", "CREATE OR REPLACE TABLE", "REPLACE TABLE", "CREATE TABLE AS SELECT",
              "REPLACE TABLE AS SELECT", "CREATE OR REPLACE TABLE AS SELECT"}


def carries_over(info: dict[str, Any]) -> bool:
    """Whether a commit keeps data of the version before it: everything but a whole-table overwrite
    (an append, a merge, a delete or update of some rows, an optimize, a partial overwrite)."""
    operation = str(info.get("operation", "")).upper()
    params = info.get("operationParameters") or {}
    if operation in _REPLACING:
        return False
    if operation == "WRITE" and str(params.get("mode", "")).lower() == "overwrite":
        return bool(params.get("predicate") or params.get("replaceWhere") or (params.get("partitionBy") and
                    params.get("partitionOverwriteMode") == "dynamic"))
    return True


class DeltaLogTailer:
    def __init__(self, bus: Bus, state_path: Path) -> None:
        self.bus = bus
        self.state_path = state_path
        self.topic = raw_topic("canonical")

    def _state(self) -> dict[str, int]:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def tail(self, tables: Iterable[Path],
             writers: Mapping[tuple[Path, int], Writer] | None = None) -> TailResult:
        """Publish the commits of each table not published before; returns what was done. ``writers``
        maps (table, version) to the app and user that file capture saw writing that commit."""
        state = self._state()
        out = TailResult()
        for table in sorted({Path(t).resolve() for t in tables}):
            log = table / "_delta_log"
            key = table.as_uri()
            if not log.is_dir():
                out.missing.append(f"{table}: no _delta_log directory (not a Delta table)")
                continue
            out.tables += 1
            versions = sorted(int(m.group(1)) for p in log.iterdir() if (m := _COMMIT_FILE.match(p.name)))
            start = state.get(key, 0)
            todo = [v for v in versions if v >= start]
            if todo and todo[0] > start:
                out.missing.append(f"{table}: commits {start}..{todo[0] - 1} are no longer in the log")
            records = []
            for v in todo:
                try:
                    actions = [json.loads(line) for line in (log / f"{v:020d}.json").read_text().splitlines()
                               if line.strip()]
                except (OSError, ValueError) as exc:
                    out.missing.append(f"{table}: version {v} unreadable ({exc}); retried next time")
                    break
                for ev in commit_events(table, v, actions, (writers or {}).get((table, v))):
                    records.append(Record(value=json.dumps(ev).encode(), key=ev.get("app_id") or key))
                out.commits += 1
                state[key] = v + 1
            if records:
                self.bus.produce(self.topic, records)
                out.events += len(records)
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(self.state_path)
        return out


class DeltaTableSource(PollingSource):
    """Delta tables as a source: each new ``_delta_log`` commit becomes table-commit events."""

    def __init__(self, bus: Bus, state_path: Path, tables: Iterable[Path]) -> None:
        self.tailer = DeltaLogTailer(bus, state_path)
        self.tables = [Path(t) for t in tables]
        self.name = f"delta: {', '.join(str(t) for t in self.tables)}"
        self.last = TailResult()

    def poll(self) -> int:
        self.last = self.tailer.tail(self.tables)
        return self.last.events

    def state(self) -> dict[str, Any]:
        return {"versions_next": self.tailer._state(), "missing": self.last.missing}


@dataclass
class Folded:
    """File events of a job with the insides of Delta tables folded into table-level facts."""

    events: list[dict[str, Any]]
    tables: set[Path] = field(default_factory=set)
    writers: dict[tuple[Path, int], Writer] = field(default_factory=dict)


def _proc(ev: dict[str, Any]) -> str | None:
    """The process of a fanotify event (it names every process of the job; other captures do not)."""
    proc = (ev.get("attrs") or {}).get("proc")
    return proc if ev.get("source") == "fanotify" and isinstance(proc, str) and proc else None


def fold_table_files(events: Iterable[dict[str, Any]], app_id: str, user: str | None,
                     known_reads: Iterable[str] = ()) -> Folded:
    """Language-independent Delta capture from file events (fanotify): a table's data and log files are
    not artifacts of their own. A job that created ``_delta_log/N.json`` wrote version N (the tailer is
    told, for commits whose metadata names no app); a job that read the log up to ``N.json`` read
    version N, unless the deltalake instrumentation already recorded the exact version it read
    (``known_reads``: ``delta://`` URIs)."""
    roots: dict[str, Path | None] = {}

    def root_of(path: str) -> Path | None:
        found = find_table_root(path)
        if found is not None:
            return found
        parent = str(Path(path).parent)
        if parent not in roots:
            probe, hit = Path(parent), None
            for candidate in (probe, *probe.parents):
                if (candidate / "_delta_log").is_dir():
                    hit = candidate
                    break
            roots[parent] = hit
        return roots[parent]

    instrumented = {u.split("@", 1)[0].removeprefix("delta://") for u in known_reads}
    kept: list[dict[str, Any]] = []
    out = Folded(kept)
    log_upto: dict[Path, int] = {}
    data_read: dict[Path, tuple[int, str | None]] = {}  # table → time and process of the last data-file read
    for ev in events:
        path = str(ev.get("uri", ""))
        root = root_of(path) if path.startswith("/") else None
        if root is None:
            kept.append(ev)
            continue
        out.tables.add(root)
        in_log = "/_delta_log/" in path
        m = _LOG_FILE.match(Path(path).name) if in_log else None
        if ev["op"] == "read":
            if m:
                log_upto[root] = max(log_upto.get(root, -1), int(m.group(1)))
            elif not in_log:
                ts = int(ev.get("ts", 0))
                if ts >= data_read.get(root, (0, None))[0]:
                    data_read[root] = (ts, _proc(ev))
        elif ev["op"] in ("create", "write") and m and path.endswith(".json"):
            out.writers[(root, int(m.group(1)))] = (app_id, user, _proc(ev))
        elif ev["op"] == "rename" and ev.get("dst"):  # commits are often written to a temp file, then renamed
            dm = _COMMIT_FILE.match(Path(str(ev["dst"])).name)
            if dm:
                out.writers[(root, int(dm.group(1)))] = (app_id, user, _proc(ev))
    # a table was read when its data files were: at the newest version whose log the job read and did
    # not write itself (reading the log alone, as every appender does, is not reading the data)
    for root, (ts, proc) in sorted(data_read.items()):
        if str(root) in instrumented:
            continue
        written = {v for (r, v) in out.writers if r == root}
        version = max((v for v in range(log_upto.get(root, -1) + 1) if v not in written), default=-1)
        if version < 0:
            continue
        uri = f"delta://{root}@{version}"
        kept.append({"source": "fanotify", "kind": "file", "op": "read", "ts": ts, "app_id": app_id, "uri": uri,
                     "event_id": event_id_for("fanotify", f"{app_id}:{uri}"),
                     "attrs": {"inferred_from": "the table's data and _delta_log files it read",
                               **({"proc": proc, "tier": "process"} if proc else {})},
                     **({"user": user} if user else {})})
    return out
