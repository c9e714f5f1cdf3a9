"""The HTTP API: queries, search, ingestion, exports, health and metrics."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest

from provenance.access import Principal, redact
from provenance.api.app import Service
from provenance.bus.port import DEAD_LETTER_TOPIC, Record, raw_topic
from provenance.errors import EventError, Forbidden, NotFoundError, QueryError
from provenance.events.model import ms_to_iso, to_ms
from provenance.graph import export
from provenance.graph.model import NEVER, READ, artifact_node, node_key, user_node
from provenance.graph.queries import Limits, LineageQueries
from provenance.reports import audit_markdown, gdpr_markdown
from provenance.search.port import SearchQuery

router = APIRouter()
MAX_BODY = 50 * 1024 * 1024
DATASET_TYPES = ("dataset", "feature_group", "training_dataset", "table")


def service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def principal(request: Request) -> Principal:
    return service(request).principal(request)


Svc = Annotated[Service, Depends(service)]
Who = Annotated[Principal, Depends(principal)]
AsOf = Annotated[str | None, Query(description="ISO-8601 time or epoch ms: answer as the graph stood then")]
Depth = Annotated[int, Query(ge=1, le=100, description="pipeline stages to traverse")]
Budget = Annotated[float, Query(gt=0, le=120, description="seconds before answering partially")]
Limit = Annotated[int, Query(ge=1, le=10_000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


def as_of_ms(value: str | None) -> int:
    if value is None or value == "":
        return NEVER
    try:
        return to_ms(int(value) if value.strip().lstrip("-").isdigit() else value)
    except ValueError as exc:
        raise QueryError(f"as_of: {exc}") from exc


def _redact(svc: Service, answer: Any, who: Principal) -> Any:
    rules = svc.stack.rules

    def uri_project(uri: str) -> str | None:
        try:
            return rules.classify(uri).project
        except ValueError:
            return None

    return redact(answer, who, uri_project)


def queries(svc: Service) -> LineageQueries:
    svc.catch_up()
    return LineageQueries(svc.stack.store, svc.stack.rules)


def _check_artifact(q: LineageQueries, who: Principal, ref: str, as_of: int) -> str:
    """The artifact's root URI, if it exists and the caller may see it (else 404: no leak)."""
    uri, _ = q.resolve_artifact(ref, as_of)
    node = q.store.nodes([artifact_node(uri)], as_of).get(artifact_node(uri))
    if node is None or not who.sees(node.props.get("project")):
        raise NotFoundError(f"no artifact at {ref!r}")
    return uri


def _check_app(q: LineageQueries, who: Principal, app: str, as_of: int) -> dict[str, Any]:
    node = q.resolve_app(app, as_of)
    described = q.describe_apps([node.id], as_of)[node.id]
    if not who.sees(described.get("project")):
        raise NotFoundError(f"no app {app!r}")
    return described


# -- health and metrics ------------------------------------------------------------------------------
@router.get("/healthz", tags=["ops"])
def healthz(svc: Svc) -> dict[str, Any]:
    """Liveness and the processor's state (no credentials needed)."""
    proc = svc.stack.processor
    return {"status": "ok", "pending": proc.pending(), "processor": "background" if svc.processor_thread else
            "on request", "last_processor_error": svc.last_processor_error}


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
def metrics(svc: Svc) -> Response:
    """Prometheus metrics: events in, applied, dead-lettered, processor lag, query latencies."""
    bus, store = svc.stack.bus, svc.stack.store
    raw = bus.raw_topics()
    total_in = sum(bus.end_offsets(t)[0] for t in raw)
    applied = sum(store.applied_offsets(svc.stack.processor.group).values())
    m = svc.metrics
    m.events_in.set(total_in)
    m.applied.set(applied)
    m.lag.set(max(0, total_in - applied))
    m.dead.set(bus.end_offsets(DEAD_LETTER_TOPIC)[0] if DEAD_LETTER_TOPIC in bus.topics() else 0)
    return Response(generate_latest(m.registry), media_type="text/plain; version=0.0.4")


# -- apps, artifacts, users --------------------------------------------------------------------------
@router.get("/api/apps", tags=["apps"])
def list_apps(svc: Svc, who: Who, name: str | None = None, user: str | None = None, state: str | None = None,
              as_of: AsOf = None, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Runs, newest first, filtered by job name, user or state."""
    q, t = queries(svc), as_of_ms(as_of)
    where = {"state": state} if state else None
    if name:
        ids = q.job_apps(name, t)
    else:
        ids = [n.id for n in svc.stack.store.find_nodes("app", as_of=t, where=where, limit=100_000)[0]]
    apps = [a for a in q.describe_apps(ids, t).values()
            if (not user or user in a["users"]) and (not state or a["state"] == state) and who.sees(a["project"])]
    apps.sort(key=lambda a: (-(a["started_ts"] or 0), a["app_id"]))
    return {"apps": apps[offset: offset + limit], "total": len(apps), "offset": offset, "limit": limit,
            "as_of": ms_to_iso(t) if t != NEVER else None}


@router.get("/api/apps/{app_id}", tags=["apps"])
def get_app(app_id: str, svc: Svc, who: Who, as_of: AsOf = None) -> dict[str, Any]:
    q, t = queries(svc), as_of_ms(as_of)
    return _check_app(q, who, app_id, t)


@router.get("/api/apps/{app_id}/footprint", tags=["queries"])
def footprint(app_id: str, svc: Svc, who: Who, as_of: AsOf = None, limit: Limit = 1000,
              offset: Offset = 0) -> dict[str, Any]:
    """What the app read and wrote: artifact versions and files with their Hopsworks types."""
    q, t = queries(svc), as_of_ms(as_of)
    _check_app(q, who, app_id, t)
    r = svc.timed("footprint", lambda: q.footprint(app_id, t, Limits(limit=limit, offset=offset)))
    return _redact(svc, r, who)  # type: ignore[no-any-return]


@router.get("/api/artifacts", tags=["artifacts"])
def get_artifact_by_uri(uri: Annotated[str, Query(description="URI, absolute path, or URI@version")], svc: Svc,
                        who: Who, as_of: AsOf = None) -> dict[str, Any]:
    return _artifact(svc, who, uri, as_of_ms(as_of))


@router.get("/api/artifacts/{artifact_id:path}", tags=["artifacts"])
def get_artifact(artifact_id: str, svc: Svc, who: Who, as_of: AsOf = None) -> dict[str, Any]:
    """An artifact by its node id (``artifact:<uri>``) or URI."""
    return _artifact(svc, who, artifact_id.removeprefix("artifact:"), as_of_ms(as_of))


def _artifact(svc: Service, who: Principal, ref: str, t: int) -> dict[str, Any]:
    q = queries(svc)
    uri = _check_artifact(q, who, ref, t)
    store = svc.stack.store
    node = store.nodes([artifact_node(uri)], t)[artifact_node(uri)]
    versions = store.versions([uri], t)[uri]
    vids = [f"version:{uri}@{v.key}" for v in versions]
    items = q._artifact_items(vids, t)
    readers: dict[str, list[str]] = {}
    for e in store.edges_to(vids, [READ], t):
        readers.setdefault(e.dst, []).append(node_key(e.src))
    out = {"id": node.id, "uri": uri, "type": node.tags.get(svc.stack.rules.type_key) or node.props.get("type"),
           "name": node.props.get("name"), "project": node.props.get("project"), "tags": dict(node.tags),
           "props": node.props, "first_ts": node.first_ts, "last_ts": node.last_ts,
           "versions": [{**items[v], "readers": sorted(readers.get(v, []))} for v in vids],
           "as_of": ms_to_iso(t) if t != NEVER else None}
    return _redact(svc, out, who)  # type: ignore[no-any-return]


@router.get("/api/users", tags=["users"])
def list_users(svc: Svc, who: Who, as_of: AsOf = None, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    svc.catch_up()
    nodes, total = svc.stack.store.find_nodes("user", as_of=as_of_ms(as_of), limit=limit, offset=offset)
    return {"users": [{"name": node_key(n.id), "first_ts": n.first_ts, "last_ts": n.last_ts} for n in nodes],
            "total": total, "offset": offset, "limit": limit}


@router.get("/api/users/{name}", tags=["users"])
def get_user(name: str, svc: Svc, who: Who, as_of: AsOf = None, limit: Limit = 100,
             offset: Offset = 0) -> dict[str, Any]:
    """A user and the runs they made (those the caller may see)."""
    q, t = queries(svc), as_of_ms(as_of)
    store = svc.stack.store
    node = store.nodes([user_node(name)], t).get(user_node(name))
    if node is None:
        raise NotFoundError(f"no user {name!r}")
    runs = [e.dst for e in store.edges_from([node.id], ["RAN"], t)]
    apps = sorted((a for a in q.describe_apps(runs, t).values() if who.sees(a["project"])),
                  key=lambda a: -(a["started_ts"] or 0))
    return {"name": name, "first_ts": node.first_ts, "last_ts": node.last_ts, "runs": apps[offset: offset + limit],
            "total_runs": len(apps), "jobs": sorted({a["job"] for a in apps if a["job"]})}


# -- lineage queries ---------------------------------------------------------------------------------
@router.get("/api/impact", tags=["queries"])
def impact(svc: Svc, who: Who, app: str | None = None, job: str | None = None, artifact: str | None = None,
           as_of: AsOf = None, depth: Depth = 10, time_budget: Budget = 5.0, limit: Limit = 1000,
           offset: Offset = 0) -> dict[str, Any]:
    """What was affected downstream of an app, a job or an artifact (``uri@version`` for one version)."""
    q, t = queries(svc), as_of_ms(as_of)
    if sum(x is not None for x in (app, job, artifact)) != 1:
        raise QueryError("give exactly one of app, job or artifact")
    if app is not None:
        _check_app(q, who, app, t)
    if artifact is not None:
        _check_artifact(q, who, artifact, t)
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    r = svc.timed("impact", lambda: q.impact(app=app, job=job, artifact=artifact, as_of=t, limits=limits))
    return _redact(svc, r, who)  # type: ignore[no-any-return]


@router.get("/api/upstream", tags=["queries"])
@router.get("/api/audit", tags=["queries"])
def upstream(uri: str, svc: Svc, who: Who, as_of: AsOf = None, depth: Depth = 10, time_budget: Budget = 5.0,
             limit: Limit = 1000, offset: Offset = 0) -> dict[str, Any]:
    """How an artifact was made: its ancestors back to raw data, the apps, users, code and
    environments, and what used it afterwards (the audit)."""
    q, t = queries(svc), as_of_ms(as_of)
    _check_artifact(q, who, uri, t)
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    return _redact(svc, svc.timed("upstream", lambda: q.upstream(uri, t, limits)), who)  # type: ignore[no-any-return]


@router.get("/api/gdpr", tags=["queries"])
def gdpr(svc: Svc, who: Who, uri: Annotated[list[str], Query(min_length=1)], as_of: AsOf = None, depth: Depth = 10,
         time_budget: Budget = 5.0, limit: Limit = 1000, offset: Offset = 0) -> dict[str, Any]:
    """Every model and deployment downstream of the given data, with one evidence path each."""
    q, t = queries(svc), as_of_ms(as_of)
    for u in uri:
        _check_artifact(q, who, u, t)
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    return _redact(svc, svc.timed("gdpr", lambda: q.gdpr(uri, t, limits)), who)  # type: ignore[no-any-return]


@router.get("/api/repro", tags=["queries"])
def repro(svc: Svc, who: Who, a: str, b: str | None = None, as_of: AsOf = None) -> dict[str, Any]:
    """Reproducibility: two runs compared (inputs, code, environment), or — without ``b`` — a run
    against the current state of its inputs (their latest versions), its code (git HEAD of its
    working directory) and this host's Python environment."""
    q, t = queries(svc), as_of_ms(as_of)
    _check_app(q, who, a, t)
    if b is not None:
        _check_app(q, who, b, t)
        return _redact(svc, svc.timed("repro", lambda: q.compare_runs(a, b, t)), who)  # type: ignore[no-any-return]
    return _redact(svc, svc.timed("repro", lambda: current_state(q, a, t)), who)  # type: ignore[no-any-return]


def current_state(q: LineageQueries, app: str, as_of: int) -> dict[str, Any]:
    from pathlib import Path

    from provenance.connectors.launcher import environment_fingerprint, git_state

    fp = q.footprint(app, as_of, Limits(limit=1_000_000))
    a = fp["app"]
    inputs = [i for i in fp["artifacts"] if "INPUT" in i["types"]]
    latest = q.store.versions(sorted({i["uri"] for i in inputs}), as_of)
    changed: list[dict[str, Any]] = []
    same: list[dict[str, Any]] = []
    for i in inputs:
        vs = latest.get(i["uri"], [])
        now = vs[-1].label if vs else None
        (same if now in (None, str(i["version"])) else changed).append(
            {"uri": i["uri"], "read": str(i["version"]), "latest": now})
    cwd = a["props"].get("cwd")
    git = git_state(Path(cwd)) if isinstance(cwd, str) and Path(cwd).is_dir() else {}
    env = environment_fingerprint()
    warnings = []
    if changed:
        warnings.append(f"{len(changed)} input(s) have newer versions than the run read")
    if git and a["git_commit"] and git.get("git_commit") != a["git_commit"]:
        warnings.append(f"code moved on: the run used {a['git_commit']}, the working tree is at {git['git_commit']}")
    if git.get("git_dirty"):
        warnings.append("the working tree has uncommitted changes")
    if a["env_hash"] and env["env_hash"] != a["env_hash"]:
        warnings.append(f"the environment differs: the run had {a['env_hash']}, this host has {env['env_hash']}")
    return {"query": "repro", "app": a, "inputs": {"same": same, "changed": changed},
            "code": {"run": a["git_commit"], "now": git.get("git_commit"), "dirty_now": git.get("git_dirty")},
            "environment": {"run": a["env_hash"], "now": env["env_hash"], "python_run": a["python"],
                            "python_now": env["python"]},
            "reproducible": not warnings, "warnings": warnings}


# -- search ------------------------------------------------------------------------------------------
def _search_index(svc: Service) -> Any:
    svc.catch_up()
    index = svc.stack.search
    if index is None:
        raise QueryError("search is off in this configuration (search.type: none)")
    return index


@router.get("/api/search", tags=["search"])
def search(svc: Svc, who: Who, q: str = "", kind: Annotated[list[str] | None, Query()] = None,
           type: Annotated[list[str] | None, Query()] = None, project: Annotated[list[str] | None, Query()] = None,
           user: Annotated[list[str] | None, Query()] = None,
           tag: Annotated[list[str] | None, Query(description="key=value")] = None,
           time_from: AsOf = None, time_to: AsOf = None,
           sort: Literal["relevance", "usage", "recent"] = "relevance",
           limit: Annotated[int, Query(ge=1, le=1000)] = 20,
           offset: Offset = 0) -> dict[str, Any]:
    """Full text over names, paths, tags and descriptions (a trailing * is a prefix), with filters and
    facets; sorted by relevance, usage or recency."""
    index = _search_index(svc)
    tags = []
    for t in tag or []:
        key, sep, value = t.partition("=")
        if not sep:
            raise QueryError(f"tag filter {t!r} must be key=value")
        tags.append((key, value))
    query = SearchQuery(text=q, kinds=kind or (), types=type or (), projects=project or (), users=user or (),
                        tags=tags, time_from=as_of_ms(time_from) if time_from else None,
                        time_to=as_of_ms(time_to) if time_to else None, sort=sort, limit=limit, offset=offset,
                        visible_projects=who.visible_projects)
    r = svc.timed("search", lambda: index.search(query))
    return {"query": q, "total": r.total, "hits": r.hits, "facets": r.facets, "offset": offset, "limit": limit}


@router.get("/api/search/most-used-datasets", tags=["search"])
def most_used_datasets(svc: Svc, who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict[str, Any]:
    """The paper's first question: the datasets read by the most apps."""
    index = _search_index(svc)
    r = index.search(SearchQuery(kinds=["artifact"], types=DATASET_TYPES, sort="usage", limit=limit,
                                 visible_projects=who.visible_projects))
    return {"datasets": r.hits, "total": r.total}


@router.get("/api/search/recent-pipeline", tags=["search"])
def recent_pipeline(dataset: str, svc: Svc, who: Who, as_of: AsOf = None) -> dict[str, Any]:
    """The paper's second question: the most recent pipeline (job) that used dataset X."""
    q, t = queries(svc), as_of_ms(as_of)
    uri = _check_artifact(q, who, dataset, t)
    vids = [f"version:{uri}@{v.key}" for v in q.store.versions([uri], t)[uri]]
    apps = q.describe_apps(sorted({e.src for e in q.store.edges_to(vids, [READ], t)}), t)
    runs = sorted((a for a in apps.values() if who.sees(a["project"])), key=lambda a: -(a["started_ts"] or 0))
    if not runs:
        return {"dataset": uri, "pipeline": None, "run": None}
    return {"dataset": uri, "pipeline": runs[0]["job"], "run": runs[0],
            "runs_that_used_it": len(runs)}


@router.get("/api/search/pipeline-users", tags=["search"])
def pipeline_users(job: str, svc: Svc, who: Who, as_of: AsOf = None) -> dict[str, Any]:
    """The paper's third question: the users who ran the latest version of pipeline P successfully.
    A pipeline's version is its code (the git commit of its runs; the command line without one)."""
    q, t = queries(svc), as_of_ms(as_of)
    ids = q.job_apps(job, t)
    runs = sorted((a for a in q.describe_apps(ids, t).values() if who.sees(a["project"])),
                  key=lambda a: -(a["started_ts"] or 0))
    if not runs:
        raise NotFoundError(f"no runs of pipeline {job!r}")

    def version(a: dict[str, Any]) -> str:
        return str(a["git_commit"] or json.dumps(a["command"]))

    latest = version(runs[0])
    ok = [a for a in runs if version(a) == latest and a["state"] == "finished"]
    return {"pipeline": job, "latest_version": latest, "users": sorted({u for a in ok for u in a["users"]}),
            "runs": ok}


# -- ingestion ---------------------------------------------------------------------------------------
async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise _TooLarge(len(body))
    return body


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"request body of {size} bytes is over the {MAX_BODY} byte limit")


def _require_writer(who: Principal) -> None:
    if not who.admin:
        raise Forbidden("only admin tokens may send events")


@router.post("/api/events", tags=["ingest"], status_code=202, response_model=None)
async def post_events(request: Request, svc: Svc, who: Who, format: str = "canonical") -> dict[str, Any] | JSONResponse:
    """Raw events in a batch: a JSON array, or JSON lines (``application/x-ndjson``). Every record
    goes on the log; ones the processor cannot use go to the dead-letter topic with the reason."""
    _require_writer(who)
    if format not in svc.stack.normalizers:
        raise QueryError(svc.stack.normalizers.unknown(format))
    try:
        body = await _body(request)
    except _TooLarge as exc:
        return JSONResponse({"error": {"code": "too_large", "message": str(exc), "status": 413}}, status_code=413)
    ctype = request.headers.get("content-type", "")
    if "ndjson" in ctype or "jsonl" in ctype:
        lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    else:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"the body is not JSON: {exc}") from exc
        if not isinstance(data, list):
            raise EventError("send a JSON array of events (or JSON lines with content-type application/x-ndjson)")
        lines = [orjson.dumps(e) for e in data]
    topic = raw_topic(format)
    records = [Record(value=ln, key=_key(ln)) for ln in lines]
    offsets = svc.stack.bus.produce(topic, records) if records else []
    svc.metrics.ingested.labels(format).inc(len(records))
    return {"accepted": len(records), "topic": topic, "first_offset": offsets[0] if offsets else None}


@router.post("/api/v1/lineage", tags=["ingest"], status_code=201)
async def openlineage(request: Request, svc: Svc, who: Who) -> dict[str, Any]:
    """An OpenLineage RunEvent (Marquez-compatible). Validated for shape here; mapped by the processor."""
    _require_writer(who)
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"the body is not JSON: {exc}") from exc
    from provenance.connectors.openlineage import run_event_to_events

    events = run_event_to_events(data)  # a malformed RunEvent is refused with 422, not dead-lettered later
    svc.stack.bus.produce(raw_topic("openlineage"), [Record(value=orjson.dumps(data), key=str(data["run"]["runId"]))])
    svc.metrics.ingested.labels("openlineage").inc()
    return {"accepted": 1, "events": len(events)}


def _key(line: bytes) -> str | None:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict):
        key = data.get("app_id") or data.get("uri")
        return str(key) if key else None
    return None


# -- exports -----------------------------------------------------------------------------------------
Direction = Literal["up", "down", "both"]


def _subgraph(svc: Service, who: Principal, uri: str, direction: str, depth: int, as_of: int) -> Any:
    q = queries(svc)
    _check_artifact(q, who, uri, as_of)
    return export.subgraph(q, uri, direction, as_of, Limits(depth=depth), None if who.admin else who)


@router.get("/api/lineage", tags=["exports"])
def lineage(uri: str, svc: Svc, who: Who, direction: Direction = "both", depth: Depth = 4,
            as_of: AsOf = None) -> dict[str, Any]:
    """The lineage subgraph around an artifact as nodes and edges (what the UI draws)."""
    g, meta = _subgraph(svc, who, uri, direction, depth, as_of_ms(as_of))
    return {**meta, "nodes": [{"id": n, **d} for n, d in g.nodes(data=True)],
            "edges": [{"source": u, "target": v, **d} for u, v, d in g.edges(data=True)]}


@router.get("/api/export/prov", tags=["exports"])
def export_prov(uri: str, svc: Svc, who: Who, direction: Direction = "up", depth: Depth = 10,
                as_of: AsOf = None) -> JSONResponse:
    """W3C PROV-JSON of the artifact's lineage."""
    g, _ = _subgraph(svc, who, uri, direction, depth, as_of_ms(as_of))
    return JSONResponse(export.prov_json(g), media_type="application/json")


@router.get("/api/export/graphml", tags=["exports"])
def export_graphml(uri: str, svc: Svc, who: Who, direction: Direction = "both", depth: Depth = 10,
                   as_of: AsOf = None) -> Response:
    g, _ = _subgraph(svc, who, uri, direction, depth, as_of_ms(as_of))
    return Response(export.graphml(g), media_type="application/graphml+xml")


@router.get("/api/export/openlineage", tags=["exports"])
def export_openlineage(app: str, request: Request, svc: Svc, who: Who, as_of: AsOf = None) -> dict[str, Any]:
    """The run as OpenLineage RunEvents (START, then COMPLETE / FAIL / ABORT with inputs and outputs)."""
    q, t = queries(svc), as_of_ms(as_of)
    _check_app(q, who, app, t)
    events = export.openlineage_events(q, app, str(request.base_url), t)
    return {"events": _redact(svc, events, who)}


def _report(svc: Service, who: Principal, answer: dict[str, Any], fmt: str, markdown: str, title: str, uri: str,
            direction: str, depth: int, as_of: str | None) -> Response | dict[str, Any]:
    if fmt == "json":
        return answer
    if fmt == "md":
        return PlainTextResponse(markdown, media_type="text/markdown; charset=utf-8")
    from provenance.api.views import report_html

    return HTMLResponse(report_html(svc, who, title, markdown, uri, direction, depth, as_of_ms(as_of)))


@router.get("/api/reports/audit", tags=["exports"], response_model=None)
def report_audit(uri: str, svc: Svc, who: Who, format: Literal["md", "html", "json"] = "md", as_of: AsOf = None,
                 depth: Depth = 10) -> Response | dict[str, Any]:
    """The audit report of an artifact, as Markdown, printable HTML (with the lineage picture) or JSON."""
    r = upstream(uri, svc, who, as_of, depth)
    title = f"Audit: {r['target'].get('name') or r['target']['uri']}"
    return _report(svc, who, r, format, audit_markdown(r), title, uri, "up", depth, as_of)


@router.get("/api/reports/gdpr", tags=["exports"], response_model=None)
def report_gdpr(svc: Svc, who: Who, uri: Annotated[list[str], Query(min_length=1)],
                format: Literal["md", "html", "json"] = "md", as_of: AsOf = None,
                depth: Depth = 10) -> Response | dict[str, Any]:
    """The GDPR report of data, as Markdown, printable HTML (with the lineage picture) or JSON."""
    r = gdpr(svc, who, uri, as_of, depth)
    return _report(svc, who, r, format, gdpr_markdown(r), "GDPR report", uri[0], "down", depth, as_of)
