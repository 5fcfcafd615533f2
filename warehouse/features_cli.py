"""`btcfs features list|show|get|verify`: the feature catalog (warehouse.catalog) and
point-in-time retrieval (warehouse.retrieval) from the command line.

`list` reads the declaration from dbt's manifest (no warehouse needed); `show NAME` adds the
coverage the built warehouse holds: per symbol, the rows, the share holding a value and the
first bar with one. `get` answers a file of events with the feature rows available at each
event's time, with a manifest beside the output; `verify` checks such a file again.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

import click
import duckdb
from tqdm import tqdm

from core.settings import DataPaths
from lake.store import lake_digest
from warehouse.catalog import (
    FEATURE_MODELS,
    FEATURE_SETS,
    CatalogError,
    Coverage,
    FeatureColumn,
    coverage,
    coverage_query,
    load_catalog,
)
from warehouse.readers import BigQueryMarts, ReadError, open_read_only
from warehouse.retrieval import (
    INTERVALS,
    file_format,
    read_events_file,
    retrieve_bigquery,
    retrieve_duckdb,
    verify,
    write_manifest,
    write_result,
)

_model_option = click.option(
    "--model",
    type=click.Choice(FEATURE_MODELS),
    default="features_5m",
    show_default=True,
    help="The feature mart.",
)
_target_option = click.option(
    "--target-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="dbt's target folder holding manifest.json (default: $DBT_TARGET_PATH or ./target).",
)


@click.group("features")
def features_group() -> None:
    """The feature catalog: every feature's set, role, unit, inputs, point-in-time rule,
    warm-up and null policy, as the marts' YAML declares them."""


@features_group.command("list")
@click.option("--set", "feature_set", type=click.Choice(FEATURE_SETS), help="Only this set.")
@_model_option
@_target_option
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per column.")
def list_command(
    feature_set: str | None, model: str, target_path: Path | None, as_json: bool
) -> None:
    """Every column of a feature mart with its declaration.

    Example: btcfs features list --set spot
    """
    columns = [
        c
        for c in load_catalog(target_path).columns(model)
        if feature_set is None or c.feature_set == feature_set
    ]
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in columns], indent=2))
        return
    header = f"{'name':<32} {'set':<12} {'role':<10} {'input':<5} {'unit':<34} warm-up"
    click.echo(header)
    click.echo("-" * len(header))
    for c in columns:
        click.echo(
            f"{c.name:<32} {c.feature_set or '-':<12} {c.role:<10} "
            f"{'yes' if c.model_input else 'no':<5} {c.unit[:34]:<34} {c.warm_up or '-'}"
        )
    sets = sorted({c.feature_set for c in columns if c.feature_set})
    inputs = sum(c.model_input for c in columns)
    click.echo(f"{len(columns)} columns of {model} ({inputs} model inputs; sets {', '.join(sets)})")


def _column(name: str, model: str, target_path: Path | None) -> FeatureColumn:
    catalog = load_catalog(target_path)
    names = [c.name for c in catalog.columns(model)]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CatalogError(f"no column {name!r} in {model}{hint} (btcfs features list)")
    return catalog.column(name, model)


def _coverage(warehouse: Path, model: str, name: str) -> list[Coverage] | str:
    """The column's coverage in the warehouse, or why there is none."""
    if not warehouse.is_file():
        return f"no warehouse at {warehouse}: run `dbt build` for the coverage"
    try:
        con = open_read_only(warehouse)
    except ReadError as exc:
        return str(exc)
    try:
        cursor = con.execute(coverage_query(model, [name]))
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except duckdb.CatalogException:
        return f"{warehouse} has no {model}: run `dbt build`"
    finally:
        con.close()
    return coverage(rows, [name])[name]


@features_group.command("show")
@click.argument("name")
@_model_option
@_target_option
@click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="DuckDB file for the coverage (default: $BTCFS_DATA_DIR/warehouse/build.duckdb).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show_command(
    name: str, model: str, target_path: Path | None, warehouse: Path | None, as_json: bool
) -> None:
    """One column's declaration, and its coverage per symbol in the warehouse.

    Example: btcfs features show vol_z
    """
    column = _column(name, model, target_path)
    found = _coverage(warehouse or DataPaths.from_env().build_db, model, name)
    if as_json:
        payload: dict[str, Any] = column.to_dict()
        if isinstance(found, str):
            payload["coverage"], payload["coverage_note"] = None, found
        else:
            payload["coverage"] = [c.to_dict() for c in found]
        click.echo(json.dumps(payload, indent=2))
        return
    for label, value in (
        ("name", column.name),
        ("model", column.model),
        ("set", column.feature_set or "-"),
        ("role", column.role),
        ("model input", "yes" if column.model_input else "no"),
        ("unit", column.unit or "-"),
        ("inputs", ", ".join(column.inputs) or "-"),
        ("point in time", column.point_in_time or "-"),
        ("warm-up", column.warm_up or "-"),
        ("nulls", column.nulls or "-"),
        ("formula", column.description),
    ):
        click.echo(f"{label + ':':<15} {value}")
    if isinstance(found, str):
        click.echo(f"{'coverage:':<15} {found}")
        return
    for c in found:
        first = c.first_at.isoformat() if c.first_at is not None else "never"
        click.echo(
            f"{'coverage:':<15} {c.symbol}: {c.non_null:,} of {c.rows:,} rows "
            f"({c.share:.1%}), first {first}"
        )


# ---------------------------------------------------------------------------- retrieval

#: Inputs this large get a progress bar (on a terminal), retrieved in slices of CHUNK_ROWS.
PROGRESS_ROWS = 200_000
CHUNK_ROWS = 100_000


def _warehouse_option(help_text: str) -> Any:
    return click.option(
        "--warehouse",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )


def _bq_options(command: Any) -> Any:
    """--bq-project, --bq-dataset, --bq-endpoint as `btcfs publish --from bigquery` has them."""
    for option in reversed((
        click.option("--bq-project", envvar="BTCFS_BQ_PROJECT", help="[$BTCFS_BQ_PROJECT]"),
        click.option("--bq-dataset", envvar="BTCFS_BQ_DATASET", default="btcfs",
                     show_default=True, help="Dataset dbt built the marts in [$BTCFS_BQ_DATASET]."),
        click.option("--bq-endpoint", envvar="BTCFS_BQ_API_ENDPOINT",
                     help="BigQuery API endpoint of an emulator (anonymous) "
                     "[$BTCFS_BQ_API_ENDPOINT]."),
    )):  # fmt: skip
        command = option(command)
    return command


@features_group.command("get")
@click.option(
    "--events",
    "events_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV or Parquet with the columns symbol and event_time (RFC 3339; no offset: UTC).",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: Parquet (.parquet) or CSV (.csv); a manifest is written beside it.",
)
@click.option("--interval", type=click.Choice(INTERVALS), default="5m", show_default=True)
@click.option("--features", "names", default=None, help="Comma-separated feature names.")
@click.option("--set", "feature_set", type=click.Choice(FEATURE_SETS), help="A feature set.")
@click.option("--max-age", default=None, help="NULL features from rows older than this (15m).")
@_warehouse_option("DuckDB file (default: $BTCFS_DATA_DIR/warehouse/build.duckdb).")
@click.option(
    "--from",
    "source",
    type=click.Choice(["duckdb", "bigquery"]),
    default="duckdb",
    show_default=True,
    help="Retrieve from dbt's DuckDB file or from BigQuery (--bq-project/--bq-dataset).",
)
@_bq_options
@_target_option
def get_command(
    events_path: Path,
    out_path: Path,
    interval: str,
    names: str | None,
    feature_set: str | None,
    max_age: str | None,
    warehouse: Path | None,
    source: str,
    bq_project: str | None,
    bq_dataset: str,
    bq_endpoint: str | None,
    target_path: Path | None,
) -> None:
    """For each event, the feature row available at its time (point in time): the events'
    columns, feature_open_time, feature_available_at, feature_age_seconds,
    feature_null_reason and the features (default: every column of the mart).

    Example: btcfs features get --events labels.csv --out train.parquet --set spot --max-age 15m
    """
    file_format(out_path, "output file")  # refuse a bad extension before the work
    events = read_events_file(events_path)
    paths = DataPaths.from_env()
    features = [n.strip() for n in names.split(",") if n.strip()] if names is not None else None
    catalog = load_catalog(target_path) if target_path is not None else None
    rows = events.keys.num_rows
    if source == "bigquery":
        if not bq_project:
            raise click.ClickException("--from bigquery needs BTCFS_BQ_PROJECT or --bq-project")
        marts = BigQueryMarts(bq_project, bq_dataset, bq_endpoint or None)
        retrieved = retrieve_bigquery(
            marts, events, interval, features, feature_set, max_age, catalog
        )
    else:
        with tqdm(
            total=rows, unit="event", unit_scale=True, file=sys.stderr, leave=False,
            disable=None if rows >= PROGRESS_ROWS else True,
        ) as bar:  # fmt: skip
            retrieved = retrieve_duckdb(
                warehouse or paths.build_db, events, interval, features, feature_set, max_age,
                catalog, chunk_rows=CHUNK_ROWS, progress=bar.update,
            )  # fmt: skip
    if events.naive_times:
        click.echo(
            f"note: {events.naive_times:,} event time(s) had no UTC offset: read as UTC", err=True
        )
    write_result(retrieved.table, out_path)
    manifest = write_manifest(
        out_path, events_path, retrieved, feature_set, lake_digest(paths.lake)
    )
    click.echo(f"{retrieved.summary().line()} -> {out_path} (manifest {manifest.name})")


@features_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_warehouse_option(
    "DuckDB file to retrieve again from (default: where the manifest says: its DuckDB file "
    "or BigQuery dataset)."
)
@click.option(
    "--bq-endpoint",
    envvar="BTCFS_BQ_API_ENDPOINT",
    help="BigQuery API endpoint of an emulator (anonymous) [$BTCFS_BQ_API_ENDPOINT].",
)
@_target_option
def verify_command(
    file: Path, warehouse: Path | None, bq_endpoint: str | None, target_path: Path | None
) -> None:
    """Check a file written by `btcfs features get` against its manifest and against the
    warehouse and lake of now: the file's sha256, the build, the lake, the catalog, and the
    answers retrieved again from the recorded events. Exit 1 when something differs.

    Example: btcfs features verify train.parquet
    """
    paths = DataPaths.from_env()
    catalog = load_catalog(target_path) if target_path is not None else None
    checks = verify(file, warehouse, lake_digest(paths.lake), catalog, bq_endpoint or None)
    for check in checks:
        click.echo(f"{'ok' if check.ok else 'DIFFERS':<8} {check.name:<16} {check.detail}")
    if not all(check.ok for check in checks):
        raise SystemExit(1)
    click.echo(f"{file.name} is what the warehouse and lake of now retrieve")
