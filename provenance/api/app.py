"""The FastAPI app factory: ``create_app(settings)`` builds everything at call time (no import-time
state), so that tests, ``provenance serve`` and several apps in one process each get their own.

Errors have one handler and one body: ``{"error": {"code", "message", "status", "details"?}}`` with
400 (bad query), 401 (no or bad token), 403 (not allowed), 404 (absent, or not visible to the
caller), 413 (too large), 422 (invalid request). Bad input never answers 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from provenance.access import ANONYMOUS_ADMIN, AccessStore, Principal
from provenance.config import Settings
from provenance.errors import AuthError, EventError, Forbidden, NotFoundError, ProvenanceError, QueryError
from provenance.stack import Stack, apply_pending, open_stack, run_processor

QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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
        self.ingested = Counter("provenance_api_ingested_records", "Records accepted by the ingest endpoints",
                                ["format"], registry=self.registry)
        self.query_seconds = Histogram("provenance_query_seconds", "Query latency", ["query"],
                                       buckets=QUERY_BUCKETS, registry=self.registry)
        self.requests = Counter("provenance_http_requests", "HTTP requests by status class", ["status"],
                                registry=self.registry)


@dataclass
class Service:
    """What the routes use: the stack (bus, store, rules, search), access control and metrics. The
    stack and the access store open on first use and close at the app's shutdown (and open again if
    the app is started again)."""

    settings: Settings
    auth: bool = True
    metrics: Metrics = field(default_factory=Metrics)
    processor_thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    last_processor_error: str | None = None
    _stack: Stack | None = None
    _access: AccessStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stack(self) -> Stack:
        with self._lock:
            if self._stack is None:
                self._stack = open_stack(self.settings)
            return self._stack

    @property
    def access(self) -> AccessStore | None:
        """None: --no-auth."""
        if not self.auth:
            return None
        with self._lock:
            if self._access is None:
                self._access = AccessStore(self.settings.home / "access.db")
            return self._access

    def close(self) -> None:
        with self._lock:
            if self._stack is not None:
                self._stack.close()
            if self._access is not None:
                self._access.close()
            self._stack, self._access = None, None

    def principal(self, request: Request) -> Principal:
        if self.access is None:
            return ANONYMOUS_ADMIN
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get("prov_token")
        return self.access.authenticate(token or None)

    def catch_up(self) -> None:
        """When no processor runs in the background, apply what is pending before answering (not on
        Kafka: there the processors of the group apply the log, and a request must not join it)."""
        if self.processor_thread is not None or self.stack.bus.group_managed:
            return
        apply_pending(self.stack.processor, self.settings)

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.metrics.query_seconds.labels(name).observe(time.perf_counter() - start)


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
    (AuthError, 401, "unauthorized"), (Forbidden, 403, "forbidden"), (NotFoundError, 404, "not_found"),
    (QueryError, 400, "bad_query"), (EventError, 422, "invalid_event"), (ProvenanceError, 400, "bad_request"),
]


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, status, code in _ERRORS:
        def handler(_: Request, exc: Exception, status: int = status, code: str = code) -> JSONResponse:
            return _error(status, code, str(exc))

        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")}
                   for e in exc.errors()]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error(422, "invalid_request", f"{where}: {first['message']}" if where else str(first["message"]),
                      details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, _STATUS_CODES.get(exc.status_code, "error"), str(exc.detail))


def create_app(settings: Settings, *, auth: bool = True, run_processor: bool = False,
               ui: bool = True) -> FastAPI:
    """The API (and the web UI) over the stack ``settings`` configures. ``run_processor`` applies the
    log continuously in a background thread (``provenance serve``); otherwise each request applies
    what is pending first."""
    from provenance.api import routes, views

    open_stack(settings).close()  # a bad configuration fails here, at start
    service = Service(settings, auth)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_processor:
            service.stop.clear()
            service.processor_thread = threading.Thread(target=_process_forever, args=(service,),
                                                        name="processor", daemon=True)
            service.processor_thread.start()
        try:
            yield
        finally:
            service.stop.set()
            if service.processor_thread is not None:
                service.processor_thread.join(timeout=30)
                service.processor_thread = None
            service.close()

    app = FastAPI(title="provenance", version="1", lifespan=lifespan,
                  description="Implicit provenance for ML pipelines: lineage queries with time travel, search, "
                              "ingestion (canonical events, OpenLineage) and exports.")
    app.state.service = service
    install_error_handlers(app)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Any]) -> Any:
        response = await call_next(request)
        service.metrics.requests.labels(f"{response.status_code // 100}xx").inc()
        return response

    app.include_router(routes.router)
    if ui:
        app.include_router(views.router)
    return app


def _process_forever(service: Service) -> None:
    """The processor of ``serve``; errors are kept for /healthz, and it goes on."""

    def failed(exc: ProvenanceError) -> None:
        service.last_processor_error = str(exc)

    run_processor(service.settings, service.stop, on_error=failed)
