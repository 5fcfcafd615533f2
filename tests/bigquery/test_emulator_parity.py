"""CI gate: the same dbt project on BigQuery (crucible emulator) and DuckDB, mart for mart.

One synthetic lake (tests/warehouse/lakefixtures.py) is landed once (conftest.py,
`emulator_build`), then
* uploaded to a GCS emulator and loaded into the BigQuery emulator's `raw` dataset partition
  by partition (the code of `btcfs warehouse load-bq`, CSV from the files as the emulator reads
  neither Parquet nor gs://), and built with `dbt build --target bq_emulator` (marts
  partitioned by open_time and clustered by symbol, as on BigQuery);
* built with `dbt build --target dev` on DuckDB (in parallel with the load and the BigQuery build).
Every mart must then hold the same keys and values (floats within 1e-9 relative, NULL == NULL).

Small windows (`features_window_seconds` of 2 days, as tests/features uses) keep an 8-day lake
enough for rows in every mart, and the build around 2 minutes on two cores.

Point-in-time retrieval is part of the check: the same random events answered on each engine
(warehouse.retrieval: DuckDB's ASOF JOIN, BigQuery's portable union and LAST_VALUE) give the
same answers.

Known emulator difference (not compared; warn-level tests only): crucible's UNIX_SECONDS rounds
sub-second timestamps to the nearest second where BigQuery truncates, so the warn-level
`close_time_consistent__stg_*_klines` tests report every kline there (close_time = open + 59.999 s).
No mart reads a sub-second value through UNIX_SECONDS, so the marts are unaffected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from tests.bigquery.bqsupport import DATASET, LAKE_DAYS, LAKE_START, PROJECT, EmulatorBuild
from tests.bigquery.martcompare import bigquery_rows, compare, duckdb_rows
from tests.warehouse import retrievalfixtures
from warehouse.catalog import load_catalog
from warehouse.readers import BigQueryMarts
from warehouse.retrieval import historical_features

# Every mart (and the features' intermediate models), with its key. None is excluded: all
# build and compare on the emulator.
MART_KEYS: dict[str, tuple[str, ...]] = {
    **{
        name: ("symbol", "open_time")
        for name in (
            "bars_5m",
            "bars_15m",
            "bars_1h",
            "bars_4h",
            "bars_1d",
            "perp_bars_5m",
            "perp_bars_1h",
            "features_5m",
            "features_1h",
            "labels_5m",
            "training_set_5m",
        )
    },
    "latest_features": ("symbol", "bar_interval"),
    # the features' own intermediate models: their z-score inputs and per-day parameters
    "int_feature_zscore_inputs_5m": ("symbol", "open_time"),
    "int_feature_zscore_inputs_1h": ("symbol", "open_time"),
    "int_feature_zscore_params": ("symbol", "bar_interval", "quantile_period"),
}

pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.bigquery]


# google-cloud-bigquery may warn that the BigQuery Storage client is absent when it fetches
# results (it then uses the REST API, which is what the emulator serves): not a failure here.
@pytest.mark.filterwarnings("ignore:.*BigQuery Storage.*:UserWarning")
def test_marts_match_duckdb(emulator_build: EmulatorBuild) -> None:
    loaded = emulator_build.loaded.tables
    assert loaded["spot_klines"].rows == LAKE_DAYS * 1440, loaded
    assert loaded["spot_klines"].partitions == LAKE_DAYS, loaded
    assert loaded["quarantine"].partitions == 0, loaded
    client = emulator_build.client()
    problems: list[str] = []
    for mart, keys in MART_KEYS.items():
        expected = duckdb_rows(emulator_build.duckdb_path, mart)
        assert expected[1], f"{mart} is empty on DuckDB: the comparison would prove nothing"
        problems += compare(mart, keys, expected, bigquery_rows(client, PROJECT, DATASET, mart))
    assert not problems, "\n".join(problems)


def test_marts_are_partitioned_and_clustered_on_bigquery(emulator_build: EmulatorBuild) -> None:
    """dbt_project.yml's BigQuery-only configs reached the tables (the emulator records them)."""
    client = emulator_build.client()
    for mart, granularity in (("features_5m", "DAY"), ("bars_1h", "MONTH")):
        table = client.get_table(f"{PROJECT}.{DATASET}.{mart}")
        assert table.time_partitioning is not None, mart
        assert (table.time_partitioning.field, table.time_partitioning.type_) == (
            "open_time",
            granularity,
        )
        assert table.clustering_fields == ["symbol"], mart
    latest = client.get_table(f"{PROJECT}.{DATASET}.latest_features")
    assert latest.time_partitioning is None and latest.clustering_fields == ["symbol"]
    raw = client.get_table(f"{PROJECT}.raw.spot_klines")
    assert raw.time_partitioning is not None and raw.time_partitioning.field == "date"
    assert raw.clustering_fields == ["symbol", "interval"]


@pytest.mark.filterwarnings("ignore:.*BigQuery Storage.*:UserWarning")
@pytest.mark.parametrize(("interval", "max_age"), [("5m", None), ("1h", "90m")])
def test_retrieval_matches_duckdb(
    emulator_build: EmulatorBuild, interval: str, max_age: str | None
) -> None:
    """The same events answered on BigQuery (portable SQL, no ASOF JOIN) and on DuckDB."""
    start = datetime.combine(LAKE_START, datetime.min.time(), UTC)
    events = retrievalfixtures.random_events(
        1500, seed=31, start=start, end=start + timedelta(days=LAKE_DAYS + 1),
        symbols=("BTCUSDT",),
    )  # fmt: skip
    on_duckdb = historical_features(
        events, interval=interval, max_age=max_age, source=emulator_build.duckdb_path,
        catalog=load_catalog(emulator_build.dev_target_path),
    )  # fmt: skip
    on_bigquery = historical_features(
        events, interval=interval, max_age=max_age,
        source=BigQueryMarts(PROJECT, DATASET, emulator_build.endpoint),
        catalog=load_catalog(emulator_build.bq_target_path),
    )  # fmt: skip
    assert isinstance(on_duckdb, pa.Table) and isinstance(on_bigquery, pa.Table)
    assert on_bigquery.column_names == on_duckdb.column_names
    reasons = on_duckdb.column("feature_null_reason").to_pylist()
    assert reasons.count(None) > 300 and reasons.count("no_row_at_or_before_event") > 100
    for name in on_duckdb.column_names:
        expected, actual = on_duckdb.column(name), on_bigquery.column(name)
        if pa.types.is_floating(expected.type):
            assert actual.is_null().equals(expected.is_null()), name
            close = np.isclose(
                actual.to_numpy(zero_copy_only=False), expected.to_numpy(zero_copy_only=False),
                rtol=1e-9, atol=1e-12, equal_nan=True,
            )  # fmt: skip
            assert close.all(), f"{name} differs at event {int(np.flatnonzero(~close)[0])}"
        else:
            assert actual.cast(expected.type).equals(expected), name


@pytest.mark.filterwarnings("ignore:.*BigQuery Storage.*:UserWarning")
def test_features_get_from_bigquery_writes_what_duckdb_gives_and_verifies(
    emulator_build: EmulatorBuild, tmp_path: Path
) -> None:
    start = datetime.combine(LAKE_START, datetime.min.time(), UTC)
    events = retrievalfixtures.random_events(
        300, seed=33, start=start, end=start + timedelta(days=LAKE_DAYS), symbols=("BTCUSDT",)
    )
    events_file = tmp_path / "events.parquet"
    pq.write_table(events, events_file)
    env = {"BTCFS_DATA_DIR": str(emulator_build.root), "BTCFS_BQ_API_ENDPOINT": ""}
    common = ["features", "get", "--events", str(events_file), "--set", "spot", "--max-age", "5m"]
    result = CliRunner().invoke(cli, [
        *common, "--out", str(tmp_path / "bq.parquet"), "--from", "bigquery",
        "--bq-project", PROJECT, "--bq-dataset", DATASET, "--bq-endpoint", emulator_build.endpoint,
        "--target-path", str(emulator_build.bq_target_path),
    ], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, [
        *common, "--out", str(tmp_path / "duck.parquet"), "--warehouse",
        str(emulator_build.duckdb_path), "--target-path", str(emulator_build.dev_target_path),
    ], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    on_bigquery, on_duckdb = (pq.read_table(tmp_path / n) for n in ("bq.parquet", "duck.parquet"))
    assert on_bigquery.column_names == on_duckdb.column_names
    for name in on_duckdb.column_names:
        expected, actual = on_duckdb.column(name), on_bigquery.column(name)
        if pa.types.is_floating(expected.type):
            assert np.allclose(actual.to_numpy(zero_copy_only=False),
                               expected.to_numpy(zero_copy_only=False),
                               rtol=1e-9, atol=1e-12, equal_nan=True), name  # fmt: skip
        else:
            assert actual.cast(expected.type).equals(expected), name
    manifest = json.loads((tmp_path / "bq.parquet.manifest.json").read_text())
    assert manifest["warehouse"]["file"] == f"bigquery://{PROJECT}/{DATASET}"
    assert manifest["warehouse"]["dbt_invocation_id"]
    result = CliRunner().invoke(cli, [
        "features", "verify", str(tmp_path / "bq.parquet"), "--bq-endpoint",
        emulator_build.endpoint, "--target-path", str(emulator_build.bq_target_path),
    ], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ok       answers" in result.output
