"""Embedded durable log on SQLite (WAL): the bus of the one-machine default.

One partition per topic. Appends take SQLite's write lock (``BEGIN IMMEDIATE``), so any number of
processes may produce at once and offsets stay dense and ordered. ``synchronous=FULL`` makes a
returned ``produce`` durable: a writer or reader killed afterwards loses nothing it was told was
stored. Consumer-group offsets live in the same file and are committed transactionally.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provenance.bus.port import Bus, Consumer, Message, Record, StartPosition
from provenance.errors import BusError, LogFullError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name        TEXT PRIMARY KEY,
    next_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq     INTEGER PRIMARY KEY,
    topic   TEXT    NOT NULL,
    offset  INTEGER NOT NULL,
    key     TEXT,
    value   BLOB    NOT NULL,
    headers TEXT,
    ts      INTEGER NOT NULL,
    UNIQUE (topic, offset)
);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp    TEXT    NOT NULL,
    topic  TEXT    NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
);
"""


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise BusError(f"cannot open the embedded log at {path}: {exc}") from exc
    return conn


class EmbeddedLog(Bus):
    """A durable, multi-process log in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn = _connect(self.path)
        self._lock = threading.Lock()

    # -- producing ---------------------------------------------------------------------------
    def produce(self, topic: str, records: Sequence[Record]) -> list[int]:
        if not topic:
            raise BusError("topic name is empty")
        if not records:
            return []
        now = int(time.time() * 1000)
        with self._write(f"append to {topic!r}") as c:
            row = c.execute("SELECT next_offset FROM topics WHERE name = ?", (topic,)).fetchone()
            first = row[0] if row else 0
            c.executemany(
                "INSERT INTO records (topic, offset, key, value, headers, ts) VALUES (?,?,?,?,?,?)",
                [(topic, first + i, r.key, r.value, json.dumps(r.headers) if r.headers else None, now)
                 for i, r in enumerate(records)],
            )
            c.execute(
                "INSERT INTO topics (name, next_offset) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET next_offset = excluded.next_offset",
                (topic, first + len(records)),
            )
        return list(range(first, first + len(records)))

    # -- reading -----------------------------------------------------------------------------
    def consumer(self, group: str, topics: Sequence[str], start: StartPosition | None = None) -> EmbeddedConsumer:
        if not group:
            raise BusError("consumer group name is empty")
        if any(t.startswith("^") for t in topics):
            raise BusError("the embedded log takes topic names, not patterns")
        return EmbeddedConsumer(self, group, list(topics), start)

    def topics(self) -> list[str]:
        return [r[0] for r in self._query("SELECT name FROM topics ORDER BY name", ())]

    def end_offsets(self, topic: str) -> dict[int, int]:
        rows = self._query("SELECT next_offset FROM topics WHERE name = ?", (topic,))
        return {0: rows[0][0] if rows else 0}

    def committed(self, group: str, topic: str) -> dict[int, int]:
        rows = self._query("SELECT offset FROM group_offsets WHERE grp = ? AND topic = ?", (group, topic))
        return {0: rows[0][0]} if rows else {}

    def read(self, topic: str, offset: int, limit: int) -> list[Message]:
        rows = self._query(
            "SELECT offset, key, value, headers, ts FROM records WHERE topic = ? AND offset >= ? "
            "ORDER BY offset LIMIT ?",
            (topic, offset, limit),
        )
        return [
            Message(topic, 0, o, bytes(v), k, json.loads(h) if h else {}, ts) for o, k, v, h, ts in rows
        ]

    def commit_offsets(self, group: str, offsets: dict[str, int]) -> None:
        with self._write(f"commit for group {group!r}") as c:
            c.executemany(
                "INSERT INTO group_offsets (grp, topic, offset) VALUES (?,?,?) "
                "ON CONFLICT(grp, topic) DO UPDATE SET offset = MAX(offset, excluded.offset)",
                [(group, t, o) for t, o in offsets.items()],
            )

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the lock up front, so writers queue, not fail."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    # SQLite may have rolled back already (a full disk): asking again would hide the cause
                    if self._conn.in_transaction:
                        try:
                            self._conn.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                    raise
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                    raise LogFullError(f"{what} failed: the disk holding {self.path} is full (none of these records "
                                       "was appended)") from exc
                raise BusError(f"{what} failed: {exc}") from exc

    def reset_group(self, group: str, topic: str, offset: int) -> None:
        """Set a group's committed offset, backwards too (``provenance replay``)."""
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO group_offsets (grp, topic, offset) VALUES (?,?,?) "
                    "ON CONFLICT(grp, topic) DO UPDATE SET offset = excluded.offset",
                    (group, topic, offset),
                )
            except sqlite3.Error as exc:
                raise BusError(f"reset of group {group!r} failed: {exc}") from exc

    def _query(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise BusError(f"log read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class EmbeddedConsumer(Consumer):
    def __init__(self, log: EmbeddedLog, group: str, topics: list[str], start: StartPosition | None) -> None:
        self._log = log
        self.group = group
        self._topics = topics
        self._positions: dict[str, int] = {}
        for t in topics:
            first = start(t, 0) if start is not None else None
            self._positions[t] = first if first is not None else log.committed(group, t).get(0, 0)
        self._next = 0  # round-robin start, so one busy topic cannot starve the others

    def poll(self, max_records: int = 1000, timeout_s: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + timeout_s
        while True:
            out: list[Message] = []
            n = len(self._topics)
            for i in range(n):
                topic = self._topics[(self._next + i) % n]
                if len(out) >= max_records:
                    break
                got = self._log.read(topic, self._positions[topic], max_records - len(out))
                if got:
                    self._positions[topic] = got[-1].offset + 1
                    out.extend(got)
            self._next = (self._next + 1) % max(n, 1)
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def commit(self, messages: Iterable[Message]) -> None:
        offsets: dict[str, int] = {}
        for m in messages:
            offsets[m.topic] = max(offsets.get(m.topic, 0), m.offset + 1)
        if offsets:
            self._log.commit_offsets(self.group, offsets)

    def seek(self, topic: str, offset: int, partition: int = 0) -> None:
        if topic not in self._positions:
            raise BusError(f"consumer is not subscribed to {topic!r}")
        if offset < 0:
            raise BusError("offset must be >= 0")
        self._positions[topic] = offset

    def position(self, topic: str, partition: int = 0) -> int:
        return self._positions[topic]

    def at_end(self) -> bool:
        return all(self._positions[t] >= self._log.end_offsets(t)[0] for t in self._topics)

    def lag(self) -> dict[tuple[str, int], int]:
        out = {}
        for t in self._topics:
            end = self._log.end_offsets(t)[0]
            done = self._log.committed(self.group, t).get(0, 0)
            out[(t, 0)] = max(0, end - done)
        return out

    def close(self) -> None:
        self._positions.clear()
