"""Command groups of the ingest package: `ingest` and `lake`."""

from __future__ import annotations

import click


@click.group("ingest")
def ingest_group() -> None:
    """Land vendor data in the lake.

    Example: btcfs ingest binance --dataset spot-klines --interval 1m --start 2025-05-19
    """


@click.group("lake")
def lake_group() -> None:
    """Inspect the Parquet lake.

    Example: btcfs lake status --json
    """


def _attach() -> None:
    from ingest.commands import ingest_all, ingest_binance, ingest_vendor, lake_status_command
    from ingest.verify import lake_migrate_command, lake_verify_command

    ingest_group.add_command(ingest_binance)
    ingest_group.add_command(ingest_vendor)
    ingest_group.add_command(ingest_all)
    lake_group.add_command(lake_status_command)
    lake_group.add_command(lake_verify_command)
    lake_group.add_command(lake_migrate_command)


_attach()
