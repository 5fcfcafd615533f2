"""`btcfs run` and `btcfs publish`: parse, call the pipeline, print."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Literal

import click
import msgspec

from pipeline.params import PARAMS, UpdateParams
from pipeline.publish import publish
from pipeline.run import Context, InProcessRunner, StepFailed, TerminalRunner, plan
from warehouse.publish import (
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_MODEL,
    BigQuerySource,
)


@click.command("publish")
@click.option(
    "--target-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("DBT_TARGET_PATH", "target"),
    show_default="$DBT_TARGET_PATH or target",
    help="dbt's target folder holding manifest.json (which tests guard which model).",
)
@click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    help="DuckDB file dbt built [default: $BTCFS_DATA_DIR/warehouse/build.duckdb].",
)
@click.option(
    "--serve",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File the API reads [default: $BTCFS_DATA_DIR/warehouse/serve.duckdb].",
)
@click.option(
    "--model",
    "primary_model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Registry model named in the metadata row as the model (every model is pinned).",
)
@click.option(
    "--from",
    "source",
    type=click.Choice(["duckdb", "bigquery"]),
    default="duckdb",
    show_default=True,
    help="Copy the marts from dbt's DuckDB file or from BigQuery (--bq-project/--bq-dataset).",
)
@click.option("--bq-project", envvar="BTCFS_BQ_PROJECT", help="[$BTCFS_BQ_PROJECT]")
@click.option(
    "--bq-dataset",
    envvar="BTCFS_BQ_DATASET",
    default="btcfs",
    show_default=True,
    help="Dataset dbt built the marts in [$BTCFS_BQ_DATASET].",
)
@click.option(
    "--bq-endpoint",
    envvar="BTCFS_BQ_API_ENDPOINT",
    help="BigQuery API endpoint of an emulator (anonymous) [$BTCFS_BQ_API_ENDPOINT].",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    envvar="BTCFS_PUBLISH_LOCK_TIMEOUT_S",
    default=DEFAULT_LOCK_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for another publish of the same file [$BTCFS_PUBLISH_LOCK_TIMEOUT_S].",
)
def publish_command(
    target_path: Path,
    warehouse: Path | None,
    serve: Path | None,
    primary_model: str,
    source: Literal["duckdb", "bigquery"],
    bq_project: str | None,
    bq_dataset: str,
    bq_endpoint: str | None,
    lock_timeout: float,
) -> None:
    """Publish the built marts to the API: copy them, then swap serve.duckdb atomically.

    Refuses (exit 1) unless the gate ledger dbt keeps in the warehouse shows, for every mart
    it copies, a finished build and, after it, a passing (or warning) result of every data
    test of that mart, and no failed test upstream since: however dbt was run or selected.
    Otherwise copies the marts and latest_features into a new DuckDB file with a metadata
    table (built_at, dbt invocation id, pinned model versions, the gates of what is copied),
    fsyncs it and replaces serve.duckdb in one rename: a running API reattaches on its next
    request. After update plan runs it starts from a copy of serve.duckdb and copies only the
    rows they rewrote (docs/warehouse.md, "Delta publish"). Two publishes of one file wait
    for each other (a lock file beside it).

    With --from bigquery the marts and the ledger come from BigQuery (the dataset `dbt build
    --target prod` wrote; --target-path must hold that project's manifest), still into a
    local serve.duckdb.

    \b
    Example: dbt build && btcfs publish
    Example: dbt build --target prod && btcfs publish --from bigquery --bq-project my-project
    """
    bigquery = None
    if source == "bigquery":
        if not bq_project:
            raise click.ClickException("--from bigquery needs BTCFS_BQ_PROJECT or --bq-project")
        bigquery = BigQuerySource(bq_project, bq_dataset, bq_endpoint or None)
    try:
        result = publish(
            target_path=target_path,
            warehouse=warehouse,
            serve=serve,
            primary_model=primary_model,
            bigquery=bigquery,
            lock_timeout=lock_timeout,
        )
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise click.ClickException(f"publish failed: {exc.strerror or exc}{where}") from None
    rows = sum(result.tables.values())
    models = ", ".join(f"{m.model} {m.version} ({m.stage})" for m in result.models) or "none"
    how = "delta" if result.mode == "delta" else f"full copy: {result.why_full}"
    click.echo(
        f"published {result.path}: {len(result.tables)} marts, {rows} rows; dbt invocation "
        f"{result.invocation_id} built at {result.built_at}; models: {models} ({how})"
    )


@click.command("run")
@click.argument("name", metavar="PIPELINE", type=click.Choice(tuple(PARAMS)))
@click.option(
    "--config", "ingest_config", help="Ingest config (YAML) [default: config/ingest.yml]."
)
@click.option("--base-url", help="Every vendor's REST host (e.g. the replay server).")
@click.option("--archive", help="Binance archive URL, or `none` for REST only.")
@click.option("--full-refresh", is_flag=True, help="dbt build --full-refresh.")
@click.option("--no-unit-tests", is_flag=True, help="Skip dbt's unit tests (the gates still run).")
@click.option("--train-config", help="Trainer config (YAML) [default: config/train.yml].")
@click.option("--target", type=click.Choice(["fwd_ret", "tb_label"]), help="Training target.")
@click.option("--horizon", type=click.Choice(["5m", "1h", "4h", "1d"]), help="Forecast horizon.")
@click.option("--symbol", help="Symbol to train on [default: the trainer config's].")
@click.option("--model", help="Registry model name [default: the trainer config's].")
@click.option("--no-promote", is_flag=True, help="Register the new version without promoting it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--timings", is_flag=True, help="Print each step's wall time and the total.")
def run_command(
    name: str,
    ingest_config: str | None,
    base_url: str | None,
    archive: str | None,
    full_refresh: bool,
    no_unit_tests: bool,
    train_config: str | None,
    target: str | None,
    horizon: str | None,
    symbol: str | None,
    model: str | None,
    no_promote: bool,
    as_json: bool,
    timings: bool,
) -> None:
    """Run a pipeline's steps in order, as a job does (pipeline.steps.PIPELINES):

    \b
    ingest   btcfs ingest all
    build    dbt build, btcfs qa
    train    btcfs train, btcfs models promote (when every gate passed)
    publish  btcfs publish
    all      ingest, build, qa, train, promote, publish
    update   ingest, incremental build (gates on the rebuilt days), qa, publish

    Each step's output shows as it runs; a failed step or gate stops the pipeline (exit 1)
    before anything after it is promoted or published.

    \b
    Example: btcfs run build
    Example: btcfs run all --base-url http://127.0.0.1:9000 --no-promote
    """
    given: dict[str, dict[str, object]] = {
        "ingest": {"config": ingest_config, "base_url": base_url, "archive": archive},
        "build": {"full_refresh": full_refresh, "unit_tests": not no_unit_tests},
        "train": {
            "config": train_config,
            "target": target,
            "horizon": horizon,
            "symbol": symbol,
            "model": model,
            "promote": not no_promote,
        },
    }
    chosen = {
        step: {k: v for k, v in values.items() if v is not None} for step, values in given.items()
    }
    payload = {
        "all": chosen,
        "update": {"ingest": chosen["ingest"]},
    }.get(name, chosen.get(name, {}))
    try:
        params = msgspec.convert(payload, PARAMS[name])
    except msgspec.ValidationError as exc:
        raise click.UsageError(f"invalid option: {exc}") from None
    _run_steps(name, params, as_json=as_json, timings=timings)


def _run_steps(
    name: str, params: msgspec.Struct, *, as_json: bool, timings: bool, in_process: bool = False
) -> None:
    """Run pipeline `name` on this terminal; its result (or, with `as_json`, one JSON object
    on stdout and the steps' output on stderr); `timings`: each step's wall seconds.
    `in_process`: the `btcfs` steps run in this process (InProcessRunner)."""
    result: dict[str, object] = {}
    out = sys.stderr if as_json else None
    runner = (
        InProcessRunner(click.get_current_context().find_root().command, out=out)
        if in_process
        else TerminalRunner(out=out)
    )
    steps = plan(name, params, runner, Context.from_env(), result)
    done: list[str] = []
    seconds: dict[str, float] = {}
    started = time.monotonic()
    step = steps[0][0]
    try:
        for step, action in steps:
            click.echo(f"\n== {step}", err=as_json)
            began = time.monotonic()
            try:
                outcome = action()
            finally:
                seconds[str(step)] = round(time.monotonic() - began, 3)
            done.append(f"{step} (skipped)" if outcome is False else str(step))
    except StepFailed as exc:
        if timings:
            click.echo(_timings(seconds, time.monotonic() - started), err=True)
        raise click.ClickException(f"{name} stopped at {step}: {exc}") from None
    total = round(time.monotonic() - started, 3)
    if as_json:
        payload: dict[str, object] = {"pipeline": name, "steps": done, "result": result}
        if timings:
            payload["timings"] = {**seconds, "total": total}
        click.echo(json.dumps(payload, default=str))
        return
    click.echo(f"\n{name}: " + ", ".join(done))
    if timings:
        click.echo(_timings(seconds, total))


def _timings(seconds: dict[str, float], total: float) -> str:
    steps = ", ".join(f"{step} {value:.2f} s" for step, value in seconds.items())
    return f"timings: {steps}; total {total:.2f} s"


@click.command("update")
@click.option(
    "--config", "ingest_config", help="Ingest config (YAML) [default: config/ingest.yml]."
)
@click.option("--base-url", help="Every vendor's REST host (e.g. the replay server).")
@click.option("--archive", help="Binance archive URL, or `none` for REST only.")
@click.option("--timings", is_flag=True, help="Print each step's wall time and the total.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def update_command(
    ingest_config: str | None,
    base_url: str | None,
    archive: str | None,
    timings: bool,
    as_json: bool,
) -> None:
    """Bring what is served current: land what is new (btcfs ingest all), rebuild the
    warehouse incrementally with its gates on the rebuilt days (the update plan, compiled
    once by dbt: docs/warehouse.md; dbt build when it is stale), check them, publish.

    Exit 0 when published. A failing gate stops it with one line naming the gate and nothing
    published (exit 1): the API keeps serving the last good publish. An exchange or a vendor
    that cannot be reached does not stop it: it says so and builds on what the lake holds.
    Models are not retrained (`btcfs run all` does that).

    \b
    Example: btcfs update --timings
    Example: */5 * * * * cd /srv/btcfs && .venv/bin/btcfs update >> data/update.log 2>&1
    """
    given = {"config": ingest_config, "base_url": base_url, "archive": archive}
    try:
        params = msgspec.convert(
            {"ingest": {k: v for k, v in given.items() if v is not None}}, UpdateParams
        )
    except msgspec.ValidationError as exc:
        raise click.UsageError(f"invalid option: {exc}") from None
    _run_steps("update", params, as_json=as_json, timings=timings, in_process=True)
