"""Lineage subgraphs, their layout as SVG, and exports: W3C PROV-JSON, OpenLineage and GraphML.

A subgraph is built over the store port (the same traversal the queries use) into a networkx
DiGraph whose edges follow the data: artifact version → app that read it → version it wrote.
"""

from __future__ import annotations

import hashlib
import html
import io
from typing import Any, TypeAlias

import networkx as nx

from provenance.access import Principal
from provenance.events.model import ms_to_iso
from provenance.graph.model import CREATED, DELETED, LINEAGE_RELS, MODIFIED, NEVER, READ
from provenance.graph.queries import Limits, LineageQueries

DIRECTIONS = ("up", "down", "both")
Graph: TypeAlias = "nx.DiGraph[str]"  # of node ids
TYPE_COLOURS = {
    "model": "#d9480f", "deployment": "#c2255c", "training_dataset": "#1971c2", "feature_group": "#0c8599",
    "dataset": "#2f9e44", "table": "#0c8599", "report": "#6741d9", "code": "#868e96", "log": "#adb5bd",
    "experiment": "#e67700", "app": "#343a40", "redacted": "#ced4da",
}


def subgraph(q: LineageQueries, ref: str, direction: str = "both", as_of: int = NEVER,
             limits: Limits = Limits(depth=4), principal: Principal | None = None) -> tuple[Graph, dict[str, Any]]:
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
    apps = [n for n in reached if n.startswith("app:")]
    items = q._artifact_items(versions, as_of)
    described = q.describe_apps(apps, as_of)
    g: Graph = nx.DiGraph()
    hidden = 0
    for v in versions:
        it = items[v]
        visible = principal is None or principal.sees(it.get("project"))
        hidden += not visible
        name = it.get("name") or it["uri"].rsplit("/", 1)[-1]
        g.add_node(v, kind="artifact", label=name if visible else "redacted",
                   uri=it["uri"] if visible else "redacted", version=str(it["version"]) if visible else "",
                   type=it["type"] if visible else "redacted", project=it.get("project") if visible else None,
                   created=ms_to_iso(it["created_ts"]) if visible and it.get("created_ts") else None,
                   depth=reached[v], start=v in starts, redacted=not visible)
    for a in apps:
        run = described[a]
        visible = principal is None or principal.sees(run.get("project"))
        hidden += not visible
        g.add_node(a, kind="app", label=(run["job"] or run["app_id"]) if visible else "redacted",
                   uri=run["app_id"] if visible else "redacted", type="app" if visible else "redacted",
                   state=run["state"] if visible else "", users=", ".join(run["users"]) if visible else "",
                   depth=reached[a], start=False, redacted=not visible)
    for e in q.store.edges_from(apps, list(LINEAGE_RELS), as_of):
        if e.dst not in reached:
            continue
        if e.rel == READ:
            g.add_edge(e.dst, e.src, rel=e.rel)
        else:
            g.add_edge(e.src, e.dst, rel=e.rel)
    if hidden:  # the ids of hidden nodes name them: give them opaque ones (the edges follow)
        opaque = {n: "redacted:" + hashlib.sha256(n.encode()).hexdigest()[:12]
                  for n, d in g.nodes(data=True) if d.get("redacted")}
        g = nx.relabel_nodes(g, opaque)
    meta = {"start": starts, "direction": direction, "nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
            "partial": partial, "reason": "; ".join(reasons) or None, "redacted": hidden}
    return g, meta


# -- SVG --------------------------------------------------------------------------------------------
def layout(g: Graph) -> dict[str, tuple[float, float]]:
    """Columns by lineage depth (upstream left), rows spread within a column."""
    columns: dict[int, list[str]] = {}
    for n, data in g.nodes(data=True):  # apps sit between the versions they read and wrote
        depth = int(data.get("depth", 0))
        column = 2 * depth if data.get("kind") != "app" else (2 * depth + 1 if depth < 0 else 2 * depth - 1)
        columns.setdefault(column, []).append(n)
    order = sorted(columns)
    pos: dict[str, tuple[float, float]] = {}
    for x, key in enumerate(order):
        members = sorted(columns[key], key=lambda n: (g.nodes[n].get("type", ""), g.nodes[n].get("label", "")))
        for y, n in enumerate(members):
            pos[n] = (x, y - (len(members) - 1) / 2)
    return pos


def svg(g: Graph, link: Any = None, width_per_col: int = 210, height_per_row: int = 64) -> str:
    """An SVG picture of the subgraph; ``link(node_id, data)`` gives each node's href (or None)."""
    if g.number_of_nodes() == 0:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40"><text x="10" y="25">' \
               'nothing to draw</text></svg>'
    pos = layout(g)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ox, oy = -min(xs), -min(ys)
    w = int((max(xs) + ox + 1) * width_per_col)
    h = int((max(ys) + oy + 1) * height_per_row + 20)

    def at(n: str) -> tuple[float, float]:
        x, y = pos[n]
        return (x + ox) * width_per_col + 20, (y + oy) * height_per_row + 30

    out = io.StringIO()
    out.write(f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{w}" height="{h}" '
              f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">')
    out.write('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
              'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#868e96"/></marker></defs>')
    box_w, box_h = width_per_col - 40, 34
    for u, v, data in g.edges(data=True):
        (x1, y1), (x2, y2) = at(u), at(v)
        x1 += box_w
        y1 += box_h / 2
        y2 += box_h / 2
        dash = ' stroke-dasharray="4 3"' if data.get("rel") == DELETED else ""
        out.write(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#868e96"{dash} '
                  f'marker-end="url(#arrow)"><title>{html.escape(str(data.get("rel")))}</title></line>')
    for n, data in g.nodes(data=True):
        x, y = at(n)
        colour = TYPE_COLOURS.get(str(data.get("type")), "#495057")
        label = str(data.get("label") or "")
        label = label if len(label) <= 26 else label[:25] + "…"
        sub = (f'v{data["version"]}' if data.get("kind") == "artifact" and data.get("version") and
               not str(data["version"]).startswith("v") else str(data.get("version") or data.get("state") or ""))
        rx = 17 if data.get("kind") == "app" else 4
        shape = (f'<rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="{rx}" '
                 f'fill="{colour}" fill-opacity="{0.12 if data.get("redacted") else 0.18}" stroke="{colour}" '
                 f'stroke-width="{3 if data.get("start") else 1.5}"/>')
        text = (f'<text x="{x + 8:.0f}" y="{y + 14:.0f}" fill="#212529">{html.escape(label)}</text>'
                f'<text x="{x + 8:.0f}" y="{y + 27:.0f}" fill="#495057">{html.escape(str(data.get("type")))} '
                f'{html.escape(sub)}</text>')
        title = f'<title>{html.escape(str(data.get("uri")))}</title>'
        kind = html.escape(str(data.get("kind")))
        body = f'<g class="node {kind}" data-id="{html.escape(n)}">{shape}{text}{title}</g>'
        href = link(n, data) if link and not data.get("redacted") else None
        out.write(f'<a href="{html.escape(href)}">{body}</a>' if href else body)
    out.write("</svg>")
    return out.getvalue()


# -- exports ----------------------------------------------------------------------------------------
def graphml(g: Graph) -> str:
    clean: Graph = nx.DiGraph()
    for n, data in g.nodes(data=True):
        clean.add_node(n, **{k: ("" if v is None else v if isinstance(v, (str, int, float, bool)) else str(v))
                             for k, v in data.items()})
    for u, v, data in g.edges(data=True):
        clean.add_edge(u, v, **{k: str(val) for k, val in data.items()})
    return "\n".join(nx.generate_graphml(clean))


def prov_json(g: Graph) -> dict[str, Any]:
    """W3C PROV-JSON: versions are entities, apps activities, users agents; used / wasGeneratedBy /
    wasAssociatedWith / wasDerivedFrom (an app's outputs from its inputs)."""
    doc: dict[str, Any] = {"prefix": {"prov": "http://www.w3.org/ns/prov#", "provenance": "urn:provenance:"},
                           "entity": {}, "activity": {}, "agent": {}, "used": {}, "wasGeneratedBy": {},
                           "wasAssociatedWith": {}, "wasDerivedFrom": {}}

    def qid(node: str) -> str:
        return f"provenance:{node}"

    for n, data in g.nodes(data=True):
        if data.get("kind") == "app":
            doc["activity"][qid(n)] = {"prov:label": data.get("label"), "provenance:state": data.get("state")}
            for user in filter(None, str(data.get("users") or "").split(", ")):
                doc["agent"][qid(f"user:{user}")] = {"prov:type": "prov:Person", "prov:label": user}
                doc["wasAssociatedWith"][f"_:assoc_{len(doc['wasAssociatedWith'])}"] = {
                    "prov:activity": qid(n), "prov:agent": qid(f"user:{user}")}
        else:
            doc["entity"][qid(n)] = {"prov:label": data.get("label"), "prov:type": data.get("type"),
                                     "provenance:uri": data.get("uri"), "provenance:version": data.get("version")}
    for u, v, data in g.edges(data=True):
        rel = data.get("rel")
        if rel == READ:
            doc["used"][f"_:used_{len(doc['used'])}"] = {"prov:activity": qid(v), "prov:entity": qid(u)}
        elif rel in (CREATED, MODIFIED):
            doc["wasGeneratedBy"][f"_:gen_{len(doc['wasGeneratedBy'])}"] = {"prov:entity": qid(v),
                                                                           "prov:activity": qid(u)}
    for app in (n for n, d in g.nodes(data=True) if d.get("kind") == "app"):
        ins = [u for u, _, d in g.in_edges(app, data=True) if d.get("rel") == READ]
        outs = [v for _, v, d in g.out_edges(app, data=True) if d.get("rel") in (CREATED, MODIFIED)]
        for o in outs:
            for i in ins:
                doc["wasDerivedFrom"][f"_:der_{len(doc['wasDerivedFrom'])}"] = {
                    "prov:generatedEntity": qid(o), "prov:usedEntity": qid(i), "prov:activity": qid(app)}
    return {k: v for k, v in doc.items() if v}


def openlineage_events(q: LineageQueries, app: str, producer: str, as_of: int = NEVER) -> list[dict[str, Any]]:
    """The run as OpenLineage RunEvents: START, then COMPLETE / FAIL / ABORT with its inputs and outputs."""
    fp = q.footprint(app, as_of, Limits(limit=1_000_000))
    a = fp["app"]
    namespace = a.get("project") or "provenance"
    inputs = [{"namespace": _ns(i["uri"]), "name": _name(i["uri"]),
               "facets": {"version": {"datasetVersion": str(i["version"])}}}
              for i in fp["artifacts"] if "INPUT" in i["types"]]
    outputs = [{"namespace": _ns(i["uri"]), "name": _name(i["uri"]),
                "facets": {"version": {"datasetVersion": str(i["version"])}}}
               for i in fp["artifacts"] if any(t.startswith("OUTPUT") and t != "OUTPUT_TMP" for t in i["types"])]
    run = {"runId": _uuid_for(a["app_id"]), "facets": {}}
    job = {"namespace": namespace, "name": a["job"] or a["app_id"], "facets": {}}
    schema = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    start = {"eventType": "START", "eventTime": ms_to_iso(a["started_ts"]) if a["started_ts"] else None,
             "run": run, "job": job, "inputs": inputs, "outputs": [], "producer": producer, "schemaURL": schema}
    end_type = {"finished": "COMPLETE", "failed": "FAIL", "killed": "ABORT"}.get(a["state"])
    events = [start]
    if end_type:
        events.append({"eventType": end_type, "eventTime": ms_to_iso(a["ended_ts"]) if a["ended_ts"] else None,
                       "run": run, "job": job, "inputs": inputs, "outputs": outputs, "producer": producer,
                       "schemaURL": schema})
    return events


def _ns(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    if scheme == "file":
        return "file"
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _name(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    return rest if scheme == "file" else (rest.split("/", 1)[1] if "/" in rest else "")


def _uuid_for(app_id: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"provenance:app:{app_id}"))

