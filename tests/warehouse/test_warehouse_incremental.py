"""A sequence of incremental runs over a growing lake gives the same tables as --full-refresh."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import lakefixtures as lf
import pytest
from conftest import CORE, Warehouse, make_warehouse

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
]


def _snapshot(warehouse: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    return {t: warehouse.query(f"select * from {t} order by all") for t in TABLES}


@pytest.fixture(scope="module")
def incremental(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    warehouse = make_warehouse(tmp_path_factory, "incremental")
    market = lf.synthetic_market(START, 4, seed=9)
    compiled: list[str] = []
    for cut in CUTS:
        lf.land(warehouse.lake, market if cut is None else lf.cut_at(market, cut))
        warehouse.dbt("build", *CORE)
        path = warehouse.target / "compiled" / "btcfs" / "models" / "marts" / "bars" / "bars_5m.sql"
        compiled.append(path.read_text())
    warehouse.dbt("build", *CORE)  # again, nothing new landed
    incremental_tables = _snapshot(warehouse)
    warehouse.dbt("build", *CORE, "--full-refresh")
    return {
        "warehouse": warehouse,
        "compiled": compiled,
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
