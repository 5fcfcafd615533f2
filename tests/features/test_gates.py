"""The feature and label gates on a real build: they pass on a clean synthetic lake and name
the dataset, the day and the count when a published value is NULL, NaN or infinite (optional
vendor features may be NULL, never NaN), when an optional feature's coverage drops (a warning),
and when synthetic vendor data reaches a mart where it is forbidden (prod)."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.features.feature_harness import SMALL_WINDOWS, FeatureWarehouse, synthetic

pytestmark = pytest.mark.dbt

GATES = "tag:features tag:labels tag:training"


@pytest.fixture(scope="module")
def built(small_warehouse: FeatureWarehouse) -> dict[str, pd.DataFrame]:
    return small_warehouse.build(synthetic(8))


def test_gates_pass_on_a_clean_lake(
    small_warehouse: FeatureWarehouse, built: dict[str, pd.DataFrame]
) -> None:
    output = small_warehouse.dbt("test", "--select", GATES, "--exclude-resource-type", "unit_test")
    assert re.search(r"PASS=(\d+) WARN=0 ERROR=0", output), output[-2000:]


def test_hourly_5m_features_come_from_the_hours_last_5m_bar(
    built: dict[str, pd.DataFrame],
) -> None:
    five, hourly = built["features_5m"], built["features_1h"]
    last_bar = five.assign(open_time=five["open_time"] - pd.Timedelta(minutes=55))
    joined = hourly.merge(last_bar, on=["symbol", "open_time"], suffixes=("", "_5m"))
    assert len(joined) > 50
    # same instant, same information: the 1h row's 5m return is the 5m row's
    assert (joined["available_at"] == joined["available_at_5m"]).all()
    np.testing.assert_allclose(joined["ret_5m"], joined["ret_5m_5m"], rtol=1e-12)
    # and the last 12 five-minute returns of the 5m row sum to the hour's return
    np.testing.assert_allclose(joined["ret_1h"], joined["ret_1h_5m"], rtol=1e-9)


def test_training_and_serving_marts_carry_every_feature_column(
    built: dict[str, pd.DataFrame],
) -> None:
    features = list(built["features_5m"].columns)
    assert list(built["features_1h"].columns) == features
    assert list(built["training_set_5m"].columns)[: len(features)] == features
    assert list(built["latest_features"].columns) == [*features, "bar_interval"]


def test_non_finite_and_null_features_fail_their_gate(
    small_warehouse: FeatureWarehouse, built: dict[str, pd.DataFrame]
) -> None:
    con = duckdb.connect(str(small_warehouse.database))
    try:
        con.execute(
            "update features_5m set vol_z = 'nan'::double, liq_long_z = 'nan'::double "
            "where open_time = '2025-01-07 10:00:00+00'"
        )
        con.execute(
            "update features_5m set basis_bps = 'inf'::double, ret_1h = null, "
            "cq_netflow_z = null where open_time = '2025-01-07 10:05:00+00'"
        )
        # a row that does not claim the derivatives set may hold none of it
        con.execute(
            "update features_5m set is_derivatives_complete = false, oi_z = null, "
            "fund_now_z = null where open_time = '2025-01-07 10:10:00+00'"
        )
    finally:
        con.close()
    run = small_warehouse.dbt("test", "--select", "finite_values__features_5m", expect_ok=False)
    line = next(x for x in run.splitlines() if "GATE FAIL finite_values__features_5m" in x)
    assert "dataset=features_5m symbol=BTCUSDT day=2025-01-07 count=2" in line
    # each column named with its feature set
    assert "vol_z [spot]" in line and "basis_bps [derivatives]" in line and "ret_1h [spot]" in line
    assert "oi_z" not in line and "fund_now_z" not in line
    # an optional feature may be NULL, but NaN fails it like any other
    assert "liq_long_z" in line
    assert "cq_netflow_z" not in line and "liq60_z" not in line


def test_optional_feature_coverage_warns(
    small_warehouse: FeatureWarehouse, built: dict[str, pd.DataFrame]
) -> None:
    con = duckdb.connect(str(small_warehouse.database))
    try:
        con.execute(
            "update features_5m set spy_ret_1d = null "
            "where open_time >= '2025-01-07 12:00:00+00' and open_time < '2025-01-08 00:00:00+00'"
        )
    finally:
        con.close()
    run = small_warehouse.dbt("test", "--select", "optional_coverage__features_5m")
    assert re.search(r"WARN=1 ERROR=0", run), run[-2000:]
    line = next(x for x in run.splitlines() if "GATE WARN optional_coverage__features_5m" in x)
    assert "day=2025-01-07 count=144" in line and "spy_ret_1d: 144 of 288 rows" in line


def test_synthetic_vendor_data_fails_the_guard_where_forbidden(
    small_warehouse: FeatureWarehouse, built: dict[str, pd.DataFrame]
) -> None:
    """On dev the synthetic lake passes (test_gates_pass_on_a_clean_lake); with the guard on
    (as on target prod: the var stands in for `--target prod`) every mart carrying the rows
    fails, naming the day and the count."""
    assert built["features_5m"]["has_synthetic_input"].all()
    guarded = FeatureWarehouse(
        small_warehouse.root, {**SMALL_WINDOWS, "forbid_synthetic_inputs": True}
    )
    run = guarded.dbt("test", "--select", "tag:gate,test_name:no_synthetic_inputs", expect_ok=False)
    for mart in ("features_5m", "features_1h", "training_set_5m", "latest_features"):
        assert f"GATE FAIL no_synthetic_inputs__{mart}: dataset={mart} symbol=BTCUSDT" in run
    assert "day=2025-01-07 count=288 (288 rows built from synthetic vendor data" in run


def test_latest_features_must_serve_the_newest_row_of_each_interval(
    small_warehouse: FeatureWarehouse, built: dict[str, pd.DataFrame]
) -> None:
    """A stale served row and a missing one each fail the serving gate."""
    gate = "serves_newest_rows__latest_features"
    con = duckdb.connect(str(small_warehouse.database))
    try:
        con.execute("delete from latest_features where bar_interval = '1h'")
        con.execute(
            "update latest_features set open_time = open_time - interval 5 minute "
            "where bar_interval = '5m'"
        )
    finally:
        con.close()
    try:
        run = small_warehouse.dbt("test", "--select", gate, expect_ok=False)
        lines = sorted(x for x in run.splitlines() if f"GATE FAIL {gate}" in x)
        assert len(lines) == 2, run[-2000:]
        assert "dataset=latest_features symbol=BTCUSDT" in lines[0]
        assert "(1h: no row served)" in " ".join(lines)
        assert "(5m: not the newest row (1 served))" in " ".join(lines)
    finally:
        small_warehouse.dbt("run", "--select", "latest_features")
    passed = small_warehouse.dbt("test", "--select", gate)
    assert re.search(r"PASS=\d+ WARN=0 ERROR=0", passed), passed[-2000:]
