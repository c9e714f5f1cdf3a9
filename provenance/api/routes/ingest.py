"""Ingestion: raw events in batches, and OpenLineage events."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Request

from provenance.api.deps import Svc, Who
from provenance.errors import EventError, Forbidden, PayloadTooLarge, QueryError

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
        try:
            lines = [orjson.dumps(e) for e in data]
        except TypeError as exc:  # orjson writes at most 255 levels; no event of ours nests near that
            raise EventError(f"an event is nested too deep: {exc}") from exc
    done = svc.ingest(who, format, lines)
    request.app.state.api.metrics.ingested.labels(format).inc(done.accepted)
    return {"accepted": done.accepted, "topic": done.topic, "first_offset": done.first_offset}


@router.post("/api/v1/lineage", status_code=201, tags=["openlineage"])
async def openlineage(request: Request, svc: Svc, who: Who) -> dict[str, Any]:
    """An OpenLineage RunEvent, DatasetEvent or JobEvent (Marquez's route; a gzip body as the client's
    ``compression: gzip`` sends it is read too). Validated against the spec here (422 with the reason);
    mapped by the processor. The answer names the facets not stored (over the per-event budget)."""
    from provenance.connectors.openlineage import to_events

    if not who.admin:
        raise Forbidden("only admin tokens may send events")
    _json_body_type(request)
    body = await request.body()
    if request.headers.get("content-encoding", "").strip().lower() == "gzip":
        body = _gunzip(body, svc.settings.server.max_body_bytes)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"the body is not JSON: {exc}") from exc
    mapped = to_events(data)  # a malformed event is refused with 422, not dead-lettered later
    # the event as received (the processor maps it again, cutting what did not fit); one run's events stay in order
    svc.ingest(who, "openlineage", [body.strip()], keys=[mapped.key])
    request.app.state.api.metrics.ingested.labels("openlineage").inc()
    return {"accepted": 1, "type": mapped.kind, "events": len(mapped.events), "cut": mapped.cut}


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body, inflated up to the body limit (a small body must not inflate into gigabytes)."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(body, limit + 1)
    except zlib.error as exc:
        raise EventError(f"the body is not gzip: {exc}") from exc
    if len(out) > limit or inflate.unconsumed_tail:
        raise PayloadTooLarge(limit)
    if not inflate.eof:  # cut short: what was inflated may end anywhere
        raise EventError("the gzip body is truncated")
    return out
