"""Lake datasets: one explicit Arrow schema per dataset and where its partitions live.

Partition keys (symbol, interval, date) live in the Hive path, never inside the file.
Prices and volumes are DECIMAL(28, 8): exact like Binance's decimal strings, and within
BigQuery NUMERIC's 29 integer digits so the same files load there unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from lake.rules import (
    AbsAtMost,
    AtLeast,
    AvailableFrom,
    NotAbove,
    Ohlc,
    OnGrid,
    Rule,
    WithinBar,
    schema_rules,
)

TIMESTAMP = pa.timestamp("us", tz="UTC")
PRICE = pa.decimal128(28, 8)
RATE = pa.decimal128(18, 8)

_PROVENANCE = [
    pa.field("source", pa.string(), nullable=False),  # 'rest' | 'archive'
    pa.field("ingested_at", TIMESTAMP, nullable=False),
]

KLINE_SCHEMA = pa.schema(
    [
        pa.field("open_time", TIMESTAMP, nullable=False),
        pa.field("close_time", TIMESTAMP, nullable=False),
        pa.field("open", PRICE, nullable=False),
        pa.field("high", PRICE, nullable=False),
        pa.field("low", PRICE, nullable=False),
        pa.field("close", PRICE, nullable=False),
        pa.field("volume", PRICE, nullable=False),
        pa.field("quote_volume", PRICE, nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        pa.field("taker_buy_base_volume", PRICE, nullable=False),
        pa.field("taker_buy_quote_volume", PRICE, nullable=False),
        *_PROVENANCE,
    ]
)

FUNDING_SCHEMA = pa.schema(
    [
        # As Binance reports it, jitter included (it lands a few ms after the hour).
        pa.field("funding_time", TIMESTAMP, nullable=False),
        pa.field("funding_rate", RATE, nullable=False),
        pa.field("mark_price", PRICE, nullable=True),  # REST only; the archive has none
        pa.field("funding_interval_hours", pa.int32(), nullable=True),  # archive only
        *_PROVENANCE,
    ]
)

OPEN_INTEREST_SCHEMA = pa.schema(
    [
        pa.field("measured_at", TIMESTAMP, nullable=False),
        pa.field("sum_open_interest", PRICE, nullable=False),
        pa.field("sum_open_interest_value", PRICE, nullable=False),
        # Only the archive's `metrics` files carry the ratios.
        pa.field("count_toptrader_long_short_ratio", pa.float64(), nullable=True),
        pa.field("sum_toptrader_long_short_ratio", pa.float64(), nullable=True),
        pa.field("count_long_short_ratio", pa.float64(), nullable=True),
        pa.field("sum_taker_long_short_vol_ratio", pa.float64(), nullable=True),
        *_PROVENANCE,
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("event_time", TIMESTAMP, nullable=True),  # when it could be parsed
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),  # the row as received, JSON-encoded
        *_PROVENANCE,
    ]
)


@dataclass(frozen=True)
class Dataset:
    """A lake dataset: CLI name, folder, schema, time key, whether it has an interval level,
    and the rules a row must keep to be landed (`lake.rules`; every loader checks them)."""

    name: str
    vendor: str
    table: str
    schema: pa.Schema
    time_column: str
    has_interval: bool
    market: str  # 'spot' | 'futures' | 'macro' | 'onchain'
    rules: tuple[Rule, ...] = ()

    @property
    def value_columns(self) -> list[str]:
        return [f for f in self.schema.names if f not in ("source", "ingested_at")]

    @functools.cached_property
    def checks(self) -> tuple[Rule, ...]:
        """Every rule in the order `lake.rules.problems` applies them: the schema's, then ours."""
        return (*schema_rules(self.schema), *self.rules)


def _kline_rules(*, positive_prices: bool = True) -> tuple[Rule, ...]:
    """Binance bars; premium-index bars are a spread, below zero as often as not."""
    positive = (AtLeast(("low",), "non-positive price", strict=True),) if positive_prices else ()
    volumes = ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
    return (
        Ohlc(),
        *positive,
        AtLeast((*volumes, "trade_count"), "negative volume or trade count"),
        NotAbove("taker_buy_base_volume", "volume", "taker buy volume exceeds volume"),
        OnGrid("open_time", "open_time not on the interval grid"),
        WithinBar("close_time", "open_time"),
    )


# Binance caps BTCUSDT funding at ±0.3 % (±3 % for any symbol); anything larger is not a rate.
_FUNDING_RULES = (AbsAtMost("funding_rate", Decimal("0.03"), "funding rate outside ±3 %"),)
_OPEN_INTEREST_RULES = (
    AtLeast(("sum_open_interest", "sum_open_interest_value"), "negative open interest"),
    OnGrid("measured_at", "timestamp not on the period grid"),
)


DATASETS: dict[str, Dataset] = {
    ds.name: ds
    for ds in (
        Dataset(
            "spot-klines", "binance", "spot_klines", KLINE_SCHEMA, "open_time", True, "spot",
            _kline_rules(),
        ),
        Dataset(
            "perp-klines", "binance", "perp_klines", KLINE_SCHEMA, "open_time", True, "futures",
            _kline_rules(),
        ),
        Dataset(
            "mark-klines", "binance", "mark_klines", KLINE_SCHEMA, "open_time", True, "futures",
            _kline_rules(),
        ),
        Dataset(
            "premium-klines", "binance", "premium_klines", KLINE_SCHEMA, "open_time", True,
            "futures", _kline_rules(positive_prices=False),
        ),
        Dataset(
            "funding", "binance", "funding", FUNDING_SCHEMA, "funding_time", False, "futures",
            _FUNDING_RULES,
        ),
        Dataset(
            "open-interest", "binance", "open_interest", OPEN_INTEREST_SCHEMA, "measured_at",
            True, "futures", _OPEN_INTEREST_RULES,
        ),
    )
}  # fmt: skip

# --- Other vendors -----------------------------------------------------------------------
# Every vendor row carries `available_at`: the first moment the value could have been known
# (bar close for intraday bars; publication plus the vendor's release lag for slower sources;
# the rule per source is documented where the loader computes it). Features join as-of on it.
# `is_synthetic` is true when the row came from the replay server's synthetic market (it says
# so in the `X-Btcfs-Replay` response header); production marts refuse such rows.
_VENDOR_PROVENANCE = [
    pa.field("available_at", TIMESTAMP, nullable=False),
    pa.field("is_synthetic", pa.bool_(), nullable=False),
    *_PROVENANCE,
]

# CoinGlass v4 OHLC-shaped histories (price, aggregated OI in USD, funding in percent).
CG_OHLC_SCHEMA = pa.schema(
    [
        pa.field("open_time", TIMESTAMP, nullable=False),
        pa.field("open", PRICE, nullable=False),
        pa.field("high", PRICE, nullable=False),
        pa.field("low", PRICE, nullable=False),
        pa.field("close", PRICE, nullable=False),
        *_VENDOR_PROVENANCE,
    ]
)
CG_PRICE_SCHEMA = pa.schema(
    [*list(CG_OHLC_SCHEMA)[:5], pa.field("volume_usd", PRICE, nullable=True), *_VENDOR_PROVENANCE]
)
CG_TAKER_SCHEMA = pa.schema(
    [
        pa.field("open_time", TIMESTAMP, nullable=False),
        pa.field("taker_buy_volume_usd", PRICE, nullable=False),
        pa.field("taker_sell_volume_usd", PRICE, nullable=False),
        *_VENDOR_PROVENANCE,
    ]
)
CG_LIQUIDATION_SCHEMA = pa.schema(
    [
        pa.field("open_time", TIMESTAMP, nullable=False),
        pa.field("long_liquidation_usd", PRICE, nullable=False),
        pa.field("short_liquidation_usd", PRICE, nullable=False),
        *_VENDOR_PROVENANCE,
    ]
)
# FRED: every vintage of an observation (ALFRED-style realtime periods), "." -> NULL.
FRED_SCHEMA = pa.schema(
    [
        pa.field("observation_date", pa.date32(), nullable=False),
        pa.field("realtime_start", pa.date32(), nullable=False),
        pa.field("realtime_end", pa.date32(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),
        *_VENDOR_PROVENANCE,
    ]
)
# Alpha Vantage daily bars of ETFs/indices used as proxies (S&P 500, dollar index).
AV_DAILY_SCHEMA = pa.schema(
    [
        pa.field("trade_date", pa.date32(), nullable=False),
        pa.field("open", PRICE, nullable=False),
        pa.field("high", PRICE, nullable=False),
        pa.field("low", PRICE, nullable=False),
        pa.field("close", PRICE, nullable=False),
        pa.field("volume", pa.int64(), nullable=True),
        *_VENDOR_PROVENANCE,
    ]
)
COINAPI_OHLCV_SCHEMA = pa.schema(
    [
        pa.field("open_time", TIMESTAMP, nullable=False),  # time_period_start
        pa.field("close_time", TIMESTAMP, nullable=False),  # time_period_end
        pa.field("first_trade_at", TIMESTAMP, nullable=True),  # time_open
        pa.field("last_trade_at", TIMESTAMP, nullable=True),  # time_close
        pa.field("open", PRICE, nullable=False),
        pa.field("high", PRICE, nullable=False),
        pa.field("low", PRICE, nullable=False),
        pa.field("close", PRICE, nullable=False),
        pa.field("volume", PRICE, nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        *_VENDOR_PROVENANCE,
    ]
)
COINAPI_FUNDING_SCHEMA = pa.schema(
    [
        pa.field("funding_time", TIMESTAMP, nullable=False),
        pa.field("funding_rate", RATE, nullable=False),
        *_VENDOR_PROVENANCE,
    ]
)
# CryptoQuant daily on-chain series. Values are revised after the fact (wallet clustering),
# so a partition keeps every vintage: `first_seen_at` is when this value was first landed,
# and `available_at` = max(end of the observed day + lag, first_seen_at).
CQ_DAILY_SCHEMA = pa.schema(
    [
        pa.field("observation_date", pa.date32(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),  # netflow_total, reserve, ...
        pa.field("value", pa.float64(), nullable=True),
        pa.field("first_seen_at", TIMESTAMP, nullable=False),
        *_VENDOR_PROVENANCE,
    ]
)


def _vendor(name: str, vendor: str, schema: pa.Schema, time: str, market: str) -> Dataset:
    """A vendor dataset; its table is its CLI name in snake case (unique across vendors).

    Its rules: OHLC order where it has the four prices, no negative amount (`*_usd`,
    `*volume`, `trade_count`; funding and spreads can be negative), and `available_at` not
    before the row's own time.
    """
    has_interval = time == "open_time"
    names = schema.names
    rules: tuple[Rule, ...] = (
        *((Ohlc(),) if {"open", "high", "low", "close"} <= set(names) else ()),
        *(
            AtLeast((n,), f"negative {n}")
            for n in names
            if n.endswith(("_usd", "volume")) or n == "trade_count"
        ),
        AvailableFrom(time),
    )
    return Dataset(name, vendor, name.replace("-", "_"), schema, time, has_interval, market, rules)


VENDOR_DATASETS: dict[str, Dataset] = {
    ds.name: ds
    for ds in (
        _vendor("cg-price-ohlc", "coinglass", CG_PRICE_SCHEMA, "open_time", "futures"),
        _vendor("cg-oi-aggregated", "coinglass", CG_OHLC_SCHEMA, "open_time", "futures"),
        _vendor("cg-funding-oi-weighted", "coinglass", CG_OHLC_SCHEMA, "open_time", "futures"),
        _vendor("cg-funding-vol-weighted", "coinglass", CG_OHLC_SCHEMA, "open_time", "futures"),
        _vendor("cg-taker-volume", "coinglass", CG_TAKER_SCHEMA, "open_time", "futures"),
        _vendor(
            "cg-taker-volume-agg-futures", "coinglass", CG_TAKER_SCHEMA, "open_time", "futures"
        ),
        _vendor("cg-taker-volume-agg-spot", "coinglass", CG_TAKER_SCHEMA, "open_time", "spot"),
        _vendor("cg-liquidations", "coinglass", CG_LIQUIDATION_SCHEMA, "open_time", "futures"),
        _vendor("fred-series", "fred", FRED_SCHEMA, "observation_date", "macro"),
        _vendor("av-daily", "alphavantage", AV_DAILY_SCHEMA, "trade_date", "macro"),
        _vendor("coinapi-ohlcv", "coinapi", COINAPI_OHLCV_SCHEMA, "open_time", "spot"),
        _vendor("coinapi-funding", "coinapi", COINAPI_FUNDING_SCHEMA, "funding_time", "futures"),
        _vendor("cq-daily", "cryptoquant", CQ_DAILY_SCHEMA, "observation_date", "onchain"),
    )
}
DATASETS.update(VENDOR_DATASETS)

BY_TABLE: dict[str, Dataset] = {ds.table: ds for ds in DATASETS.values()}

QUARANTINE = Dataset("quarantine", "_all", "_quarantine", QUARANTINE_SCHEMA, "event_time", True, "")
