"""The web UI: server-rendered pages over the same queries as the API. No third-party front-end code:
the lineage picture is laid out on the server (networkx) and drawn as SVG; the as-of slider and the
graph controls are a few lines of our own JavaScript that fetch the picture again.
"""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt

from provenance.access import Principal, redact
from provenance.api.app import Service
from provenance.errors import AuthError, NotFoundError, ProvenanceError
from provenance.events.model import ms_to_iso
from provenance.graph import export
from provenance.graph.model import NEVER, node_key
from provenance.graph.queries import Limits, LineageQueries
from provenance.reports import audit_markdown, footprint_markdown, gdpr_markdown
from provenance.search.port import SearchQuery

router = APIRouter(include_in_schema=False)
_md = MarkdownIt("commonmark").enable("table")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#212529;background:#f8f9fa}
header{background:#212529;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{flex:1;display:flex;gap:6px}header input{flex:1;padding:6px;border-radius:4px;border:0}
main{padding:16px 24px;max-width:1400px}
table{border-collapse:collapse;background:#fff;margin:8px 0}td,th{border:1px solid #dee2e6;padding:4px 8px;
font-size:13px;text-align:left;vertical-align:top}th{background:#e9ecef}
.facets{float:left;width:220px;margin-right:20px}.facets a{display:block;font-size:13px}
.hit{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:8px 12px;margin:6px 0 6px 240px}
.muted{color:#868e96;font-size:12px}.tag{background:#e7f5ff;border-radius:3px;padding:1px 5px;font-size:12px;
margin-right:4px}.redacted{color:#868e96;font-style:italic}
.graph{background:#fff;border:1px solid #dee2e6;overflow:auto;padding:8px}
.controls{display:flex;gap:14px;align-items:center;margin:8px 0;flex-wrap:wrap}
.controls input[type=range]{width:380px}
@media print{header,.controls,.noprint{display:none}body{background:#fff}main{padding:0}
.graph svg.lineage{width:100%;height:auto}}
"""

SCRIPT = """
function redraw(){
  const f=document.getElementById('gctl'); if(!f) return;
  const p=new URLSearchParams(new FormData(f));
  const s=document.getElementById('asof'); const out=document.getElementById('asof-label');
  if(s){ if(s.value===s.max){p.delete('as_of'); out.textContent='now';}
         else {p.set('as_of', s.value); out.textContent=new Date(Number(s.value)).toISOString();} }
  fetch('/ui/graph?'+p.toString()).then(r=>r.text()).then(t=>{document.getElementById('graph').innerHTML=t;
    document.getElementById('graph').dataset.asof=p.get('as_of')||'now';});
}
document.addEventListener('input', e=>{ if(e.target.closest('#gctl')) redraw(); });
"""


def page(title: str, body: str, q: str = "") -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} · provenance</title>"
        f"<style>{CSS}</style></head><body><header><a href='/'>provenance</a>"
        f"<form action='/' method='get'><input name='q' value='{html.escape(q)}' placeholder='search artifacts, "
        f"runs, users… (prefix*)' aria-label='search'><button>Search</button></form>"
        f"<a href='/docs' class='noprint'>API</a></header><main>{body}</main><script>{SCRIPT}</script></body></html>")


def report_html(svc: Service, who: Principal, title: str, markdown: str, uri: str, direction: str, depth: int,
                as_of: int) -> str:
    """A printable report page: the lineage picture, then the report."""
    picture = _graph_svg(svc, who, uri, direction, depth, as_of)
    return bytes(page(title, f"<div class='graph'>{picture}</div>{_md.render(markdown)}").body).decode()


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def _who(request: Request) -> Principal:
    return _service(request).principal(request)


def _q(svc: Service) -> LineageQueries:
    svc.catch_up()
    return LineageQueries(svc.stack.store, svc.stack.rules)


def _login_redirect(request: Request) -> RedirectResponse:
    target = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", 303)


def _guard(request: Request, render: Any) -> Response:
    try:
        return render(_service(request), _who(request))  # type: ignore[no-any-return]
    except AuthError:
        return _login_redirect(request)
    except NotFoundError as exc:
        return page("not found", f"<h2>Not found</h2><p>{html.escape(str(exc))}</p>")
    except ProvenanceError as exc:
        return page("error", f"<h2>Cannot answer</h2><p>{html.escape(str(exc))}</p>")


def _artifact_link(uri: str) -> str:
    return "/ui/artifact?" + urlencode({"uri": uri})


def _node_link(node: str, data: dict[str, Any]) -> str | None:
    if data.get("kind") == "app":
        return f"/ui/app/{quote(node_key(node))}"
    return _artifact_link(str(data.get("uri"))) if data.get("uri") else None


def _tags(tags: dict[str, str]) -> str:
    return "".join(f"<span class='tag'>{html.escape(k)}={html.escape(v)}</span>" for k, v in sorted(tags.items()))


# -- search ------------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request, q: str = "", kind: str | None = None, type: str | None = None,
         project: str | None = None, sort: str = "relevance") -> Response:
    def render(svc: Service, who: Principal) -> Response:
        svc.catch_up()
        index = svc.stack.search
        if index is None:
            return page("search", "<p>Search is off in this configuration.</p>", q)
        query = SearchQuery(text=q, kinds=[kind] if kind else (), types=[type] if type else (),
                            projects=[project] if project else (), limit=50,
                            sort=sort if sort in ("relevance", "usage", "recent") else "relevance",  # type: ignore[arg-type]
                            visible_projects=who.visible_projects)
        r = index.search(query)
        base = {"q": q, **({"kind": kind} if kind else {}), **({"type": type} if type else {}),
                **({"project": project} if project else {}), "sort": sort}
        facets = []
        for name, counts in r.facets.items():
            links = "".join(
                f"<a href='/?{html.escape(urlencode({**base, name: value}))}' class='facet' data-facet='{name}'>"
                f"{html.escape(value or '(none)')} ({n})</a>" for value, n in sorted(counts.items()))
            facets.append(f"<h4>{name}</h4>{links}")
        sorts = " · ".join(f"<a href='/?{html.escape(urlencode({**base, 'sort': s}))}'>{s}</a>"
                           for s in ("relevance", "usage", "recent"))
        hits = []
        for h in r.hits:
            href = (_artifact_link(h["uri"]) if h["kind"] == "artifact" else f"/ui/app/{quote(h['uri'])}"
                    if h["kind"] == "app" else f"/ui/user/{quote(h['uri'])}")
            when = ms_to_iso(h["last_ts"]) if h.get("last_ts") else ""
            hits.append(f"<div class='hit'><a class='hit-link' href='{html.escape(href)}'><b>{html.escape(h['name'])}"
                        f"</b></a> <span class='muted'>{h['kind']} · {html.escape(h['type'])}"
                        f"{' · ' + html.escape(h['project']) if h.get('project') else ''} · used {h['usage']}× · "
                        f"{when}</span><div class='muted'>{html.escape(h['uri'])}</div>{_tags(h['tags'])}</div>")
        body = (f"<div class='facets'>{''.join(facets)}</div><p>{r.total} result(s) · sort: {sorts}</p>"
                + ("".join(hits) or "<div class='hit'>Nothing found.</div>"))
        return page("search", body, q)

    return _guard(request, render)


# -- artifact, app, user pages ----------------------------------------------------------------------
@router.get("/ui/artifact", response_class=HTMLResponse)
def artifact_page(request: Request, uri: str, direction: str = "both", depth: int = 3) -> Response:
    def render(svc: Service, who: Principal) -> Response:
        from provenance.api.routes import _artifact

        a = _artifact(svc, who, uri, NEVER)
        versions = "".join(
            f"<tr><td>{html.escape(str(v['version']))}</td><td>{ms_to_iso(v['created_ts']) or ''}</td>"
            f"<td>{html.escape(str(v.get('created_by') or '—'))}</td><td>{len(v['readers'])}</td></tr>"
            for v in a["versions"])
        first = min([v["created_ts"] for v in a["versions"] if v.get("created_ts")] or [a["first_ts"]])
        now = max(int(time.time() * 1000), a["last_ts"])
        graph = _graph_svg(svc, who, a["uri"], direction, depth, NEVER)
        enc = urlencode({"uri": a["uri"]})
        body = f"""
<h2>{html.escape(str(a['name'] or a['uri']))} <span class='muted'>{html.escape(str(a['type']))}</span></h2>
<p class='muted'>{html.escape(a['uri'])}{' · project ' + html.escape(a['project']) if a.get('project') else ''}</p>
<p>{_tags(a['tags'])}</p>
<p class='noprint'><a id='audit-link' href='/ui/reports/audit?{enc}'>Audit report</a> ·
<a href='/ui/reports/gdpr?{enc}'>GDPR report</a> · <a href='/api/export/prov?{enc}'>PROV-JSON</a> ·
<a href='/api/export/graphml?{enc}'>GraphML</a></p>
<h3>Lineage</h3>
<form id='gctl' class='controls' onsubmit='return false'>
<input type='hidden' name='uri' value='{html.escape(a['uri'])}'>
<label>direction <select name='direction'>{''.join(f"<option{' selected' if d == direction else ''}>{d}</option>"
                                                    for d in ('both', 'up', 'down'))}</select></label>
<label>depth <input type='number' name='depth' min='1' max='20' value='{depth}'></label>
<label>as of <input id='asof' type='range' min='{first}' max='{now}' step='1' value='{now}'></label>
<span id='asof-label'>now</span>
</form>
<div class='graph' id='graph' data-asof='now'>{graph}</div>
<h3>Versions</h3><table><tr><th>version</th><th>created</th><th>by app</th><th>readers</th></tr>{versions}</table>"""
        return page(str(a["name"] or a["uri"]), body)

    return _guard(request, render)


def _graph_svg(svc: Service, who: Principal, uri: str, direction: str, depth: int, as_of: int) -> str:
    q = _q(svc)
    try:
        g, meta = export.subgraph(q, uri, direction if direction in export.DIRECTIONS else "both", as_of,
                                  Limits(depth=max(1, min(depth, 20))), None if who.admin else who)
    except NotFoundError:
        return f"<p class='muted'>nothing existed yet as of {html.escape(ms_to_iso(as_of) or 'then')}</p>"
    note = (f"<p class='muted'>{meta['nodes']} nodes · {meta['edges']} edges"
            + (f" · {meta['redacted']} redacted (other projects)" if meta["redacted"] else "")
            + (f" · partial: {html.escape(str(meta['reason']))}" if meta["partial"] else "") + "</p>")
    return note + export.svg(g, _node_link)


@router.get("/ui/graph", response_class=HTMLResponse)
def graph_fragment(request: Request, uri: str, direction: str = "both", depth: int = 3,
                   as_of: str | None = None) -> Response:
    def render(svc: Service, who: Principal) -> Response:
        from provenance.api.routes import _check_artifact, as_of_ms

        q = _q(svc)
        _check_artifact(q, who, uri, NEVER)
        return HTMLResponse(_graph_svg(svc, who, uri, direction, depth, as_of_ms(as_of)))

    return _guard(request, render)


@router.get("/ui/app/{app_id}", response_class=HTMLResponse)
def app_page(request: Request, app_id: str) -> Response:
    def render(svc: Service, who: Principal) -> Response:
        from provenance.api.routes import _check_app

        q = _q(svc)
        _check_app(q, who, app_id, NEVER)
        fp = redact(q.footprint(app_id), who)
        rows = "".join(
            f"<tr><td>{', '.join(i['types'])}</td><td>"
            + (f"<a href='{html.escape(_artifact_link(i['uri']))}'>{html.escape(i['uri'])}</a>"
               if not i.get("redacted") else "<span class='redacted'>redacted</span>")
            + f"</td><td>{html.escape(str(i.get('version', '')))}</td><td>{html.escape(str(i.get('type')))}</td></tr>"
            for i in fp["artifacts"])
        a = fp["app"]
        users = ", ".join(f"<a href='/ui/user/{quote(u)}'>{html.escape(u)}</a>" for u in a["users"])
        md = footprint_markdown(fp).split("| types |")[0]  # the summary; the table is drawn with links
        body = (f"{_md.render(md)}<p>Users: {users or '—'}</p><h3>Footprint</h3><table><tr><th>types</th>"
                f"<th>artifact</th><th>version</th><th>type</th></tr>{rows}</table>")
        return page(app_id, body)

    return _guard(request, render)


@router.get("/ui/user/{name}", response_class=HTMLResponse)
def user_page(request: Request, name: str) -> Response:
    def render(svc: Service, who: Principal) -> Response:
        from provenance.api.routes import get_user

        u = get_user(name, svc, who)
        rows = "".join(f"<tr><td><a href='/ui/app/{quote(r['app_id'])}'>{html.escape(r['app_id'])}</a></td>"
                       f"<td>{html.escape(str(r['job'] or '—'))}</td><td>{r['state']}</td>"
                       f"<td>{ms_to_iso(r['started_ts']) or ''}</td></tr>" for r in u["runs"])
        body = (f"<h2>{html.escape(name)}</h2><p>{u['total_runs']} run(s) of {len(u['jobs'])} job(s)</p>"
                f"<table><tr><th>app</th><th>job</th><th>state</th><th>started</th></tr>{rows}</table>")
        return page(name, body)

    return _guard(request, render)


# -- printable reports --------------------------------------------------------------------------------
@router.get("/ui/reports/audit", response_class=HTMLResponse)
def audit_page(request: Request, uri: str, as_of: str | None = None) -> Response:
    def render(svc: Service, who: Principal) -> Response:
        from provenance.api.routes import as_of_ms, upstream

        r = upstream(uri, svc, who, as_of)
        return HTMLResponse(report_html(svc, who, f"Audit: {r['target'].get('name') or r['target']['uri']}",
                                        audit_markdown(r), uri, "up", 10, as_of_ms(as_of)))

    return _guard(request, render)


@router.get("/ui/reports/gdpr", response_class=HTMLResponse)
def gdpr_page(request: Request, uri: str, as_of: str | None = None) -> Response:
    def render(svc: Service, who: Principal) -> Response:
        from provenance.api.routes import as_of_ms, gdpr

        r = gdpr(svc, who, [uri], as_of)
        return HTMLResponse(report_html(svc, who, "GDPR report", gdpr_markdown(r), uri, "down", 10,
                                        as_of_ms(as_of)))

    return _guard(request, render)


# -- login (a token in a cookie) ---------------------------------------------------------------------
@router.get("/ui/login", response_class=HTMLResponse)
def login_form(next: str = "/") -> HTMLResponse:
    return page("sign in", f"<h2>Sign in</h2><form method='post' action='/ui/login'>"
                           f"<input type='hidden' name='next' value='{html.escape(next)}'>"
                           f"<p><input name='token' type='password' size='60' placeholder='API token (prov_…)'></p>"
                           f"<button id='sign-in'>Sign in</button></form>"
                           f"<p class='muted'>Tokens come from <code>provenance token create</code>.</p>")


@router.post("/ui/login", response_model=None)
def login(request: Request, token: str = Form(...), next: str = Form("/")) -> Response:
    svc = _service(request)
    try:
        if svc.access is not None:
            svc.access.authenticate(token)
    except AuthError as exc:
        return page("sign in", f"<h2>Sign in</h2><p>{html.escape(str(exc))}</p><a href='/ui/login'>again</a>")
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, 303)
    response.set_cookie("prov_token", token, httponly=True, samesite="strict")
    return response
