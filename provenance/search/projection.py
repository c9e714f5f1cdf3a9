"""The search index as a projection of the lineage store.

After each processor batch, the documents of every artifact, app and user the batch touched are
rebuilt from the store (in bulk) and upserted. The index remembers the store offsets it reflects; an
index found behind the store (a crash between the two, a new index) is rebuilt from the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provenance.graph.model import (
    CREATED,
    DELETED,
    MODIFIED,
    NEVER,
    RAN,
    READ,
    FactBatch,
    app_node,
    artifact_node,
    node_key,
    version_node,
)
from provenance.graph.port import LineageStore
from provenance.graph.queries import LineageQueries
from provenance.processor.rules import Rules
from provenance.search.port import SearchDoc, SearchIndex

_PAGE = 2000


def touched_nodes(facts: FactBatch) -> set[str]:
    ids = {n for n, v in facts.nodes.items() if v[0] in ("artifact", "app", "user")}
    for (app, _uri, _op, _version, _flow), value in facts.touches.items():
        ids.add(artifact_node(value[0]))
        ids.add(app_node(app))
    for (src, rel, _dst) in facts.edges:
        if rel == RAN:
            ids.add(src)
    return ids


#: the documents' layout: raised when what a document holds changes (2: counts and times over the runs all its
#: readers may see), so that an index of older documents is rebuilt
DOCUMENTS_VERSION = 2
DOCUMENTS_KEY = "~documents"


class SearchProjection:
    def __init__(self, store: LineageStore, rules: Rules, index: SearchIndex, group: str = "processor") -> None:
        self.store, self.rules, self.index, self.group = store, rules, index, group
        self.queries = LineageQueries(store, rules)
        self._dirty: set[str] = set()
        self._behind = False  # the index did not reflect the store when the processor started

    def _marker(self) -> dict[str, int]:
        """What the index reflects: the store's offsets, and the layout of its documents (an index of documents
        made another way is rebuilt)."""
        return {**self.store.applied_offsets(self.group), DOCUMENTS_KEY: DOCUMENTS_VERSION}

    def begin(self) -> None:
        """The processor starts: note whether the index is behind the store, without rebuilding it now.
        The rebuild waits for the first `flush`, so that a processor restarted again and again (killed
        during a long rebuild) still applies batches each time before it rebuilds."""
        self._behind = self._behind or self.index.marker() != self._marker()

    # -- the processor's listener -----------------------------------------------------------------
    def __call__(self, facts: FactBatch, offsets: dict[str, int]) -> None:
        """A batch is in the store: remember what it touched. The index is written by `flush`, which
        the processor calls when it has caught up (a tantivy commit per small batch would cost more
        than the batch), or here when much has piled up."""
        self._dirty |= touched_nodes(facts)
        if len(self._dirty) >= 50_000:
            self.flush()

    def flush(self) -> None:
        if self._behind:
            self.rebuild()  # covers what is dirty, and everything the index missed before
            return
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        try:
            self.index.upsert(self.documents(dirty))
        except Exception:
            self.index.set_marker({"stale": 1})  # the next start rebuilds it from the store
            raise
        self.index.set_marker(self._marker())

    def ensure_current(self) -> int:
        """Rebuild the index if it does not reflect the store; returns the documents written."""
        self.flush()
        if self.index.marker() == self._marker() and (
                self.index.count() > 0 or not self.store.applied_offsets(self.group)):
            return 0
        return self.rebuild()

    def rebuild(self) -> int:
        self._dirty.clear()
        self.index.clear()
        self.index.set_marker({"stale": 1})  # a rebuild cut short is known as one at the next start
        n = 0
        for kind in ("artifact", "app", "user"):
            offset = 0
            while True:
                nodes, _ = self.store.find_nodes(kind, limit=_PAGE, offset=offset)
                if not nodes:
                    break
                n += self.index.upsert(self.documents(n.id for n in nodes))
                offset += len(nodes)
        self.index.set_marker(self._marker())
        self._behind = False
        return n

    # -- documents ------------------------------------------------------------------------------
    def documents(self, ids: Iterable[str]) -> list[SearchDoc]:
        ids = set(ids)
        by_kind: dict[str, list[str]] = {"artifact": [], "app": [], "user": []}
        for i in ids:
            kind = i.split(":", 1)[0]
            if kind in by_kind:
                by_kind[kind].append(i)
        docs: list[SearchDoc] = []
        for chunk in _chunks(sorted(by_kind["artifact"])):
            docs += self._artifacts(chunk)
        for chunk in _chunks(sorted(by_kind["app"])):
            docs += self._apps(chunk)
        for chunk in _chunks(sorted(by_kind["user"])):
            docs += self._users(chunk)
        return docs

    def _artifacts(self, ids: list[str]) -> list[SearchDoc]:
        nodes = self.store.nodes(ids)
        uris = [node_key(i) for i in ids if i in nodes]
        versions = self.store.versions(uris)
        vids = {version_node(u, v.key): u for u in uris for v in versions.get(u, [])}
        readers: dict[str, set[str]] = {}
        writers: dict[str, set[str]] = {}
        for e in self.store.edges_to(list(vids), [READ, CREATED, MODIFIED]):
            (readers if e.rel == READ else writers).setdefault(vids[e.dst], set()).add(e.src)
        # the users of an artifact are those who made it (its readers can be thousands: only counted)
        makers = sorted({a for s in writers.values() for a in s})
        users_of: dict[str, list[str]] = {}
        for e in self.store.edges_to(makers, [RAN]) if makers else []:
            users_of.setdefault(e.dst, []).append(node_key(e.src))
        projects = self.queries.artifact_projects(uris, NEVER, nodes)
        maker_projects = {i: a.project for i, a in self.queries.describe_apps(makers, NEVER).items()}
        # a reader is counted (and its time taken) only when whoever may see this document may see the reader:
        # a run of the artifact's own project, or of none (a document tells nothing of hidden runs)
        reader_ids = sorted({a for s in readers.values() for a in s if a.startswith("app:")})
        reader_projects = {i: self.queries.app_project(n.props) for i, n in self.store.nodes(reader_ids).items()}
        read_last: dict[str, int] = {}
        for e in self.store.edges_to(list(vids), [READ]):
            if e.src in reader_projects and reader_projects[e.src] in (None, projects.get(vids[e.dst])):
                read_last[vids[e.dst]] = max(read_last.get(vids[e.dst], 0), e.last_ts)
        out = []
        for i in ids:
            n = nodes.get(i)
            if n is None:
                continue
            uri = node_key(i)
            tags = dict(n.tags)
            kind = tags.get(self.rules.type_key) or n.props.get("type", "file")
            vs = versions.get(uri, [])
            # the users who made it in its own project (or in none): another project's users are not named here
            users = sorted({u for a in writers.get(uri, ()) if maker_projects.get(a) in (None, projects.get(uri))
                            for u in users_of.get(a, [])})
            # nothing about the apps here: they may belong to a project the reader of this document cannot see
            desc = f"{kind} {n.props.get('name') or ''}; {len(vs)} version(s)"
            counted = [a for a in readers.get(uri, ()) if a in reader_projects
                       and reader_projects[a] in (None, projects.get(uri))]
            created = min((v.created_ts for v in vs), default=n.first_ts)
            last = max([created, read_last.get(uri, 0), *(v.created_ts for v in vs)])
            out.append(SearchDoc(
                id=i, kind="artifact", name=str(n.props.get("name") or uri.rsplit("/", 1)[-1]), uri=uri, type=kind,
                project=projects.get(uri), access=_access(projects.get(uri)), users=tuple(users),
                tags=tuple(sorted(tags.items())),
                description=desc, created_ts=created, last_ts=last, usage=len(counted)))
        return out

    def _apps(self, ids: list[str]) -> list[SearchDoc]:
        described = self.queries.describe_apps(ids, NEVER)
        touched: dict[str, int] = {}  # artifact versions the run read or wrote
        for e in self.store.edges_from(ids, [READ, CREATED, MODIFIED, DELETED]):
            touched[e.src] = touched.get(e.src, 0) + 1
        out = []
        present = self.store.nodes([i for i, d in described.items() if d.placeholder])
        for i, d in described.items():
            if d.placeholder and i not in present:
                continue
            command = d.command
            text = " ".join(map(str, command)) if isinstance(command, list) else str(command or "")
            out.append(SearchDoc(
                id=i, kind="app", name=d.job or d.app_id, uri=d.app_id, type="app",
                project=d.project, access=_access(d.project), users=tuple(d.users), description=text,
                job=d.job, state=d.state, created_ts=int(d.started_ts or 0),
                last_ts=int(d.ended_ts or d.started_ts or 0), usage=touched.get(i, 0)))
        return out

    def _users(self, ids: list[str]) -> list[SearchDoc]:
        nodes = self.store.nodes(ids)
        runs: dict[str, list[str]] = {}
        ran: dict[tuple[str, str], tuple[int, int]] = {}
        for e in self.store.edges_from(ids, [RAN]):
            runs.setdefault(e.src, []).append(e.dst)
            ran[(e.src, e.dst)] = (e.first_ts, e.last_ts)
        projects = {i: a.project for i, a in self.queries.describe_apps({a for r in runs.values() for a in r},
                                                                         NEVER).items()}
        out = []
        for i in nodes:
            theirs = {projects.get(a) for a in runs.get(i, [])}
            # seen by the members of their runs' projects; by everyone when a run is of no project
            access = () if None in theirs or not theirs else tuple(sorted(p for p in theirs if p))
            # counts and times over the runs everyone who may see the document may see: a user seen through one
            # project is not shown what they did in another (the service counts a reader's own view)
            shared = [ran[(i, a)] for a in runs.get(i, []) if projects.get(a) is None or access == (projects.get(a),)]
            out.append(SearchDoc(id=i, kind="user", name=node_key(i), uri=node_key(i), type="user",
                                 users=(node_key(i),), description=f"user {node_key(i)}",
                                 created_ts=min((f for f, _ in shared), default=0),
                                 last_ts=max((t for _, t in shared), default=0), usage=len(shared), access=access))
        return out


def _access(project: str | None) -> tuple[str, ...]:
    return (project,) if project else ()


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
