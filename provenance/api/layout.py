"""Where the lineage picture puts its boxes and how its edges run: a layered (Sugiyama) layout.

Data flows left to right: each node gets a column (longest path from the sources, then every source
pulled right to just before its first reader, so a file read only by the last stage does not stretch
an edge across the picture). igraph's Sugiyama layout orders each column to reduce edge crossings
(barycenter heuristic) and puts a dummy vertex in every column a long edge crosses; the dummies take a
row of their own, so an edge runs between boxes, never through one. `legibility` counts what makes a
picture hard to read (edge crossings, edges through boxes that are not their ends) so that the layout
can be measured rather than judged by eye; ``docs/benchmarks.md`` has the figures.

Only ids and sizes go to the layout library: no name or path from an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import igraph

COL_W, ROW_H, BOX_W, BOX_H = 250, 62, 190, 44  # column pitch, row pitch, box size (px)
MARGIN = 24


@dataclass
class Box:
    x: float
    y: float
    w: float = BOX_W
    h: float = BOX_H

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Placed:
    """A laid-out picture: a box per node, a polyline per edge (left end, dummy rows, right end)."""

    boxes: dict[str, Box]
    routes: list[tuple[str, str, list[tuple[float, float]]]]
    width: float
    height: float
    columns: dict[str, int] = field(default_factory=dict)


def columns(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """A column per node: longest path from the sources, each source then as far right as its readers allow.
    A cycle (which lineage should not have) is broken where it is met."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in succ and b in succ and a != b:
            succ[a].append(b)
            pred[b].append(a)
    col: dict[str, int] = {}
    state: dict[str, int] = {}

    def place(n: str) -> int:  # iterative DFS: deep lineage must not hit the recursion limit
        stack = [(n, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                if node in col:
                    continue
                state[node] = 1
            ps = pred[node]
            if i < len(ps):
                stack.append((node, i + 1))
                p = ps[i]
                if p not in col and state.get(p) != 1:
                    stack.append((p, 0))
                continue
            col[node] = max((col[p] + 1 for p in ps if p in col), default=0)
            state[node] = 2
        return col[n]

    for n in nodes:
        place(n)
    for n in nodes:  # sources: just before their first reader
        if not pred[n] and succ[n]:
            col[n] = max(col[n], min(col[s] for s in succ[n]) - 1)
    low = min(col.values(), default=0)
    return {n: c - low for n, c in col.items()}


def layout(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> Placed:
    """Boxes and edge routes for ``nodes`` (ids, in a stable order) and ``edges`` (source, target)."""
    if not nodes:
        return Placed({}, [], 2 * MARGIN, 2 * MARGIN)
    col = columns(nodes, edges)
    index = {n: i for i, n in enumerate(nodes)}
    pairs = [(a, b) for a, b in edges if a in index and b in index and a != b]
    g = igraph.Graph(n=len(nodes), edges=[(index[a], index[b]) for a, b in pairs], directed=True)
    lay = g.layout_sugiyama(layers=[col[n] for n in nodes], hgap=1, vgap=1, maxiter=400)
    coords = lay.coords  # (position in its column, column) of each node
    dummies_of: list[list[list[float]]] = [[list(p) for p in pts] for pts in
                                           (getattr(lay, "edge_routing", None) or [[] for _ in pairs])]
    ys = [c[0] for c in coords]
    _separate(ys, dummies_of, [col[n] for n in nodes])
    all_pos = ys + [p[0] for pts in dummies_of for p in pts]
    low = min(all_pos)
    boxes = {n: Box(MARGIN + col[n] * COL_W, MARGIN + (ys[i] - low) * ROW_H) for i, n in enumerate(nodes)}
    routes: list[tuple[str, str, list[tuple[float, float]]]] = []
    for k, (a, b) in enumerate(pairs):
        ba, bb = boxes[a], boxes[b]
        forward = col[a] <= col[b]
        start = (ba.x + ba.w, ba.cy) if forward else (ba.x, ba.cy)
        end = (bb.x, bb.cy) if forward else (bb.x + bb.w, bb.cy)
        pts: list[tuple[float, float]] = [start]
        dummies = dummies_of[k] if k < len(dummies_of) else []
        for p in sorted(dummies, key=lambda p: p[1], reverse=not forward):
            x0 = MARGIN + int(round(p[1])) * COL_W
            y = MARGIN + (p[0] - low) * ROW_H + BOX_H / 2
            # through the dummy's row: in at the column's left, out at its right (no box is in that row)
            pts += [(x0, y), (x0 + BOX_W, y)] if forward else [(x0 + BOX_W, y), (x0, y)]
        pts.append(end)
        routes.append((a, b, pts))
    width = 2 * MARGIN + (max(col.values()) * COL_W + BOX_W)
    height = 2 * MARGIN + (max(all_pos) - low) * ROW_H + BOX_H
    return Placed(boxes, routes, width, height, col)


def _separate(ys: list[float], dummies: list[list[list[float]]], cols: list[int]) -> None:
    """At least one row between any two things in a column (igraph's placement can put two closer): each
    column is swept top to bottom, pushing down what is too near the one above. Order is kept."""
    items: dict[int, list[tuple[float, int, int, int]]] = {}  # column → (position, kind, index, sub-index)
    for i, y in enumerate(ys):
        items.setdefault(cols[i], []).append((y, 0, i, 0))
    for k, pts in enumerate(dummies):
        for j, (pos, layer) in enumerate(pts):
            items.setdefault(int(round(layer)), []).append((pos, 1, k, j))
    for members in items.values():
        members.sort()
        last = None
        for pos, kind, i, j in members:
            new = pos if last is None else max(pos, last + 1.0)
            if kind == 0:
                ys[i] = new
            else:
                dummies[i][j][0] = new
            last = new


# -- legibility -------------------------------------------------------------------------------------
def segments(route: list[tuple[float, float]]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    return list(pairwise(route))


def _cross(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def _intersect(a: tuple[tuple[float, float], tuple[float, float]],
               b: tuple[tuple[float, float], tuple[float, float]]) -> bool:
    """Proper crossing of two segments (touching at an end, as edges sharing a node do, is no crossing)."""
    (p1, p2), (p3, p4) = a, b
    d1, d2 = _cross(p3, p4, p1), _cross(p3, p4, p2)
    d3, d4 = _cross(p1, p2, p3), _cross(p1, p2, p4)
    return ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4))


def segment_hits_box(seg: tuple[tuple[float, float], tuple[float, float]], box: Box, inset: float = 1.0) -> bool:
    """Whether a segment enters a box's interior (Liang–Barsky clipping against the box shrunk by ``inset``)."""
    (x1, y1), (x2, y2) = seg
    xmin, xmax, ymin, ymax = box.x + inset, box.x + box.w - inset, box.y + inset, box.y + box.h - inset
    dx, dy = x2 - x1, y2 - y1
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x1 - xmin), (dx, xmax - x1), (-dy, y1 - ymin), (dy, ymax - y1)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return t1 - t0 > 1e-9


@dataclass
class Legibility:
    nodes: int
    edges: int
    crossings: int
    through_nodes: int  # (edge, box) pairs where the edge passes through a box that is not one of its ends
    overlaps: int = 0  # pairs of boxes that overlap

    def as_dict(self) -> dict[str, int]:
        return {"nodes": self.nodes, "edges": self.edges, "crossings": self.crossings,
                "edges_through_nodes": self.through_nodes, "overlapping_nodes": self.overlaps}


def legibility(boxes: dict[str, Box], routes: Sequence[tuple[str, str, list[tuple[float, float]]]]) -> Legibility:
    crossings = 0
    segs = [(i, s) for i, (_, _, r) in enumerate(routes) for s in segments(r)]
    for k, (i, s) in enumerate(segs):
        for j, t in segs[k + 1:]:
            if i != j and _intersect(s, t):
                crossings += 1
    through = 0
    for a, b, r in routes:
        hit = {n for n, box in boxes.items() if n not in (a, b) for s in segments(r) if segment_hits_box(s, box)}
        through += len(hit)
    listed = list(boxes.values())
    overlaps = sum(1 for i, a in enumerate(listed) for b in listed[i + 1:]
                   if a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h)
    return Legibility(len(boxes), len(routes), crossings, through, overlaps)
