"""The web UI: server-rendered pages over the same service as the API.

Pages are Jinja2 templates with autoescape (``templates/``); the lineage picture is an SVG drawn by a
template too (`provenance.api.picture`); the reports are built once as a document (`reportdoc`) and
rendered as a page, a PDF (`pdf`), Markdown (`provenance.reports`) and JSON (the typed answer).
Scripts and styles are files of our own under ``/static`` (the Content-Security-Policy allows nothing
inline). Times are written in UTC inside ``<time>`` elements; the page's script shows them in the
reader's time zone with UTC on hover. A page the caller may not see, or that does not exist, is a real
404 page with a way back; a bad parameter a 400 page; an expired sign-in goes to the sign-in page.
Every page asks the service with the caller's principal: what they may not see is not shown.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from provenance.access import Principal
from provenance.api import explorer, picture
from provenance.api.deps import principal, service
from provenance.api.links import app_href, artifact_href, user_href
from provenance.errors import AuthError, NotFoundError, ProvenanceError, QueryError
from provenance.events.model import ms_to_iso
from provenance.graph.answers import AppInfo, Gdpr, Upstream
from provenance.graph.model import NEVER
from provenance.graph.queries import Limits
from provenance.search.port import SearchQuery
from provenance.service import Service

router = APIRouter(include_in_schema=False)
_SORTS = ("relevance", "usage", "recent")
Expand = Annotated[list[str], Query(max_length=2000)]


def utc(ms: Any) -> str:
    """A time as people read it, in UTC (the page's script shows it in the reader's zone)."""
    iso = ms_to_iso(ms) if isinstance(ms, int) and ms != NEVER else None
    return f"{iso[:10]} {iso[11:19]} UTC" if iso else ""


def time_tag(ms: Any) -> Markup:
    """``<time>`` with the exact UTC time as its machine value and its hover text."""
    iso = ms_to_iso(ms) if isinstance(ms, int) and ms != NEVER else None
    if not iso:
        return Markup("—")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, utc(ms))


def duration(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "—"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if h else f"{m} min {s} s"


def breakable(text: Any) -> Markup:
    """A path or id that may wrap after '/', '_', '.', '@' or '?' (``<wbr>``: no character is added to the text)."""
    out = Markup("")
    for ch in str(text or ""):
        out += escape(ch) + (Markup("<wbr>") if ch in "/_.@?&" else Markup(""))
    return out


def folder(uri: Any) -> str:
    """The folder an item is in, enough to tell same-named items apart ("…/loan/Raw/")."""
    path = str(uri or "").split("://", 1)[-1].rstrip("/")
    parts = [p for p in path.split("/")[:-1] if p]
    if not parts:
        return ""
    return ("…/" if len(parts) > 2 else "/") + "/".join(parts[-2:]) + "/"


@lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(loader=PackageLoader("provenance.api", "templates"),
                      autoescape=select_autoescape(["html", "svg"], default=True))
    env.filters.update(when=time_tag, utc=utc, wbr=breakable, folder=folder, artifact_href=artifact_href,
                       app_href=app_href, user_href=user_href,
                       ver=picture.version_label, duration=duration, short_run=picture.short_run,
                       iso=lambda ms: (ms_to_iso(ms) or "") if isinstance(ms, int) else "")
    return env


def render(template: str, **context: Any) -> str:
    return templates().get_template(template).render(**context)


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith("/ui/")


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    heading = {404: "Not found", 400: "Cannot answer that", 403: "Not allowed", 413: "Too large"}.get(status, "Error")
    back = request.headers.get("referer") or ""
    back = back if back.startswith(str(request.base_url)) else ""
    return HTMLResponse(render("error.html", title=heading.lower(), heading=heading, message=message, status=status,
                               back=back), status)


def _page(title: str, template: str, who: Principal | None, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, title=title, user=who.user if who and who.user != "local" else None,
                               **context))


def _guard(request: Request, render_page: Callable[[Service, Principal], Response], *,
           fragment: bool = False) -> Response:
    """``render_page`` as the caller; signed out, a page goes to the sign-in page and a fragment (what the
    page's script fetches) answers 401 in plain text, so that no sign-in page is drawn inside another."""
    try:
        who = principal(request)
    except AuthError:
        if fragment:
            return PlainTextResponse("signed out: sign in again to go on", 401,
                                     headers={"WWW-Authenticate": 'Cookie realm="provenance"'})
        target = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", 303)
    try:
        return render_page(service(request), who)
    except NotFoundError as exc:
        return error_page(request, 404, str(exc))
    except ProvenanceError as exc:
        return error_page(request, 400, str(exc))


def node_link(n: dict[str, Any], as_of: str | None = None) -> str | None:
    """A node's page: an artifact's as of the view's time (a run's page has no time travel)."""
    if n.get("uri") is None:
        return None
    if n["kind"] == "app":
        return app_href(n["uri"])
    return artifact_href(n["uri"], version=n.get("version"), as_of=as_of)


def graph_markup(svc: Service, who: Principal, view: explorer.View, *, parts: int = 0, marker: str = "a") -> Markup:
    """The picture with its caption, or a note that nothing existed yet at that time."""
    try:
        g = explorer.lineage(svc, who, view)
    except NotFoundError:
        return Markup(render("graph.html", missing=utc(view.as_of) or "then"))
    opts = picture.Options(aux=view.aux, group=view.group, expanded=frozenset(view.expand))
    svg = picture.draw(g, lambda n: node_link(n, view.as_of_iso), lambda **ctx: render("picture.svg", **ctx), opts,
                       parts=parts, marker=marker, interactive=not parts)
    return Markup(render("graph.html", missing=None, g=g, svg=svg, view=view))


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- landing page and search ---------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request, q: str = "", kind: str | None = None, type: str | None = None,
         project: str | None = None, sort: str = "relevance") -> Response:
    def page(svc: Service, who: Principal) -> Response:
        svc.catch_up()
        if svc.stack.search is None:
            return _page("search", "search.html", who, q=q, enabled=False)
        if not q.strip() and not (kind or type or project):
            return landing(svc, who)
        query = SearchQuery(text=q[:1000], kinds=[kind] if kind else (), types=[type] if type else (),
                            projects=[project] if project else (), limit=50,
                            sort=sort if sort in _SORTS else "relevance")  # type: ignore[arg-type]
        r = svc.search(who, query)
        chosen = {"kind": kind, "type": type, "project": project}
        base = {"q": q, **{k: v for k, v in chosen.items() if v}, "sort": sort}
        facets = [(name, [({"href": "/?" + urlencode({**base, name: value}), "label": value or "(none)",
                            "active": chosen.get(name) == value}, n) for value, n in sorted(counts.items())])
                  for name, counts in r.facets.items()]
        chips = [{"name": k, "value": v, "href": "/?" + urlencode({kk: vv for kk, vv in base.items() if kk != k})}
                 for k, v in chosen.items() if v]
        sorts = [{"href": "/?" + urlencode({**base, "sort": s}), "label": s, "active": s == query.sort}
                 for s in _SORTS]
        hits = []
        for h in r.hits:
            href = artifact_href(h.uri) if h.kind == "artifact" else app_href(h.uri) if h.kind == "app" \
                else user_href(h.uri)
            hits.append({"href": href, "name": h.name, "kind": h.kind, "type": h.type, "project": h.project,
                         "usage": h.usage, "when": h.last_ts or None, "uri": h.uri, "tags": sorted(h.tags.items()),
                         "users": h.users})
        return _page(f"search: {q}" if q else "search", "search.html", who, q=q, enabled=True, facets=facets,
                     sorts=sorts, hits=hits, total=r.total, chips=chips)

    return _guard(request, page)


def landing(svc: Service, who: Principal) -> Response:
    """What there is to look at: the most used datasets, the pipelines and runs of late."""
    used = svc.most_used_datasets(who, limit=8)
    recent = svc.apps(who, limit=200)
    pipelines: dict[str, AppInfo] = {}
    for a in recent.apps:
        if a.job and a.job not in pipelines:
            pipelines[a.job] = a
    return _page("provenance", "landing.html", who, used=used.datasets, pipelines=list(pipelines.values())[:8],
                 runs=recent.apps[:10], total_runs=recent.total)


# -- the artifact page and its explorer ------------------------------------------------------------------
def _view(uri: str, version: str | None, direction: str, depth: str, as_of: str | None, aux: str, group: str,
          expand: list[str], now: int | None = None) -> explorer.View:
    """The view a URL asks for; a time after ``now`` (the moment the page or report is made) is not one that
    can be shown yet: it is shown as of now, and the view says so (a citable report must not claim a time
    whose content is still to change)."""
    view = explorer.parse_view(uri, version, direction, depth, as_of, aux, group, expand)
    now = _now_ms() if now is None else now
    if view.as_of != NEVER and view.as_of > now:
        view.notices.append(f"As of {(view.as_of_iso or '')[:19].replace('T', ' ')} UTC is in the future: "
                            f"shown as of now ({utc(now)}) instead.")
        view.as_of, view.as_of_text = NEVER, None
    return view


@router.get("/ui/artifact", response_class=HTMLResponse)
def artifact_page(request: Request, uri: Annotated[str, Query(max_length=4000)], version: str | None = None,
                  direction: str = "both", depth: str = "", as_of: str | None = None, aux: str = "",
                  group: str = "", expand: Expand = []) -> Response:  # noqa: B006 - FastAPI reads it
    def page(svc: Service, who: Principal) -> Response:
        view = _view(uri, version, direction, depth, as_of, aux, group, expand)
        now = svc.artifact(who, view.uri, NEVER)  # exists now and visible: else 404
        view.uri = now.uri
        try:
            a = svc.artifact(who, view.ref if view.version else view.uri, view.as_of)
            existed = True
        except NotFoundError:
            a, existed = now.model_copy(update={"versions": []}), False
        marks = _marks(svc, who, view, now)
        pic = graph_markup(svc, who, view) if existed else Markup("")
        used_by, made_from = (_used_by(svc, who, view), _made_from(svc, who, view)) if existed else ([], [])
        carry = {"uri": view.uri, "version": view.version, "as_of": view.as_of_iso}
        export = {k: v for k, v in {"uri": view.ref, "direction": view.direction, "depth": view.depth,
                                    "as_of": view.as_of_iso}.items() if v}
        links = {"audit": "/ui/reports/audit?" + urlencode({k: v for k, v in {**carry, "depth": view.depth}.items()
                                                            if v}),
                 "gdpr": "/ui/reports/gdpr?" + urlencode({k: v for k, v in {**carry, "depth": view.depth}.items()
                                                          if v}),
                 "prov": "/api/export/prov?" + urlencode(export),
                 "graphml": "/api/export/graphml?" + urlencode(export),
                 "now": "/ui/artifact?" + view.query(as_of=None),
                 "used_by_csv": "/ui/artifact/used-by.csv?" + urlencode({k: v for k, v in carry.items() if v}),
                 "made_from_csv": "/ui/artifact/made-from.csv?" + urlencode({k: v for k, v in carry.items() if v})}
        slider = len(marks) if view.as_of == NEVER else max(0, sum(1 for m in marks if m <= view.as_of) - 1)
        return _page(a.name or a.uri, "artifact.html", who, a=a, view=view, links=links, picture=pic, marks=marks,
                     slider=slider,
                     existed=existed, used_by=used_by, made_from=made_from, now_ms=_now_ms())

    return _guard(request, page)


def _marks(svc: Service, who: Principal, view: explorer.View, a: Any) -> list[int]:
    """The times the slider snaps to: when a version of the artifact, or of anything in its graph now, was made,
    and when the runs in it started."""
    times = {v.created_ts for v in a.versions if v.created_ts}
    try:
        g = svc.lineage(who, view.ref, view.direction, view.depth, NEVER)  # type: ignore[arg-type]
        times |= {n.created_ts for n in g.nodes if n.created_ts and not n.redacted}
    except NotFoundError:
        pass
    return sorted(times)


def _partial(r: Gdpr | Upstream, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, after a first one that says the answer is partial when it is (never a silent truncation)."""
    return ([{"partial": r.reason or "stopped early"}] if r.partial else []) + rows


def _used_by(svc: Service, who: Principal, view: explorer.View) -> list[dict[str, Any]]:
    """The models and deployments made from it, at any depth."""
    r = svc.gdpr(who, [view.ref], view.as_of, Limits(depth=explorer.MAX_DEPTH, limit=500))
    return _partial(r, [{"uri": m.uri, "name": m.name, "type": m.type, "version": m.version,
                         "version_key": m.version_key, "depth": m.depth, "deployed": m.deployed, "current": m.current,
                         "certain": m.certain, "tier": m.tier, "created_ts": m.created_ts,
                         "created_by": m.created_by, "redacted": m.redacted} for m in r.models])


def _made_from(svc: Service, who: Principal, view: explorer.View) -> list[dict[str, Any]]:
    """What it was made from, nearest first."""
    r = svc.upstream(who, view.ref, view.as_of, Limits(depth=explorer.MAX_DEPTH, limit=500))
    return _partial(r, [{"uri": x.uri, "name": x.name, "type": x.type, "version": x.version,
                         "version_key": x.version_key, "depth": x.depth, "certain": x.certain, "tier": x.tier,
                         "created_ts": x.created_ts, "via": x.via, "redacted": x.redacted} for x in r.artifacts])


@router.get("/ui/graph", response_class=HTMLResponse)
def graph_fragment(request: Request, uri: Annotated[str, Query(max_length=4000)], version: str | None = None,
                   direction: str = "both", depth: str = "", as_of: str | None = None, aux: str = "",
                   group: str = "", expand: Expand = []) -> Response:  # noqa: B006
    def page(svc: Service, who: Principal) -> Response:
        view = _view(uri, version, direction, depth, as_of, aux, group, expand)
        if view.notices:
            raise QueryError(" ".join(view.notices))
        svc.artifact(who, view.uri, NEVER)
        return HTMLResponse(graph_markup(svc, who, view))

    return _guard(request, page, fragment=True)


def _csv_response(name: str, header: list[str], rows: list[list[Any]]) -> Response:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for row in rows:  # a cell a spreadsheet would run as a formula is quoted as text
        w.writerow(["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in row])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/ui/artifact/used-by.csv")
def used_by_csv(request: Request, uri: Annotated[str, Query(max_length=4000)], version: str | None = None,
                as_of: str | None = None) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        view = _view(uri, version, "both", "", as_of, "", "", [])
        rows = [[r["uri"], r["type"], picture.version_label(r["version"]), r["depth"], "yes" if r["deployed"] else "no",
                 "yes" if r["current"] else "no", "certain" if r["certain"] else "possible", r["tier"]]
                for r in _used_by(svc, who, view) if "partial" not in r]
        return _csv_response("used-by.csv", ["artifact", "type", "version", "depth", "deployed_now", "current",
                                             "evidence", "tier"], rows)

    return _guard(request, page)


@router.get("/ui/artifact/made-from.csv")
def made_from_csv(request: Request, uri: Annotated[str, Query(max_length=4000)], version: str | None = None,
                  as_of: str | None = None) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        view = _view(uri, version, "both", "", as_of, "", "", [])
        rows = [[r["uri"], r["type"], picture.version_label(r["version"]), r["depth"],
                 "certain" if r["certain"] else "possible", r["tier"], ms_to_iso(r["created_ts"]) or "",
                 " ".join(v.app_id for v in r["via"])] for r in _made_from(svc, who, view) if "partial" not in r]
        return _csv_response("made-from.csv", ["artifact", "type", "version", "depth", "evidence", "tier", "created",
                                               "via_runs"], rows)

    return _guard(request, page)


# -- run and user pages -----------------------------------------------------------------------------------
RUN_FACTS = ("state", "exit_code", "host", "cwd", "python", "env_hash", "git_commit", "git_dirty", "capture")


@router.get("/ui/app/{app_id}", response_class=HTMLResponse)
def app_page(request: Request, app_id: str) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        fp = svc.footprint(who, app_id, NEVER, Limits(limit=10_000))
        app = fp.app
        others = svc.apps(who, job=app.job, limit=50).apps if app.job else []
        earlier = [o for o in others if (o.started_ts or 0) < (app.started_ts or 0) and o.app_id != app.app_id]
        comparison = svc.repro(who, earlier[0].app_id, app.app_id) if earlier else None
        props = dict(app.props)
        shown = {"command", "packages", "processes", "hardware", "cwd", "cpu_user_s", "cpu_system_s", "duration_ms",
                 "peak_rss_bytes", "capture", "capture_gaps", "captured_events", "captured_processes", *RUN_FACTS,
                 "started_ts", "ended_ts", "submitted_ts", "user", "name", "project", "pid", "log"}
        rest = sorted((k, v) for k, v in props.items() if k not in shown)
        return _page(f"run {app.app_id}", "app.html", who, fp=fp, app=app, props=props, rest=rest, others=others,
                     previous=earlier[0] if earlier else None, comparison=comparison,
                     processes=processes(props.get("processes")))

    return _guard(request, page)


def processes(records: Any) -> list[dict[str, Any]]:
    """A run's process records, one row per process (its ``proc`` key; the pid where there is none): the
    earliest start, the latest end, the program and arguments it ran last (an exec changes them), by start."""
    rows: dict[str, dict[str, Any]] = {}
    for r in records if isinstance(records, list) else []:
        if not isinstance(r, dict):
            continue
        key = str(r.get("proc") or r.get("pid"))
        row = rows.setdefault(key, {"pid": r.get("pid"), "exe": None, "argv": None, "start_ts": None,
                                    "end_ts": None, "_seen": None})
        start, end = r.get("start_ts"), r.get("end_ts")
        if isinstance(start, int) and (row["start_ts"] is None or start < row["start_ts"]):
            row["start_ts"] = start
        if isinstance(end, int) and (row["end_ts"] is None or end > row["end_ts"]):
            row["end_ts"] = end
        at = start if isinstance(start, int) else -1
        if (r.get("exe") or r.get("argv")) and (row["_seen"] is None or at >= row["_seen"]):
            row.update(exe=r.get("exe") or row["exe"], argv=r.get("argv") or row["argv"], _seen=at)
    out = [{k: v for k, v in row.items() if k != "_seen"} for row in rows.values()]
    return sorted(out, key=lambda p: (p["start_ts"] is None, p["start_ts"] or 0, str(p["pid"])))


@router.get("/ui/user/{name}", response_class=HTMLResponse)
def user_page(request: Request, name: str, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        per_page = 20
        u = svc.user(who, name, NEVER, limit=per_page, offset=offset)
        touches = []
        for run in u.runs:
            if run.redacted:
                continue
            fp = svc.footprint(who, run.app_id, NEVER, Limits(limit=200))
            for item in fp.artifacts:
                if item.redacted:
                    continue
                wrote = any(t.startswith("OUTPUT") for t in item.types)
                touches.append({"run": run, "item": item, "read": "INPUT" in item.types, "wrote": wrote})
        pages = {"prev": f"{user_href(name)}?offset={max(0, offset - per_page)}" if offset else None,
                 "next": f"{user_href(name)}?offset={offset + per_page}"
                 if offset + per_page < u.total_runs else None}
        past_end = offset > 0 and offset >= u.total_runs
        return _page(name, "user.html", who, u=u, touches=touches, pages=pages, first=offset + 1,
                     last=offset + len(u.runs), past_end=past_end, offset=offset,
                     first_page=user_href(name) if past_end else None)

    return _guard(request, page)


# -- printable reports ---------------------------------------------------------------------------------------
def _report(svc: Service, who: Principal, kind: str, uri: str, version: str | None, as_of: str | None,
            depth: str) -> tuple[Upstream | Gdpr, explorer.View, int]:
    """The answer of a report as of an absolute time (now when none is asked: the report says which)."""
    generated = _now_ms()
    view = _view(uri, version, "up" if kind == "audit" else "down", depth or "10", as_of, "", "", [], generated)
    if view.as_of == NEVER:
        view.as_of = generated
    limits = Limits(depth=max(view.depth, 10), limit=10_000)
    r: Upstream | Gdpr = svc.upstream(who, view.ref, view.as_of, limits) if kind == "audit" else \
        svc.gdpr(who, [view.ref], view.as_of, limits)
    return r, view, generated


def report_html(request: Request, r: Upstream | Gdpr, uri: str, depth: int, as_of: int) -> str:
    """The printable report page of an answer (the API's ``format=html`` too)."""
    from provenance.api import reportdoc

    svc, who = service(request), principal(request)
    kind = "audit" if isinstance(r, Upstream) else "gdpr"
    generated = _now_ms()
    view = explorer.View(uri=uri, direction="up" if kind == "audit" else "down", depth=min(max(depth, 1), 20),
                         as_of=generated if as_of == NEVER else as_of)
    doc = reportdoc.build(r, view, generated, who.user, request.base_url)
    pic = graph_markup(svc, who, view, parts=4, marker="r")
    return render("report.html", title=doc.title, user=who.user if who.user != "local" else None, doc=doc,
                  picture=pic, view=view, kind=kind)


def _report_page(request: Request, kind: str, uri: str, version: str | None, as_of: str | None,
                 depth: str) -> Response:
    from provenance.api import reportdoc

    def page(svc: Service, who: Principal) -> Response:
        r, view, generated = _report(svc, who, kind, uri, version, as_of, depth)
        doc = reportdoc.build(r, view, generated, who.user, request.base_url)
        pic = graph_markup(svc, who, view, parts=4, marker="r")
        return _page(doc.title, "report.html", who, doc=doc, picture=pic, view=view, kind=kind)

    return _guard(request, page)


@router.get("/ui/reports/audit", response_class=HTMLResponse)
def audit_page(request: Request, uri: Annotated[str, Query(max_length=4000)], version: str | None = None,
               as_of: str | None = None, depth: str = "") -> Response:
    return _report_page(request, "audit", uri, version, as_of, depth)


@router.get("/ui/reports/gdpr", response_class=HTMLResponse)
def gdpr_page(request: Request, uri: Annotated[str, Query(max_length=4000)], version: str | None = None,
              as_of: str | None = None, depth: str = "") -> Response:
    return _report_page(request, "gdpr", uri, version, as_of, depth)


@router.get("/ui/reports/{kind}.{fmt}")
def report_download(request: Request, kind: str, fmt: str, uri: Annotated[str, Query(max_length=4000)],
                    version: str | None = None, as_of: str | None = None, depth: str = "") -> Response:
    """A report to keep: PDF (A4 landscape), Markdown or JSON, as of the same absolute time as its page."""
    from provenance.api import pdf, reportdoc
    from provenance.reports import audit_markdown, gdpr_markdown

    def page(svc: Service, who: Principal) -> Response:
        if kind not in ("audit", "gdpr") or fmt not in ("pdf", "md", "json"):
            raise NotFoundError("There is no such report.")
        r, view, generated = _report(svc, who, kind, uri, version, as_of, depth)
        stem = f"{kind}-{(r.target.name if isinstance(r, Upstream) else None) or 'report'}"
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] + "-" + \
            (ms_to_iso(view.as_of) or "").replace(":", "")[:17]
        doc = reportdoc.build(r, view, generated, who.user, request.base_url)
        # every format is stamped alike: when it was generated, by whom, the absolute time it is as of, and the
        # permalink that gives the same report again
        stamp = {"generated_at": ms_to_iso(generated), "generated_by": who.user, "as_of": ms_to_iso(view.as_of),
                 "permalink": doc.permalink}
        if fmt == "json":
            body: bytes | str = json.dumps({**r.model_dump(mode="json"), **stamp,
                                            "notes": view.notices}, indent=2, ensure_ascii=False)
            media = "application/json"
        elif fmt == "md":
            md = audit_markdown if isinstance(r, Upstream) else gdpr_markdown
            body = md(r, generated_at=stamp["generated_at"], generated_by=who.user,  # type: ignore[arg-type]
                      permalink=doc.permalink, base_url=str(request.base_url))
            media = "text/markdown; charset=utf-8"
        else:
            try:
                g = explorer.lineage(svc, who, view)
                drawn = picture.prepare(g, picture.Options())
            except NotFoundError:
                drawn = None
            body = pdf.render(doc, drawn)
            media = "application/pdf"
        return Response(body, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})

    return _guard(request, page)


# -- sign in and out (a token in a cookie) -------------------------------------------------------------
def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


@router.get("/ui/login", response_class=HTMLResponse)
def login_form(next: str = "/") -> HTMLResponse:
    return _page("sign in", "login.html", None, next=_safe_next(next), message=None)


@router.post("/ui/login", response_model=None)
def login(request: Request, token: str = Form(..., max_length=500), next: str = Form("/", max_length=2000)) -> Response:
    state = request.app.state.api
    try:
        if state.access is not None:
            state.access.authenticate(token)
    except AuthError as exc:
        return HTMLResponse(render("login.html", title="sign in", user=None, next=_safe_next(next), message=str(exc)),
                            401)
    response = RedirectResponse(_safe_next(next), 303)
    secure = state.secure_cookies or request.url.scheme == "https"
    response.set_cookie("prov_token", token, httponly=True, samesite="strict", secure=secure, path="/")
    return response


@router.post("/ui/logout", response_model=None)
def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login", 303)
    response.delete_cookie("prov_token", path="/")
    # what the browser kept of the pages seen signed in goes too (Back shows nothing of them)
    response.headers["Clear-Site-Data"] = '"cache", "cookies"'
    return response
