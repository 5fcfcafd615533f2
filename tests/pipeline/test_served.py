"""pipeline.served: the log of feature rows `btcfs live` served, and its check against a batch
build, on small DuckDB files written here (the end-to-end run is tests/pipeline/test_live.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.served import ServedLog, ServedLogError

T0 = datetime(2025, 2, 1, tzinfo=UTC)


def served_file(
    path: Path, rows: list[tuple[str, datetime, float | None]], *, extra: bool = False
) -> Path:
    """A published file with features_5m (symbol, open_time, ret_1 [, vol_1])."""
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        columns = "symbol varchar, open_time timestamptz, ret_1 double" + (
            ", vol_1 double" if extra else ""
        )
        con.execute(f"create table features_5m ({columns})")
        for symbol, opened, value in rows:
            values = [symbol, opened, value, *([1.0] if extra else [])]
            con.execute(f"insert into features_5m values ({', '.join('?' * len(values))})", values)
    finally:
        con.close()
    return path


def bar(i: int) -> datetime:
    return T0 + timedelta(minutes=5 * i)


def test_each_row_is_logged_once_as_first_served(tmp_path: Path) -> None:
    log = ServedLog(tmp_path / "live" / "served.duckdb")
    serve = served_file(
        tmp_path / "serve.duckdb", [("BTCUSDT", bar(0), 0.1), ("BTCUSDT", bar(1), 0.2)]
    )
    newest = log.record(serve, T0)
    assert newest == {"BTCUSDT": bar(1)}
    # the next publish rebuilt bar 1 with another value and added bar 2
    serve = served_file(
        serve, [("BTCUSDT", bar(0), 0.1), ("BTCUSDT", bar(1), 0.25), ("BTCUSDT", bar(2), 0.3)]
    )
    log.record(serve, T0 + timedelta(minutes=5))
    con = duckdb.connect(str(log.path), read_only=True)
    try:
        rows = con.execute("select open_time, ret_1 from features_5m order by 1").fetchall()
    finally:
        con.close()
    assert rows == [(bar(0), 0.1), (bar(1), 0.2), (bar(2), 0.3)]  # bar 1 as first served


def test_verify_equal_missing_and_different_rows(tmp_path: Path) -> None:
    log = ServedLog(tmp_path / "served.duckdb")
    log.record(served_file(tmp_path / "serve.duckdb", [
        ("BTCUSDT", bar(0), 0.1), ("BTCUSDT", bar(1), None), ("BTCUSDT", bar(2), float("nan")),
        ("BTCUSDT", bar(3), 1e6),
    ]), T0)  # fmt: skip
    same = served_file(tmp_path / "batch.duckdb", [
        ("BTCUSDT", bar(0), 0.1 + 1e-12), ("BTCUSDT", bar(1), None),
        ("BTCUSDT", bar(2), float("nan")), ("BTCUSDT", bar(3), 1e6 + 1e-4),
    ])  # fmt: skip
    verdict = log.verify(same)
    assert verdict.ok and verdict.checked == {"features_5m": 4}
    other = served_file(tmp_path / "batch.duckdb", [
        ("BTCUSDT", bar(0), 0.1 + 1e-6), ("BTCUSDT", bar(1), 0.0), ("BTCUSDT", bar(2), 1.0),
    ])  # fmt: skip
    verdict = log.verify(other)
    assert not verdict.ok
    problems = sorted((m.open_time, m.problem.split(",")[0]) for m in verdict.mismatches)
    assert problems == [
        (bar(0), "column ret_1: served 0.1"),
        (bar(1), "column ret_1: served None"),
        (bar(2), "column ret_1: served nan"),
        (bar(3), "missing from the batch build"),
    ]


def test_a_new_feature_list_starts_the_log_anew_and_keeps_the_old(tmp_path: Path) -> None:
    log = ServedLog(tmp_path / "served.duckdb")
    log.record(served_file(tmp_path / "serve.duckdb", [("BTCUSDT", bar(0), 0.1)]), T0)
    later = T0 + timedelta(hours=1)
    log.record(
        served_file(tmp_path / "serve.duckdb", [("BTCUSDT", bar(0), 0.1)], extra=True), later
    )
    con = duckdb.connect(str(log.path), read_only=True)
    try:
        tables = sorted(
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        )
    finally:
        con.close()
    assert tables == ["features_5m", "features_5m_before_20250201T010000"]


def test_verify_without_a_log_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServedLogError, match="no served log"):
        ServedLog(tmp_path / "none.duckdb").verify(tmp_path / "batch.duckdb")
