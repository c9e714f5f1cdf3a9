"""Ingestion: raw events in batches, and OpenLineage RunEvents."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from provenance.api.deps import Svc, Who
from provenance.errors import EventError, Forbidden, QueryError

router = APIRouter(tags=["ingest"])
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "application/json-lines")


def _json_body_type(request: Request) -> str:
    """The body's media type, which must be JSON (a form or text a page of another site can post is not)."""
    ctype = request.headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
    if ctype not in JSON_TYPES:
        raise QueryError(f"send JSON (application/json) or JSON lines (application/x-ndjson), not {ctype!r}")
    return ctype


@router.post("/api/events", status_code=202)
async def post_events(request: Request, svc: Svc, who: Who, format: str = "canonical") -> dict[str, Any]:
    """Raw events in a batch: a JSON array, or JSON lines (``application/x-ndjson``). Every record goes on
    the log; ones the processor cannot use go to the dead-letter topic with the reason."""
    if not who.admin:
        raise Forbidden("only admin tokens may send events")
    if format not in svc.stack.normalizers:
        raise QueryError(svc.stack.normalizers.unknown(format))
    ctype = _json_body_type(request)
    body = await request.body()  # counted as it streams in: over the limit it stops (413)
    if ctype != "application/json":
        lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    else:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"the body is not JSON: {exc}") from exc
        if not isinstance(data, list):
            raise EventError("send a JSON array of events (or JSON lines with content-type application/x-ndjson)")
        lines = [orjson.dumps(e) for e in data]
    done = svc.ingest(who, format, lines)
    request.app.state.api.metrics.ingested.labels(format).inc(done.accepted)
    return {"accepted": done.accepted, "topic": done.topic, "first_offset": done.first_offset}


@router.post("/api/v1/lineage", status_code=201)
async def openlineage(request: Request, svc: Svc, who: Who) -> dict[str, Any]:
    """An OpenLineage RunEvent (Marquez-compatible). Validated here; mapped by the processor."""
    from provenance.connectors.openlineage import run_event_to_events

    if not who.admin:
        raise Forbidden("only admin tokens may send events")
    _json_body_type(request)
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"the body is not JSON: {exc}") from exc
    events = run_event_to_events(data)  # a malformed RunEvent is refused with 422, not dead-lettered later
    svc.ingest(who, "openlineage", [orjson.dumps(data)], keys=[str(data["run"]["runId"])])  # one run in order
    request.app.state.api.metrics.ingested.labels("openlineage").inc()
    return {"accepted": 1, "events": len(events)}
