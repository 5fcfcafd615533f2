"""The root `btcfs` command: each package contributes its own command group."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from core import __version__
from core.errors import BtcfsError
from core.redact import RedactingFilter

#: Each command and where it lives ("module:attribute"), imported when it runs: `btcfs update`
#: or `btcfs qa` need not import the API, the trainer and the replay server first.
COMMANDS = {
    "ingest": "ingest.cli:ingest_group",
    "replay": "replay.cli:replay_group",
    "lake": "ingest.cli:lake_group",
    "qa": "warehouse.runs:qa_command",
    "warehouse": "warehouse.runs:warehouse_group",
    "features": "warehouse.features_cli:features_group",
    "train": "ml.cli:train_command",
    "evaluate": "ml.cli:evaluate_command",
    "backtest": "ml.cli:backtest_command",
    "models": "ml.cli:models_group",
    "publish": "pipeline.cli:publish_command",
    "run": "pipeline.cli:run_command",
    "update": "pipeline.cli:update_command",
    "live": "pipeline.live_cli:live_group",
    "serve": "api.cli:serve_command",
}


class RootGroup(click.Group):
    """The one place a known failure becomes a CLI message: a BtcfsError (any package's)
    or an OSError (a full disk, a read-only folder) prints as one `Error:` line, exit 1;
    anything else is a bug and keeps its traceback. Commands load when they run (COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

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
    """btcfs: a SQL feature store for crypto forecasting (BTCUSDT, ETHUSDT).

    Example: btcfs ingest all && dbt build && btcfs lake status
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # Secrets are masked on the way out, whichever logger a line came from.
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def main() -> None:
    cli()
