"""Fixture lakes for warehouse tests and benchmarks, written through `lake.store.Lake`.

Two sources of rows:

* the real Binance files in ``../shared/data`` (`real_*` functions; `REAL_DATA` is None when
  the folder is absent, and tests skip with `REAL_DATA_REASON`);
* a small seeded synthetic market covering all six Binance lake datasets and, by default, every
  other vendor's (`synthetic_market`; `vendors=False` for Binance only). Vendor rows follow the
  lake contract of `lake.schemas.VENDOR_DATASETS`: `available_at` as the loaders compute it,
  `is_synthetic` true, daily series (FRED, Alpha Vantage, CryptoQuant) from 60 days before the
  start with revised vintages (FRED every 7th observation, CryptoQuant every 3rd day).

`land(lake_root, tables)` writes ``{(dataset_name, symbol, interval): table}`` one partition
per UTC day, exactly as a loader would. The `with_*` helpers spoil a table the way a bad
vendor file would (duplicates, a missing day, high < low, zero-volume bars).

Reuse from another test folder (or bench/, drills/): ``from tests.warehouse import lakefixtures``.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.binance.parse import KLINE_FIELDS
from ingest.timeutil import normalise_epoch_us
from lake.schemas import DATASETS
from lake.store import Lake, PartitionKey

REPO = Path(__file__).resolve().parents[2]
_SHARED = REPO.parent / "shared" / "data"
REAL_DATA: Path | None = _SHARED if (_SHARED / "binance").is_dir() else None
REAL_DATA_REASON = f"real market data not found at {_SHARED} (../shared/data from the repo root)"

# Landing time of every fixture row: now, so lake freshness gates pass.
INGESTED_AT = datetime.now(UTC).replace(microsecond=0)
US_PER_MINUTE = 60_000_000
US_PER_DAY = 86_400_000_000

_DECIMAL_KLINE_COLUMNS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)

TableKey = tuple[
    str, str, str | None
]  # (dataset name as in lake.schemas.DATASETS, symbol, interval)


def _epoch_to_timestamps(values: np.ndarray) -> pa.Array:
    return pa.array(normalise_epoch_us(values), type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _decimal_from_strings(values: Iterable[str], precision: int = 28) -> pa.Array:
    return pa.array(list(values), type=pa.string()).cast(pa.decimal128(precision, 8))


def _decimal_from_floats(values: np.ndarray, digits: int, precision: int = 28) -> pa.Array:
    return pa.array(np.round(values, digits), type=pa.float64()).cast(
        pa.decimal128(precision, 8), safe=False
    )


def _provenance(rows: int, source: str = "archive") -> dict[str, pa.Array]:
    return {
        "source": pa.array([source] * rows, type=pa.string()),
        "ingested_at": pa.array([INGESTED_AT] * rows, type=pa.timestamp("us", tz="UTC")),
    }


# ---------------------------------------------------------------------------- real files


def _require_real() -> Path:
    if REAL_DATA is None:
        raise FileNotFoundError(REAL_DATA_REASON)
    return REAL_DATA


def real_spot_days() -> list[date]:
    """Days for which ../shared/data holds a spot 1m file."""
    folder = _require_real() / "binance" / "spot" / "klines" / "1m"
    return sorted(
        date.fromisoformat(p.name[len("BTCUSDT-1m-") : -len(".csv.gz")])
        for p in folder.glob("*.csv.gz")
    )


def real_spot_1m(days: Iterable[date] | None = None) -> pa.Table:
    """Real BTCUSDT spot 1m klines (archive CSVs) as a KLINE_SCHEMA table, values exact."""
    folder = _require_real() / "binance" / "spot" / "klines" / "1m"
    wanted = sorted(days) if days is not None else real_spot_days()
    columns: dict[str, list[str]] = {name: [] for name in KLINE_FIELDS}
    for day in wanted:
        path = folder / f"BTCUSDT-1m-{day.isoformat()}.csv.gz"
        with gzip.open(path, "rt") as handle:
            for line in handle:
                for name, value in zip(KLINE_FIELDS, line.rstrip("\n").split(","), strict=True):
                    columns[name].append(value)
    rows = len(columns["open_time"])
    data: dict[str, pa.Array] = {
        "open_time": _epoch_to_timestamps(np.array(columns["open_time"], dtype=np.int64)),
        "close_time": _epoch_to_timestamps(np.array(columns["close_time"], dtype=np.int64)),
        "trade_count": pa.array(np.array(columns["trade_count"], dtype=np.int64)),
    }
    for name in _DECIMAL_KLINE_COLUMNS:
        data[name] = _decimal_from_strings(columns[name])
    data.update(_provenance(rows))
    return _conform("spot-klines", pa.table(data))


def real_spot_1h_api() -> list[dict[str, str]]:
    """The 165 Binance 1h bars (GET /api/v3/klines, pandas-printed) as dicts of strings."""
    path = (
        _require_real()
        / "binance"
        / "spot"
        / "klines"
        / "1h"
        / "BTCUSDT-1h-api-2025-05-19_2025-05-25.csv"
    )
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:] if line]


def real_funding() -> pa.Table:
    """Real funding history 2025-05-01..2025-12-01 (archive schema, 8 h, no mark price)."""
    path = (
        _require_real() / "binance" / "futures" / "um" / "BTCUSDT-funding-2025-05-01_2025-12-01.csv"
    )
    lines = [line.split(",") for line in path.read_text().splitlines()[1:] if line]
    rows = len(lines)
    table = pa.table(
        {
            "funding_time": _epoch_to_timestamps(np.array([int(r[0]) for r in lines])),
            "funding_rate": _decimal_from_strings((r[2] for r in lines), precision=18),
            "mark_price": pa.nulls(rows, pa.decimal128(28, 8)),
            "funding_interval_hours": pa.array([int(r[1]) for r in lines], type=pa.int32()),
            **_provenance(rows),
        }
    )
    return _conform("funding", table)


def real_open_interest_5m() -> pa.Table:
    """Real 5m open interest 2024-05-09 11:00 .. 2024-05-11 08:00 (openInterestHist)."""
    path = (
        _require_real() / "binance" / "futures" / "um" / "BTCUSDT-oi-5m-2024-05-09_2024-05-11.csv"
    )
    lines = [line.split(",") for line in path.read_text().splitlines()[1:] if line]
    rows = len(lines)
    table = pa.table(
        {
            "measured_at": _epoch_to_timestamps(np.array([int(r[0]) for r in lines])),
            "sum_open_interest": _decimal_from_strings(r[1] for r in lines),
            "sum_open_interest_value": _decimal_from_strings(r[2] for r in lines),
            **{
                name: pa.nulls(rows, pa.float64())
                for name in (
                    "count_toptrader_long_short_ratio",
                    "sum_toptrader_long_short_ratio",
                    "count_long_short_ratio",
                    "sum_taker_long_short_vol_ratio",
                )
            },
            **_provenance(rows, source="rest"),
        }
    )
    return _conform("open-interest", table)


# ----------------------------------------------------------------------- synthetic market


@dataclass(frozen=True)
class SyntheticMarket:
    """A seeded random-walk market; every table is exact DECIMAL like Binance's strings."""

    start: date
    days: int
    seed: int = 7
    symbol: str = "BTCUSDT"
    start_price: float = 60_000.0
    vendors: bool = True

    def minutes(self) -> np.ndarray:
        first = int(
            (datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)).timestamp()
        )
        return first * 1_000_000 + np.arange(self.days * 1440, dtype=np.int64) * US_PER_MINUTE

    def tables(self) -> dict[TableKey, pa.Table]:
        rng = np.random.default_rng(self.seed)
        open_us = self.minutes()
        n = len(open_us)
        # Log-price random walk, 5 bp per minute; OHLC consistent by construction.
        steps = rng.normal(0.0, 0.0005, n)
        close = self.start_price * np.exp(np.cumsum(steps))
        open_ = np.concatenate([[self.start_price], close[:-1]])
        wick_up = np.abs(rng.normal(0.0, 0.0003, n))
        wick_dn = np.abs(rng.normal(0.0, 0.0003, n))
        high = np.maximum(open_, close) * (1 + wick_up)
        low = np.minimum(open_, close) * (1 - wick_dn)
        volume = rng.gamma(2.0, 10.0, n) + 0.001
        taker_share = rng.uniform(0.2, 0.8, n)
        trades = rng.poisson(800, n) + 1
        spot = self._klines(open_us, open_, high, low, close, volume, taker_share, trades)

        basis = 1 + 0.0004 + 0.0002 * np.sin(np.arange(n) / 720.0)
        perp = self._klines(
            open_us, open_ * basis, high * basis, low * basis, close * basis,
            volume * 8, taker_share[::-1].copy(), trades * 3,
        )  # fmt: skip
        mark = self._klines(
            open_us, open_ * basis, high * basis, low * basis, close * basis,
            np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64),
        )  # fmt: skip
        premium_level = basis - 1
        premium = self._klines(
            open_us, premium_level, premium_level * 1.1, premium_level * 0.9, premium_level,
            np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64), digits=8,
        )  # fmt: skip

        # Funding every 8 h with Binance's 0-16 ms jitter.
        hours = open_us[(open_us % (8 * 3600 * 1_000_000)) == 0]
        jitter_ms = rng.integers(0, 17, len(hours))
        funding_rate = np.clip(rng.normal(0.0001, 0.00005, len(hours)), -0.00375, 0.00375)
        funding = pa.table(
            {
                "funding_time": pa.array(hours + jitter_ms * 1_000).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                "funding_rate": _decimal_from_floats(funding_rate, 8, precision=18),
                "mark_price": _decimal_from_floats(
                    close[np.searchsorted(open_us, hours)] * basis[0], 1
                ),
                "funding_interval_hours": pa.array([8] * len(hours), type=pa.int32()),
                **_provenance(len(hours), source="rest"),
            }
        )

        # Open interest every 5 minutes.
        five = open_us[(open_us % (5 * US_PER_MINUTE)) == 0]
        oi = 80_000 + np.cumsum(rng.normal(0.0, 40.0, len(five)))
        oi_value = oi * close[np.searchsorted(open_us, five)]
        rows = len(five)
        open_interest = pa.table(
            {
                "measured_at": pa.array(five).cast(pa.timestamp("us", tz="UTC")),
                "sum_open_interest": _decimal_from_floats(oi, 3),
                "sum_open_interest_value": _decimal_from_floats(oi_value, 5),
                "count_toptrader_long_short_ratio": pa.array(rng.uniform(0.8, 1.2, rows)),
                "sum_toptrader_long_short_ratio": pa.array(rng.uniform(0.8, 1.2, rows)),
                "count_long_short_ratio": pa.array(rng.uniform(0.8, 1.2, rows)),
                "sum_taker_long_short_vol_ratio": pa.array(rng.uniform(0.8, 1.2, rows)),
                **_provenance(rows, source="rest"),
            }
        )
        sym = self.symbol
        binance = {
            ("spot-klines", sym, "1m"): spot,
            ("perp-klines", sym, "1m"): perp,
            ("mark-klines", sym, "1m"): mark,
            ("premium-klines", sym, "1m"): premium,
            ("funding", sym, None): _conform("funding", funding),
            ("open-interest", sym, "5m"): _conform("open-interest", open_interest),
        }
        if not self.vendors:
            return binance
        # A separate generator: the Binance tables stay the same with or without vendors.
        return {**binance, **self._vendor_tables(open_us, close, oi_value, five)}

    def _vendor_tables(
        self, open_us: np.ndarray, close: np.ndarray, oi_value: np.ndarray, five: np.ndarray
    ) -> dict[TableKey, pa.Table]:
        rng = np.random.default_rng(self.seed + 1_000)
        # As the loaders land them: every CoinGlass dataset under the warehouse symbol (the
        # aggregates were asked for the coin), CryptoQuant per exchange.
        cg_symbol = self.symbol
        rows = len(five)
        five_close = close.reshape(-1, 5)[:, -1]
        bar_close = five + 5 * US_PER_MINUTE

        def ohlc(level: np.ndarray, spread: float, digits: int) -> dict[str, pa.Array]:
            wiggle = np.abs(rng.normal(0.0, spread, (2, len(level)))) * np.abs(level)
            previous = np.concatenate([[level[0]], level[:-1]])
            return {
                "open": _decimal_from_floats(previous, digits),
                "high": _decimal_from_floats(np.maximum(previous, level) + wiggle[0], digits),
                "low": _decimal_from_floats(np.minimum(previous, level) - wiggle[1], digits),
                "close": _decimal_from_floats(level, digits),
            }

        def intraday(
            values: dict[str, pa.Array], times: np.ndarray = five, available: np.ndarray = bar_close
        ) -> pa.Table:
            return pa.table(
                {
                    "open_time": pa.array(times).cast(pa.timestamp("us", tz="UTC")),
                    **values,
                    **_vendor_provenance(len(times), available),
                }
            )

        def flow(scale: float) -> dict[str, pa.Array]:
            return {
                "taker_buy_volume_usd": _decimal_from_floats(rng.gamma(2.0, scale, rows), 2),
                "taker_sell_volume_usd": _decimal_from_floats(rng.gamma(2.0, scale, rows), 2),
            }

        oi_agg = oi_value * 2.5 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, rows)))
        funding_pct = 0.01 + 0.004 * np.sin(np.arange(rows) / 500.0) + rng.normal(0.0, 0.0005, rows)
        # Liquidations: mostly none, bursts of a few bars.
        burst = rng.uniform(0, 1, (2, rows)) < 0.15
        liquidations = {
            "long_liquidation_usd": _decimal_from_floats(
                np.where(burst[0], rng.gamma(1.5, 40_000.0, rows), 0.0), 2
            ),
            "short_liquidation_usd": _decimal_from_floats(
                np.where(burst[1], rng.gamma(1.5, 40_000.0, rows), 0.0), 2
            ),
        }
        price = five_close * (1 + rng.normal(0.0, 2e-5, rows))
        tables: dict[TableKey, pa.Table] = {
            ("cg-price-ohlc", self.symbol, "5m"): intraday(
                {
                    **ohlc(price, 3e-4, 2),
                    "volume_usd": _decimal_from_floats(rng.gamma(2.0, 5e6, rows), 2),
                }
            ),
            ("cg-oi-aggregated", cg_symbol, "5m"): intraday(ohlc(oi_agg, 1e-4, 2)),
            ("cg-funding-oi-weighted", cg_symbol, "5m"): intraday(ohlc(funding_pct, 1e-3, 6)),
            ("cg-funding-vol-weighted", cg_symbol, "5m"): intraday(
                ohlc(funding_pct * 0.9 + 0.001, 1e-3, 6)
            ),
            ("cg-taker-volume", self.symbol, "5m"): intraday(flow(2e6)),
            ("cg-taker-volume-agg-futures", cg_symbol, "5m"): intraday(flow(1e7)),
            ("cg-taker-volume-agg-spot", cg_symbol, "5m"): intraday(flow(3e6)),
            ("cg-liquidations", cg_symbol, "5m"): intraday(liquidations),
        }
        for venue, scale in (("BINANCE_SPOT_BTC_USDT", 1.0), ("BINANCEFTS_PERP_BTC_USDT", 1.0004)):
            level = five_close * scale * (1 + rng.normal(0.0, 1e-5, rows))
            tables[("coinapi-ohlcv", venue, "5m")] = intraday(
                {
                    "close_time": pa.array(bar_close).cast(pa.timestamp("us", tz="UTC")),
                    "first_trade_at": pa.array(five + 1_000_000).cast(pa.timestamp("us", tz="UTC")),
                    "last_trade_at": pa.array(bar_close - 1_000_000).cast(
                        pa.timestamp("us", tz="UTC")
                    ),
                    **ohlc(level, 2e-4, 2),
                    "volume": _decimal_from_floats(rng.gamma(2.0, 50.0, rows), 5),
                    "trade_count": pa.array(rng.poisson(4000, rows) + 1, type=pa.int64()),
                }
            )
        hours = open_us[(open_us % (8 * 3600 * 1_000_000)) == 0]
        tables[("coinapi-funding", "BINANCEFTS_PERP_BTC_USDT", None)] = pa.table(
            {
                "funding_time": pa.array(hours).cast(pa.timestamp("us", tz="UTC")),
                "funding_rate": _decimal_from_floats(
                    rng.normal(0.0001, 0.00005, len(hours)), 8, precision=18
                ),
                **_vendor_provenance(len(hours), hours + US_PER_MINUTE),
            }
        )
        days = [self.start + timedelta(days=d) for d in range(-60, self.days)]
        business = [d for d in days if d.weekday() < 5]
        tables.update(self._fred(rng, business))
        tables.update(self._alphavantage(rng, business))
        tables[("cq-daily", "all_exchange", None)] = self._cryptoquant(rng, days)
        return {key: _conform(key[0], table) for key, table in tables.items()}

    @staticmethod
    def _fred(rng: np.random.Generator, business: list[date]) -> dict[TableKey, pa.Table]:
        """Three series; every 7th observation revised by a second vintage 3 days later."""
        out: dict[TableKey, pa.Table] = {}
        levels = {
            "DTWEXBGS": (120.0, 0.003, True),
            "DGS10": (4.2, 0.01, False),
            "VIXCLS": (15.0, 0.05, True),
        }
        for series, (start, step, relative) in levels.items():
            moves = rng.normal(0.0, step, len(business))
            values = start * np.exp(np.cumsum(moves)) if relative else start + np.cumsum(moves)
            rows: dict[str, list[object]] = {
                k: []
                for k in (
                    "observation_date",
                    "realtime_start",
                    "realtime_end",
                    "value",
                    "available_at",
                )
            }
            for index, (day, value) in enumerate(zip(business, values, strict=True)):
                published = _next_weekday(day)
                revised = index % 7 == 3
                vintages: list[tuple[date, float | None]] = [(published, round(float(value), 4))]
                if revised:
                    vintages.append((published + timedelta(days=3), round(float(value) * 1.01, 4)))
                if series == "VIXCLS" and index % 11 == 5:
                    vintages = [(published, None)]  # "." in FRED: a holiday, NULL, never 0
                for number, (start_day, observed) in enumerate(vintages):
                    last = number == len(vintages) - 1
                    rows["observation_date"].append(day)
                    rows["realtime_start"].append(start_day)
                    rows["realtime_end"].append(
                        date(9999, 12, 31) if last else vintages[number + 1][0] - timedelta(days=1)
                    )
                    rows["value"].append(observed)
                    # the FRED rule: the day after the vintage day (a business day), 06:00 UTC
                    rows["available_at"].append(
                        datetime.combine(start_day + timedelta(days=1), datetime.min.time(), UTC)
                        + timedelta(hours=6)
                    )
            out[("fred-series", series, None)] = _daily_table(rows)
        return out

    def _alphavantage(
        self, rng: np.random.Generator, business: list[date]
    ) -> dict[TableKey, pa.Table]:
        out: dict[TableKey, pa.Table] = {}
        for symbol, level in (("SPY", 580.0), ("UUP", 28.0)):
            close = level * np.exp(np.cumsum(rng.normal(0.0, 0.008, len(business))))
            opened = close * (1 + rng.normal(0.0, 0.002, len(business)))
            out[("av-daily", symbol, None)] = _daily_table(
                {
                    "trade_date": business,
                    "open": list(np.round(opened, 2)),
                    "high": list(np.round(np.maximum(opened, close) * 1.004, 2)),
                    "low": list(np.round(np.minimum(opened, close) * 0.996, 2)),
                    "close": list(np.round(close, 2)),
                    "volume": list(rng.integers(10**6, 10**8, len(business))),
                    # after the US close (21:00 UTC) plus a margin
                    "available_at": [
                        datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=22)
                        for d in business
                    ],
                }
            )
        return out

    @staticmethod
    def _cryptoquant(rng: np.random.Generator, days: list[date]) -> pa.Table:
        """Four daily metrics; every 3rd day's values revised two days after first seen."""
        rows: dict[str, list[object]] = {
            k: [] for k in ("observation_date", "metric", "value", "first_seen_at", "available_at")
        }
        reserve = 2.4e6 * np.exp(np.cumsum(rng.normal(0.0, 0.002, len(days))))
        metrics = {
            "netflow_total": rng.normal(0.0, 3000.0, len(days)),
            "reserve": reserve,
            "reserve_usd": reserve * 60_000.0,
            "whale_ratio": np.clip(rng.normal(0.45, 0.08, len(days)), 0.05, 0.95),
        }
        for index, day in enumerate(days):
            seen = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + timedelta(
                hours=1, minutes=int(rng.integers(0, 50))
            )
            for metric, values in metrics.items():
                vintages = [(seen, float(values[index]))]
                if index % 3 == 1:
                    vintages.append((seen + timedelta(days=2), float(values[index]) * 1.3 + 50.0))
                for first_seen, value in vintages:
                    rows["observation_date"].append(day)
                    rows["metric"].append(metric)
                    rows["value"].append(value)
                    rows["first_seen_at"].append(first_seen)
                    rows["available_at"].append(first_seen)
        return _daily_table(rows)

    @staticmethod
    def _klines(
        open_us: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        taker_share: np.ndarray,
        trades: np.ndarray,
        digits: int = 2,
    ) -> pa.Table:
        rows = len(open_us)
        price = {
            k: np.round(v, digits)
            for k, v in {"open": open_, "high": high, "low": low, "close": close}.items()
        }
        # Rounding must not break OHLC: widen high/low to cover the rounded open and close.
        price["high"] = np.maximum.reduce([price["high"], price["open"], price["close"]])
        price["low"] = np.minimum.reduce([price["low"], price["open"], price["close"]])
        vol = np.round(volume, 5)
        taker_base = np.round(vol * taker_share, 5)
        quote = np.round(vol * price["close"], 8)
        taker_quote = np.round(taker_base * price["close"], 8)
        table = pa.table(
            {
                "open_time": pa.array(open_us).cast(pa.timestamp("us", tz="UTC")),
                "close_time": pa.array(open_us + US_PER_MINUTE - 1_000).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                **{k: _decimal_from_floats(v, digits) for k, v in price.items()},
                "volume": _decimal_from_floats(vol, 5),
                "quote_volume": _decimal_from_floats(quote, 8),
                "trade_count": pa.array(np.asarray(trades, dtype=np.int64)),
                "taker_buy_base_volume": _decimal_from_floats(taker_base, 5),
                "taker_buy_quote_volume": _decimal_from_floats(taker_quote, 8),
                **_provenance(rows),
            }
        )
        return _conform("spot-klines", table)


def synthetic_market(
    start: date, days: int, *, seed: int = 7, symbol: str = "BTCUSDT", vendors: bool = True
) -> dict[TableKey, pa.Table]:
    """Every lake dataset for `days` days of a seeded synthetic market (Binance only when
    `vendors` is false; the Binance tables are the same either way)."""
    return SyntheticMarket(
        start=start, days=days, seed=seed, symbol=symbol, vendors=vendors
    ).tables()


def _next_weekday(day: date) -> date:
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


def _vendor_provenance(rows: int, available_us: np.ndarray | list[datetime]) -> dict[str, pa.Array]:
    available = (
        pa.array(available_us).cast(pa.timestamp("us", tz="UTC"))
        if isinstance(available_us, np.ndarray)
        else pa.array(available_us, type=pa.timestamp("us", tz="UTC"))
    )
    return {
        "available_at": available,
        "is_synthetic": pa.array([True] * rows, type=pa.bool_()),
        **_provenance(rows, source="rest"),
    }


def _daily_table(columns: Mapping[str, Sequence[object]]) -> pa.Table:
    """A daily vendor table from Python lists (decimals via strings, provenance added)."""
    data: dict[str, pa.Array] = {}
    for name, values in columns.items():
        if name in ("open", "high", "low", "close"):
            data[name] = _decimal_from_strings(f"{v:.8f}" for v in values)
        elif name == "available_at":
            continue
        else:
            data[name] = pa.array(values)
    data.update(_vendor_provenance(len(columns["available_at"]), columns["available_at"]))  # type: ignore[arg-type]
    return pa.table(data)


# ----------------------------------------------------------------------- landing and faults


def _conform(dataset_name: str, table: pa.Table) -> pa.Table:
    schema = DATASETS[dataset_name].schema
    return table.select(schema.names).cast(schema)


def _days_of(times: pa.Array) -> np.ndarray:
    if pa.types.is_date32(times.type):
        return pc.cast(times, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    micros = pc.cast(times, pa.int64()).to_numpy(zero_copy_only=False)
    return micros // US_PER_DAY


def land(
    lake_root: Path,
    tables: Mapping[TableKey, pa.Table],
    *,
    days: Iterable[date] | None = None,
    expected_rows: Mapping[str, int] | None = None,
) -> int:
    """Write each table as one partition per UTC day (optionally only `days`); return the count."""
    lake = Lake(Path(lake_root))
    only = (
        {d.toordinal() - date(1970, 1, 1).toordinal() for d in days} if days is not None else None
    )
    written = 0
    for (name, symbol, interval), table in tables.items():
        dataset = DATASETS[name]
        day_index = _days_of(table.column(dataset.time_column).combine_chunks())
        for day_number in np.unique(day_index):
            if only is not None and int(day_number) not in only:
                continue
            part = table.filter(pa.array(day_index == day_number))
            day = date(1970, 1, 1) + timedelta(days=int(day_number))
            key = PartitionKey(dataset=dataset, symbol=symbol, interval=interval, day=day)
            per_day = (expected_rows or {}).get(name, _default_expected(interval))
            lake.write_partition(
                key, part, source="archive", ingested_at=INGESTED_AT, expected_rows=per_day
            )
            written += 1
    return written


def _default_expected(interval: str | None) -> int | None:
    return {"1m": 1440, "5m": 288}.get(interval or "")


def cut_at(tables: Mapping[TableKey, pa.Table], until: datetime) -> dict[TableKey, pa.Table]:
    """Every table with only the rows whose time is before `until` (a lake landed up to then;
    vendor rows by `available_at`, so a vintage published later is not there yet)."""
    cut = {}
    for key, table in tables.items():
        name = "available_at" if "available_at" in table.column_names else None
        column = table.column(name or DATASETS[key[0]].time_column)
        cut[key] = table.filter(pc.less(column, pa.scalar(until, type=column.type)))
    return cut


def only(tables: Mapping[TableKey, pa.Table], *names: str) -> dict[TableKey, pa.Table]:
    """The tables of the given dataset names (e.g. "spot-klines")."""
    return {key: table for key, table in tables.items() if key[0] in names}


def with_duplicates(table: pa.Table, at: datetime, count: int = 1) -> pa.Table:
    """`count` extra copies of the row at time `at` (first time column of the table)."""
    column = table.column(0)
    mask = pc.equal(column, pa.scalar(at, type=column.type))
    row = table.filter(mask)
    if row.num_rows != 1:
        raise ValueError(f"no single row at {at}")
    return pa.concat_tables([table, *([row] * count)])


def without_day(table: pa.Table, day: date) -> pa.Table:
    """The table with every row of one UTC day removed (a missing archive file)."""
    day_number = day.toordinal() - date(1970, 1, 1).toordinal()
    return table.filter(pa.array(_days_of(table.column(0).combine_chunks()) != day_number))


def _replace_rows(table: pa.Table, mask: np.ndarray, values: Mapping[str, object]) -> pa.Table:
    arrays = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name in values:
            fill = pa.array([values[name]] * len(table), type=column.type)
            column = pc.if_else(pa.array(mask), fill, column)
        arrays.append(column)
    return pa.table(arrays, schema=table.schema)


def with_high_below_low(table: pa.Table, at: datetime) -> pa.Table:
    """The bar at `at` with its high and low swapped (high < low)."""
    times = table.column("open_time").combine_chunks()
    mask = pc.equal(times, pa.scalar(at, type=times.type)).to_numpy(zero_copy_only=False)
    index = int(np.flatnonzero(mask)[0])
    high, low = table.column("high")[index].as_py(), table.column("low")[index].as_py()
    return _replace_rows(table, mask, {"high": low, "low": high})


def with_zero_volume(table: pa.Table, start: datetime, minutes: int) -> pa.Table:
    """`minutes` bars from `start` reported with trades but zero volumes (a broken feed)."""
    times = pc.cast(table.column("open_time").combine_chunks(), pa.int64()).to_numpy(
        zero_copy_only=False
    )
    first = int(start.timestamp()) * 1_000_000
    mask = (times >= first) & (times < first + minutes * US_PER_MINUTE)
    zero = {
        name: pa.scalar(0, type=pa.decimal128(28, 8)).as_py()
        for name in ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
    }
    return _replace_rows(table, mask, zero)
