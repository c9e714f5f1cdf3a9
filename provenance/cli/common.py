"""What every command shares: the consoles, the context, the options, output and progress helpers.

Output is for people on a terminal and for scripts in a pipe alike: tables never cut an id or a URI
(those columns do not wrap; others fold), the width follows the terminal or ``COLUMNS``, Markdown is
printed as plain text when piped, and long work shows progress either way (a bar on a terminal,
a line every few seconds otherwise). Every query has ``--json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import BaseModel
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from provenance.config import Settings, load_settings
from provenance.events.model import ms_to_iso, to_ms
from provenance.graph.model import NEVER
from provenance.processor.runner import ProcessStats
from provenance.service import Service


def _console(stream: Any, stderr: bool = False) -> Console:
    width = None
    if not stream.isatty():  # piped: the caller's COLUMNS, else wide enough not to fold most lines
        try:
            width = int(os.environ.get("COLUMNS", "")) or None
        except ValueError:
            width = None
        width = width or 160
    # markup off: names, paths and messages from events are printed as they are, never as Rich markup
    return Console(stderr=stderr, width=width, soft_wrap=True, highlight=False, markup=False)


out = _console(sys.stdout)
err = _console(sys.stderr, stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(Text.assemble(("error:", "red"), " ", message))
    raise SystemExit(code)


class Ctx:
    """The global options, and the service built from them on first use."""

    def __init__(self, home: Path | None, config: Path | None) -> None:
        self.home = home
        self.config = config
        self._settings: Settings | None = None
        self._service: Service | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, home=self.home)
        return self._settings

    def service(self) -> Service:
        if self._service is None:
            self._service = Service(self.settings)
            click.get_current_context().call_on_close(self._service.close)
        return self._service


# -- options ------------------------------------------------------------------------------------------
class AsOf(click.ParamType):  # type: ignore[type-arg,unused-ignore]  # generic only in newer click
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return to_ms(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 time (2026-03-02T10:00:00Z) or epoch milliseconds", param, ctx)


def as_of_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--as-of", type=AsOf(), default=None,
                        help="Answer as the graph stood at this time (ISO-8601 or epoch ms).")(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(f)


def limits_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Skip this many items.")(f)
    return click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True,
                        help="Items per list.")(f)


def depth_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--time-budget", type=click.FloatRange(min=0.001), default=5.0, show_default=True,
                     help="Seconds the traversal may take before it answers partially.")(f)
    return click.option("--depth", type=click.IntRange(min=1, max=100), default=10, show_default=True,
                        help="Pipeline stages (runs) to traverse.")(f)


def never(as_of: int | None) -> int:
    return NEVER if as_of is None else as_of


def local_ref(ref: str) -> str:
    """An artifact named on the command line: a URI, an absolute path, or a path relative to the
    working directory (as every file tool takes it); ``@version`` stays on the end."""
    text = ref.strip()
    if not text or "://" in text or text.startswith("/"):
        return text
    base, at, tail = text.rpartition("@")
    path, version = (base, f"@{tail}") if at and tail and "/" not in tail else (text, "")
    return os.path.abspath(path) + version


# -- output -------------------------------------------------------------------------------------------
def emit_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def when(ms: Any) -> str:
    return (ms_to_iso(ms) or "") if isinstance(ms, int) and not isinstance(ms, bool) else ""


def table(title: str, columns: list[str], rows: list[list[str]], ids: tuple[str, ...] = ()) -> Table:
    """A table whose ``ids`` columns (app ids, URIs, commits) are never cut or wrapped."""
    t = Table(title=title, title_justify="left")
    for c in columns:
        if c in ids:
            t.add_column(c, no_wrap=True, overflow="ignore", min_width=max([len(c), *(len(r[columns.index(c)])
                                                                                      for r in rows)]))
        else:
            t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def markdown(text: str) -> None:
    """A report: rendered on a terminal, as its Markdown text in a pipe (copyable, nothing cut)."""
    if sys.stdout.isatty():
        out.print(Markdown(text))
    else:
        click.echo(text.rstrip("\n"))


def partial_note(totals: dict[str, int], shown: dict[str, int], partial: bool = False,
                 reason: str | None = None, redacted: int = 0) -> None:
    if partial:
        err.print(f"partial result: {reason}")
    for name, total in totals.items():
        if shown.get(name, total) < total:
            err.print(f"{name}: showing {shown[name]} of {total} (use --offset/--limit)")
    if redacted:
        err.print(f"{redacted} item(s) hidden: they belong to projects you are not a member of")


@contextmanager
def progress(label: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """``advance(done)``: a bar on a terminal; in a pipe, a line on stderr every few seconds."""
    if quiet or total <= 0:
        yield lambda done: None
        return
    if sys.stderr.isatty():
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda done: bar.update(task, completed=done)
        return
    last = [time.monotonic()]

    def advance(done: int) -> None:
        if time.monotonic() - last[0] >= 3 or done >= total:
            last[0] = time.monotonic()
            err.print(f"{label}: {done}/{total} ({100 * done // total}%)")

    yield advance


def catch_up(svc: Service, quiet: bool = False) -> ProcessStats:
    """Apply what the log holds before answering, with progress when there is much; says what went to
    the dead-letter topic."""
    stack = svc.stack
    pending = 0 if stack.bus.group_managed else stack.processor.pending()
    big = pending >= 2 * stack.processor.batch_size
    with progress("processing events", pending, quiet or not big) as advance:
        stats = svc.catch_up(lambda done, _total: advance(done))
    if stats.dead_lettered:
        err.print(Text.assemble((f"{stats.dead_lettered} record(s) went to the dead-letter topic", "yellow"),
                                f" (see `provenance dead-letters`); first: {stats.errors[0]}"))
    return stats
