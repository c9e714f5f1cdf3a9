"""The lineage picture of the pages and printable reports: an SVG drawn on the server.

`provenance.api.layout` places it (layered, crossings reduced, long edges routed through rows of their
own); this module decides what is drawn (logs, code and tool state hidden unless asked for, repeated
runs of a job grouped when asked for) and how a node reads (an artifact: name, type and version; a run:
job, run id and date). The SVG is a template with autoescape, so no name or path from an event can
become markup; colours are attributes, not styles (the CSP allows no inline style).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from provenance.api.layout import BOX_H, BOX_W, COL_W, MARGIN, Placed, layout
from provenance.events.model import ms_to_iso
from provenance.graph.answers import GraphEdge, GraphNode, LineageGraph
from provenance.graph.model import DELETED
from provenance.reports import version_label

__all__ = ["AUX_TYPES", "TYPE_COLOURS", "Drawn", "Options", "draw", "prepare", "version_label"]

TYPE_COLOURS = {
    "model": "#d9480f", "deployment": "#c2255c", "training_dataset": "#1971c2", "feature_group": "#0c8599",
    "dataset": "#2f9e44", "table": "#5f3dc4", "report": "#9c36b5", "experiment": "#e67700",
    "resource": "#74b816", "code": "#868e96", "log": "#adb5bd", "tool_state": "#ced4da", "file": "#495057",
    "app": "#343a40", "redacted": "#ced4da",
}
TYPE_NAMES = {"app": "run", "training_dataset": "training dataset", "feature_group": "feature group",
              "tool_state": "tool state"}
#: what a lineage picture leaves out unless asked: a run's logs, the code files it read, tool state
AUX_TYPES = frozenset({"log", "code", "tool_state"})


def short_run(app_id: str) -> str:
    """A run id short enough for a box: its last part (``…_0014``, ``c66eb881``)."""
    tail = app_id.rsplit("_", 1)[-1]
    return tail if 4 <= len(tail) <= 12 else app_id[-10:]


def short_time(ms: int | None) -> str:
    """A time to the minute, in UTC and saying so (a page's script shows it in the reader's zone)."""
    iso = ms_to_iso(ms) if isinstance(ms, int) else None
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else ""


def fit(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class Options:
    """What the picture shows: ``aux`` logs, code and tool state; ``group`` repeated runs of a job as one."""

    aux: bool = False
    group: bool = False
    expanded: frozenset[str] = frozenset()


@dataclass
class Drawn:
    """The nodes and edges to draw (after hiding and grouping), and the layout of them."""

    nodes: list[dict[str, Any]]
    edges: list[GraphEdge]
    placed: Placed
    hidden: int = 0
    subject: str | None = None
    types: list[str] = field(default_factory=list)


def prepare(g: LineageGraph, opts: Options) -> Drawn:
    """What is drawn of ``g`` and where."""
    keep = [n for n in g.nodes if opts.aux or n.start or n.type not in AUX_TYPES]
    hidden = len(g.nodes) - len(keep)
    ids = {n.id for n in keep}
    edges = [e for e in g.edges if e.source in ids and e.target in ids]
    nodes: dict[str, dict[str, Any]] = {n.id: _node(n) for n in keep}
    if opts.group:
        nodes, edges = _group(nodes, edges)
    order = sorted(nodes, key=lambda i: (nodes[i]["depth"], nodes[i]["kind"], i))
    placed = layout(order, [(e.source, e.target) for e in edges])
    for i, box in placed.boxes.items():
        nodes[i].update(x=round(box.x, 1), y=round(box.y, 1))
    subject = next((n.id for n in g.nodes if n.start), None)
    types = sorted({n["type"] for n in nodes.values()}, key=lambda t: (t == "app", t))
    return Drawn([nodes[i] for i in order], edges, placed, hidden, subject, types)


def _node(n: GraphNode) -> dict[str, Any]:
    if n.redacted:
        return {"id": n.id, "kind": n.kind, "type": "redacted", "label": "redacted", "sub": "another project's",
                "title": "hidden: another project's", "depth": n.depth, "start": False, "redacted": True,
                "uri": None, "count": 1}
    if n.kind == "app":
        when = short_time(n.created_ts)
        head = f"run {short_run(n.uri)}"
        sub = head + (f" · {when}" if when else "")
        title = f"run {n.uri}\njob {n.job or '—'}\nstarted {ms_to_iso(n.created_ts) or '—'}\nstate {n.state}"
        return {"id": n.id, "kind": "app", "type": "app", "label": n.job or n.uri, "sub": sub, "title": title,
                "depth": n.depth, "start": n.start, "redacted": False, "uri": n.uri, "job": n.job, "count": 1,
                "state": n.state, "sub_head": head + " · " if when else None, "when": when,
                "when_iso": ms_to_iso(n.created_ts) if when else None}
    ver = version_label(n.version)
    sub = TYPE_NAMES.get(n.type, n.type) + (f" · {ver}" if ver else "")
    title = f"{n.uri}\n{sub}\ncreated {ms_to_iso(n.created_ts) or '—'}"
    return {"id": n.id, "kind": "artifact", "type": n.type, "label": n.label, "sub": sub, "title": title,
            "depth": n.depth, "start": n.start, "redacted": False, "uri": n.uri, "version": n.version, "count": 1}


def _group(nodes: dict[str, dict[str, Any]], edges: list[GraphEdge]) -> tuple[dict[str, dict[str, Any]],
                                                                              list[GraphEdge]]:
    """Runs of one job in one column become one node (grouping across columns could make a cycle)."""
    from provenance.api.layout import columns

    col = columns(list(nodes), [(e.source, e.target) for e in edges])
    groups: dict[tuple[str, int], list[str]] = {}
    for i, n in nodes.items():
        if n["kind"] == "app" and not n["redacted"] and n.get("job"):
            groups.setdefault((n["job"], col[i]), []).append(i)
    rename: dict[str, str] = {}
    out = dict(nodes)
    for (job, c), members in groups.items():
        if len(members) < 2:
            continue
        gid = f"group:{c}:{job}"
        times = sorted(t for m in members if (t := nodes[m]["sub"].split(" · ", 1)[-1]) and "run " not in t)
        span = f"{times[0]} – {times[-1]}" if times else ""
        out[gid] = {"id": gid, "kind": "app", "type": "app", "label": job, "sub": f"{len(members)} runs"
                    + (f" · {span[:10]}…" if span else ""), "title": f"{len(members)} runs of {job}\n" + "\n".join(
                        nodes[m]["uri"] for m in members), "depth": min(nodes[m]["depth"] for m in members),
                    "start": False, "redacted": False, "uri": None, "job": job, "count": len(members),
                    "members": members}
        for m in members:
            rename[m] = gid
            del out[m]
    seen: set[tuple[str, str, str]] = set()
    merged = []
    for e in edges:
        s, t = rename.get(e.source, e.source), rename.get(e.target, e.target)
        if (s, t, e.rel) not in seen:
            seen.add((s, t, e.rel))
            merged.append(e.model_copy(update={"source": s, "target": t}))
    return out, merged


def _path(points: list[tuple[float, float]]) -> str:
    """Curves between columns (each stays in the gap between them), straight runs through dummy rows."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    px, py = x0, y0
    for i, (x, y) in enumerate(rest):
        in_row = i % 2 == 1 and y == py and i < len(rest) - 1  # across a dummy's row
        if in_row or abs(x - px) < 1:
            d.append(f"L{x:.1f},{y:.1f}")
        else:
            mx = (px + x) / 2
            d.append(f"C{mx:.1f},{py:.1f} {mx:.1f},{y:.1f} {x:.1f},{y:.1f}")
        px, py = x, y
    return " ".join(d)


def draw(g: LineageGraph, link: Callable[[dict[str, Any]], str | None], render: Callable[..., str],
         opts: Options = Options(), *, parts: int = 0, marker: str = "a", interactive: bool = True) -> Markup:
    """The SVG of ``g``; ``link(node)`` gives a node's href (or None); ``render`` the picture template.
    ``parts``: also the picture cut into slices of at most that many columns (for print). Not ``interactive``
    (a report's picture): no expand toggles and no instruction to use the explorer's controls."""
    drawn = prepare(g, opts)
    if not drawn.nodes:
        return Markup(render(nodes=[], hidden=drawn.hidden, interactive=interactive))
    nodes = []
    for n in drawn.nodes:
        colour = TYPE_COLOURS.get(n["type"], "#495057")
        nodes.append({**n, "colour": colour, "label": fit(n["label"]), "sub": fit(n["sub"], 34),
                      "rx": 18 if n["kind"] == "app" else 4, "opacity": 0.1 if n["redacted"] else 0.16,
                      "stroke": 3 if n["start"] else 1.4, "href": None if n["redacted"] else link(n),
                      "expandable": interactive and not n["redacted"] and not n["id"].startswith("group:"),
                      "expanded": n["id"] in opts.expanded})
    by_key = {(e.source, e.target): e for e in drawn.edges}
    edges = []
    for a, b, pts in drawn.placed.routes:
        e = by_key.get((a, b))
        if e is None:
            continue
        edges.append({"d": _path(pts), "rel": e.rel, "tier": e.tier or "", "source": a, "target": b,
                      "dashed": e.rel == DELETED or e.tier == "run",
                      "colour": "#c92a2a" if e.rel == DELETED else "#868e96"})
    subject = drawn.placed.boxes.get(drawn.subject or "")
    width, height = int(drawn.placed.width + 1), int(drawn.placed.height + 1)
    slices = []
    if parts and drawn.placed.columns:
        ncols = max(drawn.placed.columns.values()) + 1
        if ncols > parts:
            for start in range(0, ncols, parts):
                x0 = max(0, MARGIN + start * COL_W - 12)
                x1 = min(width, MARGIN + min(ncols, start + parts) * COL_W - (COL_W - BOX_W) + 12)
                inside = [b for i, b in drawn.placed.boxes.items()
                          if start <= drawn.placed.columns.get(i, 0) < start + parts]
                y0 = max(0, int(min(b.y for b in inside)) - 14) if inside else 0
                y1 = min(height, int(max(b.y + b.h for b in inside)) + 14) if inside else height
                slices.append({"x": x0, "w": x1 - x0, "y": y0, "h": y1 - y0, "n": start // parts + 1})
    legend = [{"type": t, "name": TYPE_NAMES.get(t, t), "colour": TYPE_COLOURS.get(t, "#495057")}
              for t in drawn.types]
    return Markup(render(nodes=nodes, edges=edges, width=width, height=height, box_w=BOX_W, box_h=BOX_H,
                         subject=subject, hidden=drawn.hidden, legend=legend, slices=slices, marker=marker,
                         interactive=interactive, total=len(slices)))
