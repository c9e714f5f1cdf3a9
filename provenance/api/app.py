"""The FastAPI app factory: ``create_app(settings)`` builds everything at call time (no import-time
state), so that tests, ``provenance serve`` and several apps in one process each get their own.

Errors have one handler and one body: ``{"error": {"code", "message", "status", "details"?}}`` with
400 (bad query), 401 (no or bad token), 403 (not allowed, or a cross-site / wrong-host request), 404
(absent, or not visible to the caller), 413 (too large), 415 (not JSON), 422 (invalid request).
Bad input never answers 500. Every response carries the security headers (`provenance.api.security`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from provenance.access import AccessStore
from provenance.api import pages, routes, security
from provenance.config import Settings
from provenance.errors import (
    AccessError,
    AuthError,
    BadOrigin,
    EventError,
    Forbidden,
    NotFoundError,
    PayloadTooLarge,
    ProvenanceError,
    QueryError,
)
from provenance.service import Service
from provenance.stack import open_stack, run_processor

log = logging.getLogger(__name__)
QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STATIC = Path(__file__).with_name("static")


class Metrics:
    """Prometheus metrics of one app (its own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_in = Gauge("provenance_events_in", "Raw records on the log (all raw topics)",
                               registry=self.registry)
        self.applied = Gauge("provenance_events_applied", "Raw records the processor has applied",
                             registry=self.registry)
        self.lag = Gauge("provenance_processor_lag", "Raw records not applied yet", registry=self.registry)
        self.dead = Gauge("provenance_dead_lettered", "Records on the dead-letter topic", registry=self.registry)
        self.processor_up = Gauge("provenance_processor_up", "1 while the background processor runs (or none is "
                                  "needed), 0 once it has stopped on an error", registry=self.registry)
        self.ingested = Counter("provenance_api_ingested_records", "Records accepted by the ingest endpoints",
                                ["format"], registry=self.registry)
        self.query_seconds = Histogram("provenance_query_seconds", "Query latency", ["query"],
                                       buckets=QUERY_BUCKETS, registry=self.registry)
        self.requests = Counter("provenance_http_requests", "HTTP requests by status class", ["status"],
                                registry=self.registry)
        self.cdc_unmapped = Gauge("provenance_cdc_unmapped_tables", "Tables the last `provenance cdc` saw change "
                                  "that no CDC mapping covers (their changes are ignored)", registry=self.registry)


@dataclass
class ApiState:
    """What the routes and pages share: the service, access control, metrics, the processor thread."""

    settings: Settings
    service: Service
    auth: bool = True
    public_url: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    processor_thread: threading.Thread | None = None
    processor_error: str | None = None  # the last failure; with the thread gone, why it stopped
    stop: threading.Event = field(default_factory=threading.Event)
    _access: AccessStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def access(self) -> AccessStore | None:
        """None: --no-auth."""
        if not self.auth:
            return None
        with self._lock:
            if self._access is None:
                self._access = AccessStore(self.settings.home / "access.db")
            return self._access

    @property
    def processor_dead(self) -> bool:
        return self.service.background and (self.processor_thread is None or not self.processor_thread.is_alive())

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))

    def close(self) -> None:
        self.service.close()
        with self._lock:
            if self._access is not None:
                self._access.close()
            self._access = None


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "status": status}}
    if details is not None:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status,
                        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                 422: "invalid_request"}

# most specific first: NotFoundError is a QueryError, every one of them a ProvenanceError
_ERRORS: list[tuple[type[Exception], int, str]] = [
    (AuthError, 401, "unauthorized"), (BadOrigin, 403, "bad_origin"), (Forbidden, 403, "forbidden"),
    (AccessError, 403, "forbidden"), (NotFoundError, 404, "not_found"), (QueryError, 400, "bad_query"),
    (PayloadTooLarge, 413, "too_large"), (EventError, 422, "invalid_event"), (ProvenanceError, 400, "bad_request"),
]


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, status, code in _ERRORS:
        def handler(request: Request, exc: Exception, status: int = status, code: str = code) -> Response:
            if pages.is_page(request):
                return pages.error_page(request, status, str(exc))
            return _error(status, code, str(exc))

        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")}
                   for e in exc.errors()]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        message = f"{where}: {first['message']}" if where else str(first["message"])
        if pages.is_page(request):
            return pages.error_page(request, 400, message)
        return _error(422, "invalid_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if pages.is_page(request) and exc.status_code == 404:
            return pages.error_page(request, 404, "There is no page here.")
        return _error(exc.status_code, _STATUS_CODES.get(exc.status_code, "error"), str(exc.detail))


def create_app(settings: Settings, *, auth: bool = True, run_processor: bool = False, ui: bool = True,
               public_url: str | None = None, bind: tuple[str, int] | None = None) -> FastAPI:
    """The API (and the web UI) over the stack ``settings`` configures. ``run_processor`` applies the
    log continuously in a background thread (``provenance serve``); otherwise each request applies
    what is pending first. ``public_url``: where users reach it (its host is allowed, and https makes
    the cookie Secure); ``bind``: the address served on (its host is allowed)."""
    open_stack(settings).close()  # a bad configuration fails here, at start
    metrics = Metrics()
    service = Service(settings, background=run_processor,
                      on_query=lambda name, seconds: metrics.query_seconds.labels(name).observe(seconds))
    state = ApiState(settings, service, auth, public_url, metrics)
    hosts = set(security.LOOPBACK_HOSTS) | set(settings.server.allowed_hosts)
    if bind is not None:
        hosts.add(bind[0])
    if public_url:
        hosts.add(urlsplit(public_url).hostname or "")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_processor:
            state.stop.clear()
            state.processor_thread = threading.Thread(target=_process_forever, args=(state,), name="processor",
                                                      daemon=True)
            state.processor_thread.start()
        try:
            yield
        finally:
            state.stop.set()
            if state.processor_thread is not None:
                # the processor finishes the batch in hand and commits; a batch takes seconds, not minutes
                state.processor_thread.join(timeout=120)
                if state.processor_thread.is_alive():
                    log.error("the processor did not stop within 120 s; its batch is applied again at the next start")
                state.processor_thread = None
            state.close()

    app = FastAPI(title="provenance", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Implicit provenance for ML pipelines: lineage queries with time travel, search, "
                              "ingestion (canonical events, OpenLineage) and exports.")
    app.state.api = state
    install_error_handlers(app)

    app.include_router(routes.router)
    if ui:
        app.include_router(pages.router)
        from swagger_ui_bundle import swagger_ui_path

        app.mount("/static/swagger", StaticFiles(directory=str(swagger_ui_path)), name="swagger")
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # outermost last: the body limit and the host and origin checks run before anything reads the request
    app.add_middleware(security.SecurityHeaders, on_status=lambda status: metrics.requests.labels(
        f"{status // 100}xx").inc())
    app.add_middleware(security.RequestGuard, allowed_hosts=frozenset(hosts),
                       max_body=settings.server.max_body_bytes)
    return app


def _process_forever(state: ApiState) -> None:
    """The processor of ``serve``. Its failures are kept for /healthz; when it gives up (too many in a
    row) the thread ends, and /healthz fails with the reason."""

    def failed(exc: ProvenanceError) -> None:
        state.processor_error = str(exc)

    try:
        run_processor(state.settings, state.stop, on_error=failed)
    except Exception as exc:  # the thread is the processor: record why it stopped, for /healthz and status
        state.processor_error = f"{type(exc).__name__}: {exc}"
        log.exception("the background processor stopped")
