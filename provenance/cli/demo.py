"""`provenance demo`: the loan pipeline built and captured, or the bundled history replayed."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provenance.cli.common import Ctx, out
from provenance.config import Settings, load_settings


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="New or empty directory to build the pipeline in (default: a new temporary directory).")
@click.option("--capture", type=click.Choice(["auto", "fanotify", "audit-hook"]), default="auto", show_default=True,
              help="Capture mode of every stage.")
@click.option("--replay", is_flag=True, help="Replay the bundled hand-written example history instead of building "
              "and running the pipeline (no --dir then).")
@click.pass_obj
def demo(ctx: Ctx, directory: Path | None, capture: str, replay: bool) -> None:
    """Build a loan-approval ML pipeline, run every stage under `provenance run`, and print what was
    captured: the audit of the deployed model, a GDPR report, a footprint, an impact and a
    reproducibility note.

    The state goes to the home (--home or PROVENANCE_HOME) when one is given, else to DIR/.provenance
    (a new temporary directory with --replay)."""
    explicit = ctx.home is not None or bool(os.environ.get("PROVENANCE_HOME"))
    if replay:
        if directory is not None:
            raise click.UsageError("--replay builds nothing: give the state directory with --home, not --dir")
        from provenance.demo.history import run_history_demo

        run_history_demo(ctx.settings if explicit else None, out)
        return
    from provenance.demo import run_pipeline_demo

    def settings_for(default_home: Path) -> Settings:
        return ctx.settings if explicit else load_settings(ctx.config, home=default_home)

    run_pipeline_demo(directory, out, capture, settings_for)


COMMANDS = [demo]
