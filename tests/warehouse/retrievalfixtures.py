"""A real warehouse for the retrieval tests (and bench/bench_retrieval.py): two symbols from
synthetic lakes, built by dbt with 2-day windows (tests/features' harness, ~15 s).

BTCUSDT has every dataset from 2025-01-01 for 8 days; ETHUSDT has Binance's alone, from
2025-01-02 for 7 days with 2025-01-07's spot klines missing (imputed in the warehouse). So
ETHUSDT's feature rows start a day after BTCUSDT's (its warm-up), and an ETHUSDT event in that
day must not see BTCUSDT's rows.

Also the brute-force reference the retrieval is checked against: for each event, scan every
row of its symbol for the latest `available_at` at or before the event time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from tests.features.feature_harness import SMALL_WINDOWS, FeatureWarehouse, Tables, synthetic
from tests.warehouse import lakefixtures

SYMBOLS = ("BTCUSDT", "ETHUSDT")
VARS: Mapping[str, object] = {
    **SMALL_WINDOWS,
    "symbols": list(SYMBOLS),
    "vendor_symbols": {
        "BTCUSDT": {
            "coin": "BTC",
            "coinapi_spot": "BINANCE_SPOT_BTC_USDT",
            "cryptoquant": "all_exchange",
        },
        "ETHUSDT": {
            "coin": "ETH",
            "coinapi_spot": "BINANCE_SPOT_ETH_USDT",
            "cryptoquant": "eth_exchange",
        },
    },
}
TIMESTAMP = pa.timestamp("us", tz="UTC")
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 9, tzinfo=UTC)
ETH_MISSING_DAY = date(2025, 1, 7)


def two_symbol_lake() -> Tables:
    tables = synthetic(8)
    eth = lakefixtures.synthetic_market(date(2025, 1, 2), 7, seed=11, symbol="ETHUSDT",
                                        vendors=False)  # fmt: skip
    key = ("spot-klines", "ETHUSDT", "1m")
    eth[key] = lakefixtures.without_day(eth[key], ETH_MISSING_DAY)
    return {**tables, **eth}


def build(root: Path, tables: Tables | None = None) -> FeatureWarehouse:
    """A fresh warehouse of `tables` (default: the two-symbol lake) under `root`."""
    warehouse = FeatureWarehouse(root, VARS)
    warehouse.build(tables if tables is not None else two_symbol_lake())
    return warehouse


def mart(database: Path, relation: str) -> pa.Table:
    con = duckdb.connect(str(database), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(
            f"select * from {relation} order by symbol, available_at"
        ).to_arrow_table()
    finally:
        con.close()


def random_events(
    n: int,
    seed: int,
    start: datetime = START - timedelta(days=1),
    end: datetime = END + timedelta(days=1),
    symbols: tuple[str, ...] = SYMBOLS,
) -> pa.Table:
    """`n` events at random microseconds in [start, end), random symbols, unsorted, about a
    tenth of them repeated (same symbol and time), with a label column to carry through."""
    rng = np.random.default_rng(seed)
    first = int(start.timestamp() * 1_000_000)
    span = int((end - start).total_seconds() * 1_000_000)
    times = first + rng.integers(0, span, n)
    # some times on a 5-minute boundary exactly (an available_at), some 1 µs before one
    on_grid = rng.uniform(0, 1, n) < 0.2
    times = np.where(on_grid, times - times % 300_000_000, times)
    just_before = rng.uniform(0, 1, n) < 0.1
    times = np.where(just_before & on_grid, times - 1, times)
    repeated = rng.uniform(0, 1, n) < 0.1
    source = rng.integers(0, n, n)
    chosen = rng.integers(0, len(symbols), n)
    times = np.where(repeated, times[source], times)
    chosen = np.where(repeated, chosen[source], chosen)
    return pa.table(
        {
            "label": pa.array(rng.normal(0, 1, n)),
            "symbol": pa.array([symbols[i] for i in chosen]),
            "event_time": pa.array(times, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        }
    )


def reference(
    rows: pa.Table,
    events: pa.Table,
    features: list[str],
    max_age: timedelta | None = None,
) -> list[dict[str, Any]]:
    """Brute force: for each event, every row of its symbol scanned for the latest
    available_at at or before the event time; features NULL when none, or older than max_age."""
    symbols = np.array(rows.column("symbol").to_pylist(), dtype=object)
    available = rows.column("available_at").cast(pa.int64()).to_numpy()
    values = {name: rows.column(name).to_pylist() for name in ["open_time", *features]}
    out = []
    for symbol, moment in zip(
        events.column("symbol").to_pylist(),
        events.column("event_time").cast(pa.int64()).to_pylist(),
        strict=True,
    ):
        # every row scanned (no sort order assumed): the latest available_at that qualifies
        candidates = np.flatnonzero((symbols == symbol) & (available <= moment))
        best = int(candidates[np.argmax(available[candidates])]) if len(candidates) else None
        if best is None:
            row: dict[str, Any] = {
                "feature_open_time": None, "feature_available_at": None,
                "feature_age_seconds": None, "feature_null_reason": "no_row_at_or_before_event",
            }  # fmt: skip
            row.update(dict.fromkeys(features))
            out.append(row)
            continue
        age_us = moment - int(available[best])
        stale = max_age is not None and age_us > max_age / timedelta(microseconds=1)
        row = {
            "feature_open_time": values["open_time"][best],
            "feature_available_at": datetime(1970, 1, 1, tzinfo=UTC)
            + timedelta(microseconds=int(available[best])),
            "feature_age_seconds": age_us / 1e6,
            "feature_null_reason": "older_than_max_age" if stale else None,
        }
        row.update({name: None if stale else values[name][best] for name in features})
        out.append(row)
    return out
