"""Human renderings of the typed answers: Markdown reports (audit, GDPR, footprint, impact, repro).

Templates are Jinja2 (``templates/*.md.j2``). Every value printed in them is escaped for Markdown by
construction (the environment's ``finalize``): a name, path, tag or command from an event can never
become a link, an emphasis, a table cell boundary or raw HTML. The HTML pages render these reports
with raw HTML disabled, so even an unescaped value could not become markup there.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from provenance.events.model import ms_to_iso
from provenance.graph.answers import Comparison, Footprint, Gdpr, Impact, Upstream

# what can start markup inside a line: code, emphasis, links and images, raw HTML, table cells, strikethrough,
# entities; an underscore only where it is not inside a word ("loan_model" is plain text in CommonMark)
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~&])|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


class Raw(str):
    """Text a template built itself (already Markdown): printed as it is."""


def md(value: Any) -> str:
    """A value as Markdown text that reads as itself: special characters escaped, one line."""
    if value is None:
        return ""
    if isinstance(value, Raw):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    text = " ".join(str(value).split())  # no line breaks: nothing can start a block
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def version_label(version: Any) -> str:
    """One notation for versions everywhere (reports, pages, pictures): ``v2`` for a number, else the label."""
    v = str(version or "").strip()
    return f"v{v}" if v.isdigit() else v


def when(ms: Any) -> str:
    return (ms_to_iso(ms) or "—") if isinstance(ms, int) and not isinstance(ms, bool) else "—"


def command(value: Any) -> str:
    text = " ".join(map(str, value)) if isinstance(value, list) else str(value or "")
    return text if len(text) <= 160 else text[:157] + "…"


def tags(value: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))


def _hidden(x: Any) -> bool:
    return bool(getattr(x, "redacted", False))


@pass_context
def artifact_link(ctx: Context, x: Any) -> str:
    """An item's URI, a link to its page where the report has a base URL (``base_url``) and it is not hidden."""
    base, uri = ctx.get("base_url"), getattr(x, "uri", x)
    if not base or not uri or _hidden(x):
        return md(uri)
    params = {"uri": uri, "version": getattr(x, "version_key", None)}
    href = f"{base}/ui/artifact?" + urlencode({k: v for k, v in params.items() if v})
    return Raw(f"[{md(uri)}]({href})")


@pass_context
def run_link(ctx: Context, x: Any) -> str:
    """A run id, a link to its page where the report has a base URL and the run is not hidden."""
    base, app_id = ctx.get("base_url"), getattr(x, "app_id", x)
    if not base or not app_id or _hidden(x):
        return md(app_id)
    return Raw(f"[{md(app_id)}]({base}/ui/app/{quote(str(app_id), safe='')})")


def autolink(url: Any) -> str:
    """An http(s) address as a Markdown autolink (its text taken literally); anything else as text."""
    text = str(url or "")
    if text.startswith(("http://", "https://")) and not re.search(r"[\s<>]", text):
        return Raw(f"<{text}>")
    return md(text)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("provenance.reports", "templates"), autoescape=False,
                      finalize=md, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(when=when, command=command, tags=tags, ver=version_label, art=artifact_link, run=run_link,
                       url=autolink)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def audit_markdown(r: Upstream, *, generated_at: str | None = None, generated_by: str | None = None,
                   permalink: str | None = None, base_url: str | None = None) -> str:
    """The audit report; with ``base_url`` (the server's address) its URIs and run ids link to their pages."""
    return render("audit.md.j2", r=r, generated_at=generated_at, generated_by=generated_by, permalink=permalink,
                  base_url=(base_url or "").rstrip("/") or None)


def gdpr_markdown(r: Gdpr, *, generated_at: str | None = None, generated_by: str | None = None,
                  permalink: str | None = None, base_url: str | None = None) -> str:
    """The GDPR report; with ``base_url`` its URIs and run ids link to their pages."""
    return render("gdpr.md.j2", r=r, generated_at=generated_at, generated_by=generated_by, permalink=permalink,
                  base_url=(base_url or "").rstrip("/") or None)


def footprint_markdown(r: Footprint) -> str:
    return render("footprint.md.j2", r=r)


def impact_markdown(r: Impact, start: str) -> str:
    return render("impact.md.j2", r=r, start=start)


def compare_markdown(r: Comparison) -> str:
    return render("compare.md.j2", r=r)
