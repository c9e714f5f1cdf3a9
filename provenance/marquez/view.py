"""Marquez's read API over the lineage graph, as one caller may see it.

Marquez's model is namespaces of jobs (with runs) and datasets (with versions), and a lineage graph
of jobs and datasets. Here: a job is a job node (``INSTANCE_OF`` of its runs), in the namespace of its
project (an OpenLineage run's project is its job namespace), else ``default``; a run is an app; a
dataset is an artifact, named as OpenLineage named it (`provenance.graph.facets.dataset_id`); a
dataset version is an artifact version. Facets are the stored ones.

Visibility is the one rule (`provenance.access`): a dataset of a project the caller may not see, a
run of one, and a job with no run the caller may see (unless it has none at all) are absent: not
found when asked for by name, left out of lists, graphs (which do not go through them) and the
inputs, outputs and versions of everything else.
"""

from __future__ import annotations

import re
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provenance.access import Principal
from provenance.connectors.openlineage import INPUTS_KEY, OUTPUTS_KEY
from provenance.errors import NotFoundError, QueryError
from provenance.events.model import ms_to_iso
from provenance.graph import facets as stated
from provenance.graph.answers import AppInfo
from provenance.graph.model import (
    INSTANCE_OF,
    LINEAGE_RELS,
    NEVER,
    PARENT,
    READ,
    Node,
    VersionInfo,
    artifact_node,
    facets_of,
    node_key,
    split_version_node,
    version_node,
)
from provenance.graph.port import LineageStore
from provenance.graph.queries import LineageQueries
from provenance.marquez import models as m
from provenance.service import Service

DEFAULT_NAMESPACE = "default"
MAX_GRAPH_NODES = 2000  # a lineage graph stops growing here (Marquez's graphs are bounded by depth only)
MAX_SPLITS = 16  # ways of reading a node id's ':'s that are looked up
_PAGE = 5000
INPUT_SIDE, OUTPUT_SIDE = "inputs", "outputs"  # a RunEvent's datasets
_STATES: dict[str, m.RunState] = {"submitted": "NEW", "started": "RUNNING", "finished": "COMPLETED",
                                  "failed": "FAILED", "killed": "ABORTED"}
# Marquez's own split of a node id: the first ':' that starts neither '//' (a scheme) nor a port
_DELIM = re.compile(r":(?!//|\d+)")


def run_uuid(app_id: str) -> str:
    """A run's Marquez id: its OpenLineage runId, else a uuid5 of its app id (as the OpenLineage export)."""
    if app_id.startswith("openlineage:"):
        return app_id.removeprefix("openlineage:")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"provenance:app:{app_id}"))


def job_uuid(ns: str, name: str) -> str:
    """A job's Marquez uuid (``parentJobUuid``): a uuid5 of its namespace and name (jobs have no uuid here)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"provenance:job:{ns}/{name}"))


def simple_name(name: str, parent: str | None) -> str:
    """Marquez's ``simpleName``: the job's name without its parent job's name and the '.' after it."""
    return name[len(parent) + 1:] if parent and name.startswith(parent + ".") and len(name) > len(parent) + 1 else name


class _RunIds:
    """The uuid5 ids of the runs captured otherwise (not OpenLineage runs, whose id is their own), by id: of
    one store, brought up to date when its number of apps or its newest app changes (apps are never
    removed)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[int, str] | None = None
        self.ids: dict[str, str] = {}

    def current(self, store: LineageStore) -> dict[str, str]:
        with self.lock:
            newest, total = store.find_nodes("app", limit=1)
            key = (total, newest[0].id if newest else "")
            if key != self.key:
                ids: dict[str, str] = {}
                offset = 0
                while True:
                    nodes, _ = store.find_nodes("app", limit=_PAGE, offset=offset)
                    if not nodes:
                        break
                    offset += len(nodes)
                    ids.update((run_uuid(node_key(n.id)), n.id) for n in nodes
                               if not node_key(n.id).startswith("openlineage:"))
                self.key, self.ids = key, ids
            return self.ids


_RUN_IDS: weakref.WeakKeyDictionary[LineageStore, _RunIds] = weakref.WeakKeyDictionary()
_RUN_IDS_LOCK = threading.Lock()


def _run_ids(store: LineageStore) -> dict[str, str]:
    """uuid5 run id → app node id of the store's runs captured otherwise."""
    with _RUN_IDS_LOCK:
        index = _RUN_IDS.setdefault(store, _RunIds())
    return index.current(store)


def dataset_node_id(ns: str, name: str) -> str:
    return f"dataset:{ns}:{name}"


def job_node_id(ns: str, name: str) -> str:
    return f"job:{ns}:{name}"


def node_id_splits(value: str, parts: int) -> list[list[str]]:
    """The ways a Marquez node id (``kind:namespace:name``, ``datasetField:namespace:name:field``) can be
    split, Marquez's own first (the first ':' that starts neither '//' nor a port ends the namespace; a
    field follows the last ':'), then others, at most `MAX_SPLITS` of them: names and namespaces may hold
    ':', so the caller looks each up in the graph."""
    kind, sep, rest = value.partition(":")
    if not sep or not rest or parts not in (2, 3):
        return []
    preferred = [mt.start() for mt in _DELIM.finditer(rest)]
    every = [i for i, c in enumerate(rest) if c == ":"]
    cuts = list(dict.fromkeys([*preferred, *every]))

    def candidates() -> Iterator[tuple[str, ...]]:
        if parts == 2:
            for i in cuts:
                yield rest[:i], rest[i + 1:]
            return
        for j in dict.fromkeys([*preferred[-1:], *reversed(every)]):
            for i in cuts:
                if i < j:
                    yield rest[:i], rest[i + 1:j], rest[j + 1:]

    out: list[list[str]] = []
    for p in candidates():
        if all(p) and [kind, *p] not in out:
            out.append([kind, *p])
            if len(out) == MAX_SPLITS:
                break
    return out


@dataclass
class _Dataset:
    uri: str
    node: Node
    ns: str
    name: str

    @property
    def node_id(self) -> str:
        return dataset_node_id(self.ns, self.name)


@dataclass
class _Drawn:
    """A lineage graph as it grows: datasets by URI, jobs by node id, edges by Marquez node ids."""

    datasets: dict[str, _Dataset] = field(default_factory=dict)
    jobs: dict[str, _Job] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)

    def full(self) -> bool:
        return len(self.datasets) + len(self.jobs) >= MAX_GRAPH_NODES


@dataclass
class _Job:
    id: str  # graph node id (job:…)
    node: Node
    ns: str
    name: str

    @property
    def node_id(self) -> str:
        return job_node_id(self.ns, self.name)


def _iso(ms: int | None) -> str:
    return ms_to_iso(ms) or ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _fields(facets: dict[str, Any]) -> list[m.DatasetField]:
    """Marquez's dataset fields from a schema facet (top-level fields; any shape a producer sent)."""
    raw = _dig(facets, "schema", "fields")
    return [m.DatasetField(name=f["name"], type=_text(f.get("type")), description=_text(f.get("description")))
            for f in (raw if isinstance(raw, list) else []) if isinstance(f, dict) and isinstance(f.get("name"), str)]


class MarquezView:
    """The Marquez API's answers over the graph as it stands, for ``who``."""

    def __init__(self, svc: Service, who: Principal) -> None:
        self.svc = svc
        self.who = who
        self.q: LineageQueries = svc.queries()
        self.store = self.q.store
        self._declared_by: dict[str, list[tuple[_Job, bool]]] | None = None

    # -- the graph's nodes as Marquez's ----------------------------------------------------------
    def _scan(self, kind: str) -> Iterable[list[Node]]:
        offset = 0
        while True:
            nodes, _ = self.store.find_nodes(kind, limit=_PAGE, offset=offset)
            if not nodes:
                return
            yield nodes
            offset += len(nodes)

    def _datasets_of(self, nodes: list[Node]) -> list[_Dataset]:
        """The artifacts among ``nodes`` the caller may see, as datasets."""
        uris = [node_key(n.id) for n in nodes]
        projects = self.q.artifact_projects(uris, NEVER, {n.id: n for n in nodes})
        return [_Dataset(u, n, *stated.dataset_id(u, n.props)) for u, n in zip(uris, nodes, strict=True)
                if self.who.sees(projects.get(u))]

    def _all_datasets(self) -> list[_Dataset]:
        return [d for nodes in self._scan("artifact") for d in self._datasets_of(nodes)]

    def _runs_of_jobs(self, job_ids: list[str]) -> dict[str, list[str]]:
        runs: dict[str, list[str]] = {}
        for e in self.store.edges_to(job_ids, [INSTANCE_OF], NEVER):
            runs.setdefault(e.dst, []).append(e.src)
        return runs

    def _jobs_of(self, nodes: list[Node]) -> list[_Job]:
        """The job nodes the caller may see: of a project it sees, with a run it sees or none at all."""
        jobs = [n for n in nodes if self.who.sees(_text(n.props.get("project")))]
        if not self.who.admin and jobs:
            runs = self._runs_of_jobs([n.id for n in jobs])
            apps = self.store.nodes(sorted({a for r in runs.values() for a in r}), NEVER)
            seen = {a for a, n in apps.items() if self.who.sees(self.q.app_project(n.props))}
            jobs = [n for n in jobs if not runs.get(n.id) or seen.intersection(runs[n.id])]
        return [_Job(n.id, n, str(n.props.get("project") or DEFAULT_NAMESPACE), str(n.props.get("name") or
                                                                                 node_key(n.id))) for n in jobs]

    def _all_jobs(self) -> list[_Job]:
        return [j for nodes in self._scan("job") for j in self._jobs_of(nodes)]

    def _find_job(self, ns: str, name: str) -> _Job:
        ids = [f"job:{ns}/{name}"] + ([f"job:{name}"] if ns == DEFAULT_NAMESPACE else [])
        nodes = self.store.nodes(ids, NEVER)
        for job in self._jobs_of([nodes[i] for i in ids if i in nodes]):
            if (job.ns, job.name) == (ns, name):
                return job
        raise NotFoundError(f"no job {name!r} in namespace {ns!r}")

    def _find_dataset(self, ns: str, name: str) -> _Dataset:
        uri = stated.uri_of(ns, name)
        if uri is not None:
            try:
                root = self.svc.visible_artifact(self.q, self.who, uri, NEVER)
            except (NotFoundError, QueryError):
                pass
            else:
                node = self.store.nodes([artifact_node(root)], NEVER)[artifact_node(root)]
                return _Dataset(root, node, *stated.dataset_id(root, node.props))
        raise NotFoundError(f"no dataset {name!r} in namespace {ns!r}")

    def _shown(self, facets: dict[str, Any]) -> dict[str, Any]:
        """Facets without the parts that name datasets the caller may not see (column lineage, lineage)."""
        if self.who.admin:
            return facets
        named = stated.named_datasets(facets)
        return stated.without_hidden(facets, stated.hidden_datasets(self.q, named, self.who.sees)) if named else facets

    def _visible_apps(self, app_ids: Iterable[str]) -> dict[str, AppInfo]:
        return {i: a for i, a in self.q.describe_apps(app_ids, NEVER).items() if self.who.sees(a.project)}

    # -- runs -----------------------------------------------------------------------------------
    def _job_ids_of(self, job_node_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(namespace, name) of job nodes."""
        ids = sorted(set(job_node_ids))
        nodes = self.store.nodes(ids, NEVER)
        return {i: (str(n.props.get("project") or DEFAULT_NAMESPACE), str(n.props.get("name") or node_key(i)))
                for i, n in nodes.items()}

    def _version_names(self, vids: Iterable[str]) -> tuple[dict[str, tuple[str, str, str]], dict[str, Node]]:
        """For each visible version id: (namespace, name, version); and the version nodes."""
        vids = sorted(set(vids))
        vnodes = self.store.nodes(vids, NEVER)
        uris = sorted({split_version_node(v)[0] for v in vids})
        anodes = self.store.nodes([artifact_node(u) for u in uris], NEVER)
        projects = self.q.artifact_projects(uris, NEVER, anodes)
        out = {}
        for v in vids:
            uri, key = split_version_node(v)
            if not self.who.sees(projects.get(uri)):
                continue
            an = anodes.get(artifact_node(uri))
            ns, name = stated.dataset_id(uri, an.props if an else {})
            out[v] = (ns, name, stated.version_name(key, vnodes.get(v)))
        return out, vnodes

    def _runs(self, apps: dict[str, AppInfo]) -> dict[str, m.Run]:
        """Marquez runs of visible apps, with the dataset versions they read and wrote that are visible."""
        jobs = self._job_ids_of(f"job:{a.job}" for a in apps.values() if a.job)
        edges = self.store.edges_from(sorted(apps), list(LINEAGE_RELS), NEVER)
        names, vnodes = self._version_names(e.dst for e in edges)
        ins: dict[str, list[m.RunDatasetVersion]] = {}
        outs: dict[str, list[m.RunDatasetVersion]] = {}
        for e in sorted(edges, key=lambda e: (e.src, e.dst, e.rel)):
            if e.dst not in names:
                continue
            ns, name, version = names[e.dst]
            props = vnodes[e.dst].props if e.dst in vnodes else {}
            scope, into = ("input", ins) if e.rel == READ else ("output", outs)
            item = m.RunDatasetVersion(datasetVersionId=m.DatasetVersionId(namespace=ns, name=name, version=version),
                                       facets=facets_of(props, scope))
            if item not in into.setdefault(e.src, []):
                into[e.src].append(item)
        states = self._run_states(apps)
        out = {}
        for i, a in apps.items():
            run_facets = facets_of(a.props, "run")
            if a.parent is not None and a.parent.facet and self.who.sees(a.parent.project):
                run_facets["parent"] = a.parent.facet
            job = jobs.get(f"job:{a.job}", (a.project or DEFAULT_NAMESPACE, a.job or a.app_id))
            start, end = a.started_ts, a.ended_ts
            out[i] = m.Run(
                id=run_uuid(a.app_id), createdAt=_iso(start), updatedAt=_iso(end or start),
                nominalStartTime=_text(_dig(run_facets, "nominalTime", "nominalStartTime")),
                nominalEndTime=_text(_dig(run_facets, "nominalTime", "nominalEndTime")),
                state=states[i], startedAt=ms_to_iso(start), endedAt=ms_to_iso(end),
                durationMs=end - start if start is not None and end is not None else None,
                jobVersion=m.JobVersionId(namespace=job[0], name=job[1]),
                inputDatasetVersions=ins.get(i, []), outputDatasetVersions=outs.get(i, []), facets=run_facets)
        return out

    @staticmethod
    def _own_state(a: AppInfo) -> m.RunState | None:
        """A run's Marquez state from its own events (None: a placeholder parent, which sent none). An
        OpenLineage run that sent only RUNNING or OTHER events is RUNNING, as Marquez's ``getRunState``
        maps them (its own events stated its namespace)."""
        if a.state in _STATES:
            return _STATES[a.state]
        if a.app_id.startswith("openlineage:"):
            return "RUNNING" if "namespace" in a.props else None
        return "NEW"

    def _run_states(self, apps: dict[str, AppInfo]) -> dict[str, m.RunState]:
        """The runs' states; a placeholder parent takes the state of its first visible child, as Marquez makes
        the parent's run from the child's event (NEW without one)."""
        out: dict[str, m.RunState] = {}
        orphans = []
        for i, a in apps.items():
            state = self._own_state(a)
            if state is None:
                orphans.append(i)
            else:
                out[i] = state
        if orphans:
            edges = self.store.edges_to(sorted(orphans), [PARENT], NEVER)
            kids = self._visible_apps({e.src for e in edges})
            first: dict[str, AppInfo] = {}
            for e in edges:
                kid = kids.get(e.src)
                if kid is not None and (e.dst not in first or (kid.started_ts or 0, kid.app_id) < (
                        first[e.dst].started_ts or 0, first[e.dst].app_id)):
                    first[e.dst] = kid
            for i in orphans:
                out[i] = (self._own_state(first[i]) or "NEW") if i in first else "NEW"
        return out

    def _find_run(self, run_id: str) -> AppInfo:
        """The app whose Marquez id is ``run_id`` (an OpenLineage run, else the app whose uuid5 it is). The
        same lookups whether the run exists, is hidden or is absent (one index look-up, one node read), so
        that the time of the answer does not tell them apart either."""
        try:
            canonical = str(uuid.UUID(run_id))
        except ValueError:
            raise NotFoundError(f"no run {run_id[:80]!r}") from None
        candidate = _run_ids(self.store).get(canonical) or f"app:openlineage:{canonical}"
        node = self.store.nodes([candidate], NEVER).get(candidate)
        apps = (self._visible_apps([candidate]) if node is not None and self.who.sees(self.q.app_project(node.props))
                else {})
        if candidate not in apps:
            raise NotFoundError(f"no run {run_id[:80]!r}")
        return apps[candidate]

    def run(self, run_id: str) -> m.Run:
        app = self._find_run(run_id)
        return self._runs({app.uri: app})[app.uri]

    # -- jobs -----------------------------------------------------------------------------------
    def _jobs_out(self, jobs: list[_Job], latest: int = 10) -> list[m.Job]:
        runs_of = self._runs_of_jobs([j.id for j in jobs])
        apps = self._visible_apps({a for r in runs_of.values() for a in r})
        ordered = {j.id: sorted((apps[a] for a in runs_of.get(j.id, []) if a in apps),
                                key=lambda a: (-(a.started_ts or 0), a.app_id)) for j in jobs}
        current = self._current_runs(ordered)
        shown = {a.uri: a for runs in ordered.values() for a in runs[:latest]}
        runs = self._runs({**shown, **{a.uri: a for a in current.values()}})
        # the parent job: of the newest run that names one the caller may see (Marquez keeps the last one)
        parents = {j: next((a.parent for a in rs if a.parent and a.parent.job and self.who.sees(a.parent.project)),
                           None) for j, rs in ordered.items()}
        parent_jobs = self._job_ids_of(f"job:{p.job}" for p in parents.values() if p and p.job)
        out = []
        for j in jobs:
            latest_runs = [runs[a.uri] for a in ordered[j.id][:latest]]
            facets = self._shown(facets_of(j.node.props, "job"))
            now = runs[current[j.id].uri] if j.id in current else None
            ins = [d.datasetVersionId for d in (now.inputDatasetVersions if now else [])]
            outs = [d.datasetVersionId for d in (now.outputDatasetVersions if now else [])]
            declared_in, declared_out = self._declared(j.node.props)
            p = parents[j.id]
            parent = parent_jobs.get(f"job:{p.job}") if p else None
            out.append(m.Job(
                id=m.JobId(namespace=j.ns, name=j.name),
                type="STREAM" if _dig(facets, "jobType", "processingType") == "STREAMING" else "BATCH",
                name=j.name, simpleName=simple_name(j.name, parent[1] if parent else None),
                parentJobName=parent[1] if parent else None,
                parentJobUuid=job_uuid(*parent) if parent else None,
                createdAt=_iso(j.node.first_ts), updatedAt=_iso(j.node.last_ts), namespace=j.ns,
                inputs=_unique([*(m.DatasetId(namespace=v.namespace, name=v.name) for v in ins), *declared_in]),
                outputs=_unique([*(m.DatasetId(namespace=v.namespace, name=v.name) for v in outs), *declared_out]),
                location=_text(_dig(facets, "sourceCodeLocation", "url")),
                description=_text(_dig(facets, "documentation", "description")),
                latestRun=latest_runs[0] if latest_runs else None, latestRuns=latest_runs, facets=facets))
        return out

    def _current_runs(self, ordered: dict[str, list[AppInfo]]) -> dict[str, AppInfo]:
        """The run whose datasets are the job's inputs and outputs: its newest completed run (Marquez's
        current job version is set when a run completes), else its newest run that read or wrote any."""
        out = {j: next(a for a in rs if a.state == "finished") for j, rs in ordered.items()
               if any(a.state == "finished" for a in rs)}
        rest = {a.uri for j, rs in ordered.items() if j not in out for a in rs}
        if rest:
            touched = {e.src for e in self.store.edges_from(sorted(rest), list(LINEAGE_RELS), NEVER)}
            for j, rs in ordered.items():
                if j not in out and (found := next((a for a in rs if a.uri in touched), None)) is not None:
                    out[j] = found
        return out

    def _declared(self, props: dict[str, Any]) -> tuple[list[m.DatasetId], list[m.DatasetId]]:
        """The datasets a JobEvent declared for the job, those the caller may see."""
        lists = []
        for key in (INPUTS_KEY, OUTPUTS_KEY):
            raw = props.get(key)
            ids = [(d["namespace"], d["name"]) for d in (raw if isinstance(raw, list) else [])
                   if isinstance(d, dict) and isinstance(d.get("namespace"), str) and isinstance(d.get("name"), str)]
            roots = {i: self.q.rules.classify(u).uri for i in ids if (u := stated.uri_of(*i))}
            projects = self.q.artifact_projects(set(roots.values()), NEVER)
            lists.append([m.DatasetId(namespace=ns, name=name) for ns, name in ids
                          if (ns, name) in roots and self.who.sees(projects.get(roots[(ns, name)]))])
        return lists[0], lists[1]

    def jobs(self, ns: str, limit: int, offset: int) -> m.JobList:
        jobs = sorted((j for j in self._all_jobs() if j.ns == ns), key=lambda j: j.name)
        if not jobs and not self._namespace_exists(ns):
            raise NotFoundError(f"no namespace {ns!r}")
        return m.JobList(jobs=self._jobs_out(jobs[offset: offset + limit]), totalCount=len(jobs))

    def all_jobs(self, limit: int, offset: int) -> m.JobList:
        """The jobs of every namespace, the last updated first (as Marquez's ``GET /jobs``)."""
        jobs = sorted(self._all_jobs(), key=lambda j: (-j.node.last_ts, j.ns, j.name))
        return m.JobList(jobs=self._jobs_out(jobs[offset: offset + limit]), totalCount=len(jobs))

    def job_versions(self, ns: str, name: str) -> m.JobVersionList:
        """A job's versions: none (jobs are not versioned here), once the job is found."""
        self._find_job(ns, name)
        return m.JobVersionList(versions=[])

    def job_version(self, ns: str, name: str, version: str) -> m.JobVersion:
        self._find_job(ns, name)
        raise NotFoundError(f"no version {version[:80]!r} of job {name[:200]!r}")

    def run_facets(self, run_id: str, kind: str) -> m.RunFacets:
        """The run facets of a run (with its parent's), or the facets of its job as they stood at the run's
        last event (Marquez: those sent with the run's events); a dataset's: none (nor in Marquez)."""
        app = self._find_run(run_id)
        rid = run_uuid(app.app_id)
        if kind == "run":
            return m.RunFacets(runId=rid, facets=self._runs({app.uri: app})[app.uri].facets)
        if kind != "job" or not app.job:
            return m.RunFacets(runId=rid)
        last = self.store.nodes([app.uri], NEVER)[app.uri].last_ts
        jid = f"job:{app.job}"
        jobs = self._jobs_of(list(self.store.nodes([jid], last).values()))
        return m.RunFacets(runId=rid, facets=self._shown(facets_of(jobs[0].node.props, "job")) if jobs else {})

    def job(self, ns: str, name: str) -> m.Job:
        return self._jobs_out([self._find_job(ns, name)])[0]

    def job_runs(self, ns: str, name: str, limit: int, offset: int) -> m.RunList:
        job = self._find_job(ns, name)
        apps = sorted(self._visible_apps(self._runs_of_jobs([job.id]).get(job.id, [])).values(),
                      key=lambda a: (-(a.started_ts or 0), a.app_id))
        shown = {a.uri: a for a in apps[offset: offset + limit]}
        runs = self._runs(shown)
        return m.RunList(runs=[runs[i] for i in shown], totalCount=len(apps))

    # -- datasets -------------------------------------------------------------------------------
    def _datasets_out(self, datasets: list[_Dataset], column_lineage: bool = False) -> list[m.Dataset]:
        versions = self.store.versions([d.uri for d in datasets], NEVER)
        latest = {d.uri: version_node(d.uri, versions[d.uri][-1].key) for d in datasets if versions.get(d.uri)}
        vnodes = self.store.nodes(sorted(latest.values()), NEVER)
        out = []
        for d in datasets:
            vn = vnodes.get(latest.get(d.uri, ""))
            vs_here = versions.get(d.uri, [])
            facets = self._shown(self._current_facets(d, vs_here[-1] if vs_here else None, vn))
            made = [v.created_ts for v in versions.get(d.uri, []) if v.creator]
            vs = versions.get(d.uri, [])
            out.append(m.Dataset(
                id=m.DatasetId(namespace=d.ns, name=d.name), name=d.name, physicalName=d.name,
                createdAt=_iso(d.node.first_ts), updatedAt=_iso(max([d.node.first_ts, *(v.created_ts for v in vs)])),
                namespace=d.ns, sourceName=_text(_dig(facets, "dataSource", "name")) or d.ns, fields=_fields(facets),
                tags=sorted(k for k in d.node.tags if k != self.q.rules.type_key),
                lastModifiedAt=ms_to_iso(max(made)) if made else None,
                lastLifecycleState=_text(_dig(facets, "lifecycleStateChange", "lifecycleStateChange")),
                description=_text(_dig(facets, "documentation", "description")), facets=facets,
                currentVersion=stated.version_name(vs[-1].key, vn) if vs else None,
                columnLineage=self._column_lineage_list(d) if column_lineage else None,
                deleted=_dig(facets, "lifecycleStateChange", "lifecycleStateChange") == "DROP"))
        return out

    def _artifact_facets_at(self, d: _Dataset, ts: int) -> dict[str, Any]:
        """The dataset's own facets (a DatasetEvent's, or of outputs with no version) as they stood at ``ts``."""
        node = self.store.nodes([d.node.id], ts).get(d.node.id)
        return facets_of(node.props, "dataset") if node else {}

    def _current_facets(self, d: _Dataset, v: VersionInfo | None, vn: Node | None) -> dict[str, Any]:
        """The dataset's facets now: its own with its newest version's over them, but for a facet of its own
        set after that version came to be (a later DatasetEvent's documentation, a DROP): the later wins."""
        now = facets_of(d.node.props, "dataset")
        own = facets_of(vn.props, "dataset") if vn else {}
        clash = {k for k in now.keys() & own.keys() if now[k] != own[k]}
        if v is None or not clash:
            return {**now, **own}
        then = self._artifact_facets_at(d, v.created_ts)
        return {**now, **own, **{k: now[k] for k in clash if then.get(k) != now[k]}}

    def _column_lineage_list(self, d: _Dataset) -> list[m.ColumnLineage]:
        cl = stated.column_lineage(self.q, d.uri, None)
        return [m.ColumnLineage(
            name=f.name, transformationDescription=f.transformation_description,
            transformationType=f.transformation_type,
            inputFields=[m.ColumnLineageInputField(namespace=i.namespace, dataset=i.name, field=i.field,
                                                   **dict(zip(("transformationDescription", "transformationType"),
                                                              _transformation(f, i), strict=True)))
                         for i in f.inputs if self.who.sees(i.project)])
            for f in cl.fields]

    def datasets(self, ns: str, limit: int, offset: int) -> m.DatasetList:
        found = sorted((d for d in self._all_datasets() if d.ns == ns), key=lambda d: d.name)
        if not found and not self._namespace_exists(ns):
            raise NotFoundError(f"no namespace {ns!r}")
        return m.DatasetList(datasets=self._datasets_out(found[offset: offset + limit]), totalCount=len(found))

    def dataset(self, ns: str, name: str) -> m.Dataset:
        return self._datasets_out([self._find_dataset(ns, name)], column_lineage=True)[0]

    def dataset_versions(self, ns: str, name: str, limit: int, offset: int) -> m.DatasetVersionList:
        d = self._find_dataset(ns, name)
        versions = self.store.versions([d.uri], NEVER)[d.uri][::-1]  # newest first, as Marquez lists them
        return m.DatasetVersionList(versions=self._dataset_versions_out(d, versions[offset: offset + limit]),
                                    totalCount=len(versions))

    def dataset_version(self, ns: str, name: str, version: str) -> m.DatasetVersion:
        """One version of a dataset, by its name (as ``version`` of the versions gives it) or its key."""
        d = self._find_dataset(ns, name)
        versions = self.store.versions([d.uri], NEVER)[d.uri]
        vnodes = self.store.nodes([version_node(d.uri, v.key) for v in versions], NEVER)
        named = [v for v in versions if stated.version_name(v.key, vnodes.get(version_node(d.uri, v.key))) == version]
        found = named or [v for v in versions if v.key == version]
        if not found:
            raise NotFoundError(f"no version {version[:80]!r} of dataset {name[:200]!r}")
        return self._dataset_versions_out(d, found[-1:])[0]

    def _dataset_versions_out(self, d: _Dataset, shown: list[VersionInfo]) -> list[m.DatasetVersion]:
        vnodes = self.store.nodes([version_node(d.uri, v.key) for v in shown], NEVER)
        creators = self._visible_apps({f"app:{v.creator}" for v in shown if v.creator})
        runs = self._runs(creators)
        base = facets_of(d.node.props, "dataset")
        out = []
        for v in shown:
            vn = vnodes.get(version_node(d.uri, v.key))
            then = self._artifact_facets_at(d, v.created_ts) if base else {}
            facets = self._shown({**then, **(facets_of(vn.props, "dataset") if vn else {})})
            label = stated.version_name(v.key, vn)
            out.append(m.DatasetVersion(
                id=m.DatasetVersionId(namespace=d.ns, name=d.name, version=label), name=d.name,
                physicalName=d.name, createdAt=_iso(v.created_ts), version=label, namespace=d.ns,
                sourceName=_text(_dig(facets, "dataSource", "name")) or d.ns, fields=_fields(facets),
                tags=sorted(k for k in d.node.tags if k != self.q.rules.type_key),
                description=_text(_dig(facets, "documentation", "description")),
                lifecycleState=_text(_dig(facets, "lifecycleStateChange", "lifecycleStateChange")),
                createdByRun=runs.get(f"app:{v.creator}") if v.creator else None, facets=facets))
        return out

    # -- namespaces -----------------------------------------------------------------------------
    def _updated(self, datasets: list[_Dataset]) -> dict[str, int]:
        """When each dataset last changed (its newest version; as Marquez's updatedAt), not when it was last read:
        a read may be a run the caller may not see."""
        versions = self.store.versions([d.uri for d in datasets], NEVER) if datasets else {}
        return {d.uri: max([d.node.first_ts, *(v.created_ts for v in versions.get(d.uri, []))]) for d in datasets}

    def _namespace_times(self) -> dict[str, tuple[int, int]]:
        times: dict[str, tuple[int, int]] = {}
        datasets = self._all_datasets()
        updated = self._updated(datasets)
        for ns, first_ts, last_ts in [*((j.ns, j.node.first_ts, j.node.last_ts) for j in self._all_jobs()),
                                      *((d.ns, d.node.first_ts, updated[d.uri]) for d in datasets)]:
            first, last = times.get(ns, (first_ts, last_ts))
            times[ns] = (min(first, first_ts), max(last, last_ts))
        return times

    def _namespace_exists(self, ns: str) -> bool:
        return ns in self._namespace_times()

    def namespaces(self, limit: int, offset: int) -> m.NamespaceList:
        times = sorted(self._namespace_times().items())[offset: offset + limit]
        return m.NamespaceList(namespaces=[m.Namespace(name=ns, createdAt=_iso(f), updatedAt=_iso(la))
                                           for ns, (f, la) in times])

    def namespace(self, ns: str) -> m.Namespace:
        times = self._namespace_times().get(ns)
        if times is None:
            raise NotFoundError(f"no namespace {ns!r}")
        return m.Namespace(name=ns, createdAt=_iso(times[0]), updatedAt=_iso(times[1]))

    # -- tags and events -------------------------------------------------------------------------
    def tags(self, limit: int, offset: int) -> m.TagList:
        """The tag keys set on the datasets the caller may see, by name (tags have no description here)."""
        names = sorted({k for d in self._all_datasets() for k in d.node.tags if k != self.q.rules.type_key})
        return m.TagList(tags=[m.Tag(name=n) for n in names[offset: offset + limit]])

    def lineage_events(self, before: datetime, after: datetime, descending: bool, limit: int,
                       offset: int) -> m.LineageEvents:
        """The RunEvents received with ``after <= eventTime < before``, by eventTime (then as appended): of
        jobs whose namespace (their project) the caller may see, without the datasets she may not see."""
        found = [(t, i, ev) for i, (t, ev) in enumerate(self.svc.openlineage_received())
                 if after <= t < before and self._job_space_seen(_dig(ev, "job", "namespace"))]
        found.sort(key=lambda x: (x[0], x[1]), reverse=descending)
        page = [ev for _, _, ev in found[offset: offset + limit]]
        return m.LineageEvents(events=page if self.who.admin else self._events_shown(page), totalCount=len(found))

    def _events_shown(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Events as the caller may see them (copies): the inputs and outputs she may not see left out, the
        facet parts that name such datasets, and a parent facet naming a job of a project she may not see."""
        def datasets(ev: dict[str, Any]) -> list[dict[str, Any]]:
            return [d for side in (INPUT_SIDE, OUTPUT_SIDE) if isinstance(ev.get(side), list)
                    for d in ev[side] if isinstance(d, dict)]

        def pair(d: dict[str, Any]) -> tuple[str, str] | None:
            ns, name = d.get("namespace"), d.get("name")
            return (ns, name) if isinstance(ns, str) and isinstance(name, str) else None

        named: set[tuple[str, str]] = set()
        for ev in events:
            for holder in (ev["run"], ev["job"], *datasets(ev)):
                for key in ("facets", "inputFacets", "outputFacets"):
                    if isinstance(holder.get(key), dict):
                        named |= stated.named_datasets(holder[key])
            named |= {p for d in datasets(ev) if (p := pair(d)) is not None}
        hidden = stated.hidden_datasets(self.q, named, self.who.sees) if named else set()

        def facets(holder: dict[str, Any]) -> dict[str, Any]:
            out = dict(holder)
            for key in ("facets", "inputFacets", "outputFacets"):
                if isinstance(out.get(key), dict):
                    out[key] = stated.without_hidden(out[key], hidden)
            return out

        shown = []
        for ev in events:
            run = facets(ev["run"])
            if isinstance(run.get("facets"), dict) and not self._parent_seen(run["facets"].get("parent")):
                run["facets"] = {k: v for k, v in run["facets"].items() if k != "parent"}
            out = {**ev, "run": run, "job": facets(ev["job"])}
            for side in (INPUT_SIDE, OUTPUT_SIDE):
                if isinstance(ev.get(side), list):
                    out[side] = [facets(d) for d in ev[side] if isinstance(d, dict) and pair(d) not in hidden]
            shown.append(out)
        return shown

    def _job_space_seen(self, ns: Any) -> bool:
        """Whether the caller may see a job namespace (its project); one that is no string: admins only."""
        return self.who.admin or (isinstance(ns, str) and self.who.sees(ns))

    def _parent_seen(self, parent: Any) -> bool:
        """Whether the caller may see the jobs a parent facet names (its parent's and its root's namespace)."""
        if not isinstance(parent, dict):
            return True
        spaces = [_dig(parent, "job", "namespace"), _dig(parent, "root", "job", "namespace")]
        return all(ns is None or self._job_space_seen(ns) for ns in spaces)

    # -- search ---------------------------------------------------------------------------------
    def search(self, text: str, kind: str | None, sort: str, limit: int, ns: str | None) -> m.SearchResults:
        """Jobs and datasets whose names match ``%text%`` as SQL's ILIKE matches it (Marquez's SearchDao: the
        name only, case-insensitively, ``%`` and ``_`` wildcards), of those the caller may see."""
        match = _like(text)
        kind = (kind or "").lower()
        results: list[m.SearchResult] = []
        if kind in ("", "dataset"):
            found = [d for d in self._all_datasets() if (ns is None or d.ns == ns) and match(d.name)]
            updated = self._updated(found)
            results += [m.SearchResult(type="DATASET", name=d.name, updatedAt=_iso(updated[d.uri]), namespace=d.ns,
                                       nodeId=d.node_id) for d in found]
        if kind in ("", "job"):
            results += [m.SearchResult(type="JOB", name=j.name, updatedAt=_iso(j.node.last_ts), namespace=j.ns,
                                       nodeId=j.node_id)
                        for j in self._all_jobs() if (ns is None or j.ns == ns) and match(j.name)]
        results.sort(key=lambda r: (r.name, r.nodeId))
        if sort == "updated_at":
            results.sort(key=lambda r: r.updatedAt, reverse=True)
        return m.SearchResults(totalCount=len(results[:limit]), results=results[:limit])

    # -- lineage --------------------------------------------------------------------------------
    def _resolve(self, node_id: str) -> _Dataset | _Job:
        """The dataset or job a Marquez node id names (trying each way its ':'s can split it)."""
        kind = node_id.partition(":")[0]
        if kind not in ("dataset", "job"):
            raise QueryError(f"a node id is dataset:<namespace>:<name> or job:<namespace>:<name>, not {node_id[:80]!r}")
        for _, ns, name in node_id_splits(node_id, 2):
            try:
                return self._find_dataset(ns, name) if kind == "dataset" else self._find_job(ns, name)
            except NotFoundError:
                continue
        raise NotFoundError(f"no {kind} {node_id[len(kind) + 1:][:200]!r}")

    def lineage(self, node_id: str, depth: int) -> m.Lineage:
        """Jobs and datasets connected to the node, up and down, at most ``depth`` jobs away from it, as
        Marquez's lineage graph (an edge from a dataset to a job that read it, from a job to a dataset
        it wrote; from dataset to dataset where lineage was declared with no run)."""
        start = self._resolve(node_id)
        g = _Drawn()
        if isinstance(start, _Dataset):
            g.datasets[start.uri] = start
            frontier, jobs_away = {start.uri}, 0
        else:
            g.jobs[start.id] = start
            frontier, jobs_away = self._job_step({start.id}, g), 1
        while frontier and jobs_away < depth and not g.full():
            new_jobs: set[str] = set()
            while frontier and not g.full():  # declared lineage joins datasets with no job between them
                found, frontier = self._dataset_step(frontier, g)
                new_jobs |= found
            frontier = self._job_step(new_jobs, g)
            jobs_away += 1
        return self._graph(g)

    def _add_datasets(self, uris: Iterable[str], g: _Drawn) -> set[str]:
        missing = sorted(set(uris) - set(g.datasets))
        found = self._datasets_of(list(self.store.nodes([artifact_node(u) for u in missing], NEVER).values()))
        for d in found:
            g.datasets[d.uri] = d
        return {d.uri for d in found}

    def _dataset_step(self, uris: set[str], g: _Drawn) -> tuple[set[str], set[str]]:
        """From datasets to the jobs of the visible runs that read or wrote them, and to the datasets
        declared lineage links them to: (new jobs, new datasets)."""
        versions = self.store.versions(sorted(uris), NEVER)
        vids = {version_node(u, v.key): u for u in uris for v in versions.get(u, [])}
        touching = self.store.edges_to(sorted(vids), list(LINEAGE_RELS), NEVER)
        app_job = self._app_jobs({e.src for e in touching})
        new_jobs: set[str] = set()
        new_datasets: set[str] = set()
        for e in touching:
            here = g.datasets[vids[e.dst]].node_id
            if e.src.startswith("app:link:"):
                for other, reads in self._link_ends(e.src):
                    if (e.rel == READ) == reads or other == vids[e.dst]:
                        continue  # the same end of the link as this dataset
                    new_datasets |= self._add_datasets([other], g)
                    if other in g.datasets:
                        there = g.datasets[other].node_id
                        g.edges.add((here, there) if e.rel == READ else (there, here))
                continue
            job = app_job.get(e.src)
            if job is None:
                continue
            if job.id not in g.jobs:
                g.jobs[job.id] = job
                new_jobs.add(job.id)
            g.edges.add((here, job.node_id) if e.rel == READ else (job.node_id, here))
        for uri in sorted(uris):  # jobs that declared the dataset (JobEvents), with no run of them needed
            here = g.datasets[uri].node_id
            for job, reads in self._declaring_jobs().get(uri, []):
                if job.id not in g.jobs:
                    g.jobs[job.id] = job
                    new_jobs.add(job.id)
                g.edges.add((here, job.node_id) if reads else (job.node_id, here))
        return new_jobs, new_datasets

    def _declaring_jobs(self) -> dict[str, list[tuple[_Job, bool]]]:
        """Artifact URI → the visible jobs whose JobEvents declared it, and whether as an input."""
        if self._declared_by is None:
            self._declared_by = {}
            for job in self._all_jobs():
                ins, outs = self._declared(job.node.props)
                for ids, reads in ((ins, True), (outs, False)):
                    for i in ids:
                        if (u := stated.uri_of(i.namespace, i.name)) is not None:
                            self._declared_by.setdefault(self.q.rules.classify(u).uri, []).append((job, reads))
        return self._declared_by

    def _link_ends(self, app: str) -> list[tuple[str, bool]]:
        """The artifacts a declared-lineage link app read (True) and wrote (False)."""
        return [(split_version_node(e.dst)[0], e.rel == READ)
                for e in self.store.edges_from([app], list(LINEAGE_RELS), NEVER)]

    def _app_jobs(self, app_ids: set[str]) -> dict[str, _Job]:
        """The visible job of each visible app."""
        apps = self._visible_apps(a for a in app_ids if not a.startswith("app:link:"))
        job_ids = sorted({f"job:{a.job}" for a in apps.values() if a.job})
        by_id = {j.id: j for j in self._jobs_of(list(self.store.nodes(job_ids, NEVER).values()))}
        return {i: by_id[f"job:{a.job}"] for i, a in apps.items() if a.job and f"job:{a.job}" in by_id}

    def _job_step(self, job_ids: set[str], g: _Drawn) -> set[str]:
        """From jobs to the datasets their visible runs read and wrote, and those they declared: the new
        datasets."""
        if not job_ids:
            return set()
        runs = self._runs_of_jobs(sorted(job_ids))
        apps = self._visible_apps({a for r in runs.values() for a in r})
        app_job = {a: j for j, rs in runs.items() for a in rs if a in apps}
        touched = self.store.edges_from(sorted(app_job), list(LINEAGE_RELS), NEVER)
        pairs = [(app_job[e.src], split_version_node(e.dst)[0], e.rel == READ) for e in touched]
        for j in sorted(job_ids):
            ins, outs = self._declared(g.jobs[j].node.props)
            for ids, reads in ((ins, True), (outs, False)):
                pairs += [(j, self.q.rules.classify(u).uri, reads) for i in ids
                          if (u := stated.uri_of(i.namespace, i.name)) is not None]
        new = self._add_datasets({uri for _, uri, _ in pairs}, g)
        for j, uri, reads in pairs:
            if uri in g.datasets:
                d, job = g.datasets[uri].node_id, g.jobs[j].node_id
                g.edges.add((d, job) if reads else (job, d))
        return new

    def _graph(self, g: _Drawn) -> m.Lineage:
        data: dict[str, m.DatasetNodeData | m.JobNodeData] = {}
        for d in self._datasets_out(list(g.datasets.values())):
            node_id = dataset_node_id(d.namespace, d.name)
            data[node_id] = m.DatasetNodeData(**{k: getattr(d, k) for k in m.DatasetNodeData.model_fields})
        for j in self._jobs_out(list(g.jobs.values()), latest=1):
            node_id = job_node_id(j.namespace, j.name)
            fields = {k: getattr(j, k) for k in m.JobNodeData.model_fields if k != "currentRunUuid"}
            data[node_id] = m.JobNodeData(**fields, currentRunUuid=j.latestRun.id if j.latestRun else None)
        ins: dict[str, list[m.Edge]] = {}
        outs: dict[str, list[m.Edge]] = {}
        for origin, destination in sorted(g.edges):
            edge = m.Edge(origin=origin, destination=destination)
            ins.setdefault(destination, []).append(edge)
            outs.setdefault(origin, []).append(edge)
        return m.Lineage(graph=[m.Node(id=i, type="DATASET" if i.startswith("dataset:") else "JOB", data=data[i],
                                       inEdges=ins.get(i, []), outEdges=outs.get(i, [])) for i in sorted(data)])

    # -- column lineage -------------------------------------------------------------------------
    def column_lineage(self, node_id: str, depth: int, with_downstream: bool) -> m.Lineage:
        """The fields of a dataset (or one field, ``datasetField:ns:name:field``, or the datasets a job read
        and wrote, ``job:ns:name``) and the fields they come from, ``depth`` datasets up (and down, with
        ``with_downstream``), as Marquez's column lineage graph."""
        kind = node_id.partition(":")[0]
        graph = _ColumnGraph(self)
        wanted: dict[str, set[str] | None]
        if kind == "datasetField":
            start, field_name = self._resolve_field(node_id)
            wanted = {start.uri: {field_name}}
            starts = [start]
        elif kind in ("dataset", "job"):
            found = self._resolve(node_id)
            starts = [found] if isinstance(found, _Dataset) else self._job_datasets(found)
            wanted = {d.uri: None for d in starts}
        else:
            raise QueryError(f"column lineage starts at dataset:<ns>:<name>, datasetField:<ns>:<name>:<field> or "
                             f"job:<ns>:<name>, not {node_id[:80]!r}")
        for d in starts:
            graph.start(d, wanted[d.uri])
        graph.upstream(wanted, depth)
        if with_downstream:
            graph.downstream(wanted, depth)
        if kind == "datasetField" and f"datasetField:{starts[0].ns}:{starts[0].name}:{field_name}" not in graph.data:
            raise NotFoundError(f"no dataset field {node_id[len('datasetField:'):][:200]!r}")  # as for a hidden one
        return graph.lineage()

    def _job_datasets(self, job: _Job) -> list[_Dataset]:
        """The visible datasets a job reads and writes (its Marquez ``inputs`` and ``outputs``)."""
        j = self._jobs_out([job], latest=1)[0]
        out: dict[str, _Dataset] = {}
        for i in [*j.inputs, *j.outputs]:
            try:
                d = self._find_dataset(i.namespace, i.name)
            except NotFoundError:
                continue
            out.setdefault(d.uri, d)
        return list(out.values())

    def _resolve_field(self, node_id: str) -> tuple[_Dataset, str]:
        for _, ns, name, column in node_id_splits(node_id, 3):
            try:
                return self._find_dataset(ns, name), column
            except NotFoundError:
                continue
        raise NotFoundError(f"no dataset field {node_id[len('datasetField:'):][:200]!r}")


def _transformation(f: Any, i: Any) -> tuple[str | None, str | None]:
    """(description, type) of how an output field is made of an input field: the field's own (Marquez's),
    else the input's first transformation (the spec's newer form)."""
    return (f.transformation_description or _first(i.transformations, "description"),
            f.transformation_type or _first(i.transformations, "type"))


def _like(pattern: str) -> Callable[[str], bool]:
    """Whether a name matches ``%pattern%`` as SQL's ILIKE matches it (``%`` any text, ``_`` one character,
    case-insensitive); in time linear in the name per part of the pattern (no backtracking)."""
    parts = [re.compile(".".join(re.escape(p) for p in chunk.split("_")), re.IGNORECASE | re.DOTALL)
             for chunk in pattern.split("%") if chunk]

    def match(name: str) -> bool:
        at = 0
        for part in parts:
            found = part.search(name, at)
            if found is None:
                return False
            at = found.end()
        return True

    return match


def _first(transformations: list[dict[str, Any]], key: str) -> str | None:
    return _text(transformations[0].get(key)) if transformations else None


def _unique(ids: list[m.DatasetId]) -> list[m.DatasetId]:
    return list({(i.namespace, i.name): i for i in ids}.values())


class _ColumnGraph:
    """Field nodes and Marquez's column-lineage edges (an output field's ``inEdges`` point from it to the
    fields it comes from; an input field's ``outEdges`` from it to the fields made of it)."""

    def __init__(self, view: MarquezView) -> None:
        self.view = view
        self.data: dict[str, m.ColumnNodeData] = {}
        self.inputs_of: dict[str, list[str]] = {}  # field node → the field nodes it comes from
        self.seen: set[tuple[str, str | None]] = set()

    def _lineage_of(self, uri: str) -> tuple[_Dataset | None, Any]:
        found = self.view._datasets_of(list(self.view.store.nodes([artifact_node(uri)], NEVER).values()))
        if not found:
            return None, None
        return found[0], stated.column_lineage(self.view.q, uri, None)

    def _types(self, d: _Dataset) -> dict[str, str | None]:
        return {f.name: f.type for f in _fields(stated.dataset_facets(self.view.q, d.uri))}

    def start(self, d: _Dataset, fields: set[str] | None) -> None:
        """The start's own fields (those named, or all its schema's and column lineage's), even with no
        lineage: downstream of a source starts from them."""
        _, cl = self._lineage_of(d.uri)
        types = self._types(d)
        for name in sorted({*types, *(f.name for f in cl.fields)} if cl is not None else set(types)):
            if fields is None or name in fields:
                self.data.setdefault(f"datasetField:{d.ns}:{d.name}:{name}", m.ColumnNodeData(
                    namespace=d.ns, dataset=d.name, field=name, fieldType=types.get(name)))

    def _add(self, d: _Dataset, cl: Any, fields: set[str] | None) -> list[tuple[str, str]]:
        """The output fields of ``d`` (those named, or all) with their visible inputs; returns the (uri, field)
        pairs the inputs name, to go on up from."""
        types = self._types(d)
        up = []
        for f in cl.fields:
            if fields is not None and f.name not in fields:
                continue
            inputs = [i for i in f.inputs if self.view.who.sees(i.project)]
            node = f"datasetField:{d.ns}:{d.name}:{f.name}"
            made = [_transformation(f, i) for i in inputs]
            self.data[node] = m.ColumnNodeData(
                namespace=d.ns, dataset=d.name, datasetVersion=cl.version, field=f.name, fieldType=types.get(f.name),
                transformationDescription=f.transformation_description or next((t[0] for t in made if t[0]), None),
                transformationType=f.transformation_type or next((t[1] for t in made if t[1]), None),
                inputFields=[m.InputFieldData(namespace=i.namespace, dataset=i.name, field=i.field,
                                              transformationDescription=t[0], transformationType=t[1])
                             for i, t in zip(inputs, made, strict=True)])
            for i in inputs:
                src = f"datasetField:{i.namespace}:{i.name}:{i.field}"
                self.data.setdefault(src, m.ColumnNodeData(namespace=i.namespace, dataset=i.name, field=i.field,
                                                           fieldType=""))
                if src not in self.inputs_of.setdefault(node, []):
                    self.inputs_of[node].append(src)
                up.append((i.uri, i.field))
        return up

    def upstream(self, wanted: dict[str, set[str] | None], depth: int) -> None:
        level = 0
        while wanted and level <= depth:
            nxt: dict[str, set[str] | None] = {}
            for uri, fields in wanted.items():
                key_fields = fields if fields is not None else {None}
                if all((uri, f) in self.seen for f in key_fields):
                    continue
                self.seen.update((uri, f) for f in key_fields)
                d, cl = self._lineage_of(uri)
                if d is None:
                    continue
                for src_uri, src_field in self._add(d, cl, fields):
                    got = nxt.setdefault(src_uri, set())
                    if got is not None:
                        got.add(src_field)
            wanted = nxt if level < depth else {}
            level += 1

    def downstream(self, starts: dict[str, set[str] | None], depth: int) -> None:
        """Fields of the datasets written by runs that read the start (and so on), made of the start's fields
        (all of a dataset's, or those named) or of fields found so on."""
        view = self.view
        whole = {u for u, fields in starts.items() if fields is None}
        made_of = {(u, f) for u, fields in starts.items() for f in fields or ()}
        frontier, done = set(starts), set(starts)
        for _ in range(depth):
            versions = view.store.versions(sorted(frontier), NEVER)
            vids = [version_node(u, v.key) for u in frontier for v in versions.get(u, [])]
            readers = set(view._visible_apps({e.src for e in view.store.edges_to(vids, [READ], NEVER)}))
            written = {split_version_node(e.dst)[0] for e in view.store.edges_from(sorted(readers), list(LINEAGE_RELS),
                                                                                     NEVER) if e.rel != READ}
            frontier = set()
            for w in sorted(written - done):
                d, cl = self._lineage_of(w)
                if d is None:
                    continue
                names = {f.name for f in cl.fields if any(view.who.sees(i.project) and (
                    i.uri in whole or (i.uri, i.field) in made_of) for i in f.inputs)}
                if names:
                    self._add(d, cl, names)
                    made_of |= {(w, n) for n in names}
                    frontier.add(w)
            done |= frontier
            if not frontier:
                return

    def lineage(self) -> m.Lineage:
        out_edges: dict[str, list[str]] = {}
        for node, srcs in self.inputs_of.items():
            for s in srcs:
                out_edges.setdefault(s, []).append(node)
        return m.Lineage(graph=[m.Node(
            id=n, type="DATASET_FIELD", data=self.data[n],
            inEdges=[m.Edge(origin=n, destination=s) for s in self.inputs_of.get(n, [])],
            outEdges=[m.Edge(origin=n, destination=t) for t in out_edges.get(n, [])]) for n in sorted(self.data)])


__all__ = ["DEFAULT_NAMESPACE", "MarquezView", "node_id_splits", "run_uuid"]
