"""The web UI: server-rendered pages over the same service as the API.

Pages are Jinja2 templates with autoescape (``templates/``); reports are the Markdown of
`provenance.reports` rendered with raw HTML disabled; the lineage picture is an SVG drawn by a
template too (`provenance.api.picture`). Scripts and styles are files of our own under ``/static``
(the Content-Security-Policy allows nothing inline). A page the caller may not see, or that does not
exist, is a real 404 page with a way back; an expired sign-in goes to the sign-in page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from provenance.access import Principal
from provenance.api import picture
from provenance.api.deps import as_of_ms, principal, service
from provenance.errors import AuthError, NotFoundError, ProvenanceError
from provenance.events.model import ms_to_iso
from provenance.graph.answers import GraphNode
from provenance.graph.model import NEVER
from provenance.graph.queries import Limits
from provenance.reports import audit_markdown, footprint_markdown, gdpr_markdown
from provenance.search.port import SearchQuery
from provenance.service import Service

router = APIRouter(include_in_schema=False)
_md = MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML in a report is text, never markup
_SORTS = ("relevance", "usage", "recent")


def artifact_href(uri: str) -> str:
    return "/ui/artifact?" + urlencode({"uri": uri})


def app_href(app_id: str) -> str:
    return f"/ui/app/{quote(app_id, safe='')}"


def user_href(name: str) -> str:
    return f"/ui/user/{quote(name, safe='')}"


@lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(loader=PackageLoader("provenance.api", "templates"),
                      autoescape=select_autoescape(["html", "svg"], default=True))
    env.filters.update(when=lambda ms: (ms_to_iso(ms) or "") if isinstance(ms, int) else "",
                       artifact_href=artifact_href, app_href=app_href, user_href=user_href)
    return env


def render(template: str, **context: Any) -> str:
    return templates().get_template(template).render(**context)


def markdown_html(text: str) -> Markup:
    return Markup(_md.render(text))


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith("/ui/")


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    heading = {404: "Not found", 400: "Cannot answer that", 403: "Not allowed", 413: "Too large"}.get(status, "Error")
    return HTMLResponse(render("error.html", title=heading.lower(), heading=heading, message=message), status)


def _page(title: str, template: str, who: Principal | None, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, title=title, user=who.user if who and who.user != "local" else None,
                               **context))


def _guard(request: Request, render_page: Callable[[Service, Principal], Response]) -> Response:
    try:
        who = principal(request)
    except AuthError:
        target = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", 303)
    try:
        return render_page(service(request), who)
    except NotFoundError as exc:
        return error_page(request, 404, str(exc))
    except ProvenanceError as exc:
        return error_page(request, 400, str(exc))


def _node_link(n: GraphNode) -> str | None:
    if n.kind == "app":
        return app_href(n.uri)
    return artifact_href(n.uri)


def graph_markup(svc: Service, who: Principal, uri: str, direction: str, depth: int, as_of: int) -> Markup:
    """The picture with its caption, or a note that nothing existed yet at that time."""
    try:
        g = svc.lineage(who, uri, direction if direction in ("up", "down", "both") else "both",  # type: ignore[arg-type]
                        depth, as_of)
    except NotFoundError:
        return Markup(render("graph.html", missing=ms_to_iso(as_of) or "then"))
    svg = picture.draw(g, _node_link, lambda **ctx: render("picture.svg", **ctx))
    return Markup(render("graph.html", missing=None, g=g, svg=svg))


def report_page(request: Request, title: str, markdown: str, uri: str, direction: str, depth: int,
                as_of: int) -> str:
    """A printable report page: the lineage picture, then the report."""
    svc, who = service(request), principal(request)
    pic = graph_markup(svc, who, uri, direction, depth, as_of)
    return render("report.html", title=title, user=who.user, picture=pic, report=markdown_html(markdown))


# -- search ------------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request, q: str = "", kind: str | None = None, type: str | None = None,
         project: str | None = None, sort: str = "relevance") -> Response:
    def page(svc: Service, who: Principal) -> Response:
        svc.catch_up()
        if svc.stack.search is None:
            return _page("search", "search.html", who, q=q, enabled=False)
        query = SearchQuery(text=q[:1000], kinds=[kind] if kind else (), types=[type] if type else (),
                            projects=[project] if project else (), limit=50,
                            sort=sort if sort in _SORTS else "relevance")  # type: ignore[arg-type]
        r = svc.search(who, query)
        base = {"q": q, **({"kind": kind} if kind else {}), **({"type": type} if type else {}),
                **({"project": project} if project else {}), "sort": sort}
        facets = [(name, [({"href": "/?" + urlencode({**base, name: value}), "label": value or "(none)"}, n)
                          for value, n in sorted(counts.items())]) for name, counts in r.facets.items()]
        sorts = [{"href": "/?" + urlencode({**base, "sort": s}), "label": s} for s in _SORTS]
        hits = []
        for h in r.hits:
            href = artifact_href(h.uri) if h.kind == "artifact" else app_href(h.uri) if h.kind == "app" \
                else user_href(h.uri)
            hits.append({"href": href, "name": h.name, "kind": h.kind, "type": h.type, "project": h.project,
                         "usage": h.usage, "when": ms_to_iso(h.last_ts) if h.last_ts else "", "uri": h.uri,
                         "tags": sorted(h.tags.items())})
        return _page("search", "search.html", who, q=q, enabled=True, facets=facets, sorts=sorts, hits=hits,
                     total=r.total)

    return _guard(request, page)


# -- artifact, run, user pages ------------------------------------------------------------------------
@router.get("/ui/artifact", response_class=HTMLResponse)
def artifact_page(request: Request, uri: str, direction: str = "both", depth: int = 3) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        a = svc.artifact(who, uri, NEVER)
        first = min([v.created_ts for v in a.versions if v.created_ts] or [a.first_ts])
        now = max(int(time.time() * 1000), a.last_ts)
        enc = urlencode({"uri": a.uri})
        links = {"audit": f"/ui/reports/audit?{enc}", "gdpr": f"/ui/reports/gdpr?{enc}",
                 "prov": f"/api/export/prov?{enc}", "graphml": f"/api/export/graphml?{enc}"}
        pic = graph_markup(svc, who, a.uri, direction, max(1, min(depth, 20)), NEVER)
        return _page(a.name or a.uri, "artifact.html", who, a=a, links=links, direction=direction,
                     depth=max(1, min(depth, 20)), first=first, now=now, picture=pic)

    return _guard(request, page)


@router.get("/ui/graph", response_class=HTMLResponse)
def graph_fragment(request: Request, uri: str, direction: str = "both", depth: int = 3,
                   as_of: str | None = None) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        q = svc.queries()
        svc.visible_artifact(q, who, uri, NEVER)
        if not 1 <= depth <= 20:
            return error_page(request, 400, "depth must be between 1 and 20")
        return HTMLResponse(graph_markup(svc, who, uri, direction, depth, as_of_ms(as_of)))

    return _guard(request, page)


@router.get("/ui/app/{app_id}", response_class=HTMLResponse)
def app_page(request: Request, app_id: str) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        fp = svc.footprint(who, app_id, NEVER, Limits(limit=10_000))
        summary = markdown_html(footprint_markdown(fp).split("| types |")[0])  # the table is drawn with links
        return _page(app_id, "app.html", who, fp=fp, summary=summary)

    return _guard(request, page)


@router.get("/ui/user/{name}", response_class=HTMLResponse)
def user_page(request: Request, name: str) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        return _page(name, "user.html", who, u=svc.user(who, name))

    return _guard(request, page)


# -- printable reports --------------------------------------------------------------------------------
@router.get("/ui/reports/audit", response_class=HTMLResponse)
def audit_page(request: Request, uri: str, as_of: str | None = None) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        t = as_of_ms(as_of)
        r = svc.upstream(who, uri, t)
        md = audit_markdown(r, generated_at=ms_to_iso(int(time.time() * 1000)), generated_by=who.user)
        return HTMLResponse(report_page(request, f"Audit: {r.target.name or r.target.uri}", md, uri, "up", 10, t))

    return _guard(request, page)


@router.get("/ui/reports/gdpr", response_class=HTMLResponse)
def gdpr_page(request: Request, uri: str, as_of: str | None = None) -> Response:
    def page(svc: Service, who: Principal) -> Response:
        t = as_of_ms(as_of)
        r = svc.gdpr(who, [uri], t)
        md = gdpr_markdown(r, generated_at=ms_to_iso(int(time.time() * 1000)), generated_by=who.user)
        return HTMLResponse(report_page(request, f"GDPR report: {uri}", md, uri, "down", 10, t))

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
    return response
