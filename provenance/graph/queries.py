"""The four lineage queries, written once over the store port (every backend answers alike).

- footprint(app): files and artifact versions the app touched, typed as Hopsworks does.
- impact(app | job | artifact): the union of footprints of every app that directly or transitively
  used an output of the start, with the artifacts it reached.
- upstream(artifact): the audit — every ancestor back to raw data, with apps, users, code and
  environment, plus the apps that later read the artifact.
- gdpr(uris): every model and deployment downstream of the data, one evidence path each.

Traversals go one level at a time so depth limit, time budget and node cap apply on every backend;
stopping early says ``partial: true`` and why. Every list is paginated with its total given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from provenance.errors import NotFoundError, QueryError
from provenance.events.model import ms_to_iso, normalize_uri
from provenance.graph.answers import (
    AncestorItem,
    AppInfo,
    ArtifactRef,
    ConsumerApp,
    EvidenceStep,
    FileTouch,
    Footprint,
    FootprintItem,
    Gdpr,
    GdprItem,
    GdprModel,
    Impact,
    ImpactItem,
    ParentRef,
    RankedApp,
    StartRef,
    TargetItem,
    Tier,
    Upstream,
    VersionItem,
)
from provenance.graph.lineage import Walk, app_of, hub_tier, is_hub, walk
from provenance.graph.model import (
    CREATED,
    DELETED,
    LINEAGE_RELS,
    MODIFIED,
    NEVER,
    PARENT,
    READ,
    WRITE_RELS,
    Edge,
    Node,
    Touch,
    app_node,
    artifact_node,
    facet_key,
    node_key,
    split_flow_node,
    split_version_node,
    version_node,
)
from provenance.graph.port import LineageStore
from provenance.processor.rules import Rules

INPUT, ADDED, MODIFIED_T, REMOVED, TMP = (
    "INPUT", "OUTPUT_ADDED", "OUTPUT_MODIFIED", "OUTPUT_REMOVED", "OUTPUT_TMP")
_TYPE_ORDER = {INPUT: 0, ADDED: 1, MODIFIED_T: 2, REMOVED: 3, TMP: 4}
_REL_TYPE = {READ: INPUT, CREATED: ADDED, MODIFIED: MODIFIED_T, DELETED: REMOVED}
MODEL_TYPES = frozenset({"model"})
#: the kinds of artifact that are made, not copied: of the others (files, datasets, tables) one made from another
#: alone is a copy of its data
MADE_KINDS = frozenset({"model", "deployment", "feature_group", "training_dataset", "experiment", "report", "code",
                        "log", "tool_state"})


def _kind(artifact_type: str) -> str:
    return artifact_type if artifact_type in MADE_KINDS else "data"

DEPLOYMENT_TYPES = frozenset({"deployment"})
T = TypeVar("T")
PARENT_FACET = facet_key("run", "parent")


@dataclass(frozen=True)
class Limits:
    depth: int = 10
    time_budget_s: float = 5.0
    max_nodes: int = 100_000
    limit: int = 1000
    offset: int = 0

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise QueryError("depth must be at least 1")
        if self.limit < 1 or self.offset < 0:
            raise QueryError("limit must be >= 1 and offset >= 0")
        if self.time_budget_s <= 0:
            raise QueryError("time budget must be positive")


def page(items: Sequence[T], limits: Limits) -> list[T]:
    return list(items[limits.offset : limits.offset + limits.limit])


class LineageQueries:
    def __init__(self, store: LineageStore, rules: Rules) -> None:
        self.store = store
        self.rules = rules

    # -- resolving what the user named ----------------------------------------------------
    def resolve_app(self, app: str, as_of: int = NEVER) -> Node:
        key = app.removeprefix("app:")
        found = self.store.nodes([app_node(key)], as_of)
        if not found:
            raise NotFoundError(f"no app {key!r}" + ("" if as_of == NEVER else f" as of {ms_to_iso(as_of)}"))
        return found[app_node(key)]

    def resolve_artifact(self, ref: str, as_of: int = NEVER) -> tuple[str, str | None]:
        """(artifact root uri, version key or None) for a URI, a path, or ``uri@version``."""
        text = ref.strip()
        if not text:
            raise QueryError("empty artifact reference")
        explicit: str | None = None
        base, at, tail = text.rpartition("@")
        if at and tail and "/" not in tail:
            text, explicit = base, tail
        try:
            uri = normalize_uri(text)
        except ValueError as exc:
            raise QueryError(f"not a URI or absolute path: {ref!r} ({exc})") from exc
        if self.store.nodes([artifact_node(uri)], as_of):
            return uri, explicit
        art = self.rules.classify(uri)
        if not self.store.nodes([artifact_node(art.uri)], as_of):
            when = "" if as_of == NEVER else f" as of {ms_to_iso(as_of)}"
            raise NotFoundError(f"no artifact at {ref!r}{when}")
        return art.uri, explicit or art.version

    def versions_of(self, ref: str, as_of: int, *, latest_only: bool) -> list[str]:
        uri, key = self.resolve_artifact(ref, as_of)
        versions = self.store.versions([uri], as_of)[uri]
        if key is not None:
            wanted = [v for v in versions if v.key == key or v.label == key]
            if not wanted:
                raise NotFoundError(f"artifact {uri} has no version {key!r}"
                                    + ("" if as_of == NEVER else f" as of {ms_to_iso(as_of)}"))
            return [version_node(uri, wanted[0].key)]
        if not versions:
            raise NotFoundError(f"artifact {uri} has no version yet")
        chosen = versions[-1:] if latest_only else versions
        return [version_node(uri, v.key) for v in chosen]

    # -- traversal ------------------------------------------------------------------------
    def traverse(self, starts: Iterable[str], direction: str, as_of: int, limits: Limits) -> Walk:
        """The lineage walk (`provenance.graph.lineage`), leaving out what the rules keep out of lineage."""
        return walk(self.store, starts, direction, as_of, depth=limits.depth, time_budget_s=limits.time_budget_s,
                    max_nodes=limits.max_nodes, excluded=lambda vids: self._excluded(vids, as_of))

    def _excluded(self, version_ids: Iterable[str], as_of: int) -> set[str]:
        exclude = self.rules.lineage_exclude
        return {v for v, (t, _) in self._types(version_ids, as_of).items() if t in exclude} if exclude else set()

    def content_peers(self, version_ids: Iterable[str], as_of: int) -> dict[str, list[str]]:
        """For each version, the versions of other artifacts that hold one of its files' bytes (copies: the
        same hash at another path), by what the captures hashed."""
        vids = sorted(set(version_ids))
        if not vids:
            return {}
        arts = {v: split_version_node(v)[0] for v in vids}
        creators = {v: n.props.get("creator") for v, n in self.store.nodes(vids, as_of).items()}
        mine: dict[str, set[str]] = {}  # version → the hashes of its files
        for c in self.store.contents(artifacts=sorted(set(arts.values())), as_of=as_of):
            for v, art in arts.items():
                key = split_version_node(v)[1]
                if c.artifact != art:
                    continue
                if (key.startswith("#") and c.hash.rpartition(":")[2].startswith(key[1:])) or (
                        not key.startswith("#") and c.app == creators.get(v) and c.op in _WRITTEN):
                    mine.setdefault(v, set()).add(c.hash)
        hashes = {h for hs in mine.values() for h in hs}
        others = [c for c in self.store.contents(hashes=hashes, as_of=as_of)] if hashes else []
        # a copy's version: of a file that is its own artifact, its content key; else what that app wrote or read
        single = {c for c in others if c.uri == c.artifact}
        written: dict[tuple[str, str], set[str]] = {}
        pairs = {(c.app, c.artifact) for c in others if c not in single}
        if pairs:
            for e in self.store.edges_from(sorted({app_node(a) for a, _ in pairs}), list(LINEAGE_RELS), as_of):
                art = split_version_node(e.dst)[0]
                if (node_key(e.src), art) in pairs:
                    written.setdefault((node_key(e.src), art), set()).add(e.dst)
        out: dict[str, list[str]] = {}
        for v, hs in mine.items():
            peers: set[str] = set()
            for c in others:
                if c.hash not in hs or c.artifact == arts[v]:
                    continue
                if c in single:
                    peers.add(version_node(c.artifact, "#" + c.hash.rpartition(":")[2][:16]))
                else:
                    peers |= written.get((c.app, c.artifact), set())
            if peers:
                existing = self.store.nodes(sorted(peers), as_of)
                out[v] = sorted(p for p in peers if p in existing)
        return out

    # -- describing nodes -------------------------------------------------------------------
    def version_fields(self, version_ids: Iterable[str], as_of: int) -> dict[str, dict[str, Any]]:
        """The fields of a `VersionItem` for each version id (a dict, so callers can add their own)."""
        vids = sorted(set(version_ids))
        vnodes = self.store.nodes(vids, as_of)
        uris = sorted({split_version_node(v)[0] for v in vids})
        anodes = self.store.nodes([artifact_node(u) for u in uris], as_of)
        projects = self.artifact_projects(uris, as_of, anodes)
        creators = sorted({app_node(str(c)) for vn in vnodes.values() if (c := vn.props.get("creator"))})
        refs = {a.app_id: a.ref() for a in self.describe_apps(creators, as_of).values()} if creators else {}
        out = {}
        for v in vids:
            uri, key = split_version_node(v)
            an = anodes.get(artifact_node(uri))
            vn = vnodes.get(v)
            tags = dict(an.tags) if an else {}
            props = an.props if an else {}
            creator = vn.props.get("creator") if vn else None
            out[v] = {
                "uri": uri,
                "version": str(vn.label) if vn and vn.label else key,
                "version_key": key,
                "version_uri": f"{uri}@{key}",
                "type": str(tags.get(self.rules.type_key) or props.get("type", "file")),
                "name": _str(props.get("name")),
                "project": projects.get(uri),
                "tags": tags,
                "created_ts": vn.first_ts if vn else None,
                "created_by": refs.get(str(creator)) if creator else None,
                "outside": vn is not None and not creator and key.startswith("#"),
            }
        return out

    def version_items(self, version_ids: Iterable[str], as_of: int) -> dict[str, VersionItem]:
        return {v: VersionItem(**f) for v, f in self.version_fields(version_ids, as_of).items()}

    def artifact_projects(self, uris: Iterable[str], as_of: int,
                          nodes: dict[str, Node] | None = None) -> dict[str, str | None]:
        """The project of each artifact: its naming rule's, else that of the run that created it
        (the creator of its first version that has one). The one rule everything visible follows.
        Decided on what is known now, whatever ``as_of``: an artifact a project's run creates later is that
        project's in the past too (else time travel would show what it hides). A URI no event named yet (a
        dataset a facet names) is its naming rule's."""
        uris = sorted(set(uris))
        if nodes is None or as_of != NEVER:
            nodes = self.store.nodes([artifact_node(u) for u in uris], NEVER)
        out: dict[str, str | None] = {}
        unruled = []
        for u in uris:
            n = nodes.get(artifact_node(u))
            project = n.props.get("project") if n else self._rule_project(u)
            if project:
                out[u] = str(project)
            elif n is not None:
                unruled.append(u)
            else:
                out[u] = None
        if unruled:
            creator: dict[str, str] = {}
            for u, vs in self.store.versions(unruled, NEVER).items():
                first = next((v.creator for v in vs if v.creator), None)
                if first:
                    creator[u] = app_node(first)
            apps = self.store.nodes(sorted(set(creator.values())), NEVER) if creator else {}
            for u in unruled:
                a = apps.get(creator.get(u, ""))
                out[u] = self.app_project(a.props) if a else None
        return out

    def _rule_project(self, uri: str) -> str | None:
        try:
            return self.rules.classify(uri).project
        except ValueError:  # not a URI the rules read: no rule names its project
            return None

    def _types(self, version_ids: Iterable[str], as_of: int) -> dict[str, tuple[str, dict[str, str]]]:
        """(effective type, tags) of each version's artifact: enough to filter and to propagate tags."""
        vids = set(version_ids)
        arts = {v: artifact_node(split_version_node(v)[0]) for v in vids}
        anodes = self.store.nodes(sorted(set(arts.values())), as_of)
        out = {}
        for v, a in arts.items():
            n = anodes.get(a)
            tags = dict(n.tags) if n else {}
            out[v] = (tags.get(self.rules.type_key) or (n.props.get("type", "file") if n else "file"), tags)
        return out

    def _users_of(self, app_ids: Sequence[str], as_of: int) -> list[str]:
        return sorted({node_key(e.src) for e in self.store.edges_to(app_ids, ["RAN"], as_of)})

    def describe_apps(self, app_ids: Iterable[str], as_of: int) -> dict[str, AppInfo]:
        ids = sorted(set(app_ids))
        nodes = self.store.nodes(ids, as_of)
        jobs: dict[str, str] = {}
        parents: dict[str, str] = {}
        for e in self.store.edges_from(ids, ["INSTANCE_OF", PARENT], as_of):
            if e.rel == PARENT:
                parents[e.src] = e.dst
            else:
                jobs[e.src] = node_key(e.dst)
        parent_refs = self._parent_refs(set(parents.values()), as_of) if parents else {}
        users: dict[str, list[str]] = {}
        for e in self.store.edges_to(ids, ["RAN"], as_of):
            users.setdefault(e.dst, []).append(node_key(e.src))
        out = {}
        for i in ids:
            n = nodes.get(i)
            p = n.props if n else {}
            parent_facet = None
            if PARENT_FACET in p:  # it names the parent run, which may be hidden from whom this run is not
                p = dict(p)
                parent_facet = p.pop(PARENT_FACET)
            command = p.get("command")
            out[i] = AppInfo(
                app_id=node_key(i),
                uri=i,
                job=jobs.get(i),
                users=sorted(users.get(i, [])),
                state=str(p.get("state", "unknown")),
                placeholder="state" not in p,
                command=[str(c) for c in command] if isinstance(command, list) else _str(command),
                git_commit=_str(p.get("git_commit")),
                git_dirty=p.get("git_dirty") if isinstance(p.get("git_dirty"), bool) else None,
                env_hash=_str(p.get("env_hash")),
                python=_str(p.get("python")),
                host=_str(p.get("host")),
                project=self.app_project(p),
                exit_code=p.get("exit_code") if type(p.get("exit_code")) is int else None,
                started_ts=_int(p.get("started_ts")) or _int(p.get("submitted_ts")) or (n.first_ts if n else None),
                ended_ts=_int(p.get("ended_ts")),
                props=p,
                parent=_parent(parent_refs.get(parents.get(i, "")), parent_facet),
            )
        return out

    def _parent_refs(self, ids: set[str], as_of: int) -> dict[str, ParentRef]:
        """The runs that started others (PARENT), named as a reference carrying their own project."""
        nodes = self.store.nodes(sorted(ids), as_of)
        jobs = {e.src: node_key(e.dst) for e in self.store.edges_from(sorted(ids), ["INSTANCE_OF"], as_of)}
        return {i: ParentRef(app_id=node_key(i), job=jobs.get(i), project=self.app_project(n.props))
                for i, n in nodes.items()}

    def app_project(self, props: dict[str, Any]) -> str | None:
        """The run's own project (``--project``), else the project of its working directory by the naming
        rules. The one rule everything visible follows."""
        if props.get("project"):
            return str(props["project"])
        cwd = props.get("cwd")
        if isinstance(cwd, str) and cwd.startswith("/"):
            try:
                return self.rules.classify(normalize_uri(cwd.rstrip("/") + "/_")).project
            except ValueError:
                return None
        return None

    # -- footprint --------------------------------------------------------------------------
    def footprint(self, app: str, as_of: int = NEVER, limits: Limits = Limits()) -> Footprint:
        node = self.resolve_app(app, as_of)
        key = node_key(node.id)
        files = classify_files(self.store.touches_of_apps([key], as_of))
        edges = self.store.edges_from([node.id], list(LINEAGE_RELS), as_of)
        artifacts = self._typed_versions(edges, as_of)
        shown_files = page(files, limits)
        projects = self.artifact_projects({f.artifact for f in shown_files}, as_of)
        return Footprint(
            as_of=_iso_or_none(as_of),
            app=self.describe_apps([node.id], as_of)[node.id],
            artifacts=page(artifacts, limits),
            files=[f.model_copy(update={"project": projects.get(f.artifact)}) for f in shown_files],
            totals={"artifacts": len(artifacts), "files": len(files)},
            offset=limits.offset,
            limit=limits.limit,
        )

    def _typed_versions(self, edges: list[Edge], as_of: int) -> list[FootprintItem]:
        by_version: dict[str, set[str]] = {}
        times: dict[str, list[int]] = {}
        for e in edges:
            by_version.setdefault(e.dst, set()).add(e.rel)
            t = times.setdefault(e.dst, [e.first_ts, e.last_ts])
            t[0], t[1] = min(t[0], e.first_ts), max(t[1], e.last_ts)
        fields = self.version_fields(by_version, as_of)
        out = [FootprintItem(**fields[v], types=_types_of(rels), first_ts=times[v][0], last_ts=times[v][1])
               for v, rels in by_version.items()]
        out.sort(key=lambda i: (_TYPE_ORDER[i.types[0]], i.uri, i.version_key))
        return out

    # -- impact -----------------------------------------------------------------------------
    def impact(self, *, app: str | None = None, job: str | None = None, artifact: str | None = None,
               as_of: int = NEVER, limits: Limits = Limits()) -> Impact:
        if sum(x is not None for x in (app, job, artifact)) != 1:
            raise QueryError("impact needs exactly one of app, job or artifact")
        if app is not None:
            starts = [self.resolve_app(app, as_of).id]
        elif job is not None:
            starts = self.job_apps(job, as_of)
        else:
            assert artifact is not None
            starts = self.versions_of(artifact, as_of, latest_only=False)
        tr = self.traverse(starts, "down", as_of, limits)
        start_apps = {app_of(x) for x in starts if is_hub(x)}
        app_depth, app_certain = _app_reach(tr)
        reached_apps = sorted((a for a in app_depth if a not in start_apps), key=lambda a: (app_depth[a], a))
        reached_versions = {n for n in tr.depth if n.startswith("version:") and n not in starts}
        # the union of the reached apps' footprints, ordered without reading a single node
        rels: dict[str, set[str]] = {}
        times: dict[str, list[int]] = {}
        for e in self.store.edges_from(reached_apps, list(LINEAGE_RELS), as_of):
            rels.setdefault(e.dst, set()).add(e.rel)
            t = times.setdefault(e.dst, [e.first_ts, e.last_ts])
            t[0], t[1] = min(t[0], e.first_ts), max(t[1], e.last_ts)
        order = sorted(rels, key=lambda v: (v not in reached_versions, tr.depth.get(v, 0), split_version_node(v)))
        shown = order[limits.offset : limits.offset + limits.limit]
        fields = self.version_fields(shown, as_of)
        artifacts = [ImpactItem(**fields[v], types=_types_of(rels[v]), first_ts=times[v][0], last_ts=times[v][1],
                                reached=v in reached_versions, depth=tr.depth.get(v),
                                tier=tr.tier.get(v) if v in reached_versions else None,
                                certain=(v in tr.certain) if v in reached_versions else None) for v in shown]
        app_page = reached_apps[limits.offset : limits.offset + limits.limit]
        apps = self.describe_apps(app_page, as_of)
        return Impact(
            as_of=_iso_or_none(as_of),
            start=self._start_refs(starts, as_of),
            apps=[_ranked(apps[a], app_depth[a], app_certain[a]) for a in app_page],
            artifacts=artifacts,
            totals={"apps": len(reached_apps), "artifacts": len(order)},
            offset=limits.offset,
            limit=limits.limit,
            partial=tr.partial,
            reason=tr.reason,
        )

    def _start_refs(self, starts: list[str], as_of: int) -> list[StartRef]:
        apps = self.describe_apps([s for s in starts if s.startswith("app:")], as_of)
        versions = self.version_fields([s for s in starts if s.startswith("version:")], as_of)
        out = []
        for s in starts:
            if s in apps:
                out.append(StartRef(kind="app", uri=s, project=apps[s].project))
            else:
                f = versions[s]
                out.append(StartRef(kind="artifact", uri=f["version_uri"], project=f["project"]))
        return out

    def job_apps(self, job: str, as_of: int) -> list[str]:
        """Runs of a job, named ``project/stage`` or just ``stage`` (then in every project)."""
        name = job.removeprefix("job:")
        jobs = [f"job:{name}"]
        if "/" not in name:
            found, _ = self.store.find_nodes("job", as_of=as_of, where={"name": name}, limit=10_000)
            jobs += [n.id for n in found]
        edges = self.store.edges_to(sorted(set(jobs)), ["INSTANCE_OF"], as_of)
        if not edges:
            raise NotFoundError(f"no job {name!r} with runs" + ("" if as_of == NEVER else f" as of {ms_to_iso(as_of)}"))
        return sorted({e.src for e in edges})

    # -- upstream / audit -------------------------------------------------------------------
    def upstream(self, artifact: str, as_of: int = NEVER, limits: Limits = Limits()) -> Upstream:
        target = self.versions_of(artifact, as_of, latest_only=True)[0]
        tr = self.traverse([target], "up", as_of, limits)
        version_ids = sorted((n for n in tr.depth if n.startswith("version:") and n != target),
                             key=lambda v: (tr.depth[v], split_version_node(v)))
        app_depth, app_certain = _app_reach(tr)
        app_ids = sorted(app_depth)
        shown = version_ids[limits.offset : limits.offset + limits.limit]
        apps = self.describe_apps(app_ids, as_of)
        fields = self.version_fields([*shown, target], as_of)
        ancestors = []
        for v in shown:
            path = tr.path_to(v)
            via = [app_of(path[-2][0])] if len(path) >= 2 and is_hub(path[-2][0]) else []
            ancestors.append(AncestorItem(**fields[v], depth=tr.depth[v], via=[apps[a].ref() for a in via if a in apps],
                                          tier=tr.tier.get(v, "run"), certain=v in tr.certain))
        carriers: dict[str, list[str]] = {}  # propagating tag → the upstream versions that carry it
        for v, (_, tags) in sorted(self._types(version_ids, as_of).items()):
            for key in tags:
                if key in self.rules.propagate:
                    carriers.setdefault(key, []).append(v)
        inherited = self._inherited(carriers, as_of)
        consumer_list = self._consumers(target, as_of)
        app_list = sorted((_ranked(apps[a], app_depth[a], app_certain[a]) for a in app_ids),
                          key=lambda i: (i.depth, i.app_id))
        return Upstream(
            as_of=_iso_or_none(as_of),
            target=TargetItem(**fields[target], inherited_tags=inherited),
            artifacts=ancestors,
            apps=page(app_list, limits),
            users=sorted({u for a in apps.values() for u in a.users}),
            code_versions=sorted({a.git_commit for a in apps.values() if a.git_commit}),
            environments=sorted({a.env_hash for a in apps.values() if a.env_hash}),
            consumers=page(consumer_list, limits),
            totals={"artifacts": len(version_ids), "apps": len(app_list), "consumers": len(consumer_list)},
            offset=limits.offset,
            limit=limits.limit,
            partial=tr.partial,
            reason=tr.reason,
        )

    def _consumers(self, target: str, as_of: int) -> list[ConsumerApp]:
        """The runs that later read the target, or a copy of it (the same bytes at another path: a model and the
        deployment it was copied to share their evaluations, bias tests and deployments)."""
        copies = self.content_peers([target], as_of).get(target, [])
        read = self.store.edges_to([target, *copies], [READ], as_of)
        through: dict[str, str | None] = {}
        for e in sorted(read, key=lambda e: e.dst != target):
            if e.src.startswith("app:"):  # (a run's processes read it too: the run is the consumer)
                through.setdefault(e.src, None if e.dst == target else e.dst)
        consumer_ids = sorted(through)
        consumers = self.describe_apps(consumer_ids, as_of)
        outputs = self.store.edges_from(consumer_ids, list(WRITE_RELS), as_of)
        out_items = self.version_items([e.dst for e in outputs], as_of)
        copy_refs = {v: ArtifactRef(uri=f.uri, version=f.version, project=f.project)
                     for v, f in self.version_items({c for c in through.values() if c}, as_of).items()}
        out = []
        for c in consumer_ids:
            produced = sorted({e.dst for e in outputs if e.src == c} - {target, *copies})
            copy = through[c]
            out.append(ConsumerApp(**_fields(consumers[c]), outputs=[out_items[p] for p in produced],
                                   through=copy_refs.get(copy) if copy else None))
        return out

    def _inherited(self, carriers: dict[str, list[str]], as_of: int) -> dict[str, list[ArtifactRef]]:
        """Each propagating tag with the artifacts it came from (one entry per artifact)."""
        projects = self.artifact_projects({split_version_node(v)[0] for vs in carriers.values() for v in vs}, as_of)
        out: dict[str, list[ArtifactRef]] = {}
        for key, vids in sorted(carriers.items()):
            uris = list(dict.fromkeys(split_version_node(v)[0] for v in vids))
            out[key] = [ArtifactRef(uri=u, project=projects.get(u)) for u in uris]
        return out

    # -- gdpr -------------------------------------------------------------------------------
    def gdpr(self, uris: Sequence[str], as_of: int = NEVER, limits: Limits = Limits()) -> Gdpr:
        """Every model and deployment the data reached, with one evidence path each; what is certain to hold
        it (exact flows) apart from what possibly does (a run read it among other inputs). The data's copies
        count as the data: where its content came from (a version made from it alone, walking up) and every
        other copy of the same bytes."""
        if not uris:
            raise QueryError("gdpr needs at least one data URI")
        data: list[str] = []
        for u in uris:
            data.extend(self.versions_of(u, as_of, latest_only=False))
        copy_tiers = self._copies(data, as_of)
        copies = list(copy_tiers)
        starts = sorted({*data, *copies})
        tr = self.traverse(starts, "down", as_of, limits)
        version_ids = sorted((n for n in tr.depth if n.startswith("version:") and n not in starts),
                             key=lambda v: (v not in tr.certain, tr.depth[v], split_version_node(v)))
        app_depth, app_certain = _app_reach(tr)
        app_ids = sorted(app_depth, key=lambda a: (app_depth[a], a))
        types = self._types([*version_ids, *starts], as_of)
        carriers = {k: [s] for s in data for k in types[s][1] if k in self.rules.propagate}
        propagating = self._inherited(carriers, as_of)
        # a run's own log may hold what it read: the logs of every run the data reached, listed apart
        run_logs = {e.dst for e in self.store.edges_from(app_ids, list(WRITE_RELS), as_of)} - set(types)
        types.update(self._types(run_logs, as_of))
        logs = sorted({v for v in [*version_ids, *run_logs] if types[v][0] == "log"})
        derived_ids = [v for v in version_ids if v not in tr.excluded]
        # a model or deployment holding the same bytes as the data (a deployment of the model asked about) is
        # one that uses it, as well as a copy
        copy_models = [c for c in copies if types[c][0] in MODEL_TYPES | DEPLOYMENT_TYPES]
        same_bytes = self.content_peers(data, as_of) if copy_models else {}
        model_ids = [*copy_models, *(v for v in derived_ids if types[v][0] in MODEL_TYPES | DEPLOYMENT_TYPES)]
        model_ids.sort(key=lambda v: (v not in tr.certain, types[v][0] != "deployment", tr.depth[v],
                                      split_version_node(v)))
        models_shown = model_ids[limits.offset : limits.offset + limits.limit]
        derived_shown = derived_ids[limits.offset : limits.offset + limits.limit]
        apps_shown = app_ids[limits.offset : limits.offset + limits.limit]
        evidence_nodes = {n for m in models_shown for n, _ in tr.path_to(m)}
        fields = self.version_fields({*derived_shown, *models_shown, *starts, *logs,
                                      *(n for n in evidence_nodes if n.startswith("version:"))}, as_of)
        apps = self.describe_apps({*apps_shown, *(app_of(n) for n in evidence_nodes if is_hub(n))}, as_of)
        deleted = {e.dst for e in self.store.edges_to(sorted({*derived_shown, *models_shown, *copies}), [DELETED],
                                                      as_of)}
        currency = self._currency(models_shown, as_of)
        deployed_now = self._deployed_now([m for m in models_shown if types[m][0] in MODEL_TYPES], tr, as_of)

        def described(v: str, depth: int | None = None) -> dict[str, Any]:
            return {**fields[v], "depth": tr.depth.get(v, 0) if depth is None else depth, "deleted": v in deleted,
                    "inherited_tags": propagating, "tier": tr.tier.get(v, "run"), "certain": v in tr.certain}

        models = []
        for v in models_shown:
            current, superseded = currency[v]
            is_deployment = types[v][0] in DEPLOYMENT_TYPES
            item = described(v)
            evidence = self._evidence(tr, v, fields, apps)
            if v in copy_tiers:  # the same data as what was asked about: known by how the copy was found
                item.update(tier=copy_tiers[v], certain=True, depth=0)
                origin = next((d for d, ps in same_bytes.items() if v in ps), data[0])
                evidence = [*self._evidence(tr, origin, fields, apps), *evidence]
                evidence[-1] = evidence[-1].model_copy(update={"rel": f"same data ({copy_tiers[v]})"})
            models.append(GdprModel(**item, current=current, superseded_ts=superseded,
                                    deployed=(current and v not in deleted) if is_deployment else v in deployed_now,
                                    evidence=evidence))
        return Gdpr(
            as_of=_iso_or_none(as_of),
            data=[VersionItem(**fields[s]) for s in data],
            copies=[GdprItem(**{**described(c, 0), "tier": copy_tiers[c], "certain": True}) for c in copies],
            models=models,
            apps=[_ranked(apps[a], app_depth[a], app_certain[a]) for a in apps_shown],
            users=self._users_of(app_ids, as_of),
            derived=[GdprItem(**described(v)) for v in derived_shown],
            logs=[VersionItem(**fields[v]) for v in logs],
            totals={"models": len(model_ids), "apps": len(app_ids), "derived": len(derived_ids),
                    "copies": len(copies), "logs": len(logs)},
            offset=limits.offset,
            limit=limits.limit,
            partial=tr.partial,
            reason=tr.reason,
        )

    def _copies(self, data: list[str], as_of: int, rounds: int = 10) -> dict[str, Tier]:
        """The versions that hold the data as well, with how each is known: every copy of the same bytes
        (``content``); where the data came from, when exact flows made it from one data version alone (it must
        have come from there); and the other branches made from that origin alone (the archive written beside
        the raw file from the same inbox file), repeatedly from each copy found. What the data itself was made
        into is derived, not a copy."""
        found: dict[str, Tier] = {v: "declared" for v in data}
        frontier = list(data)

        def single_sources(vids: list[str]) -> dict[str, tuple[str, Tier]]:
            """Of ``vids``, those made by exact flows from exactly one data version (code aside): that one."""
            up = walk(self.store, vids, "up", as_of, depth=1, time_budget_s=5.0, max_nodes=10_000,
                      excluded=lambda x: self._excluded(x, as_of))
            sources: dict[str, set[str]] = {}
            for v in up.versions():
                if v in vids or v not in up.certain:
                    continue
                sources.setdefault(up.path_to(v)[0][0], set()).add(v)
            types = self._types({*sources, *(x for s in sources.values() for x in s)}, as_of)
            code = {v for v, (t, _) in types.items() if t == "code"}
            out = {}
            for origin, srcs in sources.items():
                data_sources = srcs - code
                if len(data_sources) == 1:
                    (only,) = data_sources
                    # a copy keeps its kind: a model trained from one dataset, a feature group computed from
                    # one file, are made from it, not copies of it
                    if _kind(types[only][0]) == _kind(types[origin][0]):
                        out[origin] = (only, up.tier.get(only, "process"))
            return out

        for _ in range(rounds):
            if not frontier:
                break
            new: dict[str, Tier] = {}
            for peers in self.content_peers(frontier, as_of).values():
                new.update({p: "content" for p in peers})
            origins = {}
            for source, tier in single_sources(frontier).values():
                if source not in found:
                    origins[source] = tier  # where it came from
            new.update(origins)
            if origins:  # the other branches copied from where it came from (the archive beside the raw file)
                down = walk(self.store, sorted(origins), "down", as_of, depth=1, time_budget_s=5.0,
                            max_nodes=10_000, excluded=lambda x: self._excluded(x, as_of))
                made = sorted(v for v in down.versions() if v not in found and v not in origins and v in down.certain)
                for v, (source, tier) in single_sources(made).items():
                    if source in origins:
                        new.setdefault(v, tier)
            frontier = sorted(set(new) - set(found))
            for v in frontier:
                found[v] = new[v]
        return {v: t for v, t in sorted(found.items()) if v not in set(data)}

    def _currency(self, version_ids: list[str], as_of: int) -> dict[str, tuple[bool, int | None]]:
        """(the newest version of its artifact then, when a newer one replaced it) of each version."""
        by_art: dict[str, list[str]] = {}
        for v in version_ids:
            by_art.setdefault(split_version_node(v)[0], []).append(v)
        versions = self.store.versions(sorted(by_art), as_of)
        out: dict[str, tuple[bool, int | None]] = {}
        for art, vids in by_art.items():
            timeline = [(x.created_ts, version_node(art, x.key)) for x in versions.get(art, [])]
            for v in vids:
                later = [ts for ts, other in timeline if other != v and ts > next(
                    (t for t, o in timeline if o == v), 2**62)]
                out[v] = (not later, min(later) if later else None)
        return out

    def _deployed_now(self, models: list[str], tr: Walk, as_of: int) -> set[str]:
        """Model versions a deployment holds now: the current version of a deployment (not deleted) was made
        from the model version, or holds its bytes."""
        if not models:
            return set()
        down = walk(self.store, models, "down", as_of, depth=2, time_budget_s=5.0, max_nodes=10_000,
                    excluded=lambda vids: self._excluded(vids, as_of))
        peers = self.content_peers(models, as_of)
        reached: dict[str, set[str]] = {}
        for v in down.versions():
            origin = down.path_to(v)[0][0]
            reached.setdefault(origin, set()).add(v)
        for m, ps in peers.items():
            reached.setdefault(m, set()).update(ps)
        candidates = {v for vs in reached.values() for v in vs}
        types = self._types(candidates, as_of)
        deployments = sorted(v for v in candidates if types[v][0] in DEPLOYMENT_TYPES)
        currency = self._currency(deployments, as_of)
        deleted = {e.dst for e in self.store.edges_to(deployments, [DELETED], as_of)}
        live = {d for d in deployments if currency[d][0] and d not in deleted}
        return {m for m, vs in reached.items() if vs & live}

    def _evidence(self, tr: Walk, v: str, fields: dict[str, dict[str, Any]],
                  apps: dict[str, AppInfo]) -> list[EvidenceStep]:
        steps = []
        path = tr.path_to(v)
        flows = self.store.nodes([n for n, _ in path if n.startswith("flow:")], NEVER)
        for node, rel in path:
            if is_hub(node):
                a = apps[app_of(node)]
                flow = split_flow_node(node)[1] if node.startswith("flow:") else None
                steps.append(EvidenceStep(kind="app", uri=a.uri, app_id=a.app_id, job=a.job, users=a.users,
                                          project=a.project, rel=rel, flow=flow,
                                          process=_process_text(flow, flows[node].props if node in flows else {}),
                                          tier=hub_tier(node)))
            else:
                f = fields[node]
                steps.append(EvidenceStep(kind="artifact", uri=f["uri"], version=f["version"], type=f["type"],
                                          project=f["project"], rel=rel))
        return steps


def _process_text(flow: str | None, props: dict[str, Any]) -> str | None:
    """How a flow reads in an evidence path: the process's command line (or program) and pid; a move; a
    source's statement."""
    if not flow:
        return None
    kind = flow.split(":", 1)[0]
    if kind == "mv":
        return "a move (rename)"
    if kind == "d":
        return "as a source declared it"
    argv = props.get("argv")
    text = " ".join(map(str, argv)) if isinstance(argv, list) and argv else str(props.get("exe") or "a process")
    if len(text) > 120:
        text = text[:119] + "…"
    pid = props.get("pid")
    return f"{text} (pid {pid})" if pid is not None else text


def _parent(ref: ParentRef | None, facet: Any) -> ParentRef | None:
    if ref is None:
        return None
    return ref.model_copy(update={"facet": facet}) if isinstance(facet, dict) else ref


def _types_of(rels: Iterable[str]) -> list[str]:
    """Hopsworks footprint types of an app's edges to one version (created and removed: temporary)."""
    types = {_REL_TYPE[r] for r in rels}
    if ADDED in types and REMOVED in types:
        types -= {ADDED, REMOVED}
        types.add(TMP)
    return sorted(types, key=_TYPE_ORDER.__getitem__)


def classify_files(touches: list[Touch]) -> list[FileTouch]:
    """File-level footprint: each file the app touched, with its Hopsworks types (project not yet set)."""
    by_file: dict[str, dict[str, Any]] = {}
    for t in touches:
        if t.op == "commit":
            continue  # a commit is table-level; its files are touches of their own
        f = by_file.setdefault(t.uri, {"uri": t.uri, "artifact": t.artifact, "ops": {}, "first_ts": t.first_ts,
                                       "last_ts": t.last_ts})
        f["ops"][t.op] = (min(f["ops"].get(t.op, (t.first_ts, 0))[0], t.first_ts),
                          max(f["ops"].get(t.op, (0, t.last_ts))[1], t.last_ts))
        f["first_ts"] = min(f["first_ts"], t.first_ts)
        f["last_ts"] = max(f["last_ts"], t.last_ts)
    out = []
    for f in by_file.values():
        ops = f.pop("ops")
        types = set()
        made = [ops[o][1] for o in ("create", "rename_to") if o in ops]
        first_made = min((ops[o][0] for o in ("create", "rename_to") if o in ops), default=None)
        if "read" in ops and (first_made is None or ops["read"][0] < first_made):
            types.add(INPUT)  # reading back what the app itself wrote is not an input
        gone = [ops[o][1] for o in ("delete", "rename_from") if o in ops]
        if made and gone and max(gone) >= max(made):
            types.add(TMP)
        elif made:
            types.add(ADDED)
        elif gone:
            types.add(REMOVED)
        if "write" in ops and not made:
            types.add(MODIFIED_T)
        if not types:
            continue
        out.append(FileTouch(types=sorted(types, key=_TYPE_ORDER.__getitem__), **f))
    out.sort(key=lambda i: (_TYPE_ORDER[i.types[0]], i.uri))
    return out


def _ranked(app: AppInfo, depth: int, certain: bool = True) -> RankedApp:
    return RankedApp(**_fields(app), depth=depth, certain=certain)


def _app_reach(tr: Walk) -> tuple[dict[str, int], dict[str, bool]]:
    """Each app a walk reached through any of its hubs: its least depth, and whether an exact path reached it."""
    depth: dict[str, int] = {}
    certain: dict[str, bool] = {}
    for hub in tr.hubs():
        a = app_of(hub)
        depth[a] = min(depth.get(a, 2**31), tr.depth[hub])
        certain[a] = certain.get(a, False) or hub in tr.certain
    return depth, certain


_WRITTEN = frozenset({"write", "create", "rename_to"})


def _fields(model: BaseModel) -> dict[str, Any]:
    """A model's fields as they are (not dumped), to build a richer model from it."""
    return {name: getattr(model, name) for name in type(model).model_fields}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _iso_or_none(as_of: int) -> str | None:
    return None if as_of == NEVER else ms_to_iso(as_of)
