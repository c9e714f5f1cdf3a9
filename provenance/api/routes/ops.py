"""Health, metrics and the API's own documentation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest

from provenance.api.deps import Svc, api_state
from provenance.bus.port import DEAD_LETTER_TOPIC
from provenance.connectors.cdc import recorded_unmapped

router = APIRouter(tags=["ops"])


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs() -> HTMLResponse:
    """Swagger UI over /openapi.json, every asset served from here (works offline, under the CSP)."""
    from provenance.api.pages import render

    return HTMLResponse(render("docs.html"))


@router.get("/healthz", responses={503: {"description": "the background processor has stopped"}})
def healthz(request: Request, svc: Svc) -> JSONResponse:
    """Liveness and the processor's state (no credentials needed). 503 when the background processor
    has stopped: a supervisor should restart the server."""
    state = api_state(request)
    dead = state.processor_dead
    body = {"status": "failing" if dead else "ok", "pending": svc.stack.processor.pending(),
            "processor": ("stopped" if dead else "background") if svc.background else "on request",
            "last_processor_error": state.processor_error}
    return JSONResponse(body, status_code=503 if dead else 200)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, svc: Svc) -> Response:
    """Prometheus metrics: events in, applied, dead-lettered, processor lag and health, query latencies."""
    state = api_state(request)
    bus, store = svc.stack.bus, svc.stack.store
    total_in = sum(sum(bus.end_offsets(t).values()) for t in bus.raw_topics())
    applied = sum(store.applied_offsets(svc.stack.processor.group).values())
    m = state.metrics
    m.events_in.set(total_in)
    m.applied.set(applied)
    m.lag.set(max(0, total_in - applied))
    m.dead.set(sum(bus.end_offsets(DEAD_LETTER_TOPIC).values()) if DEAD_LETTER_TOPIC in bus.topics() else 0)
    m.processor_up.set(0 if state.processor_dead else 1)
    m.cdc_unmapped.set(len(recorded_unmapped(state.settings.home / "cdc")))
    return Response(generate_latest(m.registry), media_type="text/plain; version=0.0.4")
