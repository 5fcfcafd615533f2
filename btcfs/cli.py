"""The root `btcfs` command: each package contributes its own command group."""

from __future__ import annotations

import logging
import sys

import click

from api.cli import serve_command
from core import __version__
from core.errors import BtcfsError
from core.redact import RedactingFilter
from ingest.cli import ingest_group, lake_group
from ml.cli import backtest_command, evaluate_command, models_group, train_command
from pipeline.cli import publish_command, run_command, update_command
from replay.cli import replay_group
from warehouse.features_cli import features_group
from warehouse.runs import qa_command, warehouse_group


class RootGroup(click.Group):
    """The one place a known failure becomes a CLI message: a BtcfsError (any package's)
    or an OSError (a full disk, a read-only folder) prints as one `Error:` line, exit 1;
    anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BtcfsError as exc:
            raise click.ClickException(exc.explain()) from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="btcfs")
def cli() -> None:
    """btcfs: a SQL feature store for BTCUSDT forecasting.

    Example: btcfs ingest all && dbt build && btcfs lake status
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # Secrets are masked on the way out, whichever logger a line came from.
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


cli.add_command(ingest_group)
cli.add_command(replay_group)
cli.add_command(lake_group)
cli.add_command(qa_command)
cli.add_command(warehouse_group)
cli.add_command(features_group)
cli.add_command(train_command)
cli.add_command(evaluate_command)
cli.add_command(backtest_command)
cli.add_command(models_group)
cli.add_command(publish_command)
cli.add_command(run_command)
cli.add_command(update_command)
cli.add_command(serve_command)


def main() -> None:
    cli()
