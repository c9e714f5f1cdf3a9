"""The query commands: apps, app, artifact, users, footprint, impact, audit, gdpr, repro, search, export."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from provenance.access import LOCAL_ADMIN as ME
from provenance.cli.common import (
    Ctx,
    as_of_option,
    catch_up,
    depth_options,
    emit_json,
    err,
    json_option,
    limits_options,
    local_ref,
    markdown,
    never,
    out,
    partial_note,
    table,
    when,
)
from provenance.errors import NotFoundError
from provenance.graph import export
from provenance.graph.answers import ImpactItem, VersionDetail, VersionItem
from provenance.graph.queries import Limits
from provenance.reports import audit_markdown, compare_markdown, gdpr_markdown
from provenance.search.port import SearchQuery
from provenance.service import Service

T = TypeVar("T")


def _ask(ctx: Ctx, quiet: bool, fn: Callable[[Service], T]) -> T:
    """Catch up (with progress), then ask; a missing artifact gets a hint of what is there."""
    svc = ctx.service()
    catch_up(svc, quiet=quiet)
    try:
        return fn(svc)
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}{_suggestion(svc, str(exc))}") from exc


def _suggestion(svc: Service, message: str) -> str:
    """Close matches among the artifacts of the directory named, or among the runs (the command line is
    the local admin's: it may see every name)."""
    if message.startswith("no app "):
        wanted = message.removeprefix("no app ").split(" as of ")[0].strip("'\"")
        runs, _ = svc.stack.store.find_nodes("app", limit=5000)
        close = difflib.get_close_matches(wanted, [n.id.removeprefix("app:") for n in runs], n=3, cutoff=0.7)
        return f"; did you mean {', '.join(close)}?" if close else " (`provenance apps` lists the runs)"
    if not message.startswith("no artifact at "):
        return ""
    ref = message.removeprefix("no artifact at ").split(" as of ")[0].strip("'\"")
    path = ref.split("://", 1)[-1].lstrip("/")
    parent = "file:///" + path.rsplit("/", 1)[0] if "/" in path else "file:///"
    nodes, _ = svc.stack.store.find_nodes("artifact", key_prefix=parent, limit=500)
    names = [n.id.removeprefix("artifact:") for n in nodes]
    close = difflib.get_close_matches("file:///" + path, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return hint + " (`provenance search` finds artifacts by name)"


def _known(item: Any) -> str:
    """How an item of a lineage answer is known: "certain (process)", "possible (run)"; "" when not reached."""
    tier = getattr(item, "tier", None)
    if tier is None:
        return ""
    return f"{'certain' if getattr(item, 'certain', False) else 'possible'} ({tier})"


TIERS_NOTE = ("certain: reached through exact links only (process: a captured process read one and wrote the "
              "other; declared: a source stated it; content: the same bytes). possible: through a run that read "
              "several inputs and wrote several outputs, which one reached which not captured.")


def _versions(title: str, items: list[Any], extra: tuple[str, ...] = ()) -> None:
    rows = []
    for i in items:
        cells = [_known(i) if c == "known" else ", ".join(getattr(i, c)) if isinstance(getattr(i, c), list)
                 else str(getattr(i, c)) for c in extra]
        rows.append([*cells, i.type, i.uri, i.version, ", ".join(f"{k}={v}" for k, v in sorted(i.tags.items()))])
    out.print(table(title, [*extra, "type", "artifact", "version", "tags"], rows, ids=("artifact",)))


@click.command()
@click.option("--name", "--job", "job", help="Only runs of this job (pipeline stage; project/stage or stage).")
@click.option("--user", help="Only runs by this user.")
@click.option("--state", type=click.Choice(["submitted", "started", "finished", "failed", "killed"]))
@as_of_option
@limits_options
@json_option
@click.pass_obj
def apps(ctx: Ctx, job: str | None, user: str | None, state: str | None, as_of: int | None, limit: int, offset: int,
         as_json: bool) -> None:
    """List applications (runs), newest first."""
    r = _ask(ctx, as_json, lambda s: s.apps(ME, job=job, user=user, state=state, as_of=never(as_of), limit=limit,
                                            offset=offset))
    if as_json:
        return emit_json(r)
    rows = [[a.app_id, a.job or "", ", ".join(a.users), a.state, when(a.started_ts), when(a.ended_ts),
             "" if a.exit_code is None else str(a.exit_code)] for a in r.apps]
    out.print(table(f"Applications ({r.total})", ["app", "job", "users", "state", "started", "ended", "exit"], rows,
                    ids=("app",)))
    partial_note({"apps": r.total}, {"apps": offset + len(r.apps)})


@click.command()
@click.argument("ref")
@as_of_option
@json_option
@click.pass_obj
def artifact(ctx: Ctx, ref: str, as_of: int | None, as_json: bool) -> None:
    """One artifact (a URI or a path): its versions, who made each and who read it."""
    r = _ask(ctx, as_json, lambda s: s.artifact(ME, local_ref(ref), never(as_of)))
    if as_json:
        return emit_json(r)
    a = r
    out.print(f"{a.name or a.uri} ({a.type}){' · project ' + a.project if a.project else ''}")
    out.print(a.uri)
    if a.tags:
        out.print("tags: " + ", ".join(f"{k}={v}" for k, v in sorted(a.tags.items())))
    def made_by(i: int, v: VersionDetail) -> str:
        if v.created_by:
            return v.created_by.app_id
        if v.outside:  # seen read with new content: nothing captured made it
            return "outside any captured run" if i == 0 else "changed outside any captured run"
        return "—"
    rows = [[v.version, when(v.created_ts), made_by(i, v), ", ".join(x.app_id for x in v.readers) or "—"]
            for i, v in enumerate(a.versions)]
    out.print(table(f"Versions ({len(a.versions)})", ["version", "created", "by run", "read by"], rows,
                    ids=("by run",)))


@click.command()
@as_of_option
@limits_options
@json_option
@click.pass_obj
def users(ctx: Ctx, as_of: int | None, limit: int, offset: int, as_json: bool) -> None:
    """Users that ran something, and when they were first and last seen."""
    r = _ask(ctx, as_json, lambda s: s.users(ME, never(as_of), limit, offset))
    if as_json:
        return emit_json(r)
    rows = [[u.name, when(u.first_ts), when(u.last_ts)] for u in r.users]
    out.print(table(f"Users ({r.total})", ["user", "first seen", "last seen"], rows, ids=("user",)))


@click.command()
@click.argument("app")
@as_of_option
@limits_options
@json_option
@click.pass_obj
def footprint(ctx: Ctx, app: str, as_of: int | None, limit: int, offset: int, as_json: bool) -> None:
    """What APP read and wrote: files and artifact versions, Hopsworks-typed."""
    r = _ask(ctx, as_json, lambda s: s.footprint(ME, app, never(as_of), Limits(limit=limit, offset=offset)))
    if as_json:
        return emit_json(r)
    a = r.app
    out.print(f"Footprint of {a.app_id} ({a.job or 'unknown job'}, {', '.join(a.users) or 'unknown user'}, "
              f"{a.state})")
    _versions("Artifacts", r.artifacts, extra=("types",))
    rows = [[", ".join(f.types), f.uri, when(f.first_ts), when(f.last_ts)] for f in r.files]
    out.print(table("Files", ["types", "file", "first", "last"], rows, ids=("file",)))
    partial_note(r.totals, {"artifacts": offset + len(r.artifacts), "files": offset + len(r.files)})


@click.command()
@click.option("--app", help="Start from this run's outputs.")
@click.option("--job", help="Start from the outputs of every run of this job (pipeline stage).")
@click.option("--artifact", help="Start from this artifact (URI or path; URI@version for one version).")
@as_of_option
@depth_options
@limits_options
@json_option
@click.pass_obj
def impact(ctx: Ctx, app: str | None, job: str | None, artifact: str | None, as_of: int | None, depth: int,
           time_budget: float, limit: int, offset: int, as_json: bool) -> None:
    """What was affected downstream of a run, a job or an artifact."""
    if sum(x is not None for x in (app, job, artifact)) != 1:
        raise click.UsageError("give exactly one of --app, --job or --artifact")
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    ref = local_ref(artifact) if artifact is not None else None
    r = _ask(ctx, as_json, lambda s: s.impact(ME, app=app, job=job, artifact=ref, as_of=never(as_of), limits=limits))
    if as_json:
        return emit_json(r)
    rows = [[str(a.depth), a.app_id, a.job or "", ", ".join(a.users), a.state] for a in r.apps]
    out.print(table(f"Runs reached ({r.totals['apps']})", ["depth", "app", "job", "users", "state"], rows,
                    ids=("app",)))
    items: list[ImpactItem] = r.artifacts
    _versions("Union of their footprints", items, extra=("types", "known"))
    if any(i.certain is False for i in items):
        err.print(TIERS_NOTE)
    partial_note(r.totals, {"apps": offset + len(r.apps), "artifacts": offset + len(r.artifacts)}, r.partial,
                 r.reason)


@click.command()
@click.argument("uri")
@as_of_option
@depth_options
@limits_options
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
@json_option
@click.pass_obj
def audit(ctx: Ctx, uri: str, as_of: int | None, depth: int, time_budget: float, limit: int, offset: int,
          fmt: str, output: Path | None, as_json: bool) -> None:
    """How an artifact (a model) was made: everything upstream, who, with which code, and its later use."""
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    r = _ask(ctx, as_json or fmt == "json", lambda s: s.upstream(ME, local_ref(uri), never(as_of), limits))
    if as_json or fmt == "json":
        text = json.dumps(r.model_dump(mode="json"), indent=2, sort_keys=True)
    elif fmt == "md" or output is not None:
        text = audit_markdown(r)
    else:
        text = ""
    if output is not None:
        output.write_text(text.rstrip("\n") + "\n")
        err.print(f"wrote {output}")
        return
    if text:
        click.echo(text.rstrip("\n"))
        return
    t = r.target
    out.print(f"Audit of {t.uri} @ {t.version} ({t.type}); users: {', '.join(r.users) or '—'}; "
              f"code: {', '.join(r.code_versions) or '—'}")
    _versions("Upstream", r.artifacts, extra=("depth", "known"))
    rows = [[str(a.depth), a.app_id, a.job or "", ", ".join(a.users), a.git_commit or "", a.env_hash or "",
             when(a.started_ts)] for a in r.apps]
    out.print(table("Applications", ["depth", "app", "job", "users", "git", "env", "started"], rows,
                    ids=("app", "git", "env")))
    if any(not a.certain for a in r.artifacts):
        err.print(TIERS_NOTE)
    for c in r.consumers:
        outs = ", ".join(f"{o.type} {o.uri}@{o.version}" for o in c.outputs)
        out.print(f"used by {c.app_id} ({c.job}) → {outs or 'no outputs'}")
    partial_note(r.totals, {"artifacts": offset + len(r.artifacts), "apps": offset + len(r.apps),
                            "consumers": offset + len(r.consumers)}, r.partial, r.reason)


@click.command()
@click.argument("uris", nargs=-1, required=True)
@as_of_option
@depth_options
@limits_options
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json"]), default="table", show_default=True)
@json_option
@click.pass_obj
def gdpr(ctx: Ctx, uris: tuple[str, ...], as_of: int | None, depth: int, time_budget: float, limit: int,
         offset: int, fmt: str, as_json: bool) -> None:
    """Every model and deployment downstream of the given data, with evidence paths."""
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    refs = [local_ref(u) for u in uris]
    r = _ask(ctx, as_json or fmt == "json", lambda s: s.gdpr(ME, refs, never(as_of), limits))
    if as_json or fmt == "json":
        return emit_json(r)
    if fmt == "md":
        click.echo(gdpr_markdown(r).rstrip("\n"))
        return
    rows = [[c.type, c.uri, c.version, c.tier, "yes" if c.deleted else "no"] for c in r.copies]
    if rows:
        out.print(table(f"Copies of the data ({r.totals['copies']}): where it came from and what holds the same "
                        "data", ["type", "artifact", "version", "known by", "deleted"], rows, ids=("artifact",)))
    else:
        out.print("Copies of the data: none found")
    rows = []
    for m in r.models:
        path = " → ".join(s.job or s.app_id or "" if s.kind == "app" else f"{s.uri.rsplit('/', 1)[-1]}@{s.version}"
                          for s in m.evidence)
        if m.type == "deployment":
            now = "serving now" if m.deployed else "deleted" if m.deleted else "not serving now"
        else:
            now = "deployed now" if m.deployed else "not deployed now"
        if not m.current and m.superseded_ts is not None:
            now += f"; superseded {when(m.superseded_ts)}"
        rows.append([m.type, m.uri, m.version, _known(m), now, path])
    out.print(table(f"Models and deployments ({r.totals['models']})",
                    ["type", "artifact", "version", "known", "now", "evidence"], rows, ids=("artifact",)))
    out.print(f"users involved: {', '.join(r.users) or '—'}")
    certain: list[VersionItem] = [d for d in r.derived if d.certain]
    possible: list[VersionItem] = [d for d in r.derived if not d.certain]
    _versions(f"Derived artifacts to erase or rebuild ({len(certain)})", certain, extra=("depth", "known"))
    if possible:
        _versions(f"Possibly derived, to review ({len(possible)}): a run read the data among other inputs",
                  possible, extra=("depth", "known"))
    rows = [[x.uri, x.version, x.created_by.app_id if x.created_by else "—"] for x in r.logs]
    if rows:
        out.print(table(f"Logs of the runs that read it ({r.totals['logs']}): what a run printed may hold the data",
                        ["log", "version", "of run"], rows, ids=("log", "of run")))
    else:
        out.print("Logs of the runs that read it: none captured")
    if possible or any(not m.certain for m in r.models):
        err.print(TIERS_NOTE)
    partial_note(r.totals, {"models": offset + len(r.models), "derived": offset + len(r.derived),
                            "apps": offset + len(r.apps), "copies": offset + len(r.copies),
                            "logs": offset + len(r.logs)}, r.partial, r.reason)


@click.command()
@click.argument("app_a")
@click.argument("app_b", required=False)
@as_of_option
@json_option
@click.pass_obj
def repro(ctx: Ctx, app_a: str, app_b: str | None, as_of: int | None, as_json: bool) -> None:
    """Reproducibility check: what differs between two runs (inputs, code, environment), or, with one run,
    between it and what was captured since (its inputs' latest versions, the newest run of its job).
    Exits 0 when they match in all three, 3 when they differ."""
    r = _ask(ctx, as_json, lambda s: s.repro(ME, app_a, app_b, never(as_of)))
    if as_json:
        emit_json(r)
    else:
        markdown(compare_markdown(r))
    if not r.reproducible:
        raise SystemExit(3)


@click.command()
@click.argument("text", required=False, default="")
@click.option("--kind", type=click.Choice(["artifact", "app", "user"]), multiple=True, help="Only these kinds.")
@click.option("--type", "types", multiple=True, help="Only these artifact types (dataset, model, …).")
@click.option("--project", multiple=True, help="Only these projects.")
@click.option("--user", multiple=True, help="Only things these users made or ran.")
@click.option("--sort", type=click.Choice(["relevance", "usage", "recent"]), default="relevance", show_default=True)
@limits_options
@json_option
@click.pass_obj
def search(ctx: Ctx, text: str, kind: tuple[str, ...], types: tuple[str, ...], project: tuple[str, ...],
           user: tuple[str, ...], sort: str, limit: int, offset: int, as_json: bool) -> None:
    """Search artifacts, runs and users by name, path, tags and description (word* is a prefix)."""
    query = SearchQuery(text=text, kinds=kind, types=types, projects=project, users=user,
                        sort=sort, limit=min(limit, 1000), offset=offset)  # type: ignore[arg-type]
    r = _ask(ctx, as_json, lambda s: s.search(ME, query))
    if as_json:
        return emit_json(r)
    rows = [[h.kind, h.type, h.name, h.uri, h.project or "", str(h.usage), when(h.last_ts)] for h in r.hits]
    out.print(table(f"{r.total} result(s)", ["kind", "type", "name", "uri", "project", "used", "last"], rows,
                    ids=("uri",)))


@click.command("export")
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["json", "prov", "graphml"]), default="prov", show_default=True,
              help="The lineage graph as JSON (nodes and edges), W3C PROV-JSON or GraphML.")
@click.option("--direction", type=click.Choice(export.DIRECTIONS), default="up", show_default=True)
@click.option("--depth", type=click.IntRange(min=1, max=100), default=10, show_default=True)
@as_of_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write it here.")
@click.pass_obj
def export_lineage(ctx: Ctx, ref: str, fmt: str, direction: export.Direction, depth: int, as_of: int | None,
                   output: Path | None) -> None:
    """The lineage around an artifact, to a file or stdout."""
    g = _ask(ctx, True, lambda s: s.lineage(ME, local_ref(ref), direction, depth, never(as_of)))
    if fmt == "graphml":
        text = export.graphml(g)
    elif fmt == "prov":
        text = json.dumps(export.prov_json(g), indent=2, sort_keys=True)
    else:
        text = json.dumps(g.model_dump(mode="json"), indent=2, sort_keys=True)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n")
        err.print(f"wrote {output} ({len(g.nodes)} nodes, {len(g.edges)} edges)")


@click.command("export-openlineage")
@click.argument("app")
@as_of_option
@click.pass_obj
def export_openlineage(ctx: Ctx, app: str, as_of: int | None) -> None:
    """A run as OpenLineage RunEvents (JSON lines)."""
    events = _ask(ctx, True, lambda s: s.openlineage_export(ME, app, "urn:provenance:cli", never(as_of)))
    for e in events:
        click.echo(json.dumps(e, sort_keys=True))


COMMANDS = [apps, artifact, users, footprint, impact, audit, gdpr, repro, search, export_lineage, export_openlineage]
