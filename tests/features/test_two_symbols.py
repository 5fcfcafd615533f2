"""Two symbols from the replay server through the lake and the warehouse, with the production
windows (30 days, refreshed daily): 80 days of spot klines alone give each of BTCUSDT and
ETHUSDT its first feature row at most 31 days after its first bar and at least 49 days of rows
(the acceptance of the pipeline btcfs replaces), and the symbols' rows never mix.

Training and serving per symbol are proven on the API's two-symbol pipeline
(tests/api/apipipeline.py): a prediction for a symbol comes from the model trained on it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ingest.timeutil import day_start_us
from replay import ReplayServer, SyntheticMarket
from tests.features.feature_harness import FeatureWarehouse

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

BIN = Path(sys.executable).parent
SYMBOLS = ("BTCUSDT", "ETHUSDT")
START = date(2025, 3, 1)
DAYS = 80


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureWarehouse, str]:
    root = tmp_path_factory.mktemp("two_symbols")
    end = START + timedelta(days=DAYS)
    market = SyntheticMarket(
        5, day_start_us(START), day_start_us(end + timedelta(days=1)), symbols=SYMBOLS
    )
    config = root / "ingest.yml"
    config.write_text(
        f"symbols: [{', '.join(SYMBOLS)}]\nstart: {START.isoformat()}\n"
        "datasets:\n  - {dataset: spot-klines, interval: 1m}\n"
    )
    built = FeatureWarehouse(root, {})  # the production windows
    now = datetime.combine(end, time(0, 30), UTC).isoformat()
    env = {**os.environ, "BTCFS_DATA_DIR": str(root), "BTCFS_NOW": now}
    with ReplayServer(market, now=now) as url:
        landed = subprocess.run(
            [str(BIN / "btcfs"), "ingest", "all", "--config", str(config), "--base-url", url],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    assert landed.returncode == 0, landed.stdout + landed.stderr
    output = built.dbt(
        "build", "--select", "+features_5m", "+features_1h", "--exclude-resource-type", "unit_test"
    )
    return built, output


def _frame(warehouse: FeatureWarehouse, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse.database), read_only=True)
    try:
        return con.sql(sql).to_arrow_table().to_pandas()
    finally:
        con.close()


def test_eighty_days_of_spot_give_each_symbol_49_days_of_features(
    warehouse: tuple[FeatureWarehouse, str],
) -> None:
    built, output = warehouse
    assert "GATE WARN symbols_have_rows" not in output  # both listed symbols have bars
    bars = _frame(built, "select symbol, min(open_time) as first_bar from bars_5m group by 1")
    features = _frame(
        built,
        """select symbol, min(open_time) as first_row,
                  count(distinct cast(open_time as date)) as days,
                  bool_and(is_spot_complete) as spot, bool_or(is_derivatives_complete) as derivs,
                  count(basis_bps) as basis_values
           from features_5m group by 1 order by 1""",
    ).merge(bars, on="symbol")
    assert list(features["symbol"]) == list(SYMBOLS)
    for row in features.itertuples():
        assert row.first_row - row.first_bar <= timedelta(days=31), row
        # whole days of rows after the warm-up: the first day is whole, the last one too
        assert row.days >= 49, row
        # a spot-only lake: every row holds the spot set, none the derivatives set
        assert row.spot and not row.derivs and row.basis_values == 0, row


def test_each_symbols_features_come_from_its_own_bars(
    warehouse: tuple[FeatureWarehouse, str],
) -> None:
    """ETHUSDT's rows are computed from ETHUSDT's bars only: its close is its own bar's, and
    its 1h return is the log return of its own closes (never the other symbol's)."""
    built, _ = warehouse
    joined = _frame(
        built,
        """select f.symbol, f.open_time, f.close as feature_close, b.close as bar_close,
                  f.ret_1h, ln(b.close / lag(b.close, 12) over (
                      partition by b.symbol order by b.open_time)) as own_ret_1h
           from features_5m f join bars_5m b using (symbol, open_time)""",
    )
    assert set(joined["symbol"]) == set(SYMBOLS)
    assert (joined["feature_close"].astype(float) == joined["bar_close"].astype(float)).all()
    assert joined["ret_1h"].sub(joined["own_ret_1h"]).abs().max() < 1e-9
    hourly = _frame(built, "select symbol, count(*) as n from features_1h group by 1 order by 1")
    assert list(hourly["symbol"]) == list(SYMBOLS) and (hourly["n"] >= 49 * 24).all()
    prices = _frame(built, "select symbol, avg(close) as mean_close from bars_5m group by 1")
    means = dict(zip(prices["symbol"], prices["mean_close"].astype(float), strict=True))
    assert means["BTCUSDT"] > 5 * means["ETHUSDT"]  # two distinct markets, not one copied
