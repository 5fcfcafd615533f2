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

Known emulator difference (not compared; warn-level tests only): crucible's UNIX_SECONDS rounds
sub-second timestamps to the nearest second where BigQuery truncates, so the warn-level
`close_time_consistent__stg_*_klines` tests report every kline there (close_time = open + 59.999 s).
No mart reads a sub-second value through UNIX_SECONDS, so the marts are unaffected.
"""

from __future__ import annotations

import pytest

from tests.bigquery.bqsupport import DATASET, LAKE_DAYS, PROJECT, EmulatorBuild
from tests.bigquery.martcompare import bigquery_rows, compare, duckdb_rows

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
