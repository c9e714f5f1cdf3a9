"""Neo4j adapter for the lineage-store port (the official ``neo4j`` driver, Cypher over Bolt).

The graph, as a Cypher user sees it:

- ``(:ProvNode {id, kind, first_ts, last_ts})`` for users, apps, jobs, artifacts and versions
  (versions also carry ``art``, the artifact's root URI, ``label`` and ``creator``);
- relationships typed by their relation (``RAN``, ``INSTANCE_OF``, ``READ``, ``CREATED``,
  ``MODIFIED``, ``DELETED``, ``VERSION_OF``) with ``first_ts``/``last_ts``;
- the facts that keep history, each a node with a unique ``key``: ``(:ProvTouch)`` (file-level
  operations of an app), ``(:ProvProp)`` and ``(:ProvTag)`` (values that hold from ``ts`` on, read
  "as of" like the embedded store), and ``(:ProvOffset)`` (what the processors applied).

Writes are batched ``UNWIND $rows … MERGE`` statements with parameters only (a relation type is
spliced into a statement only from the checked set of names). A processor batch is one explicit
transaction (`batch`), so its writes and its offsets commit together; outside a batch every write
runs in ``execute_write`` and every read in ``execute_read``, which retry transient errors. Rows are
sorted by key, so two processors lock shared nodes in the same order; a processor's write to an
artifact node holds that node until commit, so version resolution of one artifact is serialized
between processors.

Neo4j-only features are not used: no APOC, no multiple labels set dynamically, no ``NODE KEY``
(Enterprise only: composite keys are one ``key`` string), no fulltext index (search is the
Elasticsearch adapter's job). That is what lets CI run this adapter against ArcadeDB's Bolt server.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from provenance.errors import RecordRefused, StoreError
from provenance.graph.model import (
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

_REL_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_CHUNK = 5000  # rows per UNWIND statement
_FRONTIER = 20_000  # ids per read statement

SCHEMA = [
    "CREATE CONSTRAINT prov_node_id IF NOT EXISTS FOR (n:ProvNode) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT prov_touch_key IF NOT EXISTS FOR (t:ProvTouch) REQUIRE t.key IS UNIQUE",
    "CREATE CONSTRAINT prov_prop_key IF NOT EXISTS FOR (p:ProvProp) REQUIRE p.key IS UNIQUE",
    "CREATE CONSTRAINT prov_tag_key IF NOT EXISTS FOR (t:ProvTag) REQUIRE t.key IS UNIQUE",
    "CREATE CONSTRAINT prov_offset_key IF NOT EXISTS FOR (o:ProvOffset) REQUIRE o.key IS UNIQUE",
    "CREATE INDEX prov_node_kind IF NOT EXISTS FOR (n:ProvNode) ON (n.kind)",
    "CREATE INDEX prov_node_art IF NOT EXISTS FOR (n:ProvNode) ON (n.art)",
    "CREATE INDEX prov_touch_artifact IF NOT EXISTS FOR (t:ProvTouch) ON (t.artifact)",
    "CREATE INDEX prov_touch_app IF NOT EXISTS FOR (t:ProvTouch) ON (t.app)",
    "CREATE INDEX prov_prop_node IF NOT EXISTS FOR (p:ProvProp) ON (p.node)",
    "CREATE INDEX prov_prop_kind_key IF NOT EXISTS FOR (p:ProvProp) ON (p.kind, p.key)",
    "CREATE INDEX prov_tag_node IF NOT EXISTS FOR (t:ProvTag) ON (t.node)",
    "CREATE CONSTRAINT prov_content_key IF NOT EXISTS FOR (c:ProvContent) REQUIRE c.key IS UNIQUE",
    "CREATE INDEX prov_content_hash IF NOT EXISTS FOR (c:ProvContent) ON (c.hash)",
    "CREATE INDEX prov_content_artifact IF NOT EXISTS FOR (c:ProvContent) ON (c.artifact)",
]

_MERGE_NODES = """
UNWIND $rows AS r
MERGE (n:ProvNode {id: r.id})
ON CREATE SET n.kind = r.kind, n.first_ts = r.first, n.last_ts = r.last
ON MATCH SET n.first_ts = CASE WHEN r.first < n.first_ts THEN r.first ELSE n.first_ts END,
             n.last_ts = CASE WHEN r.last > n.last_ts THEN r.last ELSE n.last_ts END
"""

_MERGE_CONTENTS = """
UNWIND $rows AS r
MERGE (c:ProvContent {key: r.key})
ON CREATE SET c.hash = r.hash, c.uri = r.uri, c.app = r.app, c.op = r.op, c.artifact = r.artifact, c.ts = r.ts
ON MATCH SET c.ts = CASE WHEN r.ts < c.ts THEN r.ts ELSE c.ts END
"""

_MERGE_TOUCHES = """
UNWIND $rows AS r
MERGE (t:ProvTouch {key: r.key})
ON CREATE SET t.app = r.app, t.uri = r.uri, t.op = r.op, t.version = r.version, t.flow = r.flow,
              t.artifact = r.artifact, t.first_ts = r.first, t.last_ts = r.last
ON MATCH SET t.first_ts = CASE WHEN r.first < t.first_ts THEN r.first ELSE t.first_ts END,
             t.last_ts = CASE WHEN r.last > t.last_ts THEN r.last ELSE t.last_ts END
"""

_MERGE_PROPS = """
UNWIND $rows AS r
MERGE (p:ProvProp {key: r.key})
ON CREATE SET p.node = r.node, p.kind = r.kind, p.name = r.name, p.ts = r.ts, p.rank = r.rank, p.value = r.value
"""

_MERGE_TAGS = """
UNWIND $rows AS r
MERGE (t:ProvTag {key: r.key})
ON CREATE SET t.node = r.node, t.name = r.name, t.ts = r.ts, t.removed = r.removed, t.value = r.value, t.uri = r.uri
"""


def _driver_errors() -> tuple[type[Exception], ...]:
    from neo4j.exceptions import DriverError, Neo4jError

    return (Neo4jError, DriverError)


def _translate(exc: Exception, what: str) -> StoreError:
    """A statement the server refuses for its values (a type or size it does not take) is the record's
    fault, not the store's: the processor dead-letters the record. Anything else is waited out."""
    code = str(getattr(exc, "code", "") or "")
    if code.startswith(("Neo.ClientError.Statement.TypeError", "Neo.ClientError.Statement.ArgumentError")):
        return RecordRefused(f"{what}: a value cannot be stored: {exc}")
    return StoreError(f"{what}: {exc}")


_TOUCH = "t.app, t.uri, t.op, t.artifact, t.version, t.first_ts, t.last_ts, coalesce(t.flow, '')"


def _touch(row: Any) -> Touch:
    return Touch(*row)


def _key(*parts: Any) -> str:
    return json.dumps(parts, separators=(",", ":"))


def _chunks(rows: list[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _latest(rows: Iterable[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The newest fact per (node, name): greatest (ts, rank or -removed, value), as the SQL store."""
    best: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in rows:
        k = (row[0], row[1])
        cur = best.get(k)
        if cur is None or row[2:5] > cur[2:5]:
            best[k] = row
    return best


class Neo4jStore(LineageStore):
    """A lineage store in a Neo4j database (or any server speaking Bolt and Neo4j-5 Cypher)."""

    def __init__(self, uri: str, user: str = "neo4j", password: str = "", database: str | None = None,
                 *, connection_timeout_s: float = 15.0) -> None:
        try:
            import neo4j
        except ImportError as exc:  # pragma: no cover - an install without the extra
            raise StoreError("the Neo4j store needs the neo4j driver: pip install 'provenance[neo4j]'") from exc
        self._errors = _driver_errors()
        self.uri, self.database = uri, database
        self._lock = threading.RLock()
        self._session: Any = None
        self._tx: Any = None
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password),
                                                      connection_timeout=connection_timeout_s)
            self._driver.verify_connectivity()
            for stmt in SCHEMA:
                self._run_statement(stmt)
        except self._errors as exc:
            raise StoreError(f"cannot open the Neo4j store at {uri}: {exc}") from exc

    # -- transactions ----------------------------------------------------------------------------
    def _new_session(self) -> Any:
        return self._driver.session(database=self.database) if self.database else self._driver.session()

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            if self._tx is not None:  # nested: the outer batch's transaction covers it
                yield
                return
            try:
                self._session = self._new_session()
                self._tx = self._session.begin_transaction()
            except self._errors as exc:
                self._close_tx()
                raise StoreError(f"Neo4j transaction failed to start: {exc}") from exc
            try:
                yield
                self._tx.commit()
            except self._errors as exc:
                raise _translate(exc, "Neo4j batch failed (nothing of it was written)") from exc
            finally:
                self._close_tx()

    def _close_tx(self) -> None:
        tx, session = self._tx, self._session
        self._tx = self._session = None
        if tx is not None and not tx.closed():
            try:
                tx.rollback()
            except self._errors:
                pass
        if session is not None:
            session.close()

    def _run_statement(self, statement: str) -> None:
        def work(tx: Any) -> None:
            tx.run(statement).consume()

        self._run_write(work)

    def _run_write(self, work: Callable[[Any], Any]) -> Any:
        if self._tx is not None:
            return work(self._tx)
        try:
            with self._new_session() as session:
                return session.execute_write(work)
        except self._errors as exc:
            raise _translate(exc, "Neo4j write failed") from exc

    def _read(self, query: str, **params: Any) -> list[Any]:
        def work(tx: Any) -> list[Any]:
            return [tuple(r.values()) for r in tx.run(query, **params)]

        with self._lock:
            if self._tx is not None:  # inside a batch: read its own writes
                try:
                    return work(self._tx)
                except self._errors as exc:
                    raise StoreError(f"Neo4j read failed: {exc}") from exc
            try:
                with self._new_session() as session:
                    return list(session.execute_read(work))
            except self._errors as exc:
                raise StoreError(f"Neo4j read failed: {exc}") from exc

    def _write(self, query: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._lock:
            def work(tx: Any) -> None:
                for chunk in _chunks(rows):
                    tx.run(query, rows=chunk).consume()

            self._run_write(work)

    def _read_ids(self, query: str, ids: Collection[str], **params: Any) -> list[Any]:
        """A read over a large id list, in chunks (one statement's parameters stay bounded)."""
        ids = list(ids)
        out: list[Any] = []
        for chunk in _chunks(ids, _FRONTIER):
            out.extend(self._read(query, ids=chunk, **params))
        return out

    # -- writes ----------------------------------------------------------------------------------
    def apply_facts(self, batch: FactBatch) -> None:
        kinds = {i: k for i, (k, _, _) in batch.nodes.items()}
        self._write(_MERGE_NODES, [{"id": i, "kind": k, "first": f, "last": la}
                                   for i, (k, f, la) in sorted(batch.nodes.items())])
        by_rel: dict[str, list[dict[str, Any]]] = {}
        for (s, r, d), (f, la) in sorted(batch.edges.items()):
            by_rel.setdefault(r, []).append({"s": s, "d": d, "first": f, "last": la})
        for rel, rows in by_rel.items():
            self._write(self._merge_edges(rel), rows)
        self._write(_MERGE_TOUCHES, [
            {"key": _key(a, u, o, v, fl), "app": a, "uri": u, "op": o, "version": v, "flow": fl, "artifact": art,
             "first": f, "last": la} for (a, u, o, v, fl), (art, f, la) in sorted(batch.touches.items())])
        self._write(_MERGE_CONTENTS, [
            {"key": _key(h, u, a, o), "hash": h, "uri": u, "app": a, "op": o, "artifact": art, "ts": ts}
            for (h, u, a, o), (art, ts) in sorted(batch.contents.items())])
        self._write(_MERGE_PROPS, [
            {"key": _key(n, k, ts, r, v), "node": n, "kind": kinds.get(n) or n.split(":", 1)[0], "name": k, "ts": ts,
             "rank": r, "value": v} for n, k, ts, r, v in sorted(batch.prop_facts())])
        self._write(_MERGE_TAGS, [
            {"key": _key(n, k, ts, rm, v, u), "node": n, "name": k, "ts": ts, "removed": rm, "value": v, "uri": u}
            for n, k, ts, rm, v, u in sorted(batch.tags)])

    @staticmethod
    def _merge_edges(rel: str, lineage: bool = False) -> str:
        if not _REL_NAME.match(rel):
            raise StoreError(f"relation name {rel!r} is not an upper-case identifier")
        # a version is born once (VERSION_OF: both times only move earlier); other edges widen
        last = ("CASE WHEN r.last < e.last_ts THEN r.last ELSE e.last_ts END" if rel == VERSION_OF
                else "CASE WHEN r.last > e.last_ts THEN r.last ELSE e.last_ts END")
        art = ", e.art = r.art" if lineage else ""
        # MERGE of the end nodes too: an edge may arrive before its nodes' own facts (merged later)
        return (f"UNWIND $rows AS r MERGE (a:ProvNode {{id: r.s}}) MERGE (b:ProvNode {{id: r.d}}) "
                f"MERGE (a)-[e:{rel}]->(b) "
                f"ON CREATE SET e.first_ts = r.first, e.last_ts = r.last{art} "
                f"ON MATCH SET e.first_ts = CASE WHEN r.first < e.first_ts THEN r.first ELSE e.first_ts END, "
                f"e.last_ts = {last}")

    def _lineage_rows(self, lins: list[DerivedLineage]) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        nodes: list[dict[str, Any]] = []
        edges: dict[str, list[dict[str, Any]]] = {}
        for lin in lins:
            anode = artifact_node(lin.artifact)
            for v in lin.versions:
                vid = version_node(lin.artifact, v.key)
                nodes.append({"id": vid, "art": lin.artifact, "label": v.label, "creator": v.creator,
                              "first": v.created_ts, "last": v.created_ts})
                edges.setdefault(VERSION_OF, []).append(
                    {"s": vid, "d": anode, "first": v.created_ts, "last": v.created_ts, "art": lin.artifact})
            for e in lin.edges:
                for hub in (app_node(e.app), flow_node(e.app, e.flow)) if e.flow else (app_node(e.app),):
                    edges.setdefault(e.rel, []).append({"s": hub, "d": version_node(lin.artifact, e.version),
                                                        "first": e.first_ts, "last": e.last_ts, "art": lin.artifact})
        nodes.sort(key=lambda r: r["id"])
        return nodes, edges

    def _write_lineage(self, lins: list[DerivedLineage], replace: bool) -> None:
        nodes, edges = self._lineage_rows(lins)
        with self._lock:
            def work(tx: Any) -> None:
                if replace:  # a version node goes with every edge it has: VERSION_OF and app→version
                    for chunk in _chunks(sorted({lin.artifact for lin in lins})):
                        tx.run("UNWIND $arts AS a MATCH (v:ProvNode {art: a}) DETACH DELETE v", arts=chunk).consume()
                for chunk in _chunks(nodes):
                    tx.run("UNWIND $rows AS r MERGE (n:ProvNode {id: r.id}) "
                           "ON CREATE SET n.kind = 'version', n.art = r.art, n.label = r.label, n.creator = r.creator, "
                           "n.first_ts = r.first, n.last_ts = r.last "
                           "ON MATCH SET n.kind = 'version', n.art = r.art, n.label = r.label, n.creator = r.creator, "
                           "n.first_ts = CASE WHEN r.first < n.first_ts THEN r.first ELSE n.first_ts END, "
                           "n.last_ts = CASE WHEN r.last < n.last_ts THEN r.last ELSE n.last_ts END",
                           rows=chunk).consume()
                for rel, rows in sorted(edges.items()):
                    rows.sort(key=lambda r: (r["s"], r["d"]))
                    for chunk in _chunks(rows):
                        tx.run(self._merge_edges(rel, lineage=True), rows=chunk).consume()

            self._run_write(work)

    def replace_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        lins = list(lineages)
        if lins:
            self._write_lineage(lins, replace=True)

    def add_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        lins = list(lineages)
        if lins:
            self._write_lineage(lins, replace=False)

    def record_offsets(self, group: str, offsets: dict[str, int]) -> None:
        self._write("UNWIND $rows AS r MERGE (o:ProvOffset {key: r.key}) "
                    "SET o.grp = r.grp, o.topic = r.topic, o.offset = r.offset",
                    [{"key": _key(group, t), "grp": group, "topic": t, "offset": o}
                     for t, o in sorted(offsets.items())])

    def applied_offsets(self, group: str) -> dict[str, int]:
        return {t: int(o) for t, o in self._read("MATCH (o:ProvOffset) WHERE o.grp = $grp RETURN o.topic, o.offset",
                                                 grp=group)}

    # -- touches ---------------------------------------------------------------------------------
    def stored_touches(self, keys: Collection[tuple[str, str, str, str, str]]
                       ) -> dict[tuple[str, str, str, str, str], Touch]:
        if not keys:
            return {}
        rows = self._read_ids("UNWIND $ids AS i MATCH (t:ProvTouch {key: i}) "
                              f"RETURN {_TOUCH}", [_key(*k) for k in keys])
        return {t.key: t for t in map(_touch, rows)}

    def artifact_touches(self, artifacts: Collection[str]) -> dict[str, list[Touch]]:
        out: dict[str, list[Touch]] = {a: [] for a in artifacts}
        for row in self._read_ids(f"UNWIND $ids AS i MATCH (t:ProvTouch {{artifact: i}}) RETURN {_TOUCH}", artifacts):
            t = _touch(row)
            out[t.artifact].append(t)
        return out

    def touches_of_apps(self, apps: Collection[str], as_of: int = NEVER) -> list[Touch]:
        rows = self._read_ids(f"UNWIND $ids AS i MATCH (t:ProvTouch {{app: i}}) WHERE t.first_ts <= $as_of "
                              f"RETURN {_TOUCH}", apps, as_of=as_of)
        return sorted(map(_touch, rows), key=lambda t: (t.uri, t.op, t.app, t.version, t.flow))

    def contents(self, *, hashes: Collection[str] = (), artifacts: Collection[str] = (),
                 as_of: int = NEVER) -> list[Content]:
        ret = "RETURN c.hash, c.uri, c.app, c.op, c.artifact, c.ts"
        rows = [*self._read_ids(f"UNWIND $ids AS i MATCH (c:ProvContent {{hash: i}}) WHERE c.ts <= $as_of {ret}",
                                sorted(hashes), as_of=as_of),
                *self._read_ids(f"UNWIND $ids AS i MATCH (c:ProvContent {{artifact: i}}) WHERE c.ts <= $as_of {ret}",
                                sorted(artifacts), as_of=as_of)]
        return sorted({Content(*r) for r in rows})

    # -- reads -----------------------------------------------------------------------------------
    def nodes(self, ids: Collection[str], as_of: int = NEVER) -> dict[str, Node]:
        found = {
            i: Node(i, k, f, la, label, {"creator": cr} if cr else {})
            for i, k, label, cr, f, la in self._read_ids(
                "UNWIND $ids AS i MATCH (n:ProvNode {id: i}) WHERE n.first_ts <= $as_of "
                "RETURN n.id, n.kind, n.label, n.creator, n.first_ts, n.last_ts", ids, as_of=as_of)
        }
        if found:
            props = self._read_ids("UNWIND $ids AS i MATCH (p:ProvProp {node: i}) WHERE p.ts <= $as_of "
                                   "RETURN p.node, p.name, p.ts, p.rank, p.value", list(found), as_of=as_of)
            for (node, name), row in _latest(props).items():
                found[node].props[name] = orjson.loads(row[4])
            tags = self._read_ids("UNWIND $ids AS i MATCH (t:ProvTag {node: i}) WHERE t.ts <= $as_of "
                                  "RETURN t.node, t.name, t.ts, -t.removed, t.value", list(found), as_of=as_of)
            for (node, name), row in _latest(tags).items():
                if row[3] == 0:
                    found[node].tags[name] = row[4]
        return found

    def edges_from(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]:
        return self._edges_dir(ids, rels, as_of, outgoing=True)

    def _edges_dir(self, ids: Collection[str], rels: Collection[str], as_of: int, outgoing: bool) -> list[Edge]:
        pattern = "(a:ProvNode {id: i})-[e]->(b:ProvNode)" if outgoing else "(a:ProvNode {id: i})<-[e]-(b:ProvNode)"
        ret = "a.id, type(e), b.id" if outgoing else "b.id, type(e), a.id"
        rows = self._read_ids(f"UNWIND $ids AS i MATCH {pattern} WHERE type(e) IN $rels AND e.first_ts <= $as_of "
                              f"RETURN {ret}, e.first_ts, e.last_ts", ids, rels=list(rels), as_of=as_of)
        return [Edge(*r) for r in rows]

    def edges_to(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]:
        return self._edges_dir(ids, rels, as_of, outgoing=False)

    def versions(self, artifacts: Collection[str], as_of: int = NEVER) -> dict[str, list[VersionInfo]]:
        out: dict[str, list[VersionInfo]] = {a: [] for a in artifacts}
        rows = self._read_ids("UNWIND $ids AS i MATCH (n:ProvNode {art: i}) WHERE n.first_ts <= $as_of "
                              "RETURN n.art, n.id, n.label, n.creator, n.first_ts", artifacts, as_of=as_of)
        for art, vid, label, creator, f in sorted(rows, key=lambda r: (r[4], r[1])):
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
        prefix = f"{kind}:{key_prefix or ''}"
        candidates = self._read("MATCH (n:ProvNode) WHERE n.kind = $kind AND n.first_ts <= $as_of "
                                "AND n.id STARTS WITH $prefix RETURN n.id, n.first_ts",
                                kind=kind, as_of=as_of, prefix=prefix)
        keep = {i: f for i, f in candidates}
        for name, value in (where or {}).items():
            facts = self._read("MATCH (p:ProvProp) WHERE p.kind = $kind AND p.name = $name AND p.ts <= $as_of "
                               "RETURN p.node, p.name, p.ts, p.rank, p.value", kind=kind, name=name, as_of=as_of)
            want = encode_value(value)
            matching = {node for (node, _), row in _latest(facts).items() if row[4] == want}
            keep = {i: f for i, f in keep.items() if i in matching}
        ordered = sorted(keep, key=lambda i: (-keep[i], i))
        page = ordered[offset : offset + limit]
        found = self.nodes(page, as_of)
        return [found[i] for i in page if i in found], len(ordered)

    def dump(self) -> dict[str, Any]:
        """The embedded store's dump, row for row: two stores holding the same graph dump equal."""
        return {
            # an edge may name a node with no facts of its own yet: that node is not in the graph
            "nodes": sorted(self._read("MATCH (n:ProvNode) WHERE n.kind IS NOT NULL RETURN n.id, n.kind, n.art, "
                                       "n.label, n.creator, n.first_ts, n.last_ts"), key=lambda r: r[0]),
            "props": sorted(self._read("MATCH (p:ProvProp) RETURN p.node, p.name, p.ts, p.rank, p.value")),
            "edges": sorted(self._read("MATCH (a:ProvNode)-[e]->(b:ProvNode) RETURN a.id, type(e), b.id, "
                                       "e.first_ts, e.last_ts")),
            "touches": sorted((app_node(a), u, o, v, fl, art, f, la) for a, u, o, v, fl, art, f, la in self._read(
                "MATCH (t:ProvTouch) RETURN t.app, t.uri, t.op, t.version, coalesce(t.flow, ''), t.artifact, "
                "t.first_ts, t.last_ts")),
            "contents": sorted((h, u, app_node(a), o, art, ts) for h, u, a, o, art, ts in self._read(
                "MATCH (c:ProvContent) RETURN c.hash, c.uri, c.app, c.op, c.artifact, c.ts")),
            "tags": sorted(self._read("MATCH (t:ProvTag) RETURN t.node, t.name, t.ts, t.removed, t.value, t.uri")),
        }

    def check(self) -> list[str]:
        """What the constraints cannot promise: facts of nodes that are not there, nodes without a kind
        (made by an edge whose node write was lost), versions without their artifact."""
        counts = {
            "nodes without a kind": "MATCH (n:ProvNode) WHERE n.kind IS NULL RETURN count(n)",
            "properties of no node": "MATCH (p:ProvProp) WHERE NOT EXISTS { MATCH (n:ProvNode {id: p.node}) } "
                                     "RETURN count(p)",
            "tags of no node": "MATCH (t:ProvTag) WHERE NOT EXISTS { MATCH (n:ProvNode {id: t.node}) } RETURN count(t)",
            "versions without their artifact": "MATCH (v:ProvNode {kind: 'version'}) WHERE NOT EXISTS "
                                               "{ MATCH (v)-[:VERSION_OF]->(:ProvNode {kind: 'artifact'}) } "
                                               "RETURN count(v)",
        }
        return [f"{n} {what}" for what, q in counts.items() if (n := int(self._read(q)[0][0]))]

    def stats(self) -> dict[str, int]:
        counts = {
            "nodes": "MATCH (n:ProvNode) WHERE n.kind IS NOT NULL RETURN count(n)",
            "edges": "MATCH (:ProvNode)-[e]->(:ProvNode) RETURN count(e)",
            "touches": "MATCH (t:ProvTouch) RETURN count(t)",
            "props": "MATCH (p:ProvProp) RETURN count(p)",
            "tags": "MATCH (t:ProvTag) RETURN count(t)",
        }
        return {name: int(self._read(q)[0][0]) for name, q in counts.items()}

    def close(self) -> None:
        with self._lock:
            self._close_tx()
            self._driver.close()
