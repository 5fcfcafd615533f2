"""A sequence of incremental runs over a growing lake gives the same tables as --full-refresh."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.warehouse import lakefixtures as lf
from tests.warehouse.conftest import CORE, Warehouse, make_warehouse

pytestmark = pytest.mark.dbt

START = date(2024, 7, 1)
# Lake snapshots landed one after another: mid-day cuts leave a still-forming last bar (1h, 4h,
# 1d) that a later run must complete, and re-landing a day replaces its partition whole.
CUTS = [
    datetime(2024, 7, 2, 13, 37, tzinfo=UTC),
    datetime(2024, 7, 3, 0, 0, tzinfo=UTC),
    datetime(2024, 7, 4, 6, 10, tzinfo=UTC),
    None,  # everything (four days)
]
TABLES = [
    "int_spot_bars_1m_gap_filled",
    "int_perp_bars_1m_gap_filled",
    "bars_5m",
    "bars_15m",
    "bars_1h",
    "bars_4h",
    "bars_1d",
    "perp_bars_5m",
    "perp_bars_1h",
    "int_funding_as_of_bars_5m",
    "int_funding_as_of_bars_1h",
    "int_open_interest_as_of_bars_5m",
    "int_open_interest_as_of_bars_1h",
    # other vendors (the synthetic market lands all of them, with CryptoQuant and FRED vintages
    # revised days after their first one)
    "int_intraday_vendor_events_unioned",
    "int_daily_series_vintages_resolved",
    "int_intraday_vendor_metrics_as_of_bars_5m",
    "int_intraday_vendor_metrics_as_of_bars_1h",
    "int_daily_series_as_of_bars_5m",
    "int_daily_series_as_of_bars_1h",
]
# The Binance models and the vendors' (tag:vendors: staging and intermediate). The vendor as-of
# models rebuild `vendor_late_days` (default 7) more than the Binance ones; 1 here, so that
# over four days their last run is partial too (with FRED and CryptoQuant vintages, some of them
# revisions, landed between the cuts).
SELECT = ["--select", f"{CORE[1]} tag:vendors", "--vars", "{vendor_late_days: 1}"]


def _snapshot(warehouse: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    return {t: warehouse.query(f"select * from {t} order by all") for t in TABLES}


@pytest.fixture(scope="module")
def incremental(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    warehouse = make_warehouse(tmp_path_factory, "incremental")
    market = lf.synthetic_market(START, 4, seed=9)
    compiled: list[str] = []
    compiled_vendor: list[str] = []
    vendor_sql = "models/intermediate/vendors/int_daily_series_as_of_bars_5m.sql"
    for cut in CUTS:
        lf.land(warehouse.lake, market if cut is None else lf.cut_at(market, cut))
        warehouse.dbt("build", *SELECT)
        path = warehouse.target / "compiled" / "btcfs" / "models" / "marts" / "bars" / "bars_5m.sql"
        compiled.append(path.read_text())
        compiled_vendor.append((warehouse.target / "compiled" / "btcfs" / vendor_sql).read_text())
    warehouse.dbt("build", *SELECT)  # again, nothing new landed
    incremental_tables = _snapshot(warehouse)
    warehouse.dbt("build", *SELECT, "--full-refresh")
    return {
        "warehouse": warehouse,
        "compiled": compiled,
        "compiled_vendor": compiled_vendor,
        "incremental": incremental_tables,
        "full": _snapshot(warehouse),
    }


@pytest.mark.parametrize("table", TABLES)
def test_incremental_runs_equal_full_refresh(incremental: dict[str, Any], table: str) -> None:
    ours, full = incremental["incremental"][table], incremental["full"][table]
    assert ours, f"{table} is empty"
    assert len(ours) == len(full)
    assert ours == full


def test_incremental_runs_rebuild_only_the_tail(incremental: dict[str, Any]) -> None:
    first, *later = incremental["compiled"]
    assert "open_time >=" not in first  # the first run builds everything
    # Later runs start one look-back (1 day) before the newest stored bar.
    assert "cast('2024-07-01 13:30:00+00' as timestamptz)" in later[0]
    assert "cast('2024-07-03 06:05:00+00' as timestamptz)" in later[2]


def test_vendor_as_of_runs_rebuild_only_the_tail(incremental: dict[str, Any]) -> None:
    first, *later = incremental["compiled_vendor"]
    assert "open_time >=" not in first
    # The UTC day of the Binance window (2024-07-03 06:05 on the last run), one day earlier.
    assert "open_time >= cast('2024-07-02 00:00:00+00' as timestamptz)" in later[2]


def test_whole_bars_only_after_a_mid_day_cut(incremental: dict[str, Any]) -> None:
    full = incremental["full"]
    assert len(full["bars_1d"]) == 4
    assert len(full["bars_4h"]) == 24
    assert len(full["int_spot_bars_1m_gap_filled"]) == 4 * 1440


def test_disable_incremental_var_forces_full_builds(incremental: dict[str, Any]) -> None:
    warehouse: Warehouse = incremental["warehouse"]
    warehouse.dbt("compile", "--select", "bars_5m", "--vars", "{disable_incremental: true}")
    path = warehouse.target / "compiled" / "btcfs" / "models" / "marts" / "bars" / "bars_5m.sql"
    assert "open_time >=" not in path.read_text()


VENDOR_TABLES = [t for t in TABLES if "vendor" in t or "daily_series" in t]


@pytest.mark.parametrize(
    ("late_days", "window_start"),
    [(2, "2024-07-03 00:00:00+00"), (0, "2024-07-05 00:00:00+00")],
)
def test_vintages_landed_late_are_applied(
    tmp_path_factory: pytest.TempPathFactory, late_days: int, window_start: str
) -> None:
    """FRED down for three days, then caught up: its vintages land with available_at up to
    three days before the newest bar, before the Binance window (one day). Inside the vendor
    window (vendor_late_days: 2, on whole days) the incremental run equals a full refresh;
    with no late days the daily-series as-of rows of those days are left stale (the bound is
    what makes the equality hold)."""
    warehouse = make_warehouse(tmp_path_factory, f"late_vintages_{late_days}")
    market = lf.synthetic_market(START, 8, seed=11)
    first = lf.cut_at(market, datetime(2024, 7, 7, tzinfo=UTC))
    first.update(lf.cut_at(lf.only(market, "fred-series"), datetime(2024, 7, 4, tzinfo=UTC)))
    select = ["--select", f"{CORE[1]} tag:vendors", "--vars", f"{{vendor_late_days: {late_days}}}"]
    lf.land(warehouse.lake, first)
    warehouse.dbt("build", *select)
    lf.land(warehouse.lake, lf.cut_at(market, datetime(2024, 7, 8, tzinfo=UTC)))
    warehouse.dbt("build", *select)
    sql = warehouse.target / "compiled" / "btcfs" / "models" / "intermediate" / "vendors"
    compiled = (sql / "int_daily_series_as_of_bars_5m.sql").read_text()
    assert f"open_time >= cast('{window_start}' as timestamptz)" in compiled
    incremental = {t: warehouse.query(f"select * from {t} order by all") for t in VENDOR_TABLES}
    warehouse.dbt("build", *select, "--full-refresh")
    full = {t: warehouse.query(f"select * from {t} order by all") for t in VENDOR_TABLES}
    assert all(full.values())
    if late_days:
        assert incremental == full
    else:
        table = "int_daily_series_as_of_bars_5m"
        assert incremental[table] != full[table]
