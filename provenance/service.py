"""The service layer: every operation the command line, the HTTP API and the pages offer, once.

No HTTP here. A `Service` owns the stack (opened on first use), the catch-up policy (apply what the
log holds before answering, unless a processor does that in the background), the access checks (a
thing the caller may not see is "not found", worded exactly as a thing that does not exist), and the
one visibility rule: every answer leaves through `provenance.access.redact`. The CLI calls it as the
local admin; the API and the pages as the token's user.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from provenance.access import Principal, redact
from provenance.bus.port import DEAD_LETTER_TOPIC, Record, raw_topic, read_topic
from provenance.config import Settings
from provenance.errors import Forbidden, NotFoundError, QueryError
from provenance.events.model import ms_to_iso
from provenance.graph import export, facets, repro
from provenance.graph.answers import (
    AppInfo,
    AppList,
    AppRef,
    ArtifactAnswer,
    ColumnLineage,
    Comparison,
    Footprint,
    Gdpr,
    Impact,
    LineageGraph,
    MostUsed,
    PipelineUsers,
    RecentPipeline,
    SearchAnswer,
    SearchHit,
    Upstream,
    UserDetail,
    UserList,
    UserSummary,
    VersionDetail,
)
from provenance.graph.model import NEVER, RAN, READ, Edge, Node, artifact_node, node_key, user_node, version_node
from provenance.graph.queries import Limits, LineageQueries
from provenance.processor.runner import ProcessStats, processor_lock
from provenance.search.port import SearchQuery
from provenance.stack import Stack, open_stack

A = TypeVar("A", bound=BaseModel)
MAX_EVENT_DEPTH = 64  # a received RunEvent nested deeper (outside its facets) is not answered with
DATASET_TYPES = ("dataset", "feature_group", "training_dataset", "table")


@dataclass
class Ingested:
    accepted: int
    topic: str
    first_offset: int | None


@dataclass
class Service:
    """The operations over one configured stack. ``background``: a processor thread applies the log
    (``serve``), so requests do not catch up themselves."""

    settings: Settings
    background: bool = False
    on_query: Callable[[str, float], None] | None = None  # (query, seconds): the API's latency metric
    _stack: Stack | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _received: tuple[tuple[tuple[int, int], ...], list[tuple[datetime, dict[str, Any]]]] | None = None
    _received_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stack(self) -> Stack:
        with self._lock:
            if self._stack is None:
                self._stack = open_stack(self.settings)
            return self._stack

    def close(self) -> None:
        with self._lock:
            if self._stack is not None:
                self._stack.close()
            self._stack = None

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- catching up ---------------------------------------------------------------------------
    def catch_up(self, on_progress: Callable[[int, int], None] | None = None) -> ProcessStats:
        """Apply every record on the log before answering, so an answer includes everything captured
        before it was asked; ``on_progress(done, pending)`` after each batch. Nothing to do when a
        processor runs in the background, or on Kafka, where the processors of the group apply the log
        (a query must not join their group)."""
        stack = self.stack
        if self.background or stack.bus.group_managed:
            return ProcessStats()
        proc = stack.processor
        with processor_lock(self.settings.home):
            pending = proc.pending()
            if pending == 0:
                proc.prepare()  # a search index behind the store is rebuilt
                return ProcessStats()
            done = [0]

            def step(stats: ProcessStats) -> None:
                done[0] += stats.records
                if on_progress is not None:
                    on_progress(done[0], pending)

            return proc.catch_up(step)

    def queries(self) -> LineageQueries:
        self.catch_up()
        return LineageQueries(self.stack.store, self.stack.rules)

    def _timed(self, name: str, fn: Callable[[], A]) -> A:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            if self.on_query is not None:
                self.on_query(name, time.perf_counter() - start)

    # -- access checks ---------------------------------------------------------------------------
    @staticmethod
    def visible_artifact(q: LineageQueries, who: Principal, ref: str, as_of: int) -> str:
        """The artifact's root URI, if it exists and ``who`` may see it; else not found, in the same
        words either way (existence does not leak)."""
        uri, _ = q.resolve_artifact(ref, as_of)
        if not who.sees(q.artifact_projects([uri], as_of).get(uri)):
            raise NotFoundError(f"no artifact at {ref!r}" + _when(as_of))
        return uri

    @staticmethod
    def visible_app(q: LineageQueries, who: Principal, app: str, as_of: int) -> AppInfo:
        node = q.resolve_app(app, as_of)
        info = q.describe_apps([node.id], as_of)[node.id]
        if not who.sees(info.project):
            raise NotFoundError(f"no app {app.removeprefix('app:')!r}" + _when(as_of))
        return info

    # -- apps, artifacts, users --------------------------------------------------------------------
    def apps(self, who: Principal, *, job: str | None = None, user: str | None = None, state: str | None = None,
             as_of: int = NEVER, limit: int = 100, offset: int = 0) -> AppList:
        """Runs, newest first: of a job, by a user (who ran them), in a state; those ``who`` may see."""
        q = self.queries()
        store = q.store
        if job is None and user is None and who.admin:  # the common listing: paged by the store
            nodes, total = store.find_nodes("app", as_of=as_of, where={"state": state} if state else None,
                                            limit=limit, offset=offset)
            described = q.describe_apps([n.id for n in nodes], as_of)
            listed = [described[n.id] for n in nodes]
            return AppList(as_of=_iso(as_of), apps=listed, total=total, offset=offset, limit=limit)  # (an admin)
        if job is not None:
            try:
                ids = q.job_apps(job, as_of)
            except NotFoundError:
                ids = []  # an empty list, as for a job nobody may see: no existence oracle
        elif user is not None:
            ids = sorted({e.dst for e in store.edges_from([user_node(user)], [RAN], as_of)})
        else:
            ids = [n.id for n in _all_nodes(store, "app", as_of, {"state": state} if state else None)]
        apps = [a for a in q.describe_apps(ids, as_of).values()
                if who.sees(a.project) and (not user or user in a.users) and (not state or a.state == state)]
        apps.sort(key=lambda a: (-(a.started_ts or 0), a.app_id))
        # a visible run's parent may be another project's (an OpenLineage parent facet): hidden with it
        return redact(AppList(as_of=_iso(as_of), apps=apps[offset: offset + limit], total=len(apps), offset=offset,
                              limit=limit), who)

    def app(self, who: Principal, app_id: str, as_of: int = NEVER) -> AppInfo:
        return redact(self.visible_app(self.queries(), who, app_id, as_of), who)

    def artifact(self, who: Principal, ref: str, as_of: int = NEVER) -> ArtifactAnswer:
        """An artifact: its versions, who made each and who read it."""
        q = self.queries()
        uri = self.visible_artifact(q, who, ref, as_of)
        store = q.store
        node = store.nodes([artifact_node(uri)], as_of)[artifact_node(uri)]
        versions = store.versions([uri], as_of)[uri]
        vids = [version_node(uri, v.key) for v in versions]
        fields = q.version_fields(vids, as_of)
        reads: dict[str, set[str]] = {}
        read_edges = store.edges_to(vids, [READ], as_of)
        for e in read_edges:
            reads.setdefault(e.dst, set()).add(e.src)
        readers = q.describe_apps({a for s in reads.values() for a in s}, as_of)
        last_ts = node.last_ts
        if not who.admin:  # the last activity ``who`` may know of: a hidden run's read is not
            made = [v.created_ts for v in versions]
            last_ts = max([node.first_ts, *made, *(e.last_ts for e in read_edges
                                                  if e.src in readers and who.sees(readers[e.src].project))])
        vprops = {v: n.props for v, n in store.nodes(vids, as_of).items()}
        answer = ArtifactAnswer(
            as_of=_iso(as_of), id=node.id, uri=uri, name=_opt(node.props.get("name")),
            type=str(node.tags.get(self.stack.rules.type_key) or node.props.get("type", "file")),
            project=q.artifact_projects([uri], as_of).get(uri), tags=dict(node.tags), props=node.props,
            first_ts=node.first_ts, last_ts=last_ts,
            versions=[VersionDetail(**fields[v], readers=[readers[a].ref() for a in sorted(reads.get(v, ()))],
                                    facets=facets.stated_facets(vprops.get(v, {})))
                      for v in vids])
        return redact(self._facets_shown(q, who, answer), who)

    @staticmethod
    def _facets_shown(q: LineageQueries, who: Principal, answer: ArtifactAnswer) -> ArtifactAnswer:
        """The artifact's facets without the parts that name datasets ``who`` may not see (a column lineage
        input, a lineage source: a producer's words about other data)."""
        if who.admin:
            return answer
        named = facets.named_datasets(answer.props).union(*(facets.named_datasets(v.facets) for v in answer.versions))
        hidden = facets.hidden_datasets(q, named, who.sees) if named else set()
        if not hidden:
            return answer
        return answer.model_copy(update={
            "props": facets.without_hidden(answer.props, hidden),
            "versions": [v.model_copy(update={"facets": facets.without_hidden(v.facets, hidden)})
                         for v in answer.versions]})

    def users(self, who: Principal, as_of: int = NEVER, limit: int = 100, offset: int = 0) -> UserList:
        """Users; one who ran nothing ``who`` may see is not listed for a project member."""
        q = self.queries()
        if who.admin:
            nodes, total = q.store.find_nodes("user", as_of=as_of, limit=limit, offset=offset)
        else:
            everyone = _all_nodes(q.store, "user", as_of, None)
            ran: dict[str, list[Edge]] = {}
            for e in q.store.edges_from([n.id for n in everyone], [RAN], as_of):
                ran.setdefault(e.src, []).append(e)
            apps = q.describe_apps({e.dst for es in ran.values() for e in es}, as_of)
            shown = {u: [e for e in es if who.sees(apps[e.dst].project)] for u, es in ran.items()}
            seen = [n for n in everyone if shown.get(n.id)]
            total, nodes = len(seen), seen[offset: offset + limit]
            # first and last seen in the runs ``who`` may see: a hidden run's time is not theirs to know
            return UserList(as_of=_iso(as_of), users=[UserSummary(name=node_key(n.id), **_seen(shown[n.id], n))
                                                      for n in nodes], total=total, offset=offset, limit=limit)
        return UserList(as_of=_iso(as_of), users=[UserSummary(name=node_key(n.id), first_ts=n.first_ts,
                                                               last_ts=n.last_ts) for n in nodes],
                        total=total, offset=offset, limit=limit)

    def user(self, who: Principal, name: str, as_of: int = NEVER, limit: int = 100, offset: int = 0) -> UserDetail:
        """A user and the runs they made that ``who`` may see (not found when that is none, for a member)."""
        q = self.queries()
        node = q.store.nodes([user_node(name)], as_of).get(user_node(name))
        if node is None:
            raise NotFoundError(f"no user {name!r}" + _when(as_of))
        ran = q.store.edges_from([node.id], [RAN], as_of)
        described = q.describe_apps([e.dst for e in ran], as_of)
        apps = sorted((a for a in described.values() if who.sees(a.project)),
                      key=lambda a: (-(a.started_ts or 0), a.app_id))
        if not apps and not who.admin:
            raise NotFoundError(f"no user {name!r}" + _when(as_of))
        times = _seen([e for e in ran if who.sees(described[e.dst].project)], node)
        return redact(UserDetail(as_of=_iso(as_of), name=name, **times, runs=apps[offset: offset + limit],
                                 total_runs=len(apps), jobs=sorted({a.job for a in apps if a.job}), offset=offset,
                                 limit=limit), who)

    # -- the lineage queries -------------------------------------------------------------------------
    def footprint(self, who: Principal, app: str, as_of: int = NEVER, limits: Limits = Limits()) -> Footprint:
        q = self.queries()
        self.visible_app(q, who, app, as_of)
        return redact(self._timed("footprint", lambda: q.footprint(app, as_of, limits)), who)

    def impact(self, who: Principal, *, app: str | None = None, job: str | None = None,
               artifact: str | None = None, as_of: int = NEVER, limits: Limits = Limits()) -> Impact:
        if sum(x is not None for x in (app, job, artifact)) != 1:
            raise QueryError("give exactly one of app, job or artifact")
        q = self.queries()
        if app is not None:
            self.visible_app(q, who, app, as_of)
        elif artifact is not None:
            self.visible_artifact(q, who, artifact, as_of)
        else:
            assert job is not None
            ids = q.job_apps(job, as_of)
            if not any(who.sees(a.project) for a in q.describe_apps(ids, as_of).values()):
                raise NotFoundError(f"no job {job.removeprefix('job:')!r} with runs" + _when(as_of))
        return redact(self._timed("impact", lambda: q.impact(app=app, job=job, artifact=artifact, as_of=as_of,
                                                              limits=limits)), who)

    def upstream(self, who: Principal, uri: str, as_of: int = NEVER, limits: Limits = Limits()) -> Upstream:
        q = self.queries()
        self.visible_artifact(q, who, uri, as_of)
        return redact(self._timed("upstream", lambda: q.upstream(uri, as_of, limits)), who)

    def gdpr(self, who: Principal, uris: Sequence[str], as_of: int = NEVER, limits: Limits = Limits()) -> Gdpr:
        q = self.queries()
        for u in uris:
            self.visible_artifact(q, who, u, as_of)
        return redact(self._timed("gdpr", lambda: q.gdpr(list(uris), as_of, limits)), who)

    def repro(self, who: Principal, a: str, b: str | None = None, as_of: int = NEVER) -> Comparison:
        """Two runs compared, or (without ``b``) a run against what was captured since: its inputs' and
        code files' latest versions, and the newest run of its job. All from the graph: nothing is run."""
        q = self.queries()
        self.visible_app(q, who, a, as_of)
        if b is not None:
            self.visible_app(q, who, b, as_of)
            return redact(self._timed("repro", lambda: repro.compare_runs(q, a, b, as_of)), who)
        return redact(self._timed("repro", lambda: repro.compare_with_latest(q, a, as_of, who.sees)), who)

    def lineage(self, who: Principal, uri: str, direction: export.Direction = "both", depth: int = 4,
                as_of: int = NEVER) -> LineageGraph:
        q = self.queries()
        self.visible_artifact(q, who, uri, as_of)
        return redact(export.subgraph(q, uri, direction, as_of, Limits(depth=depth)), who)

    def openlineage_export(self, who: Principal, app: str, producer: str, as_of: int = NEVER) -> list[dict[str, Any]]:
        """The run as OpenLineage RunEvents, of what ``who`` may see of it: for a run that came from OpenLineage
        its own runId, job, datasets as they were named, versions and facets."""
        fp = self.footprint(who, app, as_of, Limits(limit=1_000_000))
        q = self.queries()
        events = export.openlineage_events(q, fp, producer, as_of)
        if who.admin:
            return events
        # the facets as stored are a producer's words: the parts naming datasets ``who`` may not see are left out
        holders = [(part, key) for ev in events for part, keys in [
            (ev.get("run", {}), ("facets",)), (ev.get("job", {}), ("facets",)),
            *((d, ("facets", "inputFacets", "outputFacets")) for d in [*ev.get("inputs", []), *ev.get("outputs", [])])]
            for key in keys if isinstance(part.get(key), dict)]
        named = set().union(*(facets.named_datasets(part[key]) for part, key in holders)) if holders else set()
        hidden = facets.hidden_datasets(q, named, who.sees) if named else set()
        for part, key in holders:
            part[key] = facets.without_hidden(part[key], hidden)
        return events

    def column_lineage(self, who: Principal, ref: str, as_of: int = NEVER) -> ColumnLineage:
        """The column lineage a producer stated for a dataset (``uri`` or ``uri@version``), its input fields
        of datasets ``who`` may not see redacted."""
        q = self.queries()
        uri = self.visible_artifact(q, who, ref, as_of)
        _, version = q.resolve_artifact(ref, as_of)
        return redact(self._timed("column_lineage", lambda: facets.column_lineage(q, uri, version, as_of)), who)

    # -- search ------------------------------------------------------------------------------------
    def search(self, who: Principal, query: SearchQuery) -> SearchAnswer:
        index = self._index()
        query = SearchQuery(**{**query.__dict__, "visible_projects": who.visible_projects})
        r = self._timed("search", lambda: index.search(query))
        hits = self._as_seen(who, [_hit(h) for h in r.hits])
        return redact(SearchAnswer(query=query.text, total=r.total, hits=hits, facets=r.facets,
                                   offset=query.offset, limit=query.limit), who)

    def _as_seen(self, who: Principal, hits: list[SearchHit]) -> list[SearchHit]:
        """Hits with counts and times over the runs ``who`` may see: a document holds only what all its readers
        may see (its order in the index follows that), a reader is told what they may see."""
        users = [h for h in hits if h.kind == "user"]
        arts = [h for h in hits if h.kind == "artifact"]
        if not users and not arts:
            return hits
        q = self.queries()
        ran: dict[str, list[Edge]] = {}
        for e in q.store.edges_from([user_node(h.uri) for h in users], [RAN], NEVER) if users else []:
            ran.setdefault(e.src, []).append(e)
        versions = q.store.versions([h.uri for h in arts], NEVER) if arts else {}
        vids = {version_node(u, v.key): u for u, vs in versions.items() for v in vs}
        reads: dict[str, list[Edge]] = {}
        for e in q.store.edges_to(sorted(vids), [READ], NEVER) if vids else []:
            if e.src.startswith("app:"):
                reads.setdefault(vids[e.dst], []).append(e)
        runs = {e.dst for es in ran.values() for e in es} | {e.src for es in reads.values() for e in es}
        apps = q.describe_apps(runs, NEVER)
        out = []
        for h in hits:
            if h.kind == "user":
                seen = [e for e in ran.get(user_node(h.uri), []) if who.sees(apps[e.dst].project)]
                h = h.model_copy(update={"usage": len(seen), "created_ts": min((e.first_ts for e in seen), default=0),
                                         "last_ts": max((e.last_ts for e in seen), default=0),
                                         "description": f"user {h.uri}: {len(seen)} run(s)"})
            elif h.kind == "artifact" and h.uri in versions:
                seen = [e for e in reads.get(h.uri, []) if who.sees(apps[e.src].project)]
                made = [v.created_ts for v in versions[h.uri]]
                h = h.model_copy(update={"usage": len({e.src for e in seen}),
                                         "last_ts": max([*made, *(e.last_ts for e in seen)], default=h.last_ts)})
            out.append(h)
        return out

    def most_used_datasets(self, who: Principal, limit: int = 10) -> MostUsed:
        """The paper's first question: the datasets read by the most runs."""
        r = self.search(who, SearchQuery(kinds=["artifact"], types=DATASET_TYPES, sort="usage",
                                         limit=max(30, 3 * limit)))
        # the index orders by the readers every reader of a document may see; ``who`` may see more
        hits = sorted(r.hits, key=lambda h: (-h.usage, h.name))[:limit]
        return MostUsed(datasets=hits, total=r.total, redacted=r.redacted)

    def recent_pipeline(self, who: Principal, dataset: str, as_of: int = NEVER) -> RecentPipeline:
        """The paper's second question: the most recent pipeline (job) that used dataset X."""
        q = self.queries()
        uri = self.visible_artifact(q, who, dataset, as_of)
        vids = [version_node(uri, v.key) for v in q.store.versions([uri], as_of)[uri]]
        apps = q.describe_apps(sorted({e.src for e in q.store.edges_to(vids, [READ], as_of)}), as_of)
        runs = sorted((a for a in apps.values() if who.sees(a.project)), key=lambda a: -(a.started_ts or 0))
        if not runs:
            return RecentPipeline(as_of=_iso(as_of), dataset=uri)
        return redact(RecentPipeline(as_of=_iso(as_of), dataset=uri, pipeline=runs[0].job, run=runs[0],
                                     runs_that_used_it=len(runs)), who)

    def pipeline_users(self, who: Principal, job: str, as_of: int = NEVER) -> PipelineUsers:
        """The paper's third question: the users who ran the latest version of pipeline P successfully.
        A pipeline's version is its code (the git commit of its runs; the command line without one)."""
        q = self.queries()
        try:
            ids = q.job_apps(job, as_of)
        except NotFoundError:
            ids = []
        runs = sorted((a for a in q.describe_apps(ids, as_of).values() if who.sees(a.project)),
                      key=lambda a: (-(a.started_ts or 0), a.app_id))
        if not runs:  # the same words whether the job does not exist or is another project's
            raise NotFoundError(f"no job {job.removeprefix('job:')!r} with runs" + _when(as_of))

        def version(a: AppInfo) -> str:
            return str(a.git_commit or json.dumps(a.command))

        latest = version(runs[0])
        ok = [a for a in runs if version(a) == latest and a.state == "finished"]
        return redact(PipelineUsers(as_of=_iso(as_of), pipeline=job, latest_version=latest,
                                    users=sorted({u for a in ok for u in a.users}), runs=ok), who)

    def _index(self) -> Any:
        self.catch_up()
        index = self.stack.search
        if index is None:
            raise QueryError("search is off in this configuration (search.type: none)")
        return index

    # -- ingestion and the log -------------------------------------------------------------------------
    def ingest(self, who: Principal, fmt: str, values: Sequence[bytes],
               keys: Sequence[str | None] | None = None) -> Ingested:
        """Raw records onto the log (the processor dead-letters the ones it cannot use); keyed by ``keys``,
        else by their app (or URI), so that one app's records stay in order."""
        if not who.admin:
            raise Forbidden("only admin tokens may send events")
        if fmt not in self.stack.normalizers:
            raise QueryError(self.stack.normalizers.unknown(fmt))
        topic = raw_topic(fmt)
        records = [Record(value=v, key=record_key(v) if keys is None else keys[i]) for i, v in enumerate(values)]
        offsets = self.stack.bus.produce(topic, records) if records else []
        return Ingested(len(records), topic, offsets[0] if offsets else None)

    def openlineage_received(self) -> list[tuple[datetime, dict[str, Any]]]:
        """The OpenLineage RunEvents as received (on the log's ``openlineage`` raw topic, in the order appended),
        each with its ``eventTime``; read again only when the topic has grown. Not filtered: callers apply
        visibility. Records that are no RunEvent (DatasetEvents, JobEvents, what no parser reads) are skipped."""
        bus, topic = self.stack.bus, raw_topic("openlineage")
        if topic not in bus.topics():
            return []
        ends = bus.end_offsets(topic)
        key = tuple(sorted(ends.items()))
        with self._received_lock:
            if self._received is not None and self._received[0] == key:
                return self._received[1]
            out = [(t, ev) for msg in read_topic(bus, topic, max(1, sum(ends.values())))
                   if (got := run_event_of(msg.value)) is not None for t, ev in [got]]
            self._received = (key, out)
            return out

    def dead_letters(self, limit: int = 100) -> list[dict[str, str]]:
        self.catch_up()
        msgs = read_topic(self.stack.bus, DEAD_LETTER_TOPIC, limit)
        return [{"offset": str(m.offset), **m.headers, "value": m.value.decode("utf-8", "replace")} for m in msgs]


def record_key(value: bytes) -> str | None:
    """The bus key of a raw record: its app, else its URI, so that one app's events stay in order."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict):
        key = data.get("app_id") or data.get("uri")
        return str(key) if isinstance(key, (str, int)) and key != "" else None
    return None


def run_event_of(value: bytes) -> tuple[datetime, dict[str, Any]] | None:
    """(eventTime, event) of a raw record that is an OpenLineage RunEvent (a run, a job and a time), else None."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("run"), dict) and isinstance(data.get("job"), dict)
            and isinstance(data.get("eventTime"), str)):
        return None
    try:
        when = parse_time(data["eventTime"])
    except ValueError:
        return None
    from provenance.connectors.openlineage import FACET_DEPTH

    # a facet nested deeper than the graph keeps is left out here too (the processor cut it)
    sides = [d for side in ("inputs", "outputs") if isinstance(data.get(side), list) for d in data[side]]
    for holder in (data["run"], data["job"], *(d for d in sides if isinstance(d, dict))):
        for key in ("facets", "inputFacets", "outputFacets"):
            if isinstance(holder.get(key), dict):
                holder[key] = {k: v for k, v in holder[key].items() if not nests_deeper(v, FACET_DEPTH)}
    return None if nests_deeper(data, MAX_EVENT_DEPTH) else (when, data)


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` deep in ``value`` (without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            if d > limit:
                return True
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; one without an offset is UTC."""
    when = datetime.fromisoformat(text.strip())
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _all_nodes(store: Any, kind: str, as_of: int, where: dict[str, Any] | None) -> list[Any]:
    out: list[Any] = []
    while True:
        nodes, _ = store.find_nodes(kind, as_of=as_of, where=where, limit=5000, offset=len(out))
        out += nodes
        if len(nodes) < 5000:
            return out


def _hit(h: dict[str, Any]) -> SearchHit:
    return SearchHit(**{k: v for k, v in h.items() if k in SearchHit.model_fields})


def _iso(as_of: int) -> str | None:
    return None if as_of == NEVER else ms_to_iso(as_of)


def _seen(edges: list[Edge], node: Node) -> dict[str, int]:
    """When a user was first and last seen: over these RAN edges (the runs one may see), else the node's."""
    if not edges:
        return {"first_ts": node.first_ts, "last_ts": node.last_ts}
    return {"first_ts": min(e.first_ts for e in edges), "last_ts": max(e.last_ts for e in edges)}


def _when(as_of: int) -> str:
    return "" if as_of == NEVER else f" as of {ms_to_iso(as_of)}"


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


__all__ = ["AppRef", "Ingested", "Service", "record_key"]
