"""Lake datasets: one explicit Arrow schema per dataset and where its partitions live.

Partition keys (symbol, interval, date) live in the Hive path, never inside the file.
Prices and volumes are DECIMAL(28, 8): exact like Binance's decimal strings, and within
BigQuery NUMERIC's 29 integer digits so the same files load there unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

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
    """A lake dataset: CLI name, folder, schema, time key, and whether it has an interval level."""

    name: str
    vendor: str
    table: str
    schema: pa.Schema
    time_column: str
    has_interval: bool
    market: str  # 'spot' | 'futures'

    @property
    def value_columns(self) -> list[str]:
        return [f for f in self.schema.names if f not in ("source", "ingested_at")]


DATASETS: dict[str, Dataset] = {
    ds.name: ds
    for ds in (
        Dataset("spot-klines", "binance", "spot_klines", KLINE_SCHEMA, "open_time", True, "spot"),
        Dataset(
            "perp-klines", "binance", "perp_klines", KLINE_SCHEMA, "open_time", True, "futures"
        ),
        Dataset(
            "mark-klines", "binance", "mark_klines", KLINE_SCHEMA, "open_time", True, "futures"
        ),
        Dataset(
            "premium-klines",
            "binance",
            "premium_klines",
            KLINE_SCHEMA,
            "open_time",
            True,
            "futures",
        ),
        Dataset("funding", "binance", "funding", FUNDING_SCHEMA, "funding_time", False, "futures"),
        Dataset(
            "open-interest",
            "binance",
            "open_interest",
            OPEN_INTEREST_SCHEMA,
            "measured_at",
            True,
            "futures",
        ),
    )
}

QUARANTINE = Dataset("quarantine", "_all", "_quarantine", QUARANTINE_SCHEMA, "event_time", True, "")
