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

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

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


def _sugiyama(nodes: Sequence[str], pairs: Sequence[tuple[str, str]],
              col: dict[str, int]) -> tuple[list[float], list[list[list[float]]]]:
    """igraph's placement: each node's position in its column, and each edge's dummy points (position, column).
    A long edge is split here into a chain through a dummy vertex in every column it crosses, so that igraph
    sees only edges between neighbouring columns and places the dummies like nodes (its own edge routing
    can name another edge's points when a graph has isolated nodes)."""
    index = {n: i for i, n in enumerate(nodes)}
    layers = [col[n] for n in nodes]
    links: list[tuple[int, int]] = []
    chains: list[list[int]] = []
    for a, b in pairs:
        ca, cb = col[a], col[b]
        step = 1 if cb >= ca else -1
        chain = []
        prev = index[a]
        for c in range(ca + step, cb, step):
            layers.append(c)
            chain.append(len(layers) - 1)
            links.append((prev, chain[-1]))
            prev = chain[-1]
        links.append((prev, index[b]))
        chains.append(chain)
    import igraph  # here, not at import: serve starts its processor sooner

    g = igraph.Graph(n=len(layers), edges=links, directed=True)
    coords = g.layout_sugiyama(layers=layers, hgap=1, vgap=1, maxiter=400).coords
    ys = [coords[i][0] for i in range(len(nodes))]
    dummies = [[[coords[v][0], float(layers[v])] for v in chain] for chain in chains]
    _separate(ys, dummies, [col[n] for n in nodes])
    return ys, dummies


def _crossings(nodes: Sequence[str], pairs: Sequence[tuple[str, str]], col: dict[str, int], ys: list[float],
               dummies: list[list[list[float]]]) -> int:
    """Edge crossings of a placement, counted between each two neighbouring columns (where all of them are)."""
    at = {n: ys[i] for i, n in enumerate(nodes)}
    gaps: dict[int, list[tuple[float, float]]] = {}
    for k, (a, b) in enumerate(pairs):
        chain = sorted([(col[a], at[a]), *((int(round(c)), p) for p, c in dummies[k]), (col[b], at[b])])
        for (c1, p1), (_, p2) in pairwise(chain):
            gaps.setdefault(c1, []).append((p1, p2))
    count = 0
    for segs in gaps.values():
        for i, (a1, a2) in enumerate(segs):
            for b1, b2 in segs[i + 1:]:
                if (a1 - b1) * (a2 - b2) < 0:
                    count += 1
    return count


#: the placement is tried on this many orders of the input (the barycenter heuristic depends on it) and the one
#: with the fewest crossings is kept; graphs with more edges than ``RETRY_EDGES`` are placed once
TRIES, RETRY_EDGES = 8, 300


def layout(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> Placed:
    """Boxes and edge routes for ``nodes`` (ids, in a stable order) and ``edges`` (source, target)."""
    if not nodes:
        return Placed({}, [], 2 * MARGIN, 2 * MARGIN)
    col = columns(nodes, edges)
    known = set(nodes)
    pairs = [(a, b) for a, b in edges if a in known and b in known and a != b]
    best: tuple[int, list[str], list[tuple[str, str]], list[float], list[list[list[float]]]] | None = None
    rng = random.Random(17)  # a fixed seed: the same graph is drawn the same way every time
    order, order_pairs = list(nodes), list(pairs)
    for attempt in range(TRIES if len(pairs) <= RETRY_EDGES else 1):
        if attempt:
            rng.shuffle(order)
            rng.shuffle(order_pairs)
        ys, dummies = _sugiyama(order, order_pairs, col)
        n = _crossings(order, order_pairs, col, ys, dummies)
        if best is None or n < best[0]:
            best = (n, list(order), list(order_pairs), ys, dummies)
        if n == 0:
            break
    assert best is not None
    _, nodes, pairs, ys, dummies_of = best
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
        through: list[list[float]] = dummies_of[k] if k < len(dummies_of) else []
        for p in sorted(through, key=lambda p: p[1], reverse=not forward):
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
