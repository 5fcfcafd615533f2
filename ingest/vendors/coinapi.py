"""CoinAPI: 5-minute OHLCV of Binance spot and perpetual BTC/USDT, and the perpetual's funding.

Wire: `https://rest.coinapi.io`, key in the `X-CoinAPI-Key` header. Any status but 200 is a
failure: errors are `{"message": ...}` with 400/401/403/429/550 (550 = no data); 429 waits
Retry-After, 5xx is retried, 401/403 mean the key. Times are ISO 8601 with 7 fractional digits
(`2024-01-01T00:00:00.0000000Z`, 100 ns resolution) and land as UTC µs: the 7th digit is
TRUNCATED (a time never moves later; CoinAPI's period bounds are whole seconds anyway).

- `coinapi-ohlcv`: GET /v1/ohlcv/{symbol_id}/history?period_id=5MIN&time_start&time_end&limit
  per symbol_id (BINANCE_SPOT_BTC_USDT, BINANCEFTS_PERP_BTC_USDT); paged by time_start =
  the last row's time_period_end. `available_at` = time_period_end (the bar is complete then).
- `coinapi-funding`: GET /v1/metrics/symbol/history?metric_id=DERIVATIVES_FUNDING_RATE_CURRENT
  &symbol_id=BINANCEFTS_PERP_BTC_USDT&period_id=1HRS. Assumed shape (CoinAPI documents period
  rows for its metrics endpoints): {time_period_start, time_period_end, time_open, time_close,
  first, last, min, max, count, sum}; the funding rate landed is `last` keyed by
  time_period_start; a row of the simpler documented shape {time, value} is read as well.
  `available_at` = time_period_end (or `time`) + FUNDING_LAG (60 s: CoinAPI samples the
  exchange's published value, it is not instantaneous).

Lake partitions are keyed by CoinAPI's symbol_id, which says spot vs perpetual.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ingest._client import ClientConfig, Fetched
from ingest.errors import ConfigError, MalformedResponse, SchemaDrift, VendorEnvelopeError
from ingest.timeutil import US_PER_DAY, day_start_us
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
    plan_days,
    save_raw_page,
    to_decimal,
    to_int,
)
from lake.schemas import VENDOR_DATASETS

BASE_URL = "https://rest.coinapi.io"
FUNDING_METRIC = "DERIVATIVES_FUNDING_RATE_CURRENT"
FUNDING_LAG = timedelta(seconds=60)
PAGE_LIMIT = 1000  # every 100 rows cost a request credit; 1000 5m bars = ~3.5 days
PERIODS = {"1MIN": "1m", "5MIN": "5m", "15MIN": "15m", "30MIN": "30m", "1HRS": "1h",
           "4HRS": "4h", "8HRS": "8h", "1DAY": "1d"}  # fmt: skip
_ROWS_LOCK = threading.Lock()

_ISO7 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,7}))?Z$"
)


def parse_time(value: object, name: str) -> datetime:
    """CoinAPI's `yyyy-MM-ddTHH:mm:ss.fffffffZ` -> aware UTC datetime, µs (7th digit truncated)."""
    if not isinstance(value, str):
        raise RowError(f"unparsable {name}: not a string")
    match = _ISO7.match(value)
    if match is None:
        raise RowError(f"unparsable {name}")
    micros = (match["frac"] or "").ljust(7, "0")[:6]
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}")
    except ValueError:
        raise RowError(f"unparsable {name}") from None
    return moment.replace(tzinfo=UTC, microsecond=int(micros))


def format_time(moment: datetime) -> str:
    """Aware datetime -> CoinAPI's 7-digit form (the 7th digit is 0: we hold µs)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def check_rows(payload: Any, path: str) -> list[Any]:
    """A CoinAPI 200 is a JSON array; an object there is an error or a changed API."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and "message" in payload:
        raise VendorEnvelopeError(f"coinapi: {path}: {str(payload['message'])[:200]}")
    raise SchemaDrift(f"coinapi: {path}: expected a JSON array, got {type(payload).__name__}")


_OHLCV_FIELDS = ("time_period_start", "time_period_end", "price_open", "price_high",
                 "price_low", "price_close", "volume_traded", "trades_count")  # fmt: skip


def parse_ohlcv(data: list[Any], *, step: timedelta, synthetic: bool, rows: RowSet) -> None:
    dicts = [row for row in data if isinstance(row, dict)]
    for name in _OHLCV_FIELDS:
        if dicts and all(name not in row for row in dicts):
            raise SchemaDrift(
                f"coinapi: ohlcv: no row has `{name}` (fields {sorted(dicts[0])[:10]})"
            )
    for raw in data:
        if not isinstance(raw, dict):
            rows.reject(raw, f"row is a {type(raw).__name__}, not an object")
            continue
        try:
            opened = parse_time(raw.get("time_period_start"), "time_period_start")
            closed = parse_time(raw.get("time_period_end"), "time_period_end")
            if closed - opened != step:
                raise RowError("period length does not match period_id")
            first = raw.get("time_open")
            last = raw.get("time_close")
            values = {
                "open_time": opened,
                "close_time": closed,
                "first_trade_at": None if first is None else parse_time(first, "time_open"),
                "last_trade_at": None if last is None else parse_time(last, "time_close"),
                "open": to_decimal(raw.get("price_open"), "price_open"),
                "high": to_decimal(raw.get("price_high"), "price_high"),
                "low": to_decimal(raw.get("price_low"), "price_low"),
                "close": to_decimal(raw.get("price_close"), "price_close"),
                "volume": to_decimal(raw.get("volume_traded"), "volume_traded"),
                "trade_count": to_int(raw.get("trades_count"), "trades_count"),
            }
            if values["trade_count"] < 0:  # type: ignore[operator]
                raise RowError("negative trades_count")
        except RowError as exc:
            rows.reject(raw, str(exc))
            continue
        rows.add(values, raw, available_at=closed, is_synthetic=synthetic)


def parse_funding(data: list[Any], *, synthetic: bool, rows: RowSet) -> None:
    for raw in data:
        if not isinstance(raw, dict):
            rows.reject(raw, f"row is a {type(raw).__name__}, not an object")
            continue
        try:
            if "time_period_start" in raw or "last" in raw:
                at = parse_time(raw.get("time_period_start"), "time_period_start")
                known = parse_time(raw.get("time_period_end"), "time_period_end")
                rate = to_decimal(raw.get("last"), "last")
            else:
                at = known = parse_time(raw.get("time"), "time")
                rate = to_decimal(raw.get("value"), "value")
        except RowError as exc:
            rows.reject(raw, str(exc))
            continue
        rows.add(
            {"funding_time": at, "funding_rate": rate},
            raw,
            available_at=known + FUNDING_LAG,
            is_synthetic=synthetic,
        )


class CoinApiLoader(DatasetLoader):
    def __init__(self, ctx: VendorContext) -> None:
        super().__init__(ctx)
        config = ctx.config
        self.symbols = config_list(
            config, "symbols", ["BINANCE_SPOT_BTC_USDT", "BINANCEFTS_PERP_BTC_USDT"]
        )
        self.funding_symbols = config_list(config, "funding_symbols", ["BINANCEFTS_PERP_BTC_USDT"])
        self.period = config_str(config, "period_id", "5MIN")
        self.funding_period = config_str(config, "funding_period_id", "1HRS")
        for period in (self.period, self.funding_period):
            if period not in PERIODS:
                raise ConfigError(f"coinapi: period_id {period!r} not one of {list(PERIODS)}")
        for symbol in {*self.symbols, *self.funding_symbols}:
            if not re.fullmatch(r"[A-Z0-9_]{3,60}", symbol):
                raise ConfigError(f"coinapi: invalid symbol_id {symbol!r}")
        limit = config.get("limit", PAGE_LIMIT)
        if not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise ConfigError(f"coinapi: limit must be 1..100000, got {limit!r}")
        self.limit = limit

    def load_dataset(self, name: str) -> list[DatasetLine]:
        if name == "coinapi-ohlcv":
            return [self._load(name, s, self.period) for s in self.symbols]
        return [self._load(name, s, self.funding_period) for s in self.funding_symbols]

    def _load(self, name: str, symbol: str, period: str) -> DatasetLine:
        ctx = self.ctx
        interval = PERIODS[period]
        ds = VENDOR_DATASETS[name]
        days = plan_days(ctx, name, symbol, interval)
        if not days:
            return DatasetLine(name, symbol, "ok", message="all days already complete")
        per_request = max(1, self.limit // bars_per_day(interval))
        rows = RowSet(ds)
        pages: list[str] = []
        fetch = lambda chunk: self._fetch(name, symbol, period, chunk, rows)  # noqa: E731
        for chunk_pages in ctx.client.map(fetch, chunk_days(days, per_request)):
            pages.extend(chunk_pages)
        landed = land_rows(
            ctx,
            name,
            symbol,
            interval,
            rows,
            pages,
            days=days,
            expected_rows=bars_per_day(interval) if name == "coinapi-ohlcv" else None,
        )
        note = f"{landed.held_back} rows not yet available held back" if landed.held_back else ""
        return landed.line(name, symbol, note)

    def _fetch(
        self, name: str, symbol: str, period: str, chunk: list[date], rows: RowSet
    ) -> list[str]:
        start = _at(day_start_us(chunk[0]))
        end = min(_at(day_start_us(chunk[-1] + timedelta(1))), self.ctx.now)
        step = timedelta(microseconds=US_PER_DAY // bars_per_day(PERIODS[period]))
        if name == "coinapi-ohlcv":
            path = f"/v1/ohlcv/{symbol}/history"
            base = {"period_id": period}
        else:
            path = "/v1/metrics/symbol/history"
            base = {"metric_id": FUNDING_METRIC, "symbol_id": symbol, "period_id": period}
        pages: list[str] = []
        cursor = start
        while cursor < end:
            params = {**base, "time_start": format_time(cursor), "time_end": format_time(end),
                      "limit": str(self.limit)}  # fmt: skip
            payload, fetched = self.ctx.client.get_json(path, params)
            data = check_rows(payload, path)
            pages.append(self._keep(name, chunk[0], fetched, cursor))
            page = RowSet(rows.dataset, rows.source, rows.ingested_at)
            synthetic = is_synthetic_response(fetched)
            if name == "coinapi-ohlcv":
                parse_ohlcv(data, step=step, synthetic=synthetic, rows=page)
            else:
                parse_funding(data, synthetic=synthetic, rows=page)
            with _ROWS_LOCK:
                rows.rows.extend(page.rows)
                rows.raws.extend(page.raws)
                rows.rejected.extend(page.rejected)
            if len(data) < self.limit:
                break
            last_end = _last_period_end(data)
            if last_end is None or last_end <= cursor:
                raise MalformedResponse(
                    f"coinapi: {path}: a full page from {format_time(cursor)} does not move "
                    "forward; paging on would loop"
                )
            cursor = last_end
        return pages

    def _keep(self, name: str, day: date, fetched: Fetched, cursor: datetime) -> str:
        return save_raw_page(self.ctx, name, day, fetched, cursor.strftime("%Y%m%dT%H%M%S"))


def _at(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _last_period_end(data: list[Any]) -> datetime | None:
    ends = []
    for row in data:
        if isinstance(row, dict):
            try:
                ends.append(parse_time(row.get("time_period_end", row.get("time")), "end"))
            except RowError:
                continue
    return max(ends) if ends else None


SPEC = VendorSpec(
    name="coinapi",
    env_key="COINAPI_KEY",
    key_placement=header("X-CoinAPI-Key"),
    default_base_url=BASE_URL,
    base_url_env="COINAPI_BASE_URL",
    datasets=("coinapi-ohlcv", "coinapi-funding"),
    make_loader=CoinApiLoader,
    client=ClientConfig(auth_statuses=(401, 403), max_concurrency=2),
    description="CoinAPI OHLCV (Binance spot/perp) and funding metrics",
)
