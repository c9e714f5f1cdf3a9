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

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provenance.errors import NotFoundError, QueryError
from provenance.events.model import ms_to_iso, normalize_uri
from provenance.graph.model import (
    CREATED,
    DELETED,
    LINEAGE_RELS,
    MODIFIED,
    NEVER,
    READ,
    WRITE_RELS,
    Edge,
    Node,
    Touch,
    app_node,
    artifact_node,
    node_key,
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
DEPLOYMENT_TYPES = frozenset({"deployment"})


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


@dataclass
class Traversal:
    """Nodes reached from the starts, with the edge that first reached each (a BFS tree)."""

    starts: list[str]
    depth: dict[str, int] = field(default_factory=dict)
    parent: dict[str, tuple[str, str]] = field(default_factory=dict)  # node -> (previous node, rel)
    partial: bool = False
    reason: str | None = None

    def path_to(self, node: str) -> list[tuple[str, str | None]]:
        """(node, rel that led to it) from a start to ``node``."""
        out: list[tuple[str, str | None]] = []
        cur: str | None = node
        while cur is not None:
            prev = self.parent.get(cur)
            out.append((cur, prev[1] if prev else None))
            cur = prev[0] if prev else None
        return out[::-1]


def page(items: Sequence[dict[str, Any]], limits: Limits) -> list[dict[str, Any]]:
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
    def traverse(self, starts: Iterable[str], direction: str, as_of: int, limits: Limits) -> Traversal:
        """BFS over the app/version bipartite graph; depth counts apps (pipeline stages)."""
        deadline = time.monotonic() + limits.time_budget_s
        tr = Traversal(sorted(set(starts)))
        for s in tr.starts:
            tr.depth[s] = 0
        versions = [s for s in tr.starts if s.startswith("version:")]
        apps = [s for s in tr.starts if s.startswith("app:")]
        depth = 0
        while versions or apps:
            if time.monotonic() > deadline:
                tr.partial, tr.reason = True, f"time budget of {limits.time_budget_s}s spent"
                return tr
            if versions:
                if depth >= limits.depth:
                    more = (self.store.edges_to(versions, [READ], as_of) if direction == "down"
                            else self.store.edges_to(versions, list(WRITE_RELS), as_of))
                    if more:
                        tr.partial, tr.reason = True, f"depth limit {limits.depth} reached"
                    return tr
                depth += 1
                edges = (self.store.edges_to(versions, [READ], as_of) if direction == "down"
                         else self.store.edges_to(versions, list(WRITE_RELS), as_of))
                new_apps = self._visit(tr, edges, lambda e: (e.dst, e.src), depth)
                apps = sorted(set(apps) | set(new_apps))
                versions = []
            if apps:
                edges = (self.store.edges_from(apps, list(WRITE_RELS), as_of) if direction == "down"
                         else self.store.edges_from(apps, [READ], as_of))
                versions = self._visit(tr, edges, lambda e: (e.src, e.dst), depth)
                apps = []
            if len(tr.depth) > limits.max_nodes:
                tr.partial, tr.reason = True, f"node cap {limits.max_nodes} reached"
                return tr
        return tr

    @staticmethod
    def _visit(tr: Traversal, edges: list[Edge], ends: Any, depth: int) -> list[str]:
        new = []
        for e in sorted(edges, key=lambda e: (e.first_ts, e.src, e.rel, e.dst)):
            frm, to = ends(e)
            if to not in tr.depth:
                tr.depth[to] = depth
                tr.parent[to] = (frm, e.rel)
                new.append(to)
        return sorted(new)

    # -- describing nodes -------------------------------------------------------------------
    def _artifact_items(self, version_ids: Iterable[str], as_of: int) -> dict[str, dict[str, Any]]:
        vids = sorted(set(version_ids))
        vnodes = self.store.nodes(vids, as_of)
        arts = sorted({artifact_node(split_version_node(v)[0]) for v in vids})
        anodes = self.store.nodes(arts, as_of)
        out = {}
        for v in vids:
            uri, key = split_version_node(v)
            an = anodes.get(artifact_node(uri))
            vn = vnodes.get(v)
            tags = dict(an.tags) if an else {}
            props = an.props if an else {}
            out[v] = {
                "uri": uri,
                "version": vn.label if vn and vn.label else key,
                "version_key": key,
                "version_uri": f"{uri}@{key}",
                "type": tags.get(self.rules.type_key) or props.get("type", "file"),
                "name": props.get("name"),
                "project": props.get("project"),
                "tags": tags,
                "created_ts": vn.first_ts if vn else None,
                "created_by": vn.props.get("creator") if vn else None,
            }
        return out

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

    def describe_apps(self, app_ids: Iterable[str], as_of: int) -> dict[str, dict[str, Any]]:
        ids = sorted(set(app_ids))
        nodes = self.store.nodes(ids, as_of)
        jobs: dict[str, str] = {}
        for e in self.store.edges_from(ids, ["INSTANCE_OF"], as_of):
            jobs[e.src] = node_key(e.dst)
        users: dict[str, list[str]] = {}
        for e in self.store.edges_to(ids, ["RAN"], as_of):
            users.setdefault(e.dst, []).append(node_key(e.src))
        out = {}
        for i in ids:
            n = nodes.get(i)
            p = n.props if n else {}
            out[i] = {
                "app_id": node_key(i),
                "uri": f"app:{node_key(i)}",
                "job": jobs.get(i),
                "users": sorted(users.get(i, [])),
                "state": p.get("state", "unknown"),
                "placeholder": "state" not in p,
                "command": p.get("command"),
                "git_commit": p.get("git_commit"),
                "git_dirty": p.get("git_dirty"),
                "env_hash": p.get("env_hash"),
                "python": p.get("python"),
                "host": p.get("host"),
                "project": self._app_project(p),
                "exit_code": p.get("exit_code"),
                "started_ts": p.get("started_ts") or p.get("submitted_ts") or (n.first_ts if n else None),
                "ended_ts": p.get("ended_ts"),
                "props": p,
            }
        return out

    def _app_project(self, props: dict[str, Any]) -> str | None:
        """The run's own project, else the project of its working directory by the naming rules."""
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
    def footprint(self, app: str, as_of: int = NEVER, limits: Limits = Limits()) -> dict[str, Any]:
        node = self.resolve_app(app, as_of)
        key = node_key(node.id)
        files = classify_files(self.store.touches_of_apps([key], as_of))
        edges = self.store.edges_from([node.id], list(LINEAGE_RELS), as_of)
        artifacts = self._typed_versions(edges, as_of)
        return {
            "query": "footprint",
            "as_of": _iso_or_none(as_of),
            "app": self.describe_apps([node.id], as_of)[node.id],
            "artifacts": page(artifacts, limits),
            "files": page(files, limits),
            "totals": {"artifacts": len(artifacts), "files": len(files)},
            "offset": limits.offset,
            "limit": limits.limit,
            "partial": False,
        }

    def _typed_versions(self, edges: list[Edge], as_of: int) -> list[dict[str, Any]]:
        by_version: dict[str, set[str]] = {}
        times: dict[str, list[int]] = {}
        for e in edges:
            by_version.setdefault(e.dst, set()).add(e.rel)
            t = times.setdefault(e.dst, [e.first_ts, e.last_ts])
            t[0], t[1] = min(t[0], e.first_ts), max(t[1], e.last_ts)
        items = self._artifact_items(by_version, as_of)
        out = []
        for v, rels in by_version.items():
            out.append({**items[v], "types": _types_of(rels), "first_ts": times[v][0], "last_ts": times[v][1]})
        out.sort(key=lambda i: (_TYPE_ORDER[i["types"][0]], i["uri"], i["version_key"]))
        return out

    # -- impact -----------------------------------------------------------------------------
    def impact(self, *, app: str | None = None, job: str | None = None, artifact: str | None = None,
               as_of: int = NEVER, limits: Limits = Limits()) -> dict[str, Any]:
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
        reached_apps = sorted((n for n in tr.depth if n.startswith("app:") and n not in starts),
                              key=lambda a: (tr.depth[a], a))
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
        items = self._artifact_items(shown, as_of)
        artifacts = [{**items[v], "types": _types_of(rels[v]), "first_ts": times[v][0], "last_ts": times[v][1],
                      "reached": v in reached_versions, "depth": tr.depth.get(v)} for v in shown]
        app_page = reached_apps[limits.offset : limits.offset + limits.limit]
        apps = self.describe_apps(app_page, as_of)
        return {
            "query": "impact",
            "as_of": _iso_or_none(as_of),
            "start": starts,
            "apps": [{**apps[a], "depth": tr.depth[a]} for a in app_page],
            "artifacts": artifacts,
            "totals": {"apps": len(reached_apps), "artifacts": len(order)},
            "offset": limits.offset,
            "limit": limits.limit,
            "partial": tr.partial,
            "reason": tr.reason,
        }

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
    def upstream(self, artifact: str, as_of: int = NEVER, limits: Limits = Limits()) -> dict[str, Any]:
        target = self.versions_of(artifact, as_of, latest_only=True)[0]
        tr = self.traverse([target], "up", as_of, limits)
        version_ids = sorted((n for n in tr.depth if n.startswith("version:") and n != target),
                             key=lambda v: (tr.depth[v], split_version_node(v)))
        app_ids = [n for n in tr.depth if n.startswith("app:")]
        shown = version_ids[limits.offset : limits.offset + limits.limit]
        items = self._artifact_items(shown, as_of)
        apps = self.describe_apps(app_ids, as_of)
        ancestors = [{**items[v], "depth": tr.depth[v],
                      "via": [node_key(n) for n, _ in tr.path_to(v) if n.startswith("app:")][::-1][:1]}
                     for v in shown]
        inherited: dict[str, list[str]] = {}  # propagating tag → the upstream artifacts that carry it
        for v, (_, tags) in sorted(self._types(version_ids, as_of).items()):
            for key in tags:
                uri = split_version_node(v)[0]
                if key in self.rules.propagate and uri not in inherited.get(key, []):
                    inherited.setdefault(key, []).append(uri)
        # the apps that later read the target: evaluations, bias tests, deployments
        consumer_edges = self.store.edges_to([target], [READ], as_of)
        consumer_ids = sorted({e.src for e in consumer_edges})
        consumers = self.describe_apps(consumer_ids, as_of)
        outputs = self.store.edges_from(consumer_ids, list(WRITE_RELS), as_of)
        out_items = self._artifact_items([e.dst for e in outputs], as_of)
        consumer_list = []
        for c in consumer_ids:
            produced = sorted({e.dst for e in outputs if e.src == c})
            consumer_list.append({**consumers[c], "outputs": [out_items[p] for p in produced]})
        users = sorted({u for a in apps.values() for u in a["users"]})
        app_list = sorted(({**apps[a], "depth": tr.depth[a]} for a in app_ids),
                          key=lambda i: (i["depth"], i["app_id"]))
        return {
            "query": "upstream",
            "as_of": _iso_or_none(as_of),
            "target": {**self._artifact_items([target], as_of)[target], "inherited_tags": inherited},
            "artifacts": ancestors,
            "apps": page(app_list, limits),
            "users": users,
            "code_versions": sorted({a["git_commit"] for a in apps.values() if a["git_commit"]}),
            "environments": sorted({a["env_hash"] for a in apps.values() if a["env_hash"]}),
            "consumers": page(consumer_list, limits),
            "totals": {"artifacts": len(version_ids), "apps": len(app_list), "consumers": len(consumer_list)},
            "offset": limits.offset,
            "limit": limits.limit,
            "partial": tr.partial,
            "reason": tr.reason,
        }

    # -- gdpr -------------------------------------------------------------------------------
    def gdpr(self, uris: Sequence[str], as_of: int = NEVER, limits: Limits = Limits()) -> dict[str, Any]:
        if not uris:
            raise QueryError("gdpr needs at least one data URI")
        starts: list[str] = []
        for u in uris:
            starts.extend(self.versions_of(u, as_of, latest_only=False))
        tr = self.traverse(starts, "down", as_of, limits)
        version_ids = sorted((n for n in tr.depth if n.startswith("version:") and n not in starts),
                             key=lambda v: (tr.depth[v], split_version_node(v)))
        app_ids = sorted((n for n in tr.depth if n.startswith("app:")), key=lambda a: (tr.depth[a], a))
        types = self._types([*version_ids, *starts], as_of)
        propagating = {k: v for s in starts for k, v in types[s][1].items() if k in self.rules.propagate}
        model_ids = [v for v in version_ids if types[v][0] in MODEL_TYPES | DEPLOYMENT_TYPES]
        model_ids.sort(key=lambda v: (types[v][0] != "deployment", tr.depth[v], split_version_node(v)))
        models_shown = model_ids[limits.offset : limits.offset + limits.limit]
        derived_shown = version_ids[limits.offset : limits.offset + limits.limit]
        apps_shown = app_ids[limits.offset : limits.offset + limits.limit]
        evidence_nodes = {n for m in models_shown for n, _ in tr.path_to(m)}
        items = self._artifact_items({*derived_shown, *models_shown, *starts,
                                      *(n for n in evidence_nodes if n.startswith("version:"))}, as_of)
        apps = self.describe_apps({*apps_shown, *(n for n in evidence_nodes if n.startswith("app:"))}, as_of)
        deleted = {e.dst for e in self.store.edges_to(sorted({*derived_shown, *models_shown}), [DELETED], as_of)}
        deployed_models = self._deployed([m for m in models_shown if types[m][0] in MODEL_TYPES], as_of)

        def describe(v: str) -> dict[str, Any]:
            return {**items[v], "depth": tr.depth[v], "deleted": v in deleted, "inherited_tags": propagating}

        models = [{**describe(v), "deployed": types[v][0] in DEPLOYMENT_TYPES or v in deployed_models,
                   "evidence": self._evidence(tr, v, items, apps)} for v in models_shown]
        return {
            "query": "gdpr",
            "as_of": _iso_or_none(as_of),
            "data": [items[s] for s in starts],
            "models": models,
            "apps": [{**apps[a], "depth": tr.depth[a]} for a in apps_shown],
            "users": self._users_of(app_ids, as_of),
            "derived": [describe(v) for v in derived_shown],
            "totals": {"models": len(model_ids), "apps": len(app_ids), "derived": len(version_ids)},
            "offset": limits.offset,
            "limit": limits.limit,
            "partial": tr.partial,
            "reason": tr.reason,
        }

    def _deployed(self, models: list[str], as_of: int) -> set[str]:
        """Model versions that an app copied into a deployment."""
        readers = self.store.edges_to(models, [READ], as_of)
        outs = self.store.edges_from(sorted({e.src for e in readers}), list(WRITE_RELS), as_of)
        out_types = self._types([e.dst for e in outs], as_of)
        deploying_apps = {e.src for e in outs if out_types[e.dst][0] in DEPLOYMENT_TYPES}
        return {e.dst for e in readers if e.src in deploying_apps}

    def _evidence(self, tr: Traversal, v: str, items: dict[str, dict[str, Any]],
                  apps: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        steps = []
        for node, rel in tr.path_to(v):
            if node.startswith("app:"):
                a = apps.get(node, {})
                steps.append({"kind": "app", "uri": node, "app_id": node_key(node), "job": a.get("job"),
                              "users": a.get("users", []), "project": a.get("project"), "rel": rel})
            else:
                it = items.get(node, {})
                steps.append({"kind": "artifact", "uri": it.get("uri"), "version": it.get("version"),
                              "type": it.get("type"), "project": it.get("project"), "rel": rel})
        return steps

    # -- reproducibility ----------------------------------------------------------------------
    def compare_runs(self, a: str, b: str, as_of: int = NEVER) -> dict[str, Any]:
        """What differs between two runs: the artifact versions they read, their code (git commit, code
        files read, command line) and their environment (Python and installed packages). Identical in
        all three means the second run can be expected to reproduce the first."""
        everything = Limits(limit=1_000_000)
        fa, fb = self.footprint(a, as_of, everything), self.footprint(b, as_of, everything)

        def reads(f: dict[str, Any], code: bool) -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for item in f["artifacts"]:
                if INPUT in item["types"] and (item["type"] == "code") == code:
                    out.setdefault(item["uri"], set()).add(str(item["version"]))
            return out

        def diff(x: dict[str, set[str]], y: dict[str, set[str]]) -> dict[str, list[dict[str, Any]]]:
            return {
                "same": [{"uri": u, "versions": sorted(x[u])} for u in sorted(x.keys() & y.keys()) if x[u] == y[u]],
                "changed": [{"uri": u, "a": sorted(x[u]), "b": sorted(y[u])}
                            for u in sorted(x.keys() & y.keys()) if x[u] != y[u]],
                "only_a": [{"uri": u, "versions": sorted(x[u])} for u in sorted(x.keys() - y.keys())],
                "only_b": [{"uri": u, "versions": sorted(y[u])} for u in sorted(y.keys() - x.keys())],
            }

        app_a, app_b = fa["app"], fb["app"]
        pa, pb = app_a["props"], app_b["props"]
        packages_a = dict(p.split("==", 1) for p in pa.get("packages") or [] if "==" in p)
        packages_b = dict(p.split("==", 1) for p in pb.get("packages") or [] if "==" in p)
        inputs = diff(reads(fa, False), reads(fb, False))
        code_files = diff(reads(fa, True), reads(fb, True))
        packages: dict[str, list[Any]] = {
            "added": [f"{n}=={packages_b[n]}" for n in sorted(packages_b.keys() - packages_a.keys())],
            "removed": [f"{n}=={packages_a[n]}" for n in sorted(packages_a.keys() - packages_b.keys())],
            "changed": [{"name": n, "a": packages_a[n], "b": packages_b[n]}
                        for n in sorted(packages_a.keys() & packages_b.keys()) if packages_a[n] != packages_b[n]],
        }
        same_inputs = not (inputs["changed"] or inputs["only_a"] or inputs["only_b"])
        same_code = (app_a["git_commit"] == app_b["git_commit"] and not app_a["git_dirty"] and not app_b["git_dirty"]
                     and not (code_files["changed"] or code_files["only_a"] or code_files["only_b"])
                     and pa.get("command") == pb.get("command"))
        same_env = app_a["env_hash"] is not None and app_a["env_hash"] == app_b["env_hash"]
        warnings = []
        if not same_inputs:
            warnings.append(f"inputs differ: {len(inputs['changed'])} read at another version, "
                            f"{len(inputs['only_a'])} only in {app_a['app_id']}, "
                            f"{len(inputs['only_b'])} only in {app_b['app_id']}")
        if app_a["git_commit"] != app_b["git_commit"]:
            warnings.append(f"code differs: git commit {app_a['git_commit'] or 'unknown'} vs "
                            f"{app_b['git_commit'] or 'unknown'}")
        for app in (app_a, app_b):
            if app["git_dirty"]:
                warnings.append(f"{app['app_id']} ran from a working tree with uncommitted changes: its code "
                                "cannot be recovered from git")
        if code_files["changed"] or code_files["only_a"] or code_files["only_b"]:
            warnings.append("the code files read differ")
        if pa.get("command") != pb.get("command"):
            warnings.append("the command lines differ")
        if not same_env:
            warnings.append(f"environments differ: {app_a['env_hash'] or 'unknown'} vs {app_b['env_hash'] or 'unknown'}"
                            f" ({len(packages['added'])} packages added, {len(packages['removed'])} removed, "
                            f"{len(packages['changed'])} changed)")
        return {
            "query": "compare",
            "as_of": _iso_or_none(as_of),
            "a": app_a,
            "b": app_b,
            "inputs": inputs,
            "code": {"git": {"a": app_a["git_commit"], "b": app_b["git_commit"], "a_dirty": app_a["git_dirty"],
                             "b_dirty": app_b["git_dirty"]},
                     "command": {"a": pa.get("command"), "b": pb.get("command")}, "files": code_files,
                     "same": same_code},
            "environment": {"a": app_a["env_hash"], "b": app_b["env_hash"],
                            "python": {"a": app_a["python"], "b": app_b["python"]}, "packages": packages,
                            "same": same_env},
            "same": {"inputs": same_inputs, "code": same_code, "environment": same_env},
            "reproducible": same_inputs and same_code and same_env,
            "warnings": warnings,
        }


def _types_of(rels: Iterable[str]) -> list[str]:
    """Hopsworks footprint types of an app's edges to one version (created and removed: temporary)."""
    types = {_REL_TYPE[r] for r in rels}
    if ADDED in types and REMOVED in types:
        types -= {ADDED, REMOVED}
        types.add(TMP)
    return sorted(types, key=_TYPE_ORDER.__getitem__)


def classify_files(touches: list[Touch]) -> list[dict[str, Any]]:
    """File-level footprint: each file the app touched, with its Hopsworks types."""
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
        f["types"] = sorted(types, key=_TYPE_ORDER.__getitem__)
        out.append(f)
    out.sort(key=lambda i: (_TYPE_ORDER[i["types"][0]], i["uri"]))
    return out


def _iso_or_none(as_of: int) -> str | None:
    return None if as_of == NEVER else ms_to_iso(as_of)
