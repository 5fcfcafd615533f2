"""Harness for the feature and label tests: a synthetic lake, `dbt run`, and table snapshots.

One `FeatureWarehouse` keeps one data folder and one dbt target folder for all its builds, so
dbt parses the project once and every later build re-uses that parse (a new data folder or
new vars would mean a full parse, ~10 s). Between builds the lake is replaced whole and the
DuckDB file deleted, so each build is a fresh full build unless a test says otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lake.schemas import DATASETS
from tests.warehouse import lakefixtures

REPO = Path(__file__).resolve().parents[2]

DBT = Path(sys.executable).with_name("dbt")
MARTS = ("features_5m", "features_1h", "labels_5m", "training_set_5m", "latest_features")
SELECT = [
    "--select",
    "+features_5m",
    "+features_1h",
    "+labels_5m",
    "training_set_5m",
    "latest_features",
]
# 2-day windows: warm-up is 3 days instead of 31, so an 8-day lake leaves 5 days of rows.
SMALL_WINDOWS = {"features_window_seconds": 2 * 86_400}
KLINE_SECONDS = {"1m": 60}

Tables = dict[lakefixtures.TableKey, pa.Table]


def synthetic(days: int, start: date = date(2025, 1, 1), seed: int = 7) -> Tables:
    return lakefixtures.synthetic_market(start, days, seed=seed)


def _times_us(table: pa.Table, column: str) -> np.ndarray:
    return pc.cast(table.column(column).combine_chunks(), pa.int64()).to_numpy(zero_copy_only=False)


def _us(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def cut_at(tables: Tables, cut: datetime) -> Tables:
    """The lake as it stood at `cut`: rows published after it dropped (the day of `cut`
    truncated, later days gone). A kline is published at its close (open + interval); funding
    and open interest at their own time stamp, which is no later than their available_at;
    other vendors' rows at their available_at (a FRED or CryptoQuant vintage published after
    `cut` is not in the lake yet, while the earlier vintages of the same day are)."""
    out: Tables = {}
    cut_us = _us(cut)
    for key, table in tables.items():
        name, _symbol, interval = key
        dataset = DATASETS[name]
        if "available_at" in table.column_names:
            published = _times_us(table, "available_at")
        else:
            times = _times_us(table, dataset.time_column)
            published = times + KLINE_SECONDS.get(interval or "", 0) * 1_000_000
        out[key] = table.filter(pa.array(published <= cut_us))
    return out


def perturb_after(tables: Tables, cut: datetime, seed: int = 99) -> Tables:
    """Every row stamped after `cut` changed wildly but validly: OHLC scaled per row by a
    factor in [0.3, 3] (invariants kept), volumes x [0, 20], funding x [-50, 50], open interest
    x [0.2, 5], other vendors' values x [0.2, 5] (by their available_at: a later vintage of an
    old observation is perturbed too)."""
    rng = np.random.default_rng(seed)
    cut_us = _us(cut)
    out: Tables = {}
    for key, table in tables.items():
        name = key[0]
        dataset = DATASETS[name]
        stamp = "available_at" if "available_at" in table.column_names else dataset.time_column
        after = _times_us(table, stamp) > cut_us
        n = table.num_rows
        columns = {}
        if name.endswith("klines"):
            price = np.where(after, rng.uniform(0.3, 3.0, n), 1.0)
            size = np.where(after, rng.uniform(0.0, 20.0, n), 1.0)
            taker = np.where(after, rng.uniform(0.0, 1.0, n), 1.0)
            volume = _floats(table, "volume") * size
            columns = {
                **{c: _floats(table, c) * price for c in ("open", "high", "low", "close")},
                "volume": volume,
                "quote_volume": _floats(table, "quote_volume") * size * price,
                "taker_buy_base_volume": np.where(
                    after, volume * taker, _floats(table, "taker_buy_base_volume")
                ),
                "taker_buy_quote_volume": np.where(
                    after, volume * taker * _floats(table, "close") * price,
                    _floats(table, "taker_buy_quote_volume"),
                ),
            }  # fmt: skip
        elif name == "funding":
            columns = {
                "funding_rate": _floats(table, "funding_rate")
                * np.where(after, rng.uniform(-50.0, 50.0, n), 1.0)
            }
        elif name == "open-interest":
            factor = np.where(after, rng.uniform(0.2, 5.0, n), 1.0)
            columns = {
                "sum_open_interest": _floats(table, "sum_open_interest") * factor,
                "sum_open_interest_value": _floats(table, "sum_open_interest_value") * factor,
            }
        elif "available_at" in table.column_names:
            # other vendors: every row published after the cut, each value x [0.2, 5]
            columns = {
                field.name: _floats(table, field.name)
                * np.where(after, rng.uniform(0.2, 5.0, n), 1.0)
                for field in table.schema
                if (pa.types.is_decimal(field.type) or pa.types.is_floating(field.type))
            }
        out[key] = _replace(table, columns, after)
    return out


def _floats(table: pa.Table, column: str) -> np.ndarray:
    return pc.cast(table.column(column).combine_chunks(), pa.float64()).to_numpy(
        zero_copy_only=False
    )


def _replace(table: pa.Table, columns: Mapping[str, np.ndarray], mask: np.ndarray) -> pa.Table:
    arrays = []
    for field in table.schema:
        column = table.column(field.name).combine_chunks()
        if field.name in columns:
            digits = field.type.scale if pa.types.is_decimal(field.type) else 8
            values = np.round(columns[field.name], digits)
            # from_pandas: a NULL value (FRED's ".") stays NULL, not NaN
            new = pa.array(values, type=pa.float64(), from_pandas=True).cast(field.type, safe=False)
            column = pc.if_else(pa.array(mask), new, column)
        arrays.append(column)
    return pa.table(arrays, schema=table.schema)


@dataclass
class FeatureWarehouse:
    root: Path
    dbt_vars: Mapping[str, object]
    project: Path = REPO  # the dbt project dbt runs in (a copy, to test an edit of it)

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def database(self) -> Path:
        return self.root / "warehouse" / "build.duckdb"

    def land(self, tables: Tables, *, replace: bool = True) -> None:
        """Write `tables` as the lake; `replace=False` rewrites only their days' partitions."""
        if replace and self.lake.exists():
            shutil.rmtree(self.lake)
        lakefixtures.land(self.lake, tables)

    def reset_database(self) -> None:
        if self.database.exists():
            self.database.unlink()
        wal = self.database.with_name(self.database.name + ".wal")
        if wal.exists():
            wal.unlink()

    def dbt(self, *args: str, expect_ok: bool = True) -> str:
        """Run dbt here; its output. Raise unless it succeeds (or, expect_ok=False, fails)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
        env.update(
            BTCFS_DATA_DIR=str(self.root),
            DBT_TARGET_PATH=str(self.root / "target"),
            DBT_LOG_PATH=str(self.root / "logs"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        command = [str(DBT), *args, "--vars", json.dumps(dict(self.dbt_vars))]
        proc = subprocess.run(
            command, cwd=self.project, env=env, capture_output=True, text=True, timeout=1200
        )
        output = proc.stdout + proc.stderr
        if expect_ok and proc.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed:\n{output[-6000:]}")
        if not expect_ok and proc.returncode == 0:
            raise AssertionError(f"dbt {' '.join(args)} unexpectedly passed:\n{output[-3000:]}")
        return output

    def build(self, tables: Tables) -> dict[str, pd.DataFrame]:
        """A fresh full build of the marts from `tables`; their contents."""
        self.land(tables)
        self.reset_database()
        self.dbt("run", *SELECT)
        return self.snapshot()

    def snapshot(self, names: tuple[str, ...] = MARTS) -> dict[str, pd.DataFrame]:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            keys = {"latest_features": "symbol, bar_interval"}
            return {
                name: con.sql(
                    f"select * from {name} order by {keys.get(name, 'symbol, open_time')}"
                )
                .to_arrow_table()
                .to_pandas()
                for name in names
            }
        finally:
            con.close()


def assert_same_rows(
    expected: pd.DataFrame, actual: pd.DataFrame, *, what: str, rtol: float = 1e-9
) -> None:
    """Same keys in the same order and every column equal (floats within rtol; NULL == NULL)."""
    assert list(actual.columns) == list(expected.columns), what
    assert len(actual) == len(expected), (
        f"{what}: {len(actual)} rows, expected {len(expected)}; "
        f"keys only in expected: {_key_diff(expected, actual)[:5]}, "
        f"only in actual: {_key_diff(actual, expected)[:5]}"
    )
    for column in expected.columns:
        left = expected[column].to_numpy()
        right = actual[column].to_numpy()
        if pd.api.types.is_float_dtype(expected[column].dtype):
            close = np.isclose(
                right.astype(float), left.astype(float), rtol=rtol, atol=1e-12, equal_nan=True
            )
            if not close.all():
                first = int(np.flatnonzero(~close)[0])
                raise AssertionError(
                    f"{what}: column {column} differs on {int((~close).sum())} rows, first at "
                    f"{expected.iloc[first]['open_time']}: "
                    f"expected {left[first]!r}, got {right[first]!r}"
                )
        else:
            same = pd.Series(left).equals(pd.Series(right))
            assert same, f"{what}: column {column} differs"


def _key_diff(left: pd.DataFrame, right: pd.DataFrame) -> list[str]:
    keys = set(zip(right["symbol"], right["open_time"], strict=True))
    return [
        f"{s} {t}" for s, t in zip(left["symbol"], left["open_time"], strict=True)
        if (s, t) not in keys
    ]  # fmt: skip


def rows_known_at(frame: pd.DataFrame, cut: datetime) -> pd.DataFrame:
    return frame[frame["available_at"] <= pd.Timestamp(cut)].reset_index(drop=True)


def optional_features() -> set[str]:
    """features_5m's optional columns (the vendors set), from its declaration."""
    from ml.dataset import optional_feature_columns

    return optional_feature_columns()


def later_vintage(
    tables: Tables,
    key: lakefixtures.TableKey,
    *,
    observation: date,
    seen: datetime,
    **values: object,
) -> Tables:
    """`tables` with one more vintage of `observation` in the daily table `key`, first seen
    (and available) at `seen`: a revision landed later. `values` sets its columns (e.g.
    metric="netflow_total", value=1e6)."""
    table = tables[key]
    column = "observation_date" if "observation_date" in table.column_names else "trade_date"
    dates = table.column(column).to_pylist()
    matches = [
        i for i, d in enumerate(dates)
        if d == observation and all(table.column(k)[i].as_py() == v for k, v in values.items()
                                    if k != "value")
    ]  # fmt: skip
    if not matches:
        raise ValueError(f"no row of {key} for {observation} {values}")
    row = {name: table.column(name)[matches[-1]].as_py() for name in table.column_names}
    row.update(values)
    for name in ("first_seen_at", "available_at", "ingested_at"):
        if name in row:
            row[name] = seen
    extra = pa.Table.from_pylist([row], schema=table.schema)
    return {**tables, key: pa.concat_tables([table, extra])}
