"""`provenance` command line. Every query takes ``--as-of`` and ``--json``; usage errors exit 2.

A query first catches the processor up (with progress), so it answers with every event that was
captured before it started. The commands are grouped by area: `queries`, `operations`, `tokens`,
`sources` (connectors) and `demo`; all of them go through `provenance.service`.
"""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli import demo, operations, queries, sources, tokens
from provenance.cli.common import Ctx, fail
from provenance.errors import ConfigError, NotFoundError, ProvenanceError, QueryError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="State directory (env PROVENANCE_HOME, default ~/.provenance).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML config file (env PROVENANCE_CONFIG, default HOME/config.yaml).")
@click.pass_context
def cli(click_ctx: click.Context, home: Path | None, config: Path | None) -> None:
    """Implicit provenance for ML pipelines: lineage from change-data-capture, with time travel."""
    click_ctx.obj = Ctx(home, config)


for module in (queries, operations, tokens, sources, demo):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except ConfigError as exc:
        fail(str(exc), 2)
    except NotFoundError as exc:
        fail(str(exc), 1)
    except QueryError as exc:
        fail(str(exc), 2)
    except ProvenanceError as exc:
        fail(str(exc), 1)


__all__ = ["cli", "main"]
