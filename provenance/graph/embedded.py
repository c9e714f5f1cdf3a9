"""Embedded lineage store on SQLite: the store of the one-machine default.

Durability: WAL with ``synchronous=NORMAL`` (no fsync per commit). A crash of the process loses
nothing committed; a power loss may roll back the last batches, and with them the offsets recorded
in the same transactions, so the processor re-reads those records from the (fully synced) log.

Nodes, edges, touches, properties and tags are tables keyed so that every write is an upsert that
merges by min/max time or a set insert (idempotent, order-free). Time travel is a ``ts <= as_of``
predicate on every read; a property's value as of T is its newest fact at or before T. Traversals
read one level per call with the frontier passed as a JSON array (no parameter-count limit).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provenance.errors import StoreError
from provenance.graph.model import (
    NEVER,
    VERSION_OF,
    DerivedLineage,
    Edge,
    FactBatch,
    Node,
    Touch,
    VersionInfo,
    app_node,
    artifact_node,
    version_node,
)
from provenance.graph.port import LineageStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, art TEXT, label TEXT, creator TEXT,
    first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_kind ON nodes (kind, first_ts);
CREATE INDEX IF NOT EXISTS nodes_art ON nodes (art) WHERE art IS NOT NULL; -- only version nodes have art
CREATE TABLE IF NOT EXISTS props (
    node TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, rank INTEGER NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (node, key, ts, rank, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edges (
    src TEXT NOT NULL, rel TEXT NOT NULL, dst TEXT NOT NULL,
    first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, art TEXT,
    PRIMARY KEY (src, rel, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst, rel);
CREATE INDEX IF NOT EXISTS edges_art ON edges (art) WHERE art IS NOT NULL;
CREATE TABLE IF NOT EXISTS touches (
    app TEXT NOT NULL, uri TEXT NOT NULL, op TEXT NOT NULL, version TEXT NOT NULL, artifact TEXT NOT NULL,
    first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    PRIMARY KEY (app, uri, op, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS touches_artifact ON touches (artifact);
CREATE TABLE IF NOT EXISTS applied_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    node TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, removed INTEGER NOT NULL,
    value TEXT NOT NULL, uri TEXT NOT NULL,
    PRIMARY KEY (node, key, ts, removed, value, uri)
) WITHOUT ROWID;
"""

_LATEST_PROPS = """
SELECT node, key, value FROM (
  SELECT node, key, value, row_number() OVER (
      PARTITION BY node, key ORDER BY ts DESC, rank DESC, value DESC) AS rn
  FROM props WHERE node IN (SELECT value FROM json_each(?)) AND ts <= ?
) WHERE rn = 1
"""

_LATEST_TAGS = """
SELECT node, key, value, removed FROM (
  SELECT node, key, value, removed, row_number() OVER (
      PARTITION BY node, key ORDER BY ts DESC, removed ASC, value DESC) AS rn
  FROM tags WHERE node IN (SELECT value FROM json_each(?)) AND ts <= ?
) WHERE rn = 1
"""


def _j(values: Iterable[str]) -> str:
    return json.dumps(list(values))


class EmbeddedStore(LineageStore):
    """A lineage store in one SQLite file (WAL; readers never block the writer)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None,
                                         check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=60000",
                           "cache_size=-262144", "temp_store=MEMORY", "mmap_size=1073741824",
                           "wal_autocheckpoint=50000"):  # ~200 MB of WAL: hot pages written back once
                self._conn.execute(f"PRAGMA {pragma}")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the embedded store at {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._in_batch = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._tx():
            self._in_batch = True
            try:
                yield
            finally:
                self._in_batch = False

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._in_batch:  # inside batch(): its transaction covers this write
                yield self._conn
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"store write failed: {exc}") from exc

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"store read failed: {exc}") from exc

    # -- writes ------------------------------------------------------------------------------
    def apply_facts(self, batch: FactBatch) -> None:
        with self._tx() as c:
            c.executemany(
                "INSERT INTO nodes (id, kind, first_ts, last_ts) VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
                [(i, k, f, la) for i, (k, f, la) in batch.nodes.items()],
            )
            c.executemany(
                "INSERT INTO edges (src, rel, dst, first_ts, last_ts) VALUES (?,?,?,?,?) "
                "ON CONFLICT(src, rel, dst) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
                [(s, r, d, f, la) for (s, r, d), (f, la) in batch.edges.items()],
            )
            c.executemany(
                "INSERT INTO touches (app, uri, op, version, artifact, first_ts, last_ts) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(app, uri, op, version) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
                [(a, u, o, v, art, f, la) for (a, u, o, v), (art, f, la) in batch.touches.items()],
            )
            c.executemany("INSERT OR IGNORE INTO props VALUES (?,?,?,?,?)", batch.props)
            c.executemany("INSERT OR IGNORE INTO tags VALUES (?,?,?,?,?,?)", batch.tags)

    def replace_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        lins = list(lineages)
        arts = _j(lin.artifact for lin in lins)
        nodes, edges = [], []
        for lin in lins:
            art = lin.artifact
            anode = artifact_node(art)
            for v in lin.versions:
                vid = version_node(art, v.key)
                nodes.append((vid, art, v.label, v.creator, v.created_ts, v.created_ts))
                edges.append((vid, VERSION_OF, anode, v.created_ts, v.created_ts, art))
            edges.extend((app_node(e.app), e.rel, version_node(art, e.version), e.first_ts, e.last_ts, art)
                         for e in lin.edges)
        with self._tx() as c:
            c.execute("DELETE FROM edges WHERE art IN (SELECT value FROM json_each(?))", (arts,))
            c.execute("DELETE FROM nodes WHERE art IN (SELECT value FROM json_each(?))", (arts,))
            c.executemany("INSERT INTO nodes (id, kind, art, label, creator, first_ts, last_ts) "
                          "VALUES (?, 'version', ?, ?, ?, ?, ?)", nodes)
            c.executemany("INSERT INTO edges (src, rel, dst, first_ts, last_ts, art) VALUES (?,?,?,?,?,?)", edges)

    def record_offsets(self, group: str, offsets: dict[str, int]) -> None:
        with self._tx() as c:
            c.executemany(
                "INSERT INTO applied_offsets (grp, topic, offset) VALUES (?,?,?) "
                "ON CONFLICT(grp, topic) DO UPDATE SET offset = excluded.offset",
                [(group, t, o) for t, o in offsets.items()],
            )

    def applied_offsets(self, group: str) -> dict[str, int]:
        return {t: int(o) for t, o in self._rows("SELECT topic, offset FROM applied_offsets WHERE grp = ?", (group,))}

    def add_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        nodes, vedges, edges = [], [], []
        for lin in lineages:
            art = lin.artifact
            anode = artifact_node(art)
            for v in lin.versions:
                vid = version_node(art, v.key)
                nodes.append((vid, art, v.label, v.creator, v.created_ts, v.created_ts))
                vedges.append((vid, VERSION_OF, anode, v.created_ts, v.created_ts, art))
            edges.extend((app_node(e.app), e.rel, version_node(art, e.version), e.first_ts, e.last_ts, art)
                         for e in lin.edges)
        with self._tx() as c:
            # a version is born once: its times only move earlier
            c.executemany(
                "INSERT INTO nodes (id, kind, art, label, creator, first_ts, last_ts) VALUES (?, 'version', ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET first_ts = min(first_ts, excluded.first_ts), "
                "last_ts = min(last_ts, excluded.last_ts)", nodes)
            c.executemany(
                "INSERT INTO edges (src, rel, dst, first_ts, last_ts, art) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(src, rel, dst) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = min(last_ts, excluded.last_ts)", vedges)
            c.executemany(
                "INSERT INTO edges (src, rel, dst, first_ts, last_ts, art) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(src, rel, dst) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)", edges)

    def stored_touches(self, keys: Collection[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], Touch]:
        if not keys:
            return {}
        rows = self._rows(
            "SELECT t.app, t.uri, t.op, t.version, t.artifact, t.first_ts, t.last_ts FROM json_each(?) k "
            "JOIN touches t ON t.app = json_extract(k.value, '$[0]') AND t.uri = json_extract(k.value, '$[1]') "
            "AND t.op = json_extract(k.value, '$[2]') AND t.version = json_extract(k.value, '$[3]')",
            (json.dumps([list(k) for k in keys]),),
        )
        return {(a, u, o, v): Touch(a, u, o, art, v, f, la) for a, u, o, v, art, f, la in rows}

    def artifact_touches(self, artifacts: Collection[str]) -> dict[str, list[Touch]]:
        out: dict[str, list[Touch]] = {a: [] for a in artifacts}
        for app, uri, op, version, art, f, la in self._rows(
            "SELECT app, uri, op, version, artifact, first_ts, last_ts FROM touches "
            "WHERE artifact IN (SELECT value FROM json_each(?))",
            (_j(artifacts),),
        ):
            out[art].append(Touch(app, uri, op, art, version, f, la))
        return out

    # -- reads -------------------------------------------------------------------------------
    def nodes(self, ids: Collection[str], as_of: int = NEVER) -> dict[str, Node]:
        if not ids:
            return {}
        arr = _j(ids)
        out = {
            i: Node(i, k, f, la, label, {"creator": cr} if cr else {})
            for i, k, label, cr, f, la in self._rows(
                "SELECT id, kind, label, creator, first_ts, last_ts FROM nodes "
                "WHERE id IN (SELECT value FROM json_each(?)) AND first_ts <= ?",
                (arr, as_of),
            )
        }
        if not out:
            return out
        present = _j(out)
        for node, key, value in self._rows(_LATEST_PROPS, (present, as_of)):
            out[node].props[key] = json.loads(value)
        for node, key, value, removed in self._rows(_LATEST_TAGS, (present, as_of)):
            if not removed:
                out[node].tags[key] = value
        return out

    def _edges(self, col: str, ids: Collection[str], rels: Collection[str], as_of: int) -> list[Edge]:
        if not ids:
            return []
        rel_sql = ",".join("?" * len(rels))
        rows = self._rows(
            f"SELECT src, rel, dst, first_ts, last_ts FROM edges WHERE {col} IN "
            f"(SELECT value FROM json_each(?)) AND rel IN ({rel_sql}) AND first_ts <= ?",
            (_j(ids), *rels, as_of),
        )
        return [Edge(*r) for r in rows]

    def edges_from(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]:
        return self._edges("src", ids, rels, as_of)

    def edges_to(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]:
        return self._edges("dst", ids, rels, as_of)

    def touches_of_apps(self, apps: Collection[str], as_of: int = NEVER) -> list[Touch]:
        return [
            Touch(a, u, o, art, v, f, la)
            for a, u, o, v, art, f, la in self._rows(
                "SELECT app, uri, op, version, artifact, first_ts, last_ts FROM touches "
                "WHERE app IN (SELECT value FROM json_each(?)) AND first_ts <= ? ORDER BY uri, op",
                (_j(apps), as_of),
            )
        ]

    def versions(self, artifacts: Collection[str], as_of: int = NEVER) -> dict[str, list[VersionInfo]]:
        out: dict[str, list[VersionInfo]] = {a: [] for a in artifacts}
        for art, vid, label, creator, f in self._rows(
            "SELECT art, id, label, creator, first_ts FROM nodes WHERE "
            "art IN (SELECT value FROM json_each(?)) AND first_ts <= ? ORDER BY first_ts, id",
            (_j(artifacts), as_of),
        ):
            out[art].append(VersionInfo(vid.rpartition("@")[2], f, creator, label))
        return out

    def find_nodes(
        self,
        kind: str,
        *,
        as_of: int = NEVER,
        where: dict[str, Any] | None = None,
        key_prefix: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Node], int]:
        sql = ["FROM nodes n WHERE n.kind = ? AND n.first_ts <= ?"]
        params: list[Any] = [kind, as_of]
        if key_prefix:
            sql.append("AND n.id >= ? AND n.id < ?")
            lo = f"{kind}:{key_prefix}"
            params += [lo, lo + "\U0010ffff"]
        for key, value in (where or {}).items():
            sql.append(
                "AND (SELECT p.value FROM props p WHERE p.node = n.id AND p.key = ? AND p.ts <= ? "
                "ORDER BY p.ts DESC, p.rank DESC, p.value DESC LIMIT 1) = ?"
            )
            params += [key, as_of, json.dumps(value, sort_keys=True, default=str)]
        body = " ".join(sql)
        total = self._rows(f"SELECT count(*) {body}", tuple(params))[0][0]
        ids = [r[0] for r in self._rows(
            f"SELECT n.id {body} ORDER BY n.first_ts DESC, n.id LIMIT ? OFFSET ?", (*params, limit, offset)
        )]
        found = self.nodes(ids, as_of)
        return [found[i] for i in ids if i in found], int(total)

    def dump(self) -> dict[str, Any]:
        return {
            "nodes": self._rows("SELECT id, kind, art, label, creator, first_ts, last_ts FROM nodes ORDER BY id"),
            "props": self._rows("SELECT * FROM props ORDER BY node, key, ts, rank, value"),
            "edges": self._rows("SELECT src, rel, dst, first_ts, last_ts FROM edges ORDER BY src, rel, dst"),
            "touches": self._rows("SELECT * FROM touches ORDER BY app, uri, op, version"),
            "tags": self._rows("SELECT * FROM tags ORDER BY node, key, ts, removed, value, uri"),
        }

    def stats(self) -> dict[str, int]:
        out = {}
        for table in ("nodes", "edges", "touches", "props", "tags"):  # offsets are bookkeeping, not graph
            out[table] = int(self._rows(f"SELECT count(*) FROM {table}")[0][0])
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()
