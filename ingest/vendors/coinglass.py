"""CoinGlass v4: 5-minute price OHLC, aggregated open interest, OI- and volume-weighted funding,
taker buy/sell (Binance pair, aggregated futures, aggregated spot) and aggregated liquidations.

Wire: `https://open-api-v4.coinglass.com`, key in the `CG-API-KEY` header. A call succeeded
only when the HTTP status is 200 AND the envelope's `code` is "0"; a 200 with any other code
is a failure with the vendor's `msg` (nothing is landed), and a 401/429/5xx carries the same
envelope (the client retries 429 after Retry-After and 5xx with backoff). `API-KEY-MAX-LIMIT`
/ `API-KEY-USE-LIMIT` set the client's per-minute budget: past 80 % of the plan's cap it waits
for the next minute. Values are strings (or numbers) -> Decimal with 8 places; `time` is the
bar's open in epoch ms.

Point in time: every row is a bar keyed by its open; `available_at` = open + interval (the bar
is only complete at its close; a bar still open at `now` is held back and landed next run).

Lake partitions use the configured `symbol` (BTCUSDT) for every dataset, whatever the wire
parameter (pair BTCUSDT for price and pair taker volume, coin BTC for the aggregates).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from core.redact import redact
from ingest._client import ClientConfig, Fetched, WeightBudget
from ingest.errors import (
    ConfigError,
    MalformedResponse,
    SchemaDrift,
    VendorAuthError,
    VendorEnvelopeError,
    VendorThrottled,
)
from ingest.timeutil import US_PER_MS, datetime_to_us, day_start_us, interval_us
from ingest.vendors.base import (
    DatasetLine,
    DatasetLoader,
    RowError,
    RowSet,
    VendorContext,
    VendorSpec,
    bars_per_day,
    chunk_days,
    config_list,
    config_str,
    header,
    is_synthetic_response,
    land_rows,
    ms_to_datetime,
    plan_days,
    save_raw_page,
    to_decimal,
)
from lake.schemas import VENDOR_DATASETS

BASE_URL = "https://open-api-v4.coinglass.com"
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "4h", "6h", "8h", "12h", "1d")
PAGE_LIMIT = 1000  # CoinGlass's documented maximum per request
_ROWS_LOCK = threading.Lock()  # chunks are fetched on the client's threads
# Business codes that mean the key or its plan, not the request.
_AUTH_CODES = frozenset({"401", "403", "30001"})
_THROTTLE_CODES = frozenset({"429", "50001"})


@dataclass(frozen=True)
class Endpoint:
    """One CoinGlass history endpoint and how its rows map onto a lake dataset."""

    path: str
    scope: str  # 'pair' (exchange + BTCUSDT) or 'coin' (BTC, across exchanges)
    fields: Mapping[str, str]  # lake column -> CoinGlass field
    optional: frozenset[str] = frozenset()
    aggregated: bool = False  # takes exchange_list


_OHLC = {"open": "open", "high": "high", "low": "low", "close": "close"}

ENDPOINTS: dict[str, Endpoint] = {
    "cg-price-ohlc": Endpoint(
        "/api/futures/price/history",
        "pair",
        {**_OHLC, "volume_usd": "volume_usd"},
        optional=frozenset({"volume_usd"}),
    ),
    "cg-oi-aggregated": Endpoint("/api/futures/open-interest/aggregated-history", "coin", _OHLC),
    "cg-funding-oi-weighted": Endpoint(
        "/api/futures/funding-rate/oi-weight-history", "coin", _OHLC
    ),
    "cg-funding-vol-weighted": Endpoint(
        "/api/futures/funding-rate/vol-weight-history", "coin", _OHLC
    ),
    "cg-taker-volume": Endpoint(
        "/api/futures/taker-buy-sell-volume/history",
        "pair",
        {
            "taker_buy_volume_usd": "taker_buy_volume_usd",
            "taker_sell_volume_usd": "taker_sell_volume_usd",
        },
    ),
    "cg-taker-volume-agg-futures": Endpoint(
        "/api/futures/aggregated-taker-buy-sell-volume/history",
        "coin",
        {
            "taker_buy_volume_usd": "aggregated_buy_volume_usd",
            "taker_sell_volume_usd": "aggregated_sell_volume_usd",
        },
        aggregated=True,
    ),
    "cg-taker-volume-agg-spot": Endpoint(
        "/api/spot/aggregated-taker-buy-sell-volume/history",
        "coin",
        {
            "taker_buy_volume_usd": "aggregated_buy_volume_usd",
            "taker_sell_volume_usd": "aggregated_sell_volume_usd",
        },
        aggregated=True,
    ),
    "cg-liquidations": Endpoint(
        "/api/futures/liquidation/aggregated-history",
        "coin",
        {
            "long_liquidation_usd": "aggregated_long_liquidation_usd",
            "short_liquidation_usd": "aggregated_short_liquidation_usd",
        },
        aggregated=True,
    ),
}


def check_envelope(payload: Any, path: str) -> list[Any]:
    """The `data` rows of a CoinGlass 200, or the failure its envelope describes."""
    if not isinstance(payload, dict):
        raise SchemaDrift(
            f"coinglass: {path}: expected an envelope object, got {type(payload).__name__}"
        )
    if "code" not in payload:
        raise SchemaDrift(
            f"coinglass: {path}: envelope without `code` (keys {sorted(payload)[:8]})"
        )
    code = payload["code"]
    msg = _short(payload.get("msg"))
    # Documented as the string "0"; an integer 0 is the same answer, spelt differently.
    if not (code == "0" or (type(code) is int and code == 0)):
        text = f"coinglass: {path}: code {_short(code)}: {msg or 'no message'}"
        if str(code) in _AUTH_CODES:
            raise VendorAuthError(text + " (check COINGLASS_API_KEY and its plan)")
        if str(code) in _THROTTLE_CODES:
            raise VendorThrottled(text)
        raise VendorEnvelopeError(text)
    data = payload.get("data")
    if not isinstance(data, list):
        raise SchemaDrift(f"coinglass: {path}: `data` is {type(data).__name__}, not a list")
    return data


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return redact(text[:200] + ("…" if len(text) > 200 else ""))


def parse_rows(
    dataset: str,
    data: list[Any],
    *,
    interval: str,
    synthetic: bool,
    rows: RowSet,
) -> None:
    """Add a page's rows to `rows` (bad ones rejected with their reason).

    Raises SchemaDrift when every row lacks a documented field: a renamed field is a vendor
    change to act on, not thousands of quarantined rows.
    """
    endpoint = ENDPOINTS[dataset]
    step = timedelta(microseconds=interval_us(interval))
    required = ["time", *(f for c, f in endpoint.fields.items() if c not in endpoint.optional)]
    dicts = [row for row in data if isinstance(row, dict)]
    if dicts:
        for name in required:
            if all(name not in row for row in dicts):
                raise SchemaDrift(
                    f"coinglass: {endpoint.path}: no row has `{name}` "
                    f"(fields now: {sorted(dicts[0])[:10]})"
                )
    for raw in data:
        if not isinstance(raw, dict):
            rows.reject(raw, f"row is a {type(raw).__name__}, not an object")
            continue
        try:
            opened = ms_to_datetime(raw.get("time"), "time")
            values: dict[str, Any] = {"open_time": opened}
            for column, name in endpoint.fields.items():
                values[column] = to_decimal(
                    raw.get(name), name, nullable=column in endpoint.optional
                )
        except RowError as exc:
            rows.reject(raw, str(exc))
            continue
        rows.add(values, raw, available_at=opened + step, is_synthetic=synthetic)


class CoinGlassLoader(DatasetLoader):
    """Lands the selected CoinGlass datasets for the context's days."""

    def __init__(self, ctx: VendorContext) -> None:
        super().__init__(ctx)
        config = ctx.config
        self.symbol = config_str(config, "symbol", "BTCUSDT")
        self.pair = config_str(config, "pair", self.symbol)
        self.coin = config_str(config, "coin", self.symbol.removesuffix("USDT"))
        self.exchange = config_str(config, "exchange", "Binance")
        self.exchanges = config_list(config, "exchange_list", ["Binance", "OKX", "Bybit"])
        self.interval = config_str(config, "interval", "5m")
        if self.interval not in INTERVALS:
            raise ConfigError(f"coinglass: interval {self.interval!r} not one of {INTERVALS}")
        limit = config.get("limit", PAGE_LIMIT)
        if not isinstance(limit, int) or not 1 <= limit <= PAGE_LIMIT:
            raise ConfigError(f"coinglass: limit must be 1..{PAGE_LIMIT}, got {limit!r}")
        self.limit = limit

    def params(self, dataset: str, start_ms: int, end_ms: int) -> dict[str, str]:
        endpoint = ENDPOINTS[dataset]
        params = {"interval": self.interval, "limit": str(self.limit)}
        if endpoint.scope == "pair":
            params |= {"exchange": self.exchange, "symbol": self.pair}
        else:
            params["symbol"] = self.coin
        if endpoint.aggregated:
            params["exchange_list"] = ",".join(self.exchanges)
        return params | {"start_time": str(start_ms), "end_time": str(end_ms)}

    def load_dataset(self, name: str) -> list[DatasetLine]:
        ctx = self.ctx
        days = plan_days(ctx, name, self.symbol, self.interval)
        if not days:
            return [DatasetLine(name, self.symbol, "ok", message="all days already complete")]
        per_request = max(1, self.limit // bars_per_day(self.interval))
        rows = RowSet(VENDOR_DATASETS[name])
        pages: list[str] = []
        chunks = chunk_days(days, per_request)
        for chunk_pages in ctx.client.map(lambda c: self._fetch_chunk(name, c, rows), chunks):
            pages.extend(chunk_pages)
        landed = land_rows(
            ctx,
            name,
            self.symbol,
            self.interval,
            rows,
            pages,
            days=days,
            expected_rows=bars_per_day(self.interval),
        )
        note = f"{landed.held_back} still-open bars held back" if landed.held_back else ""
        return [landed.line(name, self.symbol, note)]

    def _fetch_chunk(self, name: str, chunk: list[date], rows: RowSet) -> list[str]:
        """Page through [first day 00:00, last day 24:00) by time; rows go into `rows`."""
        endpoint = ENDPOINTS[name]
        start_ms = day_start_us(chunk[0]) // US_PER_MS
        end_ms = day_start_us(chunk[-1] + timedelta(1)) // US_PER_MS - 1
        now_ms = datetime_to_us(self.ctx.now) // US_PER_MS
        end_ms = min(end_ms, now_ms)
        cursor = start_ms
        pages: list[str] = []
        while cursor <= end_ms:
            payload, fetched = self.ctx.client.get_json(
                endpoint.path, self.params(name, cursor, end_ms)
            )
            data = check_envelope(payload, endpoint.path)
            pages.append(self._keep(name, chunk[0], fetched, cursor))
            page = RowSet(rows.dataset, rows.source, rows.ingested_at)
            parse_rows(
                name,
                data,
                interval=self.interval,
                synthetic=is_synthetic_response(fetched),
                rows=page,
            )
            with _ROWS_LOCK:
                rows.rows.extend(page.rows)
                rows.raws.extend(page.raws)
                rows.rejected.extend(page.rejected)
            if len(data) < self.limit:
                break
            last = _last_time_ms(data)
            if last is None or last < cursor:
                raise MalformedResponse(
                    f"coinglass: {endpoint.path}: a full page from {cursor} ends at {last}; "
                    "paging on would loop"
                )
            cursor = last + 1
        return pages

    def _keep(self, name: str, day: date, fetched: Fetched, cursor: int) -> str:
        return save_raw_page(self.ctx, name, day, fetched, f"{self.interval}-{cursor}")


def _last_time_ms(data: list[Any]) -> int | None:
    times = [row["time"] for row in data if isinstance(row, dict) and type(row.get("time")) is int]
    return max(times) if times else None


def _make(ctx: VendorContext) -> CoinGlassLoader:
    return CoinGlassLoader(ctx)


SPEC = VendorSpec(
    name="coinglass",
    env_key="COINGLASS_API_KEY",
    key_placement=header("CG-API-KEY"),
    default_base_url=BASE_URL,
    base_url_env="COINGLASS_BASE_URL",
    datasets=tuple(ENDPOINTS),
    make_loader=_make,
    client=ClientConfig(
        weight=WeightBudget(
            # Hobbyist's cap until the first response states the plan's.
            per_minute=30,
            headroom=0.8,
            used_header="API-KEY-USE-LIMIT",
            limit_header="API-KEY-MAX-LIMIT",
        ),
        max_concurrency=2,
    ),
    description="CoinGlass v4 derivatives aggregates (5m bars)",
)
