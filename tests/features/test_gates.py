"""The feature and label gates on a real build: they pass on a clean synthetic lake and name
the dataset, the day and the count when a published value is NULL, NaN or infinite."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest
from feature_harness import FeatureWarehouse, synthetic

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
            "update features_5m set vol_z = 'nan'::double "
            "where open_time = '2025-01-07 10:00:00+00'"
        )
        con.execute(
            "update features_5m set basis_bps = 'inf'::double, ret_1h = null "
            "where open_time = '2025-01-07 10:05:00+00'"
        )
    finally:
        con.close()
    run = small_warehouse.dbt("test", "--select", "finite_values__features_5m", expect_ok=False)
    line = next(x for x in run.splitlines() if "GATE FAIL finite_values__features_5m" in x)
    assert "dataset=features_5m symbol=BTCUSDT day=2025-01-07 count=2" in line
    assert "vol_z" in line and "basis_bps" in line and "ret_1h" in line
    assert "liq60_z" not in line
