"""The warehouse's one reader interface: DuckDB here; BigQuery's parity with it is checked on
the emulator (tests/bigquery/test_read_marts.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse.readers import BigQueryMarts, DuckDBMarts, MissingRelation, ReadError


@pytest.fixture
def marts(tmp_path: Path) -> DuckDBMarts:
    path = tmp_path / "build.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "create table bars_5m as select 'BTCUSDT' as symbol, "
        "timestamptz '2025-01-01 00:00:00+00' + to_minutes(5 * (4 - i)) as open_time, "
        "i::double as close from range(5) t(i)"
    )
    con.close()
    return DuckDBMarts(path)


def test_rows_of_one_symbol_oldest_first(marts: DuckDBMarts) -> None:
    table = marts.rows("bars_5m", "BTCUSDT")
    times = table.column("open_time").to_pylist()
    assert table.num_rows == 5 and times == sorted(times)
    assert marts.rows("bars_5m", "ETHUSDT").num_rows == 0
    # the symbol is a bound value, never SQL
    assert marts.rows("bars_5m", "BTCUSDT' or '1'='1").num_rows == 0


def test_bad_names_missing_relations_and_files_are_one_line_errors(
    marts: DuckDBMarts, tmp_path: Path
) -> None:
    with pytest.raises(ReadError, match="invalid table name"):
        marts.rows("bars_5m; drop table bars_5m", "BTCUSDT")
    with pytest.raises(MissingRelation, match="no table features_5m"):
        marts.rows("features_5m", "BTCUSDT")
    with pytest.raises(ReadError, match="not found: run `dbt build` first"):
        DuckDBMarts(tmp_path / "none.duckdb").rows("bars_5m", "BTCUSDT")
    assert marts.rows("bars_5m", "BTCUSDT").num_rows == 5  # nothing was dropped


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        (BigQueryMarts("p", "btcfs"), "invalid symbol"),
        (BigQueryMarts("p", "bt;cfs"), "invalid dataset name"),
        (BigQueryMarts("p`q", "btcfs"), "invalid BigQuery project"),
    ],
)
def test_bigquery_names_are_checked_before_any_request(reader: BigQueryMarts, message: str) -> None:
    symbol = "BTC' or '1'='1" if message == "invalid symbol" else "BTCUSDT"
    with pytest.raises(ReadError, match=message):
        reader.rows("bars_5m", symbol)
