"""Legibility of the lineage picture: the layered layout (igraph's Sugiyama, `provenance.api.layout`) against
the networkx multipartite layout the pages drew before, on the demo's graphs.

Counted on the drawn geometry (`provenance.api.layout.legibility`): edge crossings (pairs of edge segments
that cross), edges through nodes ((edge, box) pairs where an edge passes through a box that is not one of
its ends), overlapping boxes; and the drawing's size. Both layouts draw the same nodes and edges (the
service's lineage answer, logs and code hidden as the pages do by default, or shown).

    python -m bench.lineage_layout                 # the replayed demo (provenance demo --replay)
    python -m bench.lineage_layout --captured      # also the demo built and captured (needs its extras)
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx

from provenance.access import ANONYMOUS_ADMIN
from provenance.api import explorer, picture
from provenance.api.layout import Box, Legibility, legibility
from provenance.config import load_settings
from provenance.graph.answers import GraphEdge, GraphNode, LineageGraph
from provenance.service import Service

# the previous picture's geometry (provenance/api/picture.py before the layered layout)
OLD_COL_W, OLD_ROW_H, OLD_BOX_W, OLD_BOX_H = 210, 64, 170, 34


def _old_column(n: GraphNode) -> int:
    if n.kind != "app":
        return 2 * n.depth
    return 2 * n.depth + 1 if n.depth < 0 else 2 * n.depth - 1


def old_layout(g: LineageGraph) -> tuple[dict[str, Box], list[tuple[str, str, list[tuple[float, float]]]],
                                         tuple[int, int]]:
    """Columns by lineage depth, rows by networkx's multipartite layout (nodes sorted by type), straight edges."""
    graph: nx.Graph[str] = nx.Graph()
    columns = {n.id: _old_column(n) for n in g.nodes}
    order = {c: i for i, c in enumerate(sorted(set(columns.values())))}
    for n in sorted(g.nodes, key=lambda n: (n.type, n.label, n.id)):
        graph.add_node(n.id, layer=order[columns[n.id]])
    pos = nx.multipartite_layout(graph, subset_key="layer", align="vertical", scale=1.0)
    rows: dict[int, list[str]] = {}
    for node_id, _ in sorted(pos.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        rows.setdefault(order[columns[node_id]], []).append(node_id)
    tallest = max(len(r) for r in rows.values())
    boxes = {}
    for layer, members in rows.items():
        top = (tallest - len(members)) * OLD_ROW_H // 2
        for i, node_id in enumerate(members):
            boxes[node_id] = Box(20 + layer * OLD_COL_W, 30 + top + i * OLD_ROW_H, OLD_BOX_W, OLD_BOX_H)
    routes = []
    for e in g.edges:
        a, b = boxes[e.source], boxes[e.target]
        routes.append((e.source, e.target, [(a.x + a.w, a.cy), (b.x, b.cy)]))
    return boxes, routes, (40 + len(rows) * OLD_COL_W, 50 + tallest * OLD_ROW_H)


def shown(g: LineageGraph, aux: bool) -> LineageGraph:
    keep = [n for n in g.nodes if aux or n.start or n.type not in picture.AUX_TYPES]
    ids = {n.id for n in keep}
    return g.model_copy(update={"nodes": keep, "edges": [e for e in g.edges if e.source in ids and e.target in ids]})


def measure(svc: Service, name: str, ref: str, direction: str, aux: bool, expand_runs: bool = False
            ) -> list[tuple[str, str, Legibility, tuple[int, int], float]]:
    g = svc.lineage(ANONYMOUS_ADMIN, ref, direction, 10)  # type: ignore[arg-type]
    if expand_runs:  # as a reader who opened every run's footprint in the explorer
        view = explorer.View(uri=ref, direction=direction, depth=10,
                             expand=[n.id for n in g.nodes if n.kind == "app"][: explorer.MAX_EXPANDED])
        g = explorer.lineage(svc, ANONYMOUS_ADMIN, view)
    return measure_graph(name, shown(g, aux))


def synthetic(seed: int, stages: int = 8, runs: int = 6) -> LineageGraph:
    """A larger lineage than the demo's: each stage's runs read one to three versions made up to three stages
    before (long edges) and write one or two; depth from the first stage, as the service numbers it."""
    rng = random.Random(seed)
    nodes = [GraphNode(id=f"raw{i}", kind="artifact", label=f"raw{i}", uri=f"raw{i}", type="dataset", depth=0,
                       start=i == 0) for i in range(runs)]
    edges: list[GraphEdge] = []
    made: list[list[str]] = [[n.id for n in nodes]]
    for s in range(1, stages):
        out = []
        for r in range(runs):
            run = f"app:{s}.{r}"
            nodes.append(GraphNode(id=run, kind="app", label=f"stage{s}", uri=run, type="app", depth=s))
            for src in rng.sample([v for layer in made[-3:] for v in layer], k=rng.randint(1, 3)):
                edges.append(GraphEdge(source=src, target=run, rel="READ"))
            for k in range(rng.randint(1, 2)):
                v = f"v{s}.{r}.{k}"
                nodes.append(GraphNode(id=v, kind="artifact", label=v, uri=v, type="dataset", depth=s))
                edges.append(GraphEdge(source=run, target=v, rel="CREATED"))
                out.append(v)
        made.append(out)
    return LineageGraph(start=["raw0"], direction="down", depth=stages, nodes=nodes, edges=edges)


def measure_graph(name: str, g: LineageGraph) -> list[tuple[str, str, Legibility, tuple[int, int], float]]:
    t = time.perf_counter()
    boxes, routes, size = old_layout(g)
    old_s = time.perf_counter() - t
    t = time.perf_counter()
    drawn = picture.prepare(g, picture.Options(aux=True))
    new_s = time.perf_counter() - t
    return [(name, "networkx multipartite, straight edges (before)", legibility(boxes, routes), size, old_s),
            (name, "igraph Sugiyama, routed edges (now)", legibility(drawn.placed.boxes, drawn.placed.routes),
             (int(drawn.placed.width), int(drawn.placed.height)), new_s)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captured", action="store_true", help="also build and capture the demo pipeline (~30 s)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "replay"
        subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "demo", "--replay"],
                       check=True, capture_output=True)
        svc = Service(load_settings(home=home))
        dep, raw = "/Projects/loan/Deployments/loan_scoring", "/Projects/loan/Raw/applications_2026_02.csv"
        for aux in (False, True):
            suffix = ", logs & code shown" if aux else ""
            rows += measure(svc, f"replay: deployment, both, depth 10{suffix}", dep, "both", aux)
            rows += measure(svc, f"replay: raw file, down, depth 10{suffix}", raw, "down", aux)
            rows += measure(svc, f"replay: deployment, both, depth 10, every run expanded{suffix}", dep, "both", aux,
                            expand_runs=True)
        svc.close()
        if args.captured:
            home, work = Path(tmp) / "captured", Path(tmp) / "demo"
            subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "demo", "--dir", str(work)],
                           check=True, capture_output=True)
            svc = Service(load_settings(home=home))
            for aux in (False, True):
                suffix = ", logs & code shown" if aux else ""
                rows += measure(svc, f"captured: deployment, both, depth 10{suffix}",
                                str(work / "serving" / "loan_scoring"), "both", aux)
                rows += measure(svc, f"captured: raw file, down, depth 10{suffix}",
                                str(work / "data" / "raw" / "applications_2026_02.csv"), "down", aux)
            svc.close()
    for seed in range(3):
        rows += measure_graph(f"synthetic pipeline {seed}: 8 stages × 6 runs", synthetic(seed))
    print("| graph | layout | nodes | edges | edge crossings | edges through nodes | overlapping nodes | size (px) "
          "| layout ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for name, layout, f, (w, h), s in rows:
        print(f"| {name} | {layout} | {f.nodes} | {f.edges} | {f.crossings} | {f.through_nodes} | {f.overlaps} "
              f"| {w}×{h} | {s * 1000:.1f} |")


if __name__ == "__main__":
    main()
