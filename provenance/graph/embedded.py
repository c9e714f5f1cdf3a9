"""Embedded lineage store on SQLite: the store of the one-machine default.

Layout: every node id and URI is interned once in ``names`` (append-only), and all other tables hold
integer ids, so their B-tree keys are a few bytes instead of long URIs. Names are never deleted, so
a process's name→id cache stays valid whatever other processes write (it is dropped on rollback).

Nodes, edges, touches, properties and tags are keyed so that every write is an upsert that merges
by min/max time or a set insert (idempotent, order-free). Time travel is a ``ts <= as_of``
predicate on every read; a property's value as of T is its newest fact at or before T. Traversals
read one level per call with the frontier passed as a JSON array (no parameter-count limit).

Durability: WAL with ``synchronous=NORMAL`` (no fsync per commit). A crash of the process loses
nothing committed; a power loss may roll back the last batches, and with them the offsets recorded
in the same transactions, so the processor re-reads those records from the (fully synced) log.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from provenance.errors import RecordRefused, StoreError, StoreFullError
from provenance.graph.model import (
    LINEAGE_RELS,
    NEVER,
    VERSION_OF,
    Content,
    DerivedLineage,
    Edge,
    FactBatch,
    Node,
    Touch,
    VersionInfo,
    app_node,
    artifact_node,
    encode_value,
    flow_node,
    version_node,
)
from provenance.graph.port import LineageStore

SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS nodes (
    nid INTEGER PRIMARY KEY,             -- names.id of the node id
    kind TEXT NOT NULL,
    art INTEGER,                         -- version nodes: names.id of their artifact's URI
    label TEXT, creator TEXT,
    first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_kind ON nodes (kind, first_ts);
CREATE INDEX IF NOT EXISTS nodes_art ON nodes (art) WHERE art IS NOT NULL;
CREATE TABLE IF NOT EXISTS edges (
    src INTEGER NOT NULL, rel TEXT NOT NULL, dst INTEGER NOT NULL,
    first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    art INTEGER,                         -- lineage edges: the artifact's URI id (written; no longer indexed or read)
    PRIMARY KEY (src, rel, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst, rel);
DROP INDEX IF EXISTS edges_art;         -- (schema 3 had it; lineage is deleted through version nodes)
CREATE TABLE IF NOT EXISTS touches (
    app INTEGER NOT NULL, uri INTEGER NOT NULL, op TEXT NOT NULL, version TEXT NOT NULL,
    flow TEXT NOT NULL,                  -- the part of the run it happened in ('': the run)
    artifact INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    PRIMARY KEY (app, uri, op, version, flow)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS touches_artifact ON touches (artifact);
CREATE TABLE IF NOT EXISTS contents (      -- a file's bytes as an app read or wrote them
    hash TEXT NOT NULL, uri INTEGER NOT NULL, app INTEGER NOT NULL, op TEXT NOT NULL,
    artifact INTEGER NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (hash, uri, app, op)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contents_artifact ON contents (artifact, app);
CREATE TABLE IF NOT EXISTS props (
    node INTEGER NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, rank INTEGER NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (node, key, ts, rank, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS propsets (      -- several props of one node set at one instant, one row:
    node INTEGER NOT NULL, ts INTEGER NOT NULL, rank INTEGER NOT NULL,
    value TEXT NOT NULL,                 -- a JSON object, key → encoded value
    PRIMARY KEY (node, ts, rank, value)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS prop_facts AS  -- every property fact, one per row, whichever table holds it
    SELECT node, key, ts, rank, value FROM props
    UNION ALL
    SELECT s.node, j.key, s.ts, s.rank, j.value FROM propsets s, json_each(s.value) j;
CREATE TABLE IF NOT EXISTS tags (
    node INTEGER NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, removed INTEGER NOT NULL,
    value TEXT NOT NULL, uri INTEGER NOT NULL,
    PRIMARY KEY (node, key, ts, removed, value, uri)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
"""

# Every fact of the nodes up to as_of; the newest per (node, key) is picked in Python, which is about
# twice as fast as a window function here (no sort): props by (ts, rank, value), tags by (ts, not
# removed, value), the largest wins, as ``ORDER BY ts DESC, rank DESC, value DESC`` would pick (text
# compares alike: UTF-8 byte order is code point order).
_PROP_FACTS_OF = """
SELECT node, key, ts, rank, value FROM props WHERE node IN (SELECT value FROM json_each(?1)) AND ts <= ?2
UNION ALL
SELECT s.node, j.key, s.ts, s.rank, j.value FROM propsets s, json_each(s.value) j
WHERE s.node IN (SELECT value FROM json_each(?1)) AND s.ts <= ?2
"""

_TAG_FACTS_OF = ("SELECT node, key, ts, removed, value FROM tags "
                 "WHERE node IN (SELECT value FROM json_each(?)) AND ts <= ?")

_CACHE_LIMIT = 2_000_000


def translate(exc: sqlite3.Error, what: str, path: Path) -> StoreError:
    """A driver error as this package's: a full disk says so (with the file), the rest says what failed."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StoreFullError(f"{what}: the disk holding {path} is full (nothing of this batch was kept; it is "
                              "applied again once there is room)")
    if isinstance(exc, sqlite3.DataError | sqlite3.InterfaceError | sqlite3.ProgrammingError):
        return RecordRefused(f"{what}: a value cannot be stored: {exc}")  # too big, or not a type SQLite takes
    return StoreError(f"{what}: {exc}")


def _prop_rows(batch: FactBatch, ids: dict[str, int]) -> tuple[list[Any], list[Any]]:
    """Rows of ``props`` (a group of one, and clashes) and of ``propsets`` (a group of several, one row)."""
    single = [(ids[n], k, ts, r, v) for n, k, ts, r, v in batch.clashes]
    packed = []
    for (n, ts, r), group in batch.props.items():
        if len(group) == 1:
            for k, v in group.items():
                single.append((ids[n], k, ts, r, v))
        else:
            packed.append((ids[n], ts, r, orjson.dumps(group, option=orjson.OPT_SORT_KEYS).decode()))
    return single, packed


def _newest(rows: Iterable[Any], second: int) -> list[tuple[tuple[int, str], tuple[int, int, str]]]:
    """Per (node, key) of (node, key, ts, middle, value) rows, the largest (ts, second * middle, value),
    sorted by (node, key): for props the higher rank wins (``second`` 1), for tags a set wins over a
    removal at the same instant (``second`` -1 on ``removed``)."""
    best: dict[tuple[int, str], tuple[int, int, str]] = {}
    for node, key, ts, middle, value in rows:
        fact = (ts, second * middle, value)
        cur = best.setdefault((node, key), fact)
        if fact > cur:
            best[(node, key)] = fact
    return sorted(best.items())


def _hub_edges(lin: DerivedLineage, ids: dict[str, int]) -> list[tuple[int, str, int, int, int, int]]:
    """The app → version edges of a lineage (its flows' times merged) and the flow → version edges."""
    merged: dict[tuple[int, str, int], list[int]] = {}
    for e in lin.edges:
        vid = ids[version_node(lin.artifact, e.version)]
        hubs = (app_node(e.app), flow_node(e.app, e.flow)) if e.flow else (app_node(e.app),)
        for hub in hubs:
            cur = merged.setdefault((ids[hub], e.rel, vid), [e.first_ts, e.last_ts])
            cur[0], cur[1] = min(cur[0], e.first_ts), max(cur[1], e.last_ts)
    art = ids[lin.artifact]
    return [(s, r, d, f, la, art) for (s, r, d), (f, la) in merged.items()]


def _j(values: Iterable[Any]) -> str:
    return orjson.dumps(list(values)).decode()


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
            found = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if found is None:
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(found[0]) != SCHEMA_VERSION:
                raise StoreError(f"{self.path} holds store schema {found[0]}, this build reads {SCHEMA_VERSION}: "
                                 "run `provenance repair` to rebuild it from the log")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the embedded store at {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._in_batch = False
        self._ids: dict[str, int] = {}

    # -- transactions and names ----------------------------------------------------------------
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
                    self._abandon()
                    raise
            except sqlite3.Error as exc:
                raise translate(exc, "store write failed", self.path) from exc

    def _abandon(self) -> None:
        """Undo the transaction, and drop what was derived from it: the ids of names it interned are
        not in the file any more. SQLite may have rolled back already (a full disk, an I/O error): then
        there is nothing to undo, and asking would raise "cannot rollback" over the real error."""
        self._ids.clear()
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is unusable; the next write reports why

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, "store read failed", self.path) from exc

    def _intern(self, names: Iterable[str], create: bool) -> dict[str, int]:
        """Ids of names; ``create`` adds the missing ones (call it inside a write transaction)."""
        out: dict[str, int] = {}
        missing = []
        cache = self._ids
        for n in set(names):
            i = cache.get(n)
            if i is None:
                missing.append(n)
            else:
                out[n] = i
        if missing:
            if len(cache) > _CACHE_LIMIT:
                cache.clear()
            if create:  # the new names come back from the insert; only the others are looked up
                for i, n in self._conn.execute("INSERT OR IGNORE INTO names (name) SELECT value FROM json_each(?) "
                                               "RETURNING id, name", (json.dumps(missing),)).fetchall():
                    out[n] = i
                    cache[n] = i
                missing = [n for n in missing if n not in out]
            if missing:
                for i, n in self._rows("SELECT id, name FROM names WHERE name IN (SELECT value FROM json_each(?))",
                                       (json.dumps(missing),)):
                    out[n] = i
                    cache[n] = i
        return out

    # -- writes ------------------------------------------------------------------------------
    def apply_facts(self, batch: FactBatch) -> None:
        with self._tx() as c:
            names: set[str] = set(batch.nodes)
            for s, _, d in batch.edges:
                names.add(s)
                names.add(d)
            for a, u, _, _, _ in batch.touches:
                names.add(app_node(a))
                names.add(u)
            names.update(art for art, _, _ in batch.touches.values())
            for _, u, a, _ in batch.contents:
                names.add(app_node(a))
                names.add(u)
            names.update(art for art, _ in batch.contents.values())
            names.update(p[0] for p in batch.props)
            names.update(p[0] for p in batch.clashes)
            for t in batch.tags:
                names.add(t[0])
                names.add(t[5])
            ids = self._intern(names, create=True)
            c.executemany(
                "INSERT INTO nodes (nid, kind, first_ts, last_ts) VALUES (?,?,?,?) ON CONFLICT(nid) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
                [(ids[i], k, f, la) for i, (k, f, la) in batch.nodes.items()],
            )
            c.executemany(
                "INSERT INTO edges (src, rel, dst, first_ts, last_ts) VALUES (?,?,?,?,?) "
                "ON CONFLICT(src, rel, dst) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
                [(ids[s], r, ids[d], f, la) for (s, r, d), (f, la) in batch.edges.items()],
            )
            c.executemany(
                "INSERT INTO touches (app, uri, op, version, flow, artifact, first_ts, last_ts) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(app, uri, op, version, flow) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
                [(ids[app_node(a)], ids[u], o, v, fl, ids[art], f, la)
                 for (a, u, o, v, fl), (art, f, la) in batch.touches.items()],
            )
            c.executemany(
                "INSERT INTO contents (hash, uri, app, op, artifact, ts) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(hash, uri, app, op) DO UPDATE SET ts = min(ts, excluded.ts)",
                [(h, ids[u], ids[app_node(a)], o, ids[art], ts) for (h, u, a, o), (art, ts) in batch.contents.items()],
            )
            single, packed = _prop_rows(batch, ids)
            c.executemany("INSERT OR IGNORE INTO props VALUES (?,?,?,?,?)", single)
            c.executemany("INSERT OR IGNORE INTO propsets VALUES (?,?,?,?)", packed)
            c.executemany("INSERT OR IGNORE INTO tags VALUES (?,?,?,?,?,?)",
                          [(ids[n], k, ts, rm, v, ids[u]) for n, k, ts, rm, v, u in batch.tags])

    def _lineage_rows(self, lins: list[DerivedLineage]) -> tuple[dict[str, int], list[Any], list[Any]]:
        names: set[str] = set()
        for lin in lins:
            names.add(lin.artifact)
            names.add(artifact_node(lin.artifact))
            names.update(version_node(lin.artifact, v.key) for v in lin.versions)
            for e in lin.edges:
                names.add(app_node(e.app))
                names.add(version_node(lin.artifact, e.version))
                if e.flow:
                    names.add(flow_node(e.app, e.flow))
        ids = self._intern(names, create=True)
        nodes, edges = [], []
        for lin in lins:
            art = ids[lin.artifact]
            anode = ids[artifact_node(lin.artifact)]
            for v in lin.versions:
                vid = ids[version_node(lin.artifact, v.key)]
                nodes.append((vid, art, v.label, v.creator, v.created_ts, v.created_ts))
                edges.append((vid, VERSION_OF, anode, v.created_ts, v.created_ts, art))
            edges.extend(_hub_edges(lin, ids))
        return ids, nodes, edges

    def replace_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        lins = list(lineages)
        if not lins:
            return
        with self._tx() as c:
            ids, nodes, edges = self._lineage_rows(lins)
            arts = _j(ids[lin.artifact] for lin in lins)
            # an artifact's lineage edges all end at (app → version) or start from (version → artifact)
            # one of its version nodes: found through those, with no index of edges by artifact to keep
            versions = _j(r[0] for r in c.execute(
                "SELECT nid FROM nodes WHERE art IN (SELECT value FROM json_each(?))", (arts,)))
            c.execute("DELETE FROM edges WHERE dst IN (SELECT value FROM json_each(?)) AND rel IN (?,?,?,?)",
                      (versions, *LINEAGE_RELS))
            c.execute("DELETE FROM edges WHERE src IN (SELECT value FROM json_each(?)) AND rel = ?",
                      (versions, VERSION_OF))
            c.execute("DELETE FROM nodes WHERE art IN (SELECT value FROM json_each(?))", (arts,))
            c.executemany("INSERT INTO nodes (nid, kind, art, label, creator, first_ts, last_ts) "
                          "VALUES (?, 'version', ?, ?, ?, ?, ?)", nodes)
            c.executemany("INSERT INTO edges (src, rel, dst, first_ts, last_ts, art) VALUES (?,?,?,?,?,?)", edges)

    def add_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        lins = list(lineages)
        if not lins:
            return
        with self._tx() as c:
            _, nodes, edges = self._lineage_rows(lins)
            # a version is born once: its times only move earlier
            c.executemany(
                "INSERT INTO nodes (nid, kind, art, label, creator, first_ts, last_ts) "
                "VALUES (?, 'version', ?, ?, ?, ?, ?) ON CONFLICT(nid) DO UPDATE "
                "SET first_ts = min(first_ts, excluded.first_ts), last_ts = min(last_ts, excluded.last_ts)", nodes)
            c.executemany(
                "INSERT INTO edges (src, rel, dst, first_ts, last_ts, art) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(src, rel, dst) DO UPDATE SET first_ts = min(first_ts, excluded.first_ts), "
                "last_ts = CASE WHEN rel = 'VERSION_OF' THEN min(last_ts, excluded.last_ts) "
                "ELSE max(last_ts, excluded.last_ts) END", edges)

    def record_offsets(self, group: str, offsets: dict[str, int]) -> None:
        with self._tx() as c:
            c.executemany(
                "INSERT INTO applied_offsets (grp, topic, offset) VALUES (?,?,?) "
                "ON CONFLICT(grp, topic) DO UPDATE SET offset = excluded.offset",
                [(group, t, o) for t, o in offsets.items()],
            )

    def applied_offsets(self, group: str) -> dict[str, int]:
        return {t: int(o) for t, o in self._rows("SELECT topic, offset FROM applied_offsets WHERE grp = ?", (group,))}

    # -- touches -----------------------------------------------------------------------------
    def stored_touches(self, keys: Collection[tuple[str, str, str, str, str]]
                       ) -> dict[tuple[str, str, str, str, str], Touch]:
        if not keys:
            return {}
        ids = self._intern([n for a, u, _, _, _ in keys for n in (app_node(a), u)], create=False)
        probe = [(ids[app_node(a)], ids[u], o, v, fl, a, u) for a, u, o, v, fl in keys
                 if app_node(a) in ids and u in ids]
        if not probe:
            return {}
        back = {p[:5]: (p[5], p[6]) for p in probe}
        art_ids = {}
        rows = self._rows(
            "SELECT t.app, t.uri, t.op, t.version, t.flow, t.artifact, t.first_ts, t.last_ts FROM json_each(?) k "
            "JOIN touches t ON t.app = json_extract(k.value, '$[0]') AND t.uri = json_extract(k.value, '$[1]') "
            "AND t.op = json_extract(k.value, '$[2]') AND t.version = json_extract(k.value, '$[3]') "
            "AND t.flow = json_extract(k.value, '$[4]')",
            (json.dumps([p[:5] for p in probe]),),
        )
        if rows:
            art_ids = self._names({r[5] for r in rows})
        out = {}
        for app, uri, op, version, flow, art, f, la in rows:
            a, u = back[(app, uri, op, version, flow)]
            out[(a, u, op, version, flow)] = Touch(a, u, op, art_ids[art], version, f, la, flow)
        return out

    def _names(self, ids: Collection[int]) -> dict[int, str]:
        if not ids:
            return {}
        return dict(self._rows("SELECT id, name FROM names WHERE id IN (SELECT value FROM json_each(?))", (_j(ids),)))

    def artifact_touches(self, artifacts: Collection[str]) -> dict[str, list[Touch]]:
        out: dict[str, list[Touch]] = {a: [] for a in artifacts}
        ids = self._intern(artifacts, create=False)
        if not ids:
            return out
        back = {i: n for n, i in ids.items()}
        for app, uri, op, version, flow, art, f, la in self._rows(
            "SELECT a.name, u.name, t.op, t.version, t.flow, t.artifact, t.first_ts, t.last_ts FROM touches t "
            "JOIN names a ON a.id = t.app JOIN names u ON u.id = t.uri "
            "WHERE t.artifact IN (SELECT value FROM json_each(?))",
            (_j(ids.values()),),
        ):
            name = back[art]
            out[name].append(Touch(app[4:], uri, op, name, version, f, la, flow))
        return out

    def touches_of_apps(self, apps: Collection[str], as_of: int = NEVER) -> list[Touch]:
        ids = self._intern([app_node(a) for a in apps], create=False)
        if not ids:
            return []
        rows = self._rows(
            "SELECT a.name, u.name, t.op, t.version, r.name, t.first_ts, t.last_ts, t.flow FROM touches t "
            "JOIN names a ON a.id = t.app JOIN names u ON u.id = t.uri JOIN names r ON r.id = t.artifact "
            "WHERE t.app IN (SELECT value FROM json_each(?)) AND t.first_ts <= ?",
            (_j(ids.values()), as_of),
        )
        return sorted((Touch(a[4:], u, o, r, v, f, la, fl) for a, u, o, v, r, f, la, fl in rows),
                      key=lambda t: (t.uri, t.op, t.app, t.version, t.flow))

    def contents(self, *, hashes: Collection[str] = (), artifacts: Collection[str] = (),
                 as_of: int = NEVER) -> list[Content]:
        clauses, params = [], []
        if hashes:
            clauses.append("c.hash IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(sorted(hashes)))
        if artifacts:
            ids = self._intern(artifacts, create=False)
            clauses.append("c.artifact IN (SELECT value FROM json_each(?))")
            params.append(_j(ids.values()))
        if not clauses:
            return []
        rows = self._rows(
            "SELECT c.hash, u.name, a.name, c.op, r.name, c.ts FROM contents c JOIN names u ON u.id = c.uri "
            f"JOIN names a ON a.id = c.app JOIN names r ON r.id = c.artifact WHERE ({' OR '.join(clauses)}) "
            "AND c.ts <= ?", (*params, as_of))
        return sorted(Content(h, u, a[4:], o, r, ts) for h, u, a, o, r, ts in rows)

    # -- reads -------------------------------------------------------------------------------
    def nodes(self, ids: Collection[str], as_of: int = NEVER) -> dict[str, Node]:
        nids = self._intern(ids, create=False)
        if not nids:
            return {}
        back = {i: n for n, i in nids.items()}
        by_nid = {
            nid: Node(back[nid], k, f, la, label, {"creator": cr} if cr else {})
            for nid, k, label, cr, f, la in self._rows(
                "SELECT nid, kind, label, creator, first_ts, last_ts FROM nodes "
                "WHERE nid IN (SELECT value FROM json_each(?)) AND first_ts <= ?",
                (_j(nids.values()), as_of),
            )
        }
        if by_nid:
            present = _j(by_nid)
            for (node, key), (_, _, value) in _newest(self._rows(_PROP_FACTS_OF, (present, as_of)), 1):
                by_nid[node].props[key] = orjson.loads(value)
            for (node, key), (_, removed, value) in _newest(self._rows(_TAG_FACTS_OF, (present, as_of)), -1):
                if not removed:
                    by_nid[node].tags[key] = value
        return {n.id: n for n in by_nid.values()}

    def _edges(self, col: str, ids: Collection[str], rels: Collection[str], as_of: int) -> list[Edge]:
        nids = self._intern(ids, create=False)
        if not nids:
            return []
        rel_sql = ",".join("?" * len(rels))
        rows = self._rows(
            f"SELECT src, rel, dst, first_ts, last_ts FROM edges "
            f"WHERE {col} IN (SELECT value FROM json_each(?)) AND rel IN ({rel_sql}) AND first_ts <= ?",
            (_j(nids.values()), *rels, as_of),
        )
        # the asked-for end's names are known; the other end's come from one lookup of the distinct ids
        far = 2 if col == "src" else 0
        names = self._names({r[far] for r in rows})
        for n, i in nids.items():
            names[i] = n
        cache = self._ids
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        for r in rows:  # the next traversal level asks for these by name
            cache[names[r[far]]] = r[far]
        return [Edge(names[s], rel, names[d], f, la) for s, rel, d, f, la in rows]

    def edges_from(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]:
        return self._edges("src", ids, rels, as_of)

    def edges_to(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]:
        return self._edges("dst", ids, rels, as_of)

    def versions(self, artifacts: Collection[str], as_of: int = NEVER) -> dict[str, list[VersionInfo]]:
        out: dict[str, list[VersionInfo]] = {a: [] for a in artifacts}
        ids = self._intern(artifacts, create=False)
        if not ids:
            return out
        back = {i: n for n, i in ids.items()}
        for art, vid, label, creator, f in self._rows(
            "SELECT n.art, nm.name, n.label, n.creator, n.first_ts FROM nodes n JOIN names nm ON nm.id = n.nid "
            "WHERE n.art IN (SELECT value FROM json_each(?)) AND n.first_ts <= ? ORDER BY n.first_ts, nm.name",
            (_j(ids.values()), as_of),
        ):
            out[back[art]].append(VersionInfo(vid.rpartition("@")[2], f, creator, label))
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
        sql = ["FROM nodes n JOIN names nm ON nm.id = n.nid WHERE n.kind = ? AND n.first_ts <= ?"]
        params: list[Any] = [kind, as_of]
        if key_prefix:
            lo = f"{kind}:{key_prefix}"
            sql.append("AND nm.name >= ? AND nm.name < ?")
            params += [lo, lo + "\U0010ffff"]
        for key, value in (where or {}).items():
            sql.append(
                "AND (SELECT value FROM (SELECT p.ts, p.rank, p.value FROM props p "
                "WHERE p.node = n.nid AND p.key = ? AND p.ts <= ? UNION ALL SELECT s.ts, s.rank, j.value "
                "FROM propsets s, json_each(s.value) j WHERE s.node = n.nid AND s.ts <= ? AND j.key = ?) "
                "ORDER BY ts DESC, rank DESC, value DESC LIMIT 1) = ?"
            )
            params += [key, as_of, as_of, key, encode_value(value)]
        body = " ".join(sql)
        total = self._rows(f"SELECT count(*) {body}", tuple(params))[0][0]
        ids = [r[0] for r in self._rows(
            f"SELECT nm.name {body} ORDER BY n.first_ts DESC, nm.name LIMIT ? OFFSET ?", (*params, limit, offset)
        )]
        found = self.nodes(ids, as_of)
        return [found[i] for i in ids if i in found], int(total)

    def dump(self) -> dict[str, Any]:
        """Everything by name (ids depend on insertion order, names do not), sorted."""
        q = self._rows
        return {
            "nodes": sorted(q("SELECT nm.name, n.kind, a.name, n.label, n.creator, n.first_ts, n.last_ts FROM nodes n "
                              "JOIN names nm ON nm.id = n.nid LEFT JOIN names a ON a.id = n.art"),
                            key=lambda r: r[0]),
            "props": sorted(q("SELECT DISTINCT nm.name, p.key, p.ts, p.rank, p.value FROM prop_facts p "
                              "JOIN names nm ON nm.id = p.node")),
            "edges": sorted(q("SELECT s.name, e.rel, d.name, e.first_ts, e.last_ts FROM edges e "
                              "JOIN names s ON s.id = e.src JOIN names d ON d.id = e.dst")),
            "touches": sorted(q("SELECT a.name, u.name, t.op, t.version, t.flow, r.name, t.first_ts, t.last_ts "
                                "FROM touches t JOIN names a ON a.id = t.app JOIN names u ON u.id = t.uri "
                                "JOIN names r ON r.id = t.artifact")),
            "contents": sorted(q("SELECT c.hash, u.name, a.name, c.op, r.name, c.ts FROM contents c "
                                 "JOIN names u ON u.id = c.uri JOIN names a ON a.id = c.app "
                                 "JOIN names r ON r.id = c.artifact")),
            "tags": sorted(q("SELECT nm.name, t.key, t.ts, t.removed, t.value, u.name FROM tags t "
                             "JOIN names nm ON nm.id = t.node JOIN names u ON u.id = t.uri")),
        }

    def check(self) -> list[str]:
        """Referential integrity: every id in every table names something, every edge's ends and every
        version's artifact are nodes, and SQLite's own check of the file."""
        problems = [f"sqlite: {r[0]}" for r in self._rows("PRAGMA integrity_check") if r[0] != "ok"]
        dangling = {
            "node ids without a name": "SELECT count(*) FROM nodes WHERE nid NOT IN (SELECT id FROM names)",
            "edges whose source is not a node": "SELECT count(*) FROM edges WHERE src NOT IN (SELECT nid FROM nodes)",
            "edges whose target is not a node": "SELECT count(*) FROM edges WHERE dst NOT IN (SELECT nid FROM nodes)",
            "touches naming ids without a name": "SELECT count(*) FROM touches WHERE app NOT IN (SELECT id FROM names)"
                                                 " OR uri NOT IN (SELECT id FROM names) OR artifact NOT IN "
                                                 "(SELECT id FROM names)",
            "contents naming ids without a name": "SELECT count(*) FROM contents WHERE app NOT IN (SELECT id FROM "
                                                  "names) OR uri NOT IN (SELECT id FROM names) OR artifact NOT IN "
                                                  "(SELECT id FROM names)",
            "properties of no node": "SELECT count(*) FROM (SELECT node FROM props UNION ALL SELECT node FROM "
                                     "propsets) WHERE node NOT IN (SELECT nid FROM nodes)",
            "tags of no node": "SELECT count(*) FROM tags WHERE node NOT IN (SELECT nid FROM nodes) OR uri NOT IN "
                               "(SELECT id FROM names)",
            "versions whose artifact is not a node": "SELECT count(*) FROM nodes v LEFT JOIN names a ON a.id = v.art "
                                                     "WHERE v.art IS NOT NULL AND (a.name IS NULL OR NOT EXISTS "
                                                     "(SELECT 1 FROM names an JOIN nodes n ON n.nid = an.id "
                                                     "WHERE an.name = 'artifact:' || a.name))",
        }
        for what, sql in dangling.items():
            n = int(self._rows(sql)[0][0])
            if n:
                problems.append(f"{n} {what}")
        return problems

    def stats(self) -> dict[str, int]:
        out = {}
        for table in ("nodes", "edges", "touches", "props", "tags"):  # names and offsets are bookkeeping
            # property facts, each once (a fact can sit in a group and in a row of its own)
            source = "(SELECT DISTINCT * FROM prop_facts)" if table == "props" else table
            out[table] = int(self._rows(f"SELECT count(*) FROM {source}")[0][0])
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()
