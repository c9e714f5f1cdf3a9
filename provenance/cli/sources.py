"""Capturing sources: run (a job under the launcher), cdc (databases), tail-delta, tail-hdfs-audit, s3-events.

Every connector is a `provenance.connectors.source.Source`, wired here the same way: built from the
settings, polled once (or run until SIGTERM / Ctrl-C with ``--follow``), then the log is applied.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click

from provenance.cli.common import Ctx, catch_up, emit_json, err, fail, json_option, out
from provenance.connectors.source import PollingSource
from provenance.errors import ProvenanceError


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _drive(source: PollingSource, follow: bool) -> int:
    """One pass, or (``follow``) passes until SIGTERM or Ctrl-C."""
    if not follow:
        return source.poll()
    return source.run(_stop_on_signals())


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--name", help="Pipeline stage this run belongs to (default: the script it runs).")
@click.option("--project", help="Project the run belongs to.")
@click.option("--capture", type=click.Choice(["auto", "fanotify", "audit-hook", "off"]), default="auto",
              show_default=True, help="How file I/O is captured: fanotify (any language, needs root), audit-hook "
              "(Python jobs, no root); auto picks fanotify where it is permitted.")
@click.option("--quiet", is_flag=True, help="Do not echo the job's output (it still goes to the log).")
@click.option("--grace", type=click.FloatRange(0, 86_400), default=None, metavar="SECONDS",
              help="How long to keep capturing the job's processes that still run after it ended (detached "
              "children); those still running then are reported as a capture gap. [default: capture.grace_s, 5]")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def run(ctx: Ctx, name: str | None, project: str | None, capture: str, quiet: bool, grace: float | None,
        command: tuple[str, ...]) -> None:
    """Run COMMAND as a tracked application: provenance run [OPTIONS] -- CMD [ARGS]..."""
    from provenance.connectors.launcher import Launcher

    stack = ctx.service().stack
    capture_cfg = ctx.settings.capture
    try:
        result = Launcher(stack.bus, ctx.settings.home, echo=not quiet, noise=capture_cfg.noise,
                          ignore=capture_cfg.ignore, grace_s=capture_cfg.grace_s if grace is None else grace).run(
            list(command), name=name, project=project, capture=capture)
    except OSError as exc:
        fail(f"cannot start {command[0]!r}: {exc}", 127)
    # no catch-up here: the job's events are on the log, and every query applies them first
    note = f"; {len(result.gaps)} capture gap(s)" if result.gaps else ""
    err.print(f"provenance: {result.app_id} {result.state} (exit {result.exit_code}), "
              f"{result.events} file events captured by {result.capture}{note}")
    raise SystemExit(result.exit_code)


@click.command()
@click.option("--source", "only", multiple=True, help="Only this configured source (cdc.sources[].name).")
@click.pass_obj
def cdc(ctx: Ctx, only: tuple[str, ...]) -> None:
    """Capture the configured metadata databases with the Debezium engine, onto the bus.

    Every change goes to prov.raw.debezium; the processor maps it with the table mappings
    (cdc.mapping_files, then the defaults). Runs until SIGTERM or Ctrl-C; the engine's source offsets
    live in HOME/cdc, so a restart goes on where it stopped.
    """
    from provenance.connectors.cdc import (
        CdcNormalizer,
        DebeziumCapture,
        DebeziumSource,
        record_unmapped,
        unmapped_tables,
    )

    settings = ctx.settings
    sources = [s for s in settings.cdc.sources if not only or s.name in only]
    unknown = set(only) - {s.name for s in settings.cdc.sources}
    if unknown:
        raise click.UsageError(f"no cdc source named {', '.join(sorted(unknown))} in the configuration")
    if not sources:
        raise click.UsageError("no cdc.sources configured (see README, 'Change-data-capture')")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    mappings = CdcNormalizer(settings.cdc.mapping_files).mappings
    unmapped = list(dict.fromkeys(unmapped_tables([t for s in sources for t in s.tables], mappings)))
    for table in unmapped:  # one warning a table, here; the processor ignores their changes
        err.print(f"warning: no table mapping for {table}: its changes are ignored (add one to cdc.mapping_files)")
    record_unmapped(settings.home / "cdc", unmapped)
    stack = ctx.service().stack
    stop = _stop_on_signals()
    engines = [DebeziumSource(**{**s.model_dump(), "password": s.password.get_secret_value()}) for s in sources]
    capture = DebeziumCapture(stack.bus, engines, settings.home / "cdc")
    err.print(f"provenance cdc: {capture.name} → prov.raw.debezium")
    try:
        published = capture.run(stop)
    except ProvenanceError as exc:
        fail(str(exc))
    err.print(f"stopped: {published} change(s) published")


@click.command("tail-hdfs-audit")
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fs", "fs", default="hdfs://", show_default=True,
              help="URI prefix of the file system the log is of, e.g. hdfs://namenode:8020.")
@click.option("--follow", is_flag=True, help="Keep reading as the log grows (until Ctrl-C or SIGTERM).")
@json_option
@click.pass_obj
def tail_hdfs_audit(ctx: Ctx, logs: tuple[Path, ...], fs: str, follow: bool, as_json: bool) -> None:
    """Publish new lines of HDFS NameNode audit logs (hdfs-audit.log) as file events."""
    from provenance.connectors.hdfs import HdfsAuditSource

    if "://" not in fs:
        raise click.BadParameter(f"{fs!r} is not a URI prefix (like hdfs://namenode:8020)", param_hint="--fs")
    svc = ctx.service()
    source = HdfsAuditSource(svc.stack.bus, ctx.settings.home / "hdfs_audit_state.json", list(logs), fs)
    _drive(source, follow)
    stats = catch_up(svc, quiet=as_json)
    total = source.total
    data = {"lines": total.lines, "published": total.published, "skipped": total.skipped,
            "processed": stats.records, "dead_lettered": stats.dead_lettered}
    if as_json:
        return emit_json(data)
    out.print(f"{total.published} audit record(s) published from {total.lines} new line(s) "
              f"({total.skipped} not audit records)")


@click.command("s3-events")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@json_option
@click.pass_obj
def s3_events(ctx: Ctx, files: tuple[Path, ...], as_json: bool) -> None:
    """Publish saved S3 / MinIO bucket notifications (JSON documents or JSON lines)."""
    from provenance.connectors.s3 import S3NotificationFiles

    texts = []
    for path in files:
        try:
            texts.append((str(path), sys.stdin.read() if str(path) == "-" else path.read_text()))
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    svc = ctx.service()
    source = S3NotificationFiles(svc.stack.bus, texts)
    try:
        published = source.poll()
    except ProvenanceError as exc:
        fail(str(exc), 2)
    stats = catch_up(svc, quiet=as_json)
    data = {"notifications": published, "processed": stats.records, "events": stats.events,
            "dead_lettered": stats.dead_lettered}
    if as_json:
        return emit_json(data)
    out.print(f"{published} notification(s) published; {stats.events} event(s), {stats.dead_lettered} dead-lettered")


@click.command("tail-delta")
@click.argument("tables", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--follow", is_flag=True, help="Keep publishing new commits (until Ctrl-C or SIGTERM).")
@json_option
@click.pass_obj
def tail_delta(ctx: Ctx, tables: tuple[Path, ...], follow: bool, as_json: bool) -> None:
    """Publish new commits of Delta tables (their _delta_log) as table-commit events."""
    from provenance.connectors.delta import DeltaTableSource

    svc = ctx.service()
    source = DeltaTableSource(svc.stack.bus, ctx.settings.home / "delta_state.json", tables)
    _drive(source, follow)
    catch_up(svc, quiet=as_json)
    result = source.last
    data = {"tables": result.tables, "commits": result.commits, "events": result.events, "missing": result.missing}
    if as_json:
        return emit_json(data)
    out.print(f"{result.commits} new commit(s) from {result.tables} table(s), {result.events} event(s)")
    for m in result.missing:
        err.print(f"warning: {m}")
    if result.missing and not result.tables:
        raise SystemExit(1)


COMMANDS = [run, cdc, tail_hdfs_audit, s3_events, tail_delta]
