"""Real Binance data: our 1h bars equal Binance's, and the 2023-03-24 halt is reported.

Needs ../shared/data (skipped with the reason when absent).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.warehouse import lakefixtures as lf
from tests.warehouse.conftest import CORE, Warehouse, make_warehouse

pytestmark = [pytest.mark.dbt, pytest.mark.realdata]

WEEK = [date(2025, 5, 19) + timedelta(days=d) for d in range(7)]
HALT_DAYS = [date(2023, 3, 23), date(2023, 3, 24), date(2023, 3, 25)]
# Binance 1h CSV column -> our bars_1h column.
FIELDS = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "quote_asset_volume": "quote_volume",
    "number_of_trades": "trade_count",
    "taker_buy_base": "taker_buy_base_volume",
    "taker_buy_quote": "taker_buy_quote_volume",
}


@pytest.fixture(scope="module")
def week(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = make_warehouse(tmp_path_factory, "real_week")
    lf.land(
        warehouse.lake,
        {
            ("spot-klines", "BTCUSDT", "1m"): lf.real_spot_1m(WEEK),
            ("funding", "BTCUSDT", None): lf.real_funding(),
        },
    )
    warehouse.dbt("build", *CORE)
    return warehouse


def _significant_digits(text: str) -> int:
    return len(text.replace(".", "").replace("-", "").lstrip("0"))


def test_1h_bars_equal_binance_1h_klines(week: Warehouse) -> None:
    """Every field of the 165 Binance 1h bars, in decimals.

    The CSV was re-printed by pandas (trailing zeros trimmed, floats): a value that differs from
    ours must be one pandas could not print exactly (>= 15 significant digits) and be within
    1e-6 relative; everything else, prices and trade counts included, is exactly equal.
    """
    binance = lf.real_spot_1h_api()
    assert len(binance) == 165
    rows = week.query(
        f"select epoch_s * 1000, {', '.join(FIELDS.values())}, imputed_minutes from bars_1h"
    )
    ours = {row[0]: row[1:] for row in rows}
    approximate = []
    for bar in binance:
        mine = ours[int(bar["open_time"])]
        assert mine[-1] == 0, "no imputed minute in these hours"
        for index, column in enumerate(FIELDS):
            theirs, value = Decimal(bar[column]), Decimal(mine[index])
            if theirs == value:
                continue
            assert _significant_digits(bar[column]) >= 15, (bar["open_time"], column, theirs, value)
            assert abs(theirs - value) <= Decimal("1e-6") * abs(value), (column, theirs, value)
            approximate.append(column)
    assert set(approximate) <= {"quote_asset_volume", "taker_buy_quote"}
    # Binance's own bars start at 03:00 on the first day; ours start at 00:00.
    assert len(ours) == 7 * 24


def test_real_week_passes_every_gate(week: Warehouse) -> None:
    statuses = week.runs[-1].statuses()
    assert not {k: v for k, v in statuses.items() if v in ("fail", "error")}
    assert week.query("select count(*), count(*) filter (where is_imputed) from bars_5m") == [
        (7 * 288, 0)
    ]


@pytest.fixture(scope="module")
def halt(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = make_warehouse(tmp_path_factory, "real_halt")
    lf.land(warehouse.lake, {("spot-klines", "BTCUSDT", "1m"): lf.real_spot_1m(HALT_DAYS)})
    warehouse.dbt("build", *CORE)
    return warehouse


def test_halt_minutes_are_imputed_and_counted(halt: Warehouse) -> None:
    per_day = halt.query(
        """select cast(open_time as date), count(*), count(*) filter (where is_imputed),
            count(*) filter (where not is_imputed and volume = 0)
        from int_spot_bars_1m_gap_filled group by 1 order by 1"""
    )
    assert [(d.isoformat(), n, missing, zero) for d, n, missing, zero in per_day] == [
        ("2023-03-23", 1440, 0, 0),
        ("2023-03-24", 1440, 80, 72),
        ("2023-03-25", 1440, 0, 0),
    ]
    hours = halt.query(
        """select strftime(open_time, '%H'), imputed_minutes, zero_volume_minutes, is_imputed,
            open = high and high = low and low = close
        from bars_1h where cast(open_time as date) = date '2023-03-24'
            and open_time between timestamptz '2023-03-24 11:00:00+00'
            and timestamptz '2023-03-24 14:00:00+00'
        order by 1"""
    )
    assert hours == [
        ("11", 0, 32, False, False),
        ("12", 20, 60, True, True),  # 12:00-12:39 flat zero-volume, 12:40-12:59 missing
        ("13", 60, 60, True, True),  # no bar at all: imputed flat at the halt price
        ("14", 0, 0, False, False),
    ]
    # Imputed minutes carry the last traded price (28080.00).
    closes = halt.query(
        """select distinct close from int_spot_bars_1m_gap_filled
        where is_imputed and cast(open_time as date) = date '2023-03-24'"""
    )
    assert closes == [(Decimal("28080.00000000"),)]


def test_known_halt_is_reported_not_silently_passed(halt: Warehouse) -> None:
    run = halt.runs[0]
    assert run.returncode == 0
    assert run.status("gap_ratio__spot_klines") == "pass"
    assert run.status("zero_volume__spot_klines") == "pass"
    assert run.status("imputed_share__bars_5m") == "pass"
    assert run.status("known_halts__spot_klines") == "warn"
    assert run.status("close_time_consistent__stg_spot_klines") == "warn"  # the truncated bar
    warned = {(g["gate"], g["day"], g["count"]) for g in run.gate_lines() if g["level"] == "WARN"}
    assert ("known_halts__spot_klines", "2023-03-24", "152") in warned
    assert ("close_time_consistent__stg_spot_klines", "2023-03-24", "1") in warned


def test_halt_fails_the_gates_when_halts_are_not_allowed(halt: Warehouse) -> None:
    run = halt.dbt("build", *CORE, "--vars", "{allow_known_halts: false}", expect_ok=False)
    failed = {
        (g["gate"], g["dataset"], g["day"], g["count"])
        for g in run.gate_lines()
        if g["level"] == "FAIL"
    }
    assert failed == {
        ("gap_ratio__spot_klines", "spot_klines", "2023-03-24", "80"),
        ("zero_volume__spot_klines", "spot_klines", "2023-03-24", "72"),
    }
    assert run.status("bars_5m") == "skipped"
    assert run.status("bars_1h") == "skipped"
