"""The lineage picture without a browser: the layered layout's geometry (no edge through a box it does not
join, no boxes on top of each other, fewer crossings than the layout it replaced, the same drawing every
time), what the picture hides and groups, the explorer's URL parsing and expansion, and the report as a PDF.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.access import ANONYMOUS_ADMIN
from provenance.api import explorer, picture
from provenance.api.layout import BOX_W, COL_W, MARGIN, columns, layout, legibility
from provenance.config import load_settings
from provenance.errors import QueryError
from provenance.graph.answers import GraphEdge, GraphNode, LineageGraph
from provenance.service import Service
from tests.conftest import example_lines, ingest_lines

P = "/Projects/loan"
DEPLOYMENT, RAW = f"{P}/Deployments/loan_scoring", f"{P}/Raw/applications_2026_02.csv"


def pipeline(seed: int, stages: int = 7, runs: int = 5) -> tuple[list[str], list[tuple[str, str]]]:
    """A synthetic lineage: each stage's runs read one to three versions of the stages before (some several
    stages back: long edges) and write one or two versions; some files nobody reads (isolated after hiding)."""
    rng = random.Random(seed)
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    made: list[list[str]] = [[f"raw{i}" for i in range(runs)]]
    nodes += made[0]
    for s in range(1, stages):
        out = []
        for r in range(runs):
            run = f"run{s}.{r}"
            nodes.append(run)
            for src in rng.sample([v for layer in made[-3:] for v in layer], k=min(3, rng.randint(1, 3))):
                edges.append((src, run))
            for k in range(rng.randint(1, 2)):
                v = f"v{s}.{r}.{k}"
                nodes.append(v)
                edges.append((run, v))
                out.append(v)
        made.append(out)
    nodes += [f"lonely{i}" for i in range(3)]
    return nodes, edges


@pytest.mark.parametrize("seed", range(6))
def test_no_edge_runs_through_a_box_and_no_boxes_overlap(seed: int) -> None:
    nodes, edges = pipeline(seed)
    placed = layout(nodes, edges)
    figures = legibility(placed.boxes, placed.routes)
    assert figures.through_nodes == 0 and figures.overlaps == 0, figures
    assert figures.edges == len(edges) and figures.nodes == len(nodes)
    col = columns(nodes, edges)
    for a, b, route in placed.routes:  # each route leaves its source's box and ends at its target's
        assert route[0] == (placed.boxes[a].x + placed.boxes[a].w, placed.boxes[a].cy)
        assert route[-1] == (placed.boxes[b].x, placed.boxes[b].cy)
        # through a row of its own in every column it crosses
        assert len(route) == 2 + 2 * (col[b] - col[a] - 1)
        assert all(x >= MARGIN for x, _ in route)
    assert layout(nodes, edges) == placed  # the same drawing every time


def test_crossings_are_fewer_than_with_the_columns_in_input_order() -> None:
    """The layered layout reduces crossings: against the same columns with rows in input order (what a layout
    without crossing reduction draws), on synthetic pipelines."""
    better = 0
    for seed in range(6):
        nodes, edges = pipeline(seed)
        placed = layout(nodes, edges)
        col = placed.columns
        naive = {}
        rows: dict[int, int] = {}
        for n in nodes:
            c = col[n]
            naive[n] = type(placed.boxes[n])(MARGIN + c * COL_W, MARGIN + rows.get(c, 0) * 62)
            rows[c] = rows.get(c, 0) + 1
        naive_routes = [(a, b, [(naive[a].x + BOX_W, naive[a].cy), (naive[b].x, naive[b].cy)]) for a, b in edges]
        ours, theirs = legibility(placed.boxes, placed.routes), legibility(naive, naive_routes)
        assert ours.crossings <= theirs.crossings
        better += ours.crossings < theirs.crossings
    assert better >= 4


def test_a_cycle_and_a_self_loop_do_not_break_the_layout() -> None:
    placed = layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a"), ("b", "b")])
    assert set(placed.boxes) == {"a", "b", "c"}
    assert legibility(placed.boxes, placed.routes).overlaps == 0


def test_version_labels_have_one_notation() -> None:
    assert [picture.version_label(v) for v in ("2", "v2", "initial", "", None)] == ["v2", "v2", "initial", "", ""]
    assert picture.short_run("application_1772442000000_0014") == "0014"
    assert picture.short_run("app_20261129T132925_c66eb881") == "c66eb881"


def _node(i: str, kind: str = "artifact", type: str = "dataset", depth: int = 0, job: str | None = None,
          **kw: object) -> GraphNode:
    return GraphNode(id=i, kind=kind, label=i, uri=i, type=type, depth=depth, job=job, **kw)  # type: ignore[arg-type]


def test_logs_and_code_are_hidden_unless_asked_and_runs_of_a_job_group() -> None:
    nodes = [_node("raw", start=True), _node("code", type="code"), _node("log", type="log"),
             _node("app:1", "app", "app", 1, "etl", created_ts=1), _node("app:2", "app", "app", 1, "etl", created_ts=2),
             _node("out1", depth=1), _node("out2", depth=1)]
    edges = [GraphEdge(source="raw", target="app:1", rel="READ"), GraphEdge(source="raw", target="app:2", rel="READ"),
             GraphEdge(source="code", target="app:1", rel="READ"),
             GraphEdge(source="app:1", target="log", rel="CREATED"),
             GraphEdge(source="app:1", target="out1", rel="CREATED"),
             GraphEdge(source="app:2", target="out2", rel="CREATED")]
    g = LineageGraph(start=["raw"], direction="down", depth=2, nodes=nodes, edges=edges)
    hidden = picture.prepare(g, picture.Options())
    assert {n["id"] for n in hidden.nodes} == {"raw", "app:1", "app:2", "out1", "out2"} and hidden.hidden == 2
    assert len(picture.prepare(g, picture.Options(aux=True)).nodes) == 7
    grouped = picture.prepare(g, picture.Options(group=True))
    runs = [n for n in grouped.nodes if n["kind"] == "app"]
    assert len(runs) == 1 and runs[0]["count"] == 2 and runs[0]["sub"].startswith("2 runs")
    # a run reads as its job, its run id and its date
    run = next(n for n in hidden.nodes if n["id"] == "app:1")
    assert run["label"] == "etl" and run["sub"].startswith("run ") and "1970-01-01" in run["sub"]


def test_the_view_says_what_it_changed() -> None:
    view = explorer.parse_view("/x", None, "both", "", None, "", "", [])
    assert view.depth == explorer.DEFAULT_DEPTH and not view.notices
    assert explorer.parse_view("/x", None, "up", "0", None, "", "", []).notices == [
        "Depth 0 is outside 1 to 20: showing depth 1."]
    assert explorer.parse_view("/x", None, "up", "25", None, "", "", []).depth == 20
    for bad in (("sideways", "3", None), ("up", "three", None), ("up", "3", "last tuesday")):
        with pytest.raises(QueryError):
            explorer.parse_view("/x", None, bad[0], bad[1], bad[2], "", "", [])
    v = explorer.parse_view("/x", "2", "up", "5", "2026-03-03T00:00:00Z", "1", "", ["a", "a", "b"])
    assert v.expand == ["a", "b"] and v.ref == "/x@2"
    assert v.query() == "uri=%2Fx&version=2&direction=up&depth=5&as_of=2026-03-03T00%3A00%3A00.000Z&aux=1&expand=a" \
                        "&expand=b"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(load_settings(home=tmp_path / "home"))
    ingest_lines(svc.stack, example_lines())
    yield svc
    svc.close()


def test_expanding_a_run_adds_its_footprint_and_collapsing_removes_it(service: Service) -> None:
    base = explorer.View(uri=DEPLOYMENT, direction="up", depth=10)
    g = explorer.lineage(service, ANONYMOUS_ADMIN, base)
    run = "app:application_1772442000000_0010"  # feature engineering: it wrote a scratch file and deleted it
    assert run in {n.id for n in g.nodes}
    opened = explorer.lineage(service, ANONYMOUS_ADMIN, explorer.View(uri=DEPLOYMENT, direction="up", depth=10,
                                                                      expand=[run]))
    added = {n.id for n in opened.nodes} - {n.id for n in g.nodes}
    assert any("scratch/fe_0010.parquet" in i for i in added)
    assert any(e.source == run and e.rel == "DELETED" for e in opened.edges)  # a temporary output
    ids = {n.id for n in opened.nodes}
    assert all(e.source in ids and e.target in ids for e in opened.edges)
    # every node added is joined to the graph
    joined = {e.source for e in opened.edges} | {e.target for e in opened.edges}
    assert ids <= joined
    assert {n.id for n in explorer.lineage(service, ANONYMOUS_ADMIN, base).nodes} == {n.id for n in g.nodes}


def test_the_report_pdf_is_drawn_without_a_browser(service: Service) -> None:
    from provenance.api import pdf, reportdoc

    view = explorer.View(uri=DEPLOYMENT, direction="up", depth=10, as_of=1_800_000_000_000)
    r = service.upstream(ANONYMOUS_ADMIN, DEPLOYMENT, view.as_of)
    doc = reportdoc.build(r, view, 1_800_000_000_000, "auditor", "http://127.0.0.1:8750/")
    assert doc.permalink.startswith("http://127.0.0.1:8750/ui/reports/audit?") and "as_of=2027" in doc.permalink
    assert ("Generated by", ["auditor"]) in [(k, [c.text for c in v]) for k, v in doc.stamp]
    drawn = picture.prepare(explorer.lineage(service, ANONYMOUS_ADMIN, view), picture.Options())
    body = pdf.render(doc, drawn)
    assert body.startswith(b"%PDF") and len(body) > 5000
    # every run id in the report's tables links to its page
    runs = [c for s in doc.sections if s.table for row in s.table.rows for cs in row for c in cs
            if c.text.startswith("application_")]
    assert runs and all(c.href and c.href.startswith("/ui/app/") for c in runs)
