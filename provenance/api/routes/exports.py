"""Exports: the lineage subgraph (JSON, W3C PROV-JSON, GraphML), a run as OpenLineage, the reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from provenance.api.deps import AsOf, Depth, Svc, Who, as_of_ms
from provenance.api.pages import report_html
from provenance.graph import export
from provenance.graph.answers import Gdpr, LineageGraph, Upstream
from provenance.graph.queries import Limits
from provenance.reports import audit_markdown, gdpr_markdown

router = APIRouter(tags=["exports"])
Direction = Literal["up", "down", "both"]


@router.get("/api/lineage")
def lineage(uri: str, svc: Svc, who: Who, direction: Direction = "both", depth: Depth = 4,
            as_of: AsOf = None) -> LineageGraph:
    """The lineage subgraph around an artifact as nodes and edges (what the UI draws)."""
    return svc.lineage(who, uri, direction, depth, as_of_ms(as_of))


@router.get("/api/export/prov", response_class=JSONResponse)
def export_prov(uri: str, svc: Svc, who: Who, direction: Direction = "up", depth: Depth = 10,
                as_of: AsOf = None) -> JSONResponse:
    """W3C PROV-JSON of the artifact's lineage."""
    g = svc.lineage(who, uri, direction, depth, as_of_ms(as_of))
    return JSONResponse(export.prov_json(g), media_type="application/json")


@router.get("/api/export/graphml", response_class=Response)
def export_graphml(uri: str, svc: Svc, who: Who, direction: Direction = "both", depth: Depth = 10,
                   as_of: AsOf = None) -> Response:
    """GraphML of the artifact's lineage."""
    g = svc.lineage(who, uri, direction, depth, as_of_ms(as_of))
    return Response(export.graphml(g), media_type="application/graphml+xml")


@router.get("/api/export/openlineage")
def export_openlineage(app: str, request: Request, svc: Svc, who: Who, as_of: AsOf = None) -> dict[str, Any]:
    """The run as OpenLineage RunEvents (START, then COMPLETE / FAIL / ABORT with inputs and outputs)."""
    return {"events": svc.openlineage_export(who, app, str(request.base_url), as_of_ms(as_of))}


def _report(request: Request, fmt: str, answer: Upstream | Gdpr, markdown: str, title: str, uri: str,
            direction: Direction, depth: int, as_of: int) -> Response:
    if fmt == "json":
        return JSONResponse(answer.model_dump(mode="json"))
    if fmt == "md":
        return PlainTextResponse(markdown, media_type="text/markdown; charset=utf-8")
    return HTMLResponse(report_html(request, answer, uri, depth, as_of))


@router.get("/api/reports/audit", response_class=Response,
            responses={200: {"content": {"text/markdown": {}, "text/html": {}, "application/json": {}}}})
def report_audit(request: Request, uri: str, svc: Svc, who: Who, format: Literal["md", "html", "json"] = "md",
                 as_of: AsOf = None, depth: Depth = 10) -> Response:
    """The audit report of an artifact, as Markdown, printable HTML (with the lineage picture) or JSON."""
    t = as_of_ms(as_of)
    r = svc.upstream(who, uri, t, Limits(depth=depth))
    md = audit_markdown(r, generated_at=_now(), generated_by=who.user)
    return _report(request, format, r, md, f"Audit: {r.target.name or r.target.uri}", uri, "up", depth, t)


@router.get("/api/reports/gdpr", response_class=Response,
            responses={200: {"content": {"text/markdown": {}, "text/html": {}, "application/json": {}}}})
def report_gdpr(request: Request, svc: Svc, who: Who, uri: Annotated[list[str], Query(min_length=1, max_length=100)],
                format: Literal["md", "html", "json"] = "md", as_of: AsOf = None, depth: Depth = 10) -> Response:
    """The GDPR report of data, as Markdown, printable HTML (with the lineage picture) or JSON."""
    t = as_of_ms(as_of)
    r = svc.gdpr(who, uri, t, Limits(depth=depth))
    md = gdpr_markdown(r, generated_at=_now(), generated_by=who.user)
    return _report(request, format, r, md, f"GDPR report: {uri[0]}", uri[0], "down", depth, t)


def _now() -> str:
    import time

    from provenance.events.model import ms_to_iso

    return ms_to_iso(int(time.time() * 1000)) or ""
