"""Running the service: ingest, process, serve, replay, status, dead-letters, clear."""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import click

from provenance.access import LOCAL_ADMIN as ME
from provenance.bus.port import offset_key, raw_topic
from provenance.cli.common import Ctx, catch_up, emit_json, err, fail, json_option, out, progress, table, when
from provenance.errors import BusError, StoreError
from provenance.formats import FORMATS
from provenance.processor.runner import ProcessStats
from provenance.service import Service
from provenance.stack import ProcessorHealth, run_processor

_INGEST_BATCH = 10_000


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--format", "fmt", default="canonical", show_default=True,
              help=f"Raw format of the lines: {', '.join(sorted(FORMATS))}.")
@click.option("--no-process", is_flag=True, help="Only append to the log; the processor applies them later.")
@json_option
@click.pass_obj
def ingest(ctx: Ctx, files: tuple[Path, ...], fmt: str, no_process: bool, as_json: bool) -> None:
    """Append raw events (JSON lines) to the log, then process them."""
    if fmt not in FORMATS:
        raise click.BadParameter(f"unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})",
                                 param_hint="--format")
    streams = []
    for path in files:
        if str(path) != "-" and not path.is_file():
            fail(f"cannot read {path}: no such file", 2)
        streams.append(path)
    svc = ctx.service()
    appended = 0
    for path in streams:
        try:
            stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}", 2)
        size = 0 if str(path) == "-" else path.stat().st_size
        with stream, progress(f"appending {path.name if str(path) != '-' else 'stdin'} (bytes)", size,
                              quiet=as_json or size < 20_000_000) as advance:
            batch: list[bytes] = []
            read = 0
            for line in stream:
                read += len(line)
                line = line.strip()
                if not line:
                    continue
                batch.append(line)  # good or bad, every line goes on the log: the processor dead-letters bad ones
                if len(batch) >= _INGEST_BATCH:
                    appended += _append(svc, fmt, batch, appended)
                    batch = []
                    advance(read)
            appended += _append(svc, fmt, batch, appended)
    stats = ProcessStats() if no_process else catch_up(svc, quiet=as_json)
    topic = raw_topic(fmt)
    result = {"appended": appended, "topic": topic, "processed": stats.records, "events": stats.events,
              "dead_lettered": stats.dead_lettered}
    if as_json:
        emit_json(result)
    elif svc.stack.bus.group_managed:
        out.print(f"appended {appended} record(s) to {topic}; the processors of group "
                  f"{svc.stack.processor.group!r} apply them")
    else:
        out.print(f"appended {appended} record(s) to {topic}; processed {stats.records}, "
                  f"dead-lettered {stats.dead_lettered}")


def _append(svc: Service, fmt: str, batch: list[bytes], before: int) -> int:
    if not batch:
        return 0
    try:
        return svc.ingest(ME, fmt, batch).accepted
    except (BusError, StoreError) as exc:  # the disk is full, or the log cannot be written: say how far it got
        fail(f"{exc}; {before} record(s) were appended before this, the next {len(batch)} were not", 1)


@click.command()
@click.option("--until-caught-up", is_flag=True, help="Stop once everything on the log is applied.")
@click.pass_obj
def process(ctx: Ctx, until_caught_up: bool) -> None:
    """Run a processor: apply the raw topics to the store (and the index) as records arrive.

    On Kafka, every processor started with the same configuration joins one consumer group, and the
    group splits the partitions between them. SIGTERM or Ctrl-C finishes the batch in hand and stops.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    s = ctx.settings
    err.print(f"provenance process: {s.bus.type} bus → {s.store.type} store (search: {s.search.type})")
    total = ProcessStats()
    last = [time.monotonic()]

    def report(stats: ProcessStats) -> None:
        total.add(stats)
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            err.print(f"applied {total.records} record(s), {total.events} event(s), "
                      f"{total.dead_lettered} dead-lettered")

    run_processor(s, stop, until_caught_up=until_caught_up, on_batch=report)
    err.print(f"stopped: applied {total.records} record(s), {total.dead_lettered} dead-lettered")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8750, show_default=True)
@click.option("--no-auth", is_flag=True,
              help="No tokens: everyone who can reach the port is an admin. Only for one user on loopback.")
@click.option("--no-process", is_flag=True,
              help="Serve only; processors run elsewhere (`provenance process`, the production stack).")
@click.option("--public-url", help="The URL users reach the server at (behind a proxy): its host is allowed, "
              "and cookies are Secure when it is https.")
@click.pass_obj
def serve(ctx: Ctx, host: str, port: int, no_auth: bool, no_process: bool, public_url: str | None) -> None:
    """The processor, the HTTP API and the web UI in one process."""
    import uvicorn

    from provenance.api.app import create_app

    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        raise click.UsageError("--no-auth is only allowed on a loopback --host")
    app = create_app(ctx.settings, auth=not no_auth, run_processor=not no_process, public_url=public_url,
                     bind=(host, port))
    err.print(f"provenance serve on http://{host}:{port}/ (API docs at /docs; "
              f"{'no auth' if no_auth else 'tokens required: provenance token create'}); state in "
              f"{ctx.settings.home}")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)


@click.command()
@click.option("--from-offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.pass_obj
def replay(ctx: Ctx, from_offset: int) -> None:
    """Re-apply the raw topics from an offset (idempotent: rebuilds what the store holds).

    On Kafka this rewinds the store's offsets, where processors start from when they get partitions:
    restart the processors afterwards."""
    from provenance.bus.embedded import EmbeddedLog

    svc = ctx.service()
    stack = svc.stack
    proc = stack.processor
    topics = stack.bus.raw_topics()
    if isinstance(stack.bus, EmbeddedLog):
        for topic in topics:
            stack.bus.reset_group(proc.group, topic, from_offset)
    stack.store.record_offsets(proc.group, {offset_key(t, p): from_offset for t in topics
                                            for p in stack.bus.end_offsets(t)})
    stats = catch_up(svc)
    if stack.bus.group_managed:
        out.print(f"the store's offsets are at {from_offset} on {len(topics)} topic(s); restart the processors")
    else:
        out.print(f"replayed {stats.records} record(s)")


@click.command()
@json_option
@click.pass_obj
def status(ctx: Ctx, as_json: bool) -> None:
    """Where the state lives, what the log and store hold, and the processor's lag."""
    stack = ctx.service().stack
    topics = {t: sum(stack.bus.end_offsets(t).values()) for t in stack.bus.topics()}
    health = ProcessorHealth(ctx.settings.home).read()
    from provenance.connectors.cdc import recorded_unmapped

    unmapped = recorded_unmapped(ctx.settings.home / "cdc")
    r = {"home": str(ctx.settings.home), "topics": topics, "pending": stack.processor.pending(),
         "store": stack.store.stats(), "processor": health or {"state": "ok"},
         "cdc": {"unmapped_tables": len(unmapped), "unmapped": unmapped}}
    if as_json:
        return emit_json(r)
    out.print(f"home: {r['home']}")
    out.print(f"records waiting to be applied: {r['pending']}")
    if unmapped:
        out.print(f"cdc: {len(unmapped)} captured table(s) without a mapping, their changes ignored: "
                  f"{', '.join(unmapped)}")
    if health:
        out.print(f"background processor: {health.get('state')} since {when(health.get('at'))}: {health.get('error')}")
    out.print(table("Log topics", ["topic", "records"], [[t, str(n)] for t, n in sorted(topics.items())],
                    ids=("topic",)))
    out.print(table("Lineage store", ["what", "count"], [[k, str(v)] for k, v in sorted(stack.store.stats().items())]))


@click.command("dead-letters")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@click.pass_obj
def dead_letters(ctx: Ctx, limit: int, as_json: bool) -> None:
    """Records the processor could not use, with the reason and where they came from."""
    svc = ctx.service()
    catch_up(svc, quiet=as_json)
    items = svc.dead_letters(limit)
    if as_json:
        return emit_json({"dead_letters": items})
    rows = [[i.get("source_topic", ""), i.get("offset", ""), i.get("error", ""), i["value"][:120]] for i in items]
    out.print(table(f"Dead letters ({len(items)})", ["source", "offset", "error", "record"], rows))


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.option("--keep-tokens", is_flag=True, help="Keep the API tokens (access.db).")
@click.pass_obj
def clear(ctx: Ctx, yes: bool, keep_tokens: bool) -> None:
    """Delete everything in the home: the log, the lineage store, the search index, logs and state."""
    home = ctx.settings.home
    if not home.exists():
        out.print(f"{home} does not exist: nothing to clear")
        return
    if not yes:
        click.confirm(f"Delete the log, the store and the index in {home}?", abort=True)
    kept = {"access.db", "access.db-wal", "access.db-shm"} if keep_tokens else set()
    for child in home.iterdir():
        if child.name in kept or child.name == "config.yaml":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    out.print(f"cleared {home}" + (" (tokens and config.yaml kept)" if keep_tokens else " (config.yaml kept)"))


@click.command()
@json_option
@click.pass_obj
def check(ctx: Ctx, as_json: bool) -> None:
    """Verify the store: every reference names something, the file is sound, and the store has not
    applied more of the log than the log holds. Exits 1 when something is wrong (see `repair`)."""
    stack = ctx.service().stack
    problems = list(stack.store.check())
    applied = stack.store.applied_offsets(stack.processor.group)
    for topic in stack.bus.raw_topics():
        for partition, end in stack.bus.end_offsets(topic).items():
            done = applied.get(offset_key(topic, partition), 0)
            if done > end:
                problems.append(f"{topic}[{partition}]: the store applied up to {done}, the log holds {end}")
    result = {"ok": not problems, "problems": problems, "pending": stack.processor.pending()}
    if as_json:
        emit_json(result)
    elif problems:
        for p in problems:
            err.print(f"problem: {p}")
        err.print("the store does not match what it should hold: `provenance repair` rebuilds it from the log")
    else:
        out.print(f"the store is sound ({stack.processor.pending()} record(s) on the log still to apply)")
    if problems:
        raise SystemExit(1)


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.pass_obj
def repair(ctx: Ctx, yes: bool) -> None:
    """Rebuild the embedded store (and the search index) from the log: the store file is set aside, a new
    one is filled by applying every record again. The log is the truth; nothing on it is lost."""
    settings = ctx.settings
    if settings.store.type != "embedded":
        fail("repair rebuilds the embedded store; for another store, empty its database and run `provenance "
             "replay`", 2)
    path = settings.store_path
    if not yes:
        click.confirm(f"Set {path} aside and rebuild the store from the log?", abort=True)
    if path.exists():
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{path}{suffix}")
            if part.exists():
                part.replace(Path(f"{aside}{suffix}"))
        err.print(f"the old store is at {aside}")
    if settings.search.type == "embedded" and settings.search_path.exists():
        shutil.rmtree(settings.search_path)  # rebuilt from the new store
    svc = ctx.service()
    stack = svc.stack
    from provenance.bus.embedded import EmbeddedLog

    if isinstance(stack.bus, EmbeddedLog):
        for topic in stack.bus.raw_topics():
            stack.bus.reset_group(stack.processor.group, topic, 0)
    stats = catch_up(svc)
    problems = stack.store.check()
    out.print(f"rebuilt the store from {stats.records} record(s) ({stats.dead_lettered} dead-lettered); "
              f"{'sound' if not problems else 'still wrong: ' + '; '.join(problems)}")
    if problems:
        raise SystemExit(1)


COMMANDS = [ingest, process, serve, replay, status, dead_letters, clear, check, repair]
