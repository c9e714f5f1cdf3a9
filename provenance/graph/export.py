"""Lineage subgraphs, and their exports: W3C PROV-JSON, GraphML and OpenLineage RunEvents.

A subgraph (`LineageGraph`) is built over the store port with the same traversal the queries use; its
edges follow the data: artifact version → run that read it → version it wrote. Exports are made from
the typed graph, after redaction, so they can only name what the caller may see.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, TypeAlias

import networkx as nx

from provenance.events.model import ms_to_iso
from provenance.graph.answers import Footprint, FootprintItem, GraphEdge, GraphNode, LineageGraph, Tier
from provenance.graph.facets import dataset_id, derived_id
from provenance.graph.lineage import _TIER_RANK, app_of, hub_tier, is_hub
from provenance.graph.model import (
    CREATED,
    LINEAGE_RELS,
    MODIFIED,
    NEVER,
    READ,
    artifact_node,
    facets_of,
    version_node,
)
from provenance.graph.queries import Limits, LineageQueries, _iso_or_none

DIRECTIONS = ("up", "down", "both")
Direction = Literal["up", "down", "both"]
Graph: TypeAlias = "nx.DiGraph[str]"  # of node ids


def subgraph(q: LineageQueries, ref: str, direction: Direction = "both", as_of: int = NEVER,
             limits: Limits = Limits(depth=4)) -> LineageGraph:
    """The lineage around an artifact (its latest version, or ``uri@version``), up, down or both."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    starts = q.versions_of(ref, as_of, latest_only=True)
    reached: dict[str, int] = {s: 0 for s in starts}
    partial, reasons = False, list[str]()
    for d in (("up", "down") if direction == "both" else (direction,)):
        tr = q.traverse(starts, d, as_of, limits)
        for n, depth in tr.depth.items():
            reached.setdefault(n, depth if d == "down" else -depth)  # upstream to the left
        if tr.partial:
            partial, reasons = True, [*reasons, str(tr.reason)]
    versions = [n for n in reached if n.startswith("version:")]
    # a run is drawn once: the hubs the walk passed (its processes, a move, a declared flow) stand for it
    hubs = [n for n in reached if is_hub(n)]
    app_depth: dict[str, int] = {}
    for h in hubs:
        run_id, hub_depth = app_of(h), reached[h]
        if run_id not in app_depth or abs(hub_depth) < abs(app_depth[run_id]):
            app_depth[run_id] = hub_depth
    apps = sorted(app_depth)
    fields = q.version_fields(versions, as_of)
    described = q.describe_apps(apps, as_of)
    nodes: list[GraphNode] = []
    for v in versions:
        f = fields[v]
        nodes.append(GraphNode(id=v, kind="artifact", label=f["name"] or f["uri"].rsplit("/", 1)[-1], uri=f["uri"],
                               type=f["type"], version=f["version"], project=f["project"],
                               created_ts=f["created_ts"], depth=reached[v], start=v in starts))
    for a in apps:
        info = described[a]
        nodes.append(GraphNode(id=a, kind="app", label=info.job or info.app_id, uri=info.app_id, type="app",
                               state=info.state, job=info.job, users=info.users, project=info.project,
                               created_ts=info.started_ts, depth=app_depth[a]))
    found: dict[tuple[str, str, str], Tier] = {}
    for e in q.store.edges_from(hubs, list(LINEAGE_RELS), as_of):
        if e.dst not in reached:
            continue
        run = app_of(e.src)
        source, target = (e.dst, run) if e.rel == READ else (run, e.dst)
        key, tier = (source, target, e.rel), hub_tier(e.src)
        if key not in found or _TIER_RANK[tier] < _TIER_RANK[found[key]]:
            found[key] = tier
    edges = [GraphEdge(source=s, target=t, rel=rel, tier=tier) for (s, t, rel), tier in found.items()]
    edges.sort(key=lambda e: (e.source, e.target, e.rel))
    return LineageGraph(as_of=_iso_or_none(as_of), start=starts, direction=direction, depth=limits.depth,
                        nodes=sorted(nodes, key=lambda n: (n.depth, n.kind, n.id)), edges=edges, partial=partial,
                        reason="; ".join(reasons) or None)


def to_networkx(g: LineageGraph) -> Graph:
    out: Graph = nx.DiGraph()
    for n in g.nodes:
        out.add_node(n.id, **n.model_dump(exclude={"id"}))
    for e in g.edges:
        out.add_edge(e.source, e.target, rel=e.rel, tier=e.tier)
    return out


def graphml(g: LineageGraph) -> str:
    clean: Graph = nx.DiGraph()
    for n in g.nodes:
        clean.add_node(n.id, **{k: ("" if v is None else v if isinstance(v, (str, int, float, bool)) else
                                    ", ".join(map(str, v)) if isinstance(v, list) else str(v))
                                for k, v in n.model_dump(exclude={"id"}).items()})
    for e in g.edges:
        clean.add_edge(e.source, e.target, rel=e.rel, tier=e.tier or "")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + "\n".join(nx.generate_graphml(clean))


def prov_json(g: LineageGraph) -> dict[str, Any]:
    """W3C PROV-JSON: versions are entities, runs activities, users agents; used / wasGeneratedBy /
    wasAssociatedWith / wasDerivedFrom (a run's outputs from its inputs)."""
    doc: dict[str, Any] = {"prefix": {"prov": "http://www.w3.org/ns/prov#", "provenance": "urn:provenance:"},
                           "entity": {}, "activity": {}, "agent": {}, "used": {}, "wasGeneratedBy": {},
                           "wasAssociatedWith": {}, "wasDerivedFrom": {}}

    def qid(node: str) -> str:
        return f"provenance:{node}"

    for n in g.nodes:
        if n.kind == "app":
            doc["activity"][qid(n.id)] = {"prov:label": n.label, "provenance:state": n.state,
                                          **({"prov:startTime": ms_to_iso(n.created_ts)} if n.created_ts else {})}
            for user in n.users:
                doc["agent"][qid(f"user:{user}")] = {"prov:type": "prov:Person", "prov:label": user}
                doc["wasAssociatedWith"][f"_:assoc_{len(doc['wasAssociatedWith'])}"] = {
                    "prov:activity": qid(n.id), "prov:agent": qid(f"user:{user}")}
        else:
            doc["entity"][qid(n.id)] = {"prov:label": n.label, "prov:type": n.type, "provenance:uri": n.uri,
                                        "provenance:version": n.version}
    ins: dict[str, list[str]] = {}
    outs: dict[str, list[str]] = {}
    for e in g.edges:
        if e.rel == READ:
            doc["used"][f"_:used_{len(doc['used'])}"] = {"prov:activity": qid(e.target), "prov:entity": qid(e.source)}
            ins.setdefault(e.target, []).append(e.source)
        elif e.rel in (CREATED, MODIFIED):
            doc["wasGeneratedBy"][f"_:gen_{len(doc['wasGeneratedBy'])}"] = {"prov:entity": qid(e.target),
                                                                           "prov:activity": qid(e.source)}
            outs.setdefault(e.source, []).append(e.target)
    for app, produced in outs.items():
        for o in produced:
            for i in ins.get(app, []):
                doc["wasDerivedFrom"][f"_:der_{len(doc['wasDerivedFrom'])}"] = {
                    "prov:generatedEntity": qid(o), "prov:usedEntity": qid(i), "prov:activity": qid(app)}
    return {k: v for k, v in doc.items() if v}


RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
VERSION_FACET_SCHEMA = ("https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
                        "#/$defs/DatasetVersionDatasetFacet")


def openlineage_events(q: LineageQueries, fp: Footprint, producer: str, as_of: int = NEVER) -> list[dict[str, Any]]:
    """The run of a footprint as OpenLineage RunEvents: START with its inputs, then COMPLETE / FAIL / ABORT
    with its inputs and outputs, of what the caller may see (pass a redacted footprint).

    A run that came from OpenLineage keeps its runId, its job's namespace and name, its datasets' names
    as they were sent (the files it named, not the artifacts they belong to), their versions as their
    ``version`` facets gave them, and the facets that were stored. Any other run gets a uuid5 of its app
    id, its project (or ``default``) as namespace, and its artifacts, with a version facet only where a
    version was explicit (a path convention, a table commit)."""
    a = fp.app
    props = a.props
    job = q.store.nodes([f"job:{a.job}"], as_of).get(f"job:{a.job}") if a.job else None
    job_props = job.props if job else {}
    from_ol = a.app_id.startswith("openlineage:")
    run_id = a.app_id.removeprefix("openlineage:") if from_ol else str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"provenance:app:{a.app_id}"))
    parent = a.parent.facet if a.parent is not None and not a.parent.redacted else None
    run = {"runId": run_id, "facets": {**facets_of(props, "run"), **({"parent": parent} if parent else {})}}
    namespace = str(job_props.get("project") or a.project or "default")
    job_out = {"namespace": namespace, "name": str(job_props.get("name") or a.app_id),
               "facets": facets_of(job_props, "job")}
    inputs, outputs = (_ol_datasets if from_ol else _artifact_datasets)(q, fp, producer, as_of)
    if from_ol and isinstance(props.get("producer"), str):  # the producer that sent the run, as it said
        producer = str(props["producer"])
    start_ts = a.started_ts
    events = [{"eventType": "START", "eventTime": ms_to_iso(start_ts), "run": run, "job": job_out, "inputs": inputs,
               "outputs": [], "producer": producer, "schemaURL": RUN_EVENT_SCHEMA}]
    end_type = {"finished": "COMPLETE", "failed": "FAIL", "killed": "ABORT"}.get(a.state)
    if end_type:
        events.append({"eventType": end_type, "eventTime": ms_to_iso(a.ended_ts or start_ts), "run": run,
                       "job": job_out, "inputs": inputs, "outputs": outputs, "producer": producer,
                       "schemaURL": RUN_EVENT_SCHEMA})
    return events


def _version_facet(version: str, producer: str) -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": VERSION_FACET_SCHEMA, "datasetVersion": version}


def _artifact_datasets(q: LineageQueries, fp: Footprint, producer: str,
                       as_of: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    visible = [i for i in fp.artifacts if not i.redacted]

    def dataset(i: FootprintItem) -> dict[str, Any]:
        ns, name = derived_id(i.uri)
        explicit = not i.version_key.startswith("~")  # "v1", "initial": labels of this graph, not versions
        return {"namespace": ns, "name": name,
                "facets": {"version": _version_facet(i.version_key, producer)} if explicit else {}}

    return ([dataset(i) for i in visible if "INPUT" in i.types],
            [dataset(i) for i in visible if any(t.startswith("OUTPUT") and t != "OUTPUT_TMP" for t in i.types)])


def _ol_datasets(q: LineageQueries, fp: Footprint, producer: str,
                 as_of: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items = [i for i in fp.artifacts if not i.redacted]
    files = [f for f in fp.files if not f.redacted]
    ids = {artifact_node(i.uri) for i in items} | {version_node(i.uri, i.version_key) for i in items}
    nodes = q.store.nodes(sorted(ids), as_of)
    out: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for f in files:
        for role, wanted in ((0, ("INPUT",)), (1, ("OUTPUT_ADDED", "OUTPUT_MODIFIED", "OUTPUT_REMOVED"))):
            if not any(t in wanted for t in f.types):
                continue
            item = next((i for i in items if i.uri == f.artifact and any(t in wanted for t in i.types)), None)
            anode = nodes.get(artifact_node(f.artifact))
            vnode = nodes.get(version_node(f.artifact, item.version_key)) if item else None
            whole = f.uri == f.artifact  # the dataset is the artifact, not a file inside one
            ns, name = dataset_id(f.uri, anode.props if anode else {}) if whole else derived_id(f.uri)
            facets: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            if whole:
                for node in (anode, vnode):
                    if node is not None:
                        facets.update(facets_of(node.props, "dataset"))
                        extra.update(facets_of(node.props, "input" if role == 0 else "output"))
            if "version" not in facets and item is not None and not item.version_key.startswith("~"):
                facets["version"] = _version_facet(item.version_key, producer)
            dataset = {"namespace": ns, "name": name, "facets": facets}
            if extra:
                dataset["inputFacets" if role == 0 else "outputFacets"] = extra
            out[role].append(dataset)
    return out
