"""`provenance` command line. Every query takes ``--as-of`` and ``--json``; usage errors exit 2.

A query first catches the processor up (with a progress bar), so it answers with every event that
was captured before it started.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from provenance.bus.port import DEAD_LETTER_TOPIC, Record, offset_key, raw_topic, read_topic
from provenance.config import Settings, load_settings
from provenance.errors import ConfigError, NotFoundError, ProvenanceError, QueryError
from provenance.events.model import ms_to_iso, to_ms
from provenance.formats import FORMATS
from provenance.graph.model import NEVER
from provenance.graph.queries import Limits, LineageQueries
from provenance.processor.runner import ProcessStats, processor_lock
from provenance.reports import audit_markdown, compare_markdown, gdpr_markdown
from provenance.stack import Stack, open_stack, run_processor

out = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise SystemExit(code)


class AsOf(click.ParamType):  # type: ignore[type-arg,unused-ignore]  # generic only in newer click
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return to_ms(value)
        except ValueError as exc:
            self.fail(f"{value!r} is not an ISO-8601 time (2026-03-02T10:00:00Z) or epoch milliseconds: {exc}",
                      param, ctx)


def as_of_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--as-of", type=AsOf(), default=None,
                        help="Answer as the graph stood at this time (ISO-8601 or epoch ms).")(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(f)


def limits_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Skip this many items.")(f)
    f = click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True, help="Items per list.")(f)
    return f


def depth_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--time-budget", type=click.FloatRange(min=0.001), default=5.0, show_default=True,
                     help="Seconds the traversal may take before it answers partially.")(f)
    f = click.option("--depth", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Pipeline stages (apps) to traverse.")(f)
    return f


class Ctx:
    def __init__(self, home: Path | None, config: Path | None) -> None:
        self.home = home
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, home=self.home)
        return self._settings

    def stack(self) -> Stack:
        return open_stack(self.settings)


def catch_up(stack: Stack, quiet: bool = False) -> ProcessStats:
    """Apply every record captured so far before answering. On a group-managed bus (Kafka) the
    processors of the group do that (`provenance process`); a command must not join their group."""
    if stack.bus.group_managed:
        return ProcessStats()
    proc = stack.processor
    with processor_lock(stack.settings.home):
        pending = proc.pending()
        if pending == 0:
            proc.prepare()  # a search index behind the store is rebuilt
            return ProcessStats()
        if quiet or pending < 2 * proc.batch_size:
            stats = proc.catch_up()
        else:
            with Progress(TextColumn("processing events"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=err, transient=True) as bar:
                task = bar.add_task("process", total=pending)
                stats = proc.catch_up(lambda s: bar.advance(task, s.records))
    if stats.dead_lettered:
        err.print(f"[yellow]{stats.dead_lettered} record(s) went to the dead-letter topic[/yellow] "
                  f"(see `provenance dead-letters`); first: {stats.errors[0]}", highlight=False)
    return stats


def run_query(ctx: Ctx, fn: Callable[[LineageQueries], dict[str, Any]]) -> dict[str, Any]:
    with ctx.stack() as stack:
        catch_up(stack)
        return fn(LineageQueries(stack.store, stack.rules))


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _t(ms: Any) -> str:
    return (ms_to_iso(ms) or "") if isinstance(ms, int) else ""


def _partial_note(r: dict[str, Any]) -> None:
    if r.get("partial"):
        err.print(f"[yellow]partial result:[/yellow] {r.get('reason')}", highlight=False)
    for name, total in r.get("totals", {}).items():
        shown = len(r.get(name, []))
        if shown < total:
            err.print(f"{name}: showing {shown} of {total} (use --offset/--limit)", highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="State directory (env PROVENANCE_HOME, default ~/.provenance).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML config file (env PROVENANCE_CONFIG, default HOME/config.yaml).")
@click.pass_context
def cli(click_ctx: click.Context, home: Path | None, config: Path | None) -> None:
    """Implicit provenance for ML pipelines: lineage from change-data-capture, with time travel."""
    click_ctx.obj = Ctx(home, config)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--format", "fmt", default="canonical", show_default=True,
              help="Raw format of the lines (one of the registered normalizers).")
@click.option("--no-process", is_flag=True, help="Only append to the log; the processor applies them later.")
@json_option
@click.pass_obj
def ingest(ctx: Ctx, files: tuple[Path, ...], fmt: str, no_process: bool, as_json: bool) -> None:
    """Append raw events (JSON lines) to the log, then process them."""
    if fmt not in FORMATS:
        raise click.BadParameter(f"unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})", param_hint="--format")
    topic = raw_topic(fmt)
    appended = 0
    with ctx.stack() as stack:
        for path in files:
            try:
                stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
            except OSError as exc:
                _fail(f"cannot read {path}: {exc}", 2)
            with stream:
                batch: list[Record] = []
                for line in stream:
                    line = line.strip()
                    if not line:
                        continue
                    # Every line goes on the log, good or bad: the processor dead-letters bad ones.
                    batch.append(Record(value=line, key=_key_of(line)))
                    if len(batch) >= 10_000:
                        appended += len(stack.bus.produce(topic, batch))
                        batch = []
                appended += len(stack.bus.produce(topic, batch))
        stats = ProcessStats() if no_process else catch_up(stack, quiet=as_json)
    result = {"appended": appended, "topic": topic, "processed": stats.records,
              "events": stats.events, "dead_lettered": stats.dead_lettered}
    if as_json:
        _emit_json(result)
    elif stack.bus.group_managed:
        out.print(f"appended {appended} record(s) to {topic}; the processors of group "
                  f"{stack.processor.group!r} apply them", highlight=False)
    else:
        out.print(f"appended {appended} record(s) to {topic}; processed {stats.records}, "
                  f"dead-lettered {stats.dead_lettered}", highlight=False)


def _key_of(line: bytes) -> str | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict):
        key = data.get("app_id") or data.get("uri")
        return str(key) if key else None
    return None


@cli.command()
@click.option("--name", help="Only runs of this job (pipeline stage).")
@click.option("--user", help="Only runs by this user.")
@click.option("--state", type=click.Choice(["submitted", "started", "finished", "failed", "killed"]))
@as_of_option
@limits_options
@json_option
@click.pass_obj
def apps(ctx: Ctx, name: str | None, user: str | None, state: str | None, as_of: int | None,
         limit: int, offset: int, as_json: bool) -> None:
    """List applications (runs), newest first."""
    t = as_of if as_of is not None else NEVER
    where: dict[str, Any] = {}
    if user:
        where["user"] = user
    if state:
        where["state"] = state

    def q(lq: LineageQueries) -> dict[str, Any]:
        if name:
            try:
                ids = lq.job_apps(name, t)
            except NotFoundError:
                ids = []
            nodes = [n for n in lq.store.nodes(ids, t).values()
                     if all(n.props.get(k) == v for k, v in where.items())]
            nodes.sort(key=lambda n: (-n.first_ts, n.id))
            total, nodes = len(nodes), nodes[offset : offset + limit]
        else:
            nodes, total = lq.store.find_nodes("app", as_of=t, where=where, limit=limit, offset=offset)
        items = lq.describe_apps([n.id for n in nodes], t)
        listed = [items[n.id] for n in nodes]
        return {"query": "apps", "as_of": None if as_of is None else ms_to_iso(as_of), "apps": listed,
                "totals": {"apps": total}, "offset": offset, "limit": limit, "partial": False}

    r = run_query(ctx, q)
    if as_json:
        return _emit_json(r)
    table = Table(title=f"Applications ({r['totals']['apps']})")
    for col in ("app", "job", "users", "state", "started", "ended", "exit"):
        table.add_column(col)
    for a in r["apps"]:
        table.add_row(a["app_id"], a["job"] or "", ", ".join(a["users"]), a["state"], _t(a["started_ts"]),
                      _t(a["ended_ts"]), "" if a["exit_code"] is None else str(a["exit_code"]))
    out.print(table)
    _partial_note(r)


@cli.command()
@click.argument("app")
@as_of_option
@limits_options
@json_option
@click.pass_obj
def footprint(ctx: Ctx, app: str, as_of: int | None, limit: int, offset: int, as_json: bool) -> None:
    """What APP read and wrote: files and artifact versions, Hopsworks-typed."""
    r = run_query(ctx, lambda q: q.footprint(app, _t_or_never(as_of), Limits(limit=limit, offset=offset)))
    if as_json:
        return _emit_json(r)
    a = r["app"]
    out.print(f"[bold]Footprint of {a['app_id']}[/bold] ({a['job'] or 'unknown job'}, "
              f"{', '.join(a['users']) or 'unknown user'}, {a['state']})", highlight=False)
    _artifact_table("Artifacts", r["artifacts"], extra=("types",))
    table = Table(title="Files")
    for col in ("types", "file", "first", "last"):
        table.add_column(col)
    for f in r["files"]:
        table.add_row(", ".join(f["types"]), f["uri"], _t(f["first_ts"]), _t(f["last_ts"]))
    out.print(table)
    _partial_note(r)


def _t_or_never(as_of: int | None) -> int:
    return NEVER if as_of is None else as_of


def _artifact_table(title: str, items: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> None:
    table = Table(title=title)
    for col in (*extra, "type", "artifact", "version", "tags"):
        table.add_column(col)
    for i in items:
        cells = [", ".join(i[c]) if isinstance(i[c], list) else str(i[c]) for c in extra]
        tags = ", ".join(f"{k}={v}" for k, v in sorted(i["tags"].items()))
        table.add_row(*cells, i["type"], i["uri"], str(i["version"]), tags)
    out.print(table)


@cli.command()
@click.option("--app", help="Start from this app's outputs.")
@click.option("--job", help="Start from the outputs of every run of this job (pipeline stage).")
@click.option("--artifact", help="Start from this artifact (URI, path, or URI@version; all versions if none).")
@as_of_option
@depth_options
@limits_options
@json_option
@click.pass_obj
def impact(ctx: Ctx, app: str | None, job: str | None, artifact: str | None, as_of: int | None, depth: int,
           time_budget: float, limit: int, offset: int, as_json: bool) -> None:
    """What was affected downstream of an app, a job or an artifact."""
    if sum(x is not None for x in (app, job, artifact)) != 1:
        raise click.UsageError("give exactly one of --app, --job or --artifact")
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    r = run_query(ctx, lambda q: q.impact(app=app, job=job, artifact=artifact, as_of=_t_or_never(as_of),
                                          limits=limits))
    if as_json:
        return _emit_json(r)
    table = Table(title=f"Apps reached ({r['totals']['apps']})")
    for col in ("depth", "app", "job", "users", "state"):
        table.add_column(col)
    for a in r["apps"]:
        table.add_row(str(a["depth"]), a["app_id"], a["job"] or "", ", ".join(a["users"]), a["state"])
    out.print(table)
    _artifact_table("Union of their footprints", r["artifacts"], extra=("types",))
    _partial_note(r)


@cli.command()
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
    r = run_query(ctx, lambda q: q.upstream(uri, _t_or_never(as_of), limits))
    if as_json or fmt == "json":
        text = json.dumps(r, indent=2, sort_keys=True, default=str)
    elif fmt == "md":
        text = audit_markdown(r)
    else:
        text = ""
    if output is not None:
        output.write_text((text or audit_markdown(r)) + "\n")
        err.print(f"wrote {output}", highlight=False)
        return
    if text:
        click.echo(text)
        return
    t = r["target"]
    out.print(f"[bold]Audit of {t['uri']} @ {t['version']}[/bold] ({t['type']}); users: {', '.join(r['users'])}; "
              f"code: {', '.join(r['code_versions']) or '—'}", highlight=False)
    _artifact_table("Upstream", r["artifacts"], extra=("depth",))
    table = Table(title="Applications")
    for col in ("depth", "app", "job", "users", "git", "env", "started"):
        table.add_column(col)
    for a in r["apps"]:
        table.add_row(str(a["depth"]), a["app_id"], a["job"] or "", ", ".join(a["users"]), a["git_commit"] or "",
                      a["env_hash"] or "", _t(a["started_ts"]))
    out.print(table)
    for c in r["consumers"]:
        outs = ", ".join(f"{o['type']} {o['uri']}@{o['version']}" for o in c["outputs"])
        out.print(f"used by {c['app_id']} ({c['job']}) → {outs or 'no outputs'}", highlight=False)
    _partial_note(r)


@cli.command()
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
    r = run_query(ctx, lambda q: q.gdpr(list(uris), _t_or_never(as_of), limits))
    if as_json or fmt == "json":
        return _emit_json(r)
    if fmt == "md":
        click.echo(gdpr_markdown(r))
        return
    table = Table(title=f"Models and deployments ({r['totals']['models']})")
    for col in ("type", "artifact", "version", "deployed", "evidence"):
        table.add_column(col)
    for m in r["models"]:
        path = " → ".join(
            s["job"] or s["app_id"] if s["kind"] == "app" else f"{s['uri'].rsplit('/', 1)[-1]}@{s['version']}"
            for s in m["evidence"])
        table.add_row(m["type"], m["uri"], str(m["version"]), "yes" if m["deployed"] else "no", path)
    out.print(table)
    out.print(f"users involved: {', '.join(r['users']) or '—'}", highlight=False)
    _artifact_table(f"Derived artifacts to erase or rebuild ({r['totals']['derived']})", r["derived"], extra=("depth",))
    _partial_note(r)


@cli.command()
@click.argument("app_a")
@click.argument("app_b")
@as_of_option
@json_option
@click.pass_obj
def repro(ctx: Ctx, app_a: str, app_b: str, as_of: int | None, as_json: bool) -> None:
    """Reproducibility check: what differs between two runs (inputs, code, environment). Exits 0 when
    they match in all three, 3 when they differ."""
    r = run_query(ctx, lambda q: q.compare_runs(app_a, app_b, _t_or_never(as_of)))
    if as_json:
        return _emit_json(r)
    out.print(Markdown(compare_markdown(r)))
    if not r["reproducible"]:
        raise SystemExit(3)


@cli.command()
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
    from provenance.search.port import SearchQuery

    with ctx.stack() as stack:
        catch_up(stack, quiet=as_json)
        if stack.search is None:
            _fail("search is off in this configuration (search.type: none)", 2)
        r = stack.search.search(SearchQuery(text=text, kinds=kind, types=types, projects=project, users=user,
                                            sort=sort, limit=min(limit, 1000), offset=offset))  # type: ignore[arg-type]
    if as_json:
        return _emit_json({"total": r.total, "hits": r.hits, "facets": r.facets, "offset": offset, "limit": limit})
    table = Table(title=f"{r.total} result(s)")
    for col in ("kind", "type", "name", "uri", "project", "used", "last"):
        table.add_column(col)
    for h in r.hits:
        table.add_row(h["kind"], h["type"], h["name"], h["uri"], h.get("project") or "", str(h["usage"]),
                      _t(h["last_ts"]))
    out.print(table)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8750, show_default=True)
@click.option("--no-auth", is_flag=True,
              help="No tokens: everyone who can reach the port is an admin. Only for one user on localhost.")
@click.option("--no-process", is_flag=True,
              help="Serve only; processors run elsewhere (`provenance process`, the production stack).")
@click.pass_obj
def serve(ctx: Ctx, host: str, port: int, no_auth: bool, no_process: bool) -> None:
    """The processor, the HTTP API and the web UI in one process."""
    import uvicorn

    from provenance.api.app import create_app

    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        raise click.UsageError("--no-auth is only allowed on a loopback --host")
    app = create_app(ctx.settings, auth=not no_auth, run_processor=not no_process)
    err.print(f"[bold]provenance serve[/bold] on http://{host}:{port}/ (API docs at /docs; "
              f"{'no auth' if no_auth else 'tokens required: provenance token create'}); state in "
              f"{ctx.settings.home}", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@cli.command()
@click.option("--until-caught-up", is_flag=True, help="Stop once everything on the log is applied.")
@click.pass_obj
def process(ctx: Ctx, until_caught_up: bool) -> None:
    """Run a processor: apply the raw topics to the store (and the index) as records arrive.

    On Kafka, every processor started with the same configuration joins one consumer group, and the
    group splits the partitions between them. SIGTERM or Ctrl-C finishes the batch in hand and stops.
    """
    import logging
    import signal
    import threading

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    err.print(f"[bold]provenance process[/bold]: {ctx.settings.bus.type} bus → {ctx.settings.store.type} store "
              f"(search: {ctx.settings.search.type})", highlight=False)
    total = ProcessStats()
    last = [time.monotonic()]

    def report(stats: ProcessStats) -> None:
        total.add(stats)
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            err.print(f"applied {total.records} record(s), {total.events} event(s), "
                      f"{total.dead_lettered} dead-lettered", highlight=False)

    run_processor(ctx.settings, stop, until_caught_up=until_caught_up, on_batch=report)
    err.print(f"stopped: applied {total.records} record(s), {total.dead_lettered} dead-lettered", highlight=False)


@cli.group()
def token() -> None:
    """API tokens: create, list, revoke."""


@token.command("create")
@click.argument("user")
@click.option("--admin", is_flag=True, help="The user sees everything and may send events.")
@click.option("--project", "projects", multiple=True, help="Make the user a member of this project.")
@click.option("--label", help="What the token is for.")
@json_option
@click.pass_obj
def token_create(ctx: Ctx, user: str, admin: bool, projects: tuple[str, ...], label: str | None,
                 as_json: bool) -> None:
    """Create a token for USER (printed once; only its hash is stored)."""
    from provenance.access import AccessStore

    store = AccessStore(ctx.settings.home / "access.db")
    try:
        token_id, secret = store.create_token(user, admin=admin, projects=projects, label=label)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        return _emit_json({"id": token_id, "user": user, "token": secret, "admin": admin, "projects": list(projects)})
    out.print(f"token {token_id} for {user}{' (admin)' if admin else ''}: {secret}", highlight=False)
    err.print("[dim]store it now: it is not shown again[/dim]")


@token.command("list")
@json_option
@click.pass_obj
def token_list(ctx: Ctx, as_json: bool) -> None:
    """Tokens with their users, projects and last use (never the tokens themselves)."""
    from provenance.access import AccessStore

    store = AccessStore(ctx.settings.home / "access.db")
    try:
        tokens = store.tokens()
    finally:
        store.close()
    if as_json:
        return _emit_json({"tokens": tokens})
    table = Table(title=f"{len(tokens)} token(s)")
    for col in ("id", "user", "admin", "projects", "label", "created", "last used", "revoked"):
        table.add_column(col)
    for t in tokens:
        table.add_row(t["id"], t["user"], "yes" if t["admin"] else "", ", ".join(t["projects"]), t["label"] or "",
                      _t(t["created_ts"]), _t(t["last_used_ts"]), "yes" if t["revoked"] else "")
    out.print(table)


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def token_revoke(ctx: Ctx, token_id: str) -> None:
    """Revoke a token by its id (see `token list`)."""
    from provenance.access import AccessStore

    store = AccessStore(ctx.settings.home / "access.db")
    try:
        store.revoke(token_id)
    finally:
        store.close()
    out.print(f"revoked {token_id}", highlight=False)


@cli.command("dead-letters")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@click.pass_obj
def dead_letters(ctx: Ctx, limit: int, as_json: bool) -> None:
    """Records the processor could not use, with the reason and where they came from."""
    with ctx.stack() as stack:
        catch_up(stack, quiet=as_json)
        msgs = read_topic(stack.bus, DEAD_LETTER_TOPIC, limit)
    items: list[dict[str, str]] = [{"offset": str(m.offset), **m.headers, "value": m.value.decode("utf-8", "replace")}
                                   for m in msgs]
    if as_json:
        return _emit_json({"dead_letters": items})
    table = Table(title=f"Dead letters ({len(items)})")
    for col in ("source", "offset", "error", "record"):
        table.add_column(col, overflow="fold")
    for i in items:
        table.add_row(i.get("source_topic", ""), i.get("offset", ""), i.get("error", ""), i["value"][:120])
    out.print(table)


@cli.command()
@click.option("--from-offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.pass_obj
def replay(ctx: Ctx, from_offset: int) -> None:
    """Re-apply the raw topics from an offset (idempotent: rebuilds what the store holds).

    On Kafka this rewinds the store's offsets, where processors start from when they get partitions:
    restart the processors afterwards."""
    from provenance.bus.embedded import EmbeddedLog

    with ctx.stack() as stack:
        proc = stack.processor
        topics = stack.bus.raw_topics()
        if isinstance(stack.bus, EmbeddedLog):
            for topic in topics:
                stack.bus.reset_group(proc.group, topic, from_offset)
        stack.store.record_offsets(proc.group, {offset_key(t, p): from_offset for t in topics
                                                for p in stack.bus.end_offsets(t)})
        stats = catch_up(stack)
    if stack.bus.group_managed:
        out.print(f"the store's offsets are at {from_offset} on {len(topics)} topic(s); restart the processors",
                  highlight=False)
    else:
        out.print(f"replayed {stats.records} record(s)", highlight=False)


@cli.command()
@json_option
@click.pass_obj
def status(ctx: Ctx, as_json: bool) -> None:
    """Where the state lives, what the log and store hold, and the processor's lag."""
    with ctx.stack() as stack:
        topics = {t: sum(stack.bus.end_offsets(t).values()) for t in stack.bus.topics()}
        r = {"home": str(stack.settings.home), "topics": topics, "pending": stack.processor.pending(),
             "store": stack.store.stats()}
    if as_json:
        return _emit_json(r)
    for k, v in r.items():
        out.print(f"{k}: {v}", highlight=False)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--name", help="Pipeline stage this run belongs to (default: the script it runs).")
@click.option("--project", help="Project the run belongs to.")
@click.option("--capture", type=click.Choice(["auto", "fanotify", "audit-hook", "off"]), default="auto",
              show_default=True, help="How file I/O is captured: fanotify (any language, needs root), audit-hook "
              "(Python jobs, no root); auto picks fanotify where it is permitted.")
@click.option("--quiet", is_flag=True, help="Do not echo the job's output (it still goes to the log).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def run(ctx: Ctx, name: str | None, project: str | None, capture: str, quiet: bool,
        command: tuple[str, ...]) -> None:
    """Run COMMAND as a tracked application: provenance run [OPTIONS] -- CMD [ARGS]..."""
    from provenance.connectors.launcher import Launcher

    with ctx.stack() as stack:
        try:
            capture_cfg = stack.settings.capture
            result = Launcher(stack.bus, stack.settings.home, echo=not quiet, noise=capture_cfg.noise,
                              ignore=capture_cfg.ignore).run(
                list(command), name=name, project=project, capture=capture)
        except OSError as exc:
            _fail(f"cannot start {command[0]!r}: {exc}", 127)
        # no catch-up here: the job's events are on the log, and every query applies them first
    note = f"; {len(result.gaps)} capture gap(s)" if result.gaps else ""
    err.print(f"[dim]provenance: {result.app_id} {result.state} (exit {result.exit_code}), "
              f"{result.events} file events captured by {result.capture}{note}[/dim]", highlight=False)
    raise SystemExit(result.exit_code)


@cli.command()
@click.option("--source", "only", multiple=True, help="Only this configured source (cdc.sources[].name).")
@click.pass_obj
def cdc(ctx: Ctx, only: tuple[str, ...]) -> None:
    """Capture the configured metadata databases with the Debezium engine, onto the bus.

    Every change goes to prov.raw.debezium; the processor maps it with the table mappings
    (cdc.mapping_files, then the defaults). Runs until SIGTERM or Ctrl-C; the engine's source offsets
    live in HOME/cdc, so a restart goes on where it stopped.
    """
    import logging
    import signal
    import threading

    from provenance.connectors.cdc import CdcNormalizer, DebeziumSource, run_debezium, unmapped_tables

    settings = ctx.settings
    sources = [s for s in settings.cdc.sources if not only or s.name in only]
    unknown = set(only) - {s.name for s in settings.cdc.sources}
    if unknown:
        raise click.UsageError(f"no cdc source named {', '.join(sorted(unknown))} in the configuration")
    if not sources:
        raise click.UsageError("no cdc.sources configured (see README, 'Change-data-capture')")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    with ctx.stack() as stack:
        missing = unmapped_tables([t for s in sources for t in s.tables],
                                  CdcNormalizer(settings.cdc.mapping_files).mappings)
        if missing:
            _fail(f"no table mapping for {', '.join(missing)}: add one to a file in cdc.mapping_files", 2)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        topic = raw_topic("debezium")
        count = [0]

        def produce(records: list[Record]) -> None:
            stack.bus.produce(topic, records)
            count[0] += len(records)

        err.print(f"[bold]provenance cdc[/bold]: {', '.join(s.name for s in sources)} → {topic}", highlight=False)
        try:
            run_debezium([DebeziumSource(**s.model_dump()) for s in sources], produce, settings.home / "cdc", stop)
        except ProvenanceError as exc:
            _fail(str(exc))
    err.print(f"stopped: {count[0]} change(s) published", highlight=False)


@cli.command("tail-hdfs-audit")
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fs", "fs", default="hdfs://", show_default=True,
              help="URI prefix of the file system the log is of, e.g. hdfs://namenode:8020.")
@click.option("--follow", is_flag=True, help="Keep reading as the log grows (until Ctrl-C or SIGTERM).")
@json_option
@click.pass_obj
def tail_hdfs_audit(ctx: Ctx, logs: tuple[Path, ...], fs: str, follow: bool, as_json: bool) -> None:
    """Publish new lines of HDFS NameNode audit logs (hdfs-audit.log) as file events."""
    import signal
    import threading

    from provenance.connectors.hdfs import AuditLogTailer, TailResult

    if "://" not in fs:
        raise click.BadParameter(f"{fs!r} is not a URI prefix (like hdfs://namenode:8020)", param_hint="--fs")
    stop = threading.Event()
    if follow:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    total = TailResult()
    with ctx.stack() as stack:
        tailer = AuditLogTailer(stack.bus, stack.settings.home / "hdfs_audit_state.json", fs)
        while True:
            for log in logs:
                r = tailer.tail(log)
                total.lines += r.lines
                total.published += r.published
                total.skipped += r.skipped
            if not follow or stop.wait(1.0):
                break
        stats = catch_up(stack, quiet=as_json)
    data = {"lines": total.lines, "published": total.published, "skipped": total.skipped,
            "processed": stats.records, "dead_lettered": stats.dead_lettered}
    if as_json:
        return _emit_json(data)
    out.print(f"{total.published} audit record(s) published from {total.lines} new line(s) "
              f"({total.skipped} not audit records)", highlight=False)


@cli.command("s3-events")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@json_option
@click.pass_obj
def s3_events(ctx: Ctx, files: tuple[Path, ...], as_json: bool) -> None:
    """Publish saved S3 / MinIO bucket notifications (JSON documents or JSON lines)."""
    from provenance.connectors.s3 import documents

    records: list[Record] = []
    for path in files:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text()
            docs = list(documents(text))
        except OSError as exc:
            _fail(f"cannot read {path}: {exc}", 2)
        except ProvenanceError as exc:
            _fail(f"{path}: {exc}", 2)
        for doc in docs:
            first = (doc.get("Records") or [{}])[0] if isinstance(doc, dict) else {}
            key = ((first.get("s3") or {}).get("bucket") or {}).get("name") if isinstance(first, dict) else None
            records.append(Record(value=json.dumps(doc).encode(), key=key))
    with ctx.stack() as stack:
        stack.bus.produce(raw_topic("s3"), records)
        stats = catch_up(stack, quiet=as_json)
    data = {"notifications": len(records), "processed": stats.records, "events": stats.events,
            "dead_lettered": stats.dead_lettered}
    if as_json:
        return _emit_json(data)
    out.print(f"{len(records)} notification(s) published; {stats.events} event(s), "
              f"{stats.dead_lettered} dead-lettered", highlight=False)


@cli.command("tail-delta")
@click.argument("tables", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@json_option
@click.pass_obj
def tail_delta(ctx: Ctx, tables: tuple[Path, ...], as_json: bool) -> None:
    """Publish new commits of Delta tables (their _delta_log) as table-commit events."""
    from provenance.connectors.delta import DeltaLogTailer

    with ctx.stack() as stack:
        result = DeltaLogTailer(stack.bus, stack.settings.home / "delta_state.json").tail(tables)
        catch_up(stack, quiet=as_json)
    data = {"tables": result.tables, "commits": result.commits, "events": result.events, "missing": result.missing}
    if as_json:
        return _emit_json(data)
    out.print(f"{result.commits} new commit(s) from {result.tables} table(s), {result.events} event(s)",
              highlight=False)
    for m in result.missing:
        err.print(f"[yellow]warning:[/yellow] {m}", highlight=False)
    if result.missing and not result.tables:
        raise SystemExit(1)


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="New or empty directory to build the pipeline in (default: a new temporary directory); "
                   "its state goes to DIR/.provenance unless --home is given.")
@click.option("--capture", type=click.Choice(["auto", "fanotify", "audit-hook"]), default="auto", show_default=True,
              help="Capture mode of every stage.")
@click.option("--replay", is_flag=True, help="Replay the bundled hand-written example history instead.")
@click.pass_obj
def demo(ctx: Ctx, directory: Path | None, capture: str, replay: bool) -> None:
    """Build a loan-approval ML pipeline, run every stage under `provenance run`, and print what was
    captured: the audit of the deployed model, a GDPR report, a footprint, an impact and a
    reproducibility note."""
    if replay:
        from provenance.demo.history import run_history_demo

        run_history_demo(directory, out)
        return
    from provenance.demo import run_pipeline_demo

    def settings_for(default_home: Path) -> Settings:
        return ctx.settings if ctx.home else load_settings(ctx.config, home=default_home)

    run_pipeline_demo(directory, out, capture, settings_for)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except ConfigError as exc:
        _fail(str(exc), 2)
    except NotFoundError as exc:
        _fail(str(exc), 1)
    except QueryError as exc:
        _fail(str(exc), 2)
    except ProvenanceError as exc:
        _fail(str(exc), 1)


if __name__ == "__main__":
    main()
