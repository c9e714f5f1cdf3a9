"""The lineage picture of the pages and printable reports: an SVG drawn on the server.

Columns by lineage depth (upstream to the left, runs between the versions they read and wrote),
placed by networkx's multipartite layout; drawn by a template with autoescape, so no name or path
from an event can become markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
from markupsafe import Markup

from provenance.graph.answers import GraphNode, LineageGraph
from provenance.graph.model import DELETED

TYPE_COLOURS = {
    "model": "#d9480f", "deployment": "#c2255c", "training_dataset": "#1971c2", "feature_group": "#0b7285",
    "dataset": "#2f9e44", "table": "#5c940d", "report": "#6741d9", "code": "#868e96", "log": "#adb5bd",
    "experiment": "#e67700", "app": "#343a40", "redacted": "#ced4da",
}
COL_W, ROW_H, BOX_W, BOX_H = 210, 64, 170, 34


def _column(n: GraphNode) -> int:
    """Versions at even columns by depth; a run sits between what it read and what it wrote."""
    if n.kind != "app":
        return 2 * n.depth
    return 2 * n.depth + 1 if n.depth < 0 else 2 * n.depth - 1


def draw(g: LineageGraph, link: Callable[[GraphNode], str | None], render: Callable[..., str]) -> Markup:
    """The SVG of ``g``; ``link(node)`` gives a node's href (or None); ``render`` the picture template."""
    if not g.nodes:
        return Markup(render(nodes=[]))
    graph: nx.Graph[str] = nx.Graph()
    columns = {n.id: _column(n) for n in g.nodes}
    order = {c: i for i, c in enumerate(sorted(set(columns.values())))}
    for n in sorted(g.nodes, key=lambda n: (n.type, n.label, n.id)):
        graph.add_node(n.id, layer=order[columns[n.id]])
    pos = nx.multipartite_layout(graph, subset_key="layer", align="vertical", scale=1.0)
    rows: dict[int, list[str]] = {}
    for node_id, _ in sorted(pos.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        rows.setdefault(order[columns[node_id]], []).append(node_id)
    tallest = max(len(r) for r in rows.values())
    at: dict[str, tuple[int, int]] = {}
    for layer, members in rows.items():
        top = (tallest - len(members)) * ROW_H // 2
        for i, node_id in enumerate(members):
            at[node_id] = (20 + layer * COL_W, 30 + top + i * ROW_H)
    nodes: list[dict[str, Any]] = []
    for n in g.nodes:
        x, y = at[n.id]
        colour = TYPE_COLOURS.get(n.type, "#495057")
        label = n.label if len(n.label) <= 26 else n.label[:25] + "…"
        sub = f"{n.type} {n.version}".strip() if n.kind == "artifact" else f"run · {n.state}"
        nodes.append({"id": n.id, "kind": n.kind, "x": x, "y": y, "colour": colour, "label": label, "sub": sub,
                      "rx": 17 if n.kind == "app" else 4, "opacity": 0.12 if n.redacted else 0.18,
                      "stroke": 3 if n.start else 1.5, "title": n.uri,
                      "href": None if n.redacted else link(n)})
    edges = []
    for e in g.edges:
        if e.source not in at or e.target not in at:
            continue
        (x1, y1), (x2, y2) = at[e.source], at[e.target]
        edges.append({"x1": x1 + BOX_W, "y1": y1 + BOX_H // 2, "x2": x2, "y2": y2 + BOX_H // 2, "rel": e.rel,
                      "dashed": e.rel == DELETED})
    width = 40 + len(rows) * COL_W
    height = 50 + tallest * ROW_H
    return Markup(render(nodes=nodes, edges=edges, width=width, height=height, box_w=BOX_W,
                         box_h=BOX_H))
