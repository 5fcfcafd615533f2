"""Mart rows from DuckDB and from BigQuery, and their differences (floats within 1e-9)."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

RTOL = 1e-9
ATOL = 1e-12  # values that should be 0 may differ by float summation order

Rows = tuple[list[str], list[dict[str, Any]]]


def duckdb_rows(database: Path, mart: str) -> Rows:
    con = duckdb.connect(str(database), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        relation = con.sql(f"select * from {mart}")
        columns = list(relation.columns)
        return columns, [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]
    finally:
        con.close()


def bigquery_rows(client: Any, project: str, dataset: str, mart: str) -> Rows:
    result = client.query(f"select * from `{project}.{dataset}.{mart}`").result()
    columns = [field.name for field in result.schema]
    return columns, [dict(row.items()) for row in result]


def same(expected: Any, actual: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    numbers = (int, float, Decimal)
    if isinstance(expected, numbers) and isinstance(actual, numbers):
        if isinstance(expected, bool) or isinstance(actual, bool):
            return expected == actual
        left, right = float(expected), float(actual)
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return math.isclose(left, right, rel_tol=RTOL, abs_tol=ATOL)
    if isinstance(expected, datetime) and isinstance(actual, datetime):
        return expected == actual  # both tz-aware UTC
    if isinstance(expected, date) and isinstance(actual, date):
        return expected == actual
    return bool(expected == actual)


def compare(mart: str, keys: tuple[str, ...], expected: Rows, actual: Rows) -> list[str]:
    """Differences between the DuckDB rows (expected) and the BigQuery rows (actual)."""
    (exp_columns, exp_rows), (act_columns, act_rows) = expected, actual
    if exp_columns != act_columns:
        return [f"{mart}: columns differ: duckdb {exp_columns} vs bigquery {act_columns}"]
    by_key_exp = {tuple(row[k] for k in keys): row for row in exp_rows}
    by_key_act = {tuple(row[k] for k in keys): row for row in act_rows}
    problems = []
    if len(by_key_exp) != len(exp_rows) or len(by_key_act) != len(act_rows):
        problems.append(f"{mart}: duplicate keys ({len(exp_rows)} / {len(act_rows)} rows)")
    only_exp = sorted(set(by_key_exp) - set(by_key_act))
    only_act = sorted(set(by_key_act) - set(by_key_exp))
    if only_exp or only_act:
        problems.append(
            f"{mart}: keys only on duckdb {len(only_exp)} (first {only_exp[:3]}), "
            f"only on bigquery {len(only_act)} (first {only_act[:3]})"
        )
    for column in exp_columns:
        bad = [
            key for key, row in by_key_exp.items()
            if key in by_key_act and not same(row[column], by_key_act[key][column])
        ]  # fmt: skip
        if bad:
            first = bad[0]
            problems.append(
                f"{mart}.{column}: {len(bad)} rows differ, first at {first}: duckdb "
                f"{by_key_exp[first][column]!r}, bigquery {by_key_act[first][column]!r}"
            )
    return problems
