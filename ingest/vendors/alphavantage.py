"""Alpha Vantage daily bars of the ETFs used as proxies: SPY (S&P 500), UUP (dollar index).

Dataset `av-daily`, one partition per symbol and trade date. Symbols are configurable
(config `symbols`); prices are the unadjusted TIME_SERIES_DAILY bars.

Point in time. A US trading day's bar is final at the 16:00 America/New_York close, so
`available_at` = that close in UTC (zoneinfo: 20:00 UTC in summer, 21:00 UTC in winter) +
PUBLICATION_LAG (15 min for Alpha Vantage to refresh its daily series). Early closes (13:00)
still use 16:00: later than the truth, never earlier. A bar whose available_at is after
`now` is still in session (the vendor sends the partial bar): it is held back, and the day's
partition is marked open so the next run lands it.

Alpha Vantage reports failures inside an HTTP 200: a top-level `Information` or `Note` is a
rate limit, quota or plan message (VendorThrottled: never written; retried `throttle_retries`
times with a doubling `throttle_backoff_s`, then the vendor fails with one line; the daily
quota and premium-only answers are not retried), an `Error Message` a bad request
(VendorEnvelopeError). `outputsize=full` (asked for when the first day is more than ~135
days back) is premium-only: on a free key the loader falls back to compact, lands the last
100 bars and leaves the older days unlanded. The quota message repeats the API key: every
such text goes through `redact` first.
"""

from __future__ import annotations

import json
import re
import time as _time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from core.redact import redact
from ingest._client import ClientConfig, Fetched
from ingest.errors import (
    ConfigError,
    IngestError,
    MalformedResponse,
    VendorEnvelopeError,
    VendorThrottled,
)
from ingest.vendors.base import (
    DatasetLine,
    DatasetLoader,
    RowSet,
    VendorContext,
    VendorSpec,
    config_list,
    is_synthetic_response,
    land_rows,
    plan_days,
    query,
    save_raw_page,
)
from ingest.vendors.fred import shown_raw
from lake.schemas import VENDOR_DATASETS

VENDOR = "alphavantage"
DATASET = "av-daily"
BASE_URL = "https://www.alphavantage.co"
QUERY_PATH = "/query"
FUNCTION = "TIME_SERIES_DAILY"
ENV_KEY = "ALPHA_VANTAGE_API_KEY"
#: Proxies: SPY for the S&P 500, UUP (Invesco DB US Dollar Index Bullish) for the DXY.
DEFAULT_SYMBOLS = ("SPY", "UUP")
NEW_YORK = ZoneInfo("America/New_York")
MARKET_CLOSE = time(16, 0)
PUBLICATION_LAG = timedelta(minutes=15)
SERIES_KEY = "Time Series (Daily)"
THROTTLE_KEYS = ("Information", "Note")
ERROR_KEY = "Error Message"
FIELDS = ("1. open", "2. high", "3. low", "4. close", "5. volume")
#: `compact` is the latest 100 bars (~140 calendar days); an older start needs `full`.
COMPACT_CALENDAR_DAYS = 135
DEFAULT_THROTTLE_RETRIES = 3
DEFAULT_THROTTLE_BACKOFF_S = 20.0
MAX_BODY_BYTES = 16 * 1024 * 1024  # a full 25-year daily history is ~1 MB
_PRICE_LIMIT = Decimal(10) ** 20  # DECIMAL(28, 8) holds 20 integer digits
_EIGHT_PLACES = Decimal("0.00000001")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


class AlphaVantageThrottled(VendorThrottled):
    """An HTTP 200 whose body is `Information`/`Note`: rate limit, quota or plan.

    `daily_quota`: the 25-a-day quota (waiting minutes will not help); `premium`: the call
    needs a paid plan (e.g. `outputsize=full` on a free key).
    """

    def __init__(self, message: str, *, daily_quota: bool, premium: bool = False) -> None:
        super().__init__(message, status=200)
        self.daily_quota = daily_quota
        self.premium = premium

    @property
    def retryable(self) -> bool:
        return not (self.daily_quota or self.premium)


class AlphaVantageError(VendorEnvelopeError):
    """An HTTP 200 whose body is `Error Message`: bad symbol, function or key."""


# -- point in time ------------------------------------------------------------------------


def close_at(trade_date: date) -> datetime:
    """16:00 New York time of `trade_date`, in UTC (DST-correct)."""
    return datetime.combine(trade_date, MARKET_CLOSE, tzinfo=NEW_YORK).astimezone(UTC)


def available_at(trade_date: date) -> datetime:
    """When a day's bar is final: the close plus Alpha Vantage's refresh lag."""
    return close_at(trade_date) + PUBLICATION_LAG


# -- the wire format ----------------------------------------------------------------------


class _Object(dict[str, Any]):
    """A JSON object that remembers every (key, value) pair, repeated keys included."""

    pairs: list[tuple[str, Any]]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    obj.pairs = pairs
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(body: bytes, *, what: str) -> Any:
    """Decode keeping repeated keys: a date sent twice must not silently vanish."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedResponse(
            f"{VENDOR}: {what}: response of {len(body)} bytes is over {MAX_BODY_BYTES}"
        )
    try:
        return json.loads(
            body.decode("utf-8"), object_pairs_hook=_object, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedResponse(
            f"{VENDOR}: {what}: response is not JSON: {_one_line(exc)[:200]}"
        ) from None


def is_daily_quota(message: str) -> bool:
    """The 25-a-day quota (its message names the key): waiting minutes will not help."""
    text = message.lower()
    return "detected your api key" in text or ("per day" in text and "second" not in text)


def is_premium_only(message: str) -> bool:
    """ "outputsize=full is a premium feature", "This is a premium endpoint" (the burst
    message also names premium plans and endpoints, so the wording has to be this exact)."""
    text = message.lower()
    return "premium feature" in text or "is a premium endpoint" in text


def raise_for_envelope(payload: Any, *, what: str) -> None:
    """Raise for Alpha Vantage's in-band failures; return for a time-series body."""
    if not isinstance(payload, dict):
        raise MalformedResponse(
            f"{VENDOR}: {what}: expected a JSON object, got {type(payload).__name__}"
        )
    for key in THROTTLE_KEYS:
        if key in payload:
            raw = str(payload[key])
            raise AlphaVantageThrottled(
                f"{VENDOR}: {what}: throttled ({key}): {_one_line(raw)}",
                daily_quota=is_daily_quota(raw),
                premium=is_premium_only(raw),
            )
    if ERROR_KEY in payload:
        raise AlphaVantageError(f"{VENDOR}: {what}: {_one_line(payload[ERROR_KEY])}", status=200)
    if SERIES_KEY not in payload:
        keys = ", ".join(_one_line(k)[:40] for k in list(payload)[:5]) or "none"
        raise MalformedResponse(f"{VENDOR}: {what}: no `{SERIES_KEY}` (keys: {keys})")


def _one_line(value: object) -> str:
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
    return redact(flat)[:300]


def parse_daily(
    body: bytes, rows: RowSet, *, symbol: str, now: datetime, is_synthetic: bool
) -> str | None:
    """A TIME_SERIES_DAILY body into `rows`; returns the body's "Last Refreshed" date.

    Raises AlphaVantageThrottled / AlphaVantageError / MalformedResponse for bodies that are
    not a time series (nothing of them is ever written).
    """
    what = f"{FUNCTION} {symbol}"
    payload = decode(body, what=what)
    raise_for_envelope(payload, what=what)
    meta = payload.get("Meta Data")
    meta_symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    refreshed = meta.get("3. Last Refreshed") if isinstance(meta, dict) else None
    series = payload[SERIES_KEY]
    if not isinstance(series, _Object):
        raise MalformedResponse(f"{VENDOR}: {what}: `{SERIES_KEY}` is not an object")
    wrong = isinstance(meta_symbol, str) and meta_symbol.upper() != symbol.upper()
    add_bars(
        rows,
        series.pairs,
        now=now,
        is_synthetic=is_synthetic,
        reject_all=f"wrong symbol (expected {symbol})" if wrong else None,
    )
    return refreshed if isinstance(refreshed, str) else None


def add_bars(
    rows: RowSet,
    pairs: Sequence[tuple[str, Any]],
    *,
    now: datetime,
    is_synthetic: bool,
    reject_all: str | None = None,
) -> None:
    """(date, bar object) pairs into `rows`; weekend or future dates are rejected."""
    today_ny = now.astimezone(NEW_YORK).date()
    for key, raw in pairs:
        shown = shown_raw({"date": key, "bar": raw})
        try:
            values = _bar(key, raw)
        except ValueError as exc:
            rows.reject(shown, str(exc))
            continue
        day = values["trade_date"]
        at = datetime.combine(day, time(), tzinfo=UTC)
        if reject_all is not None:
            rows.reject(shown, reject_all, at)
        elif day.weekday() >= 5:
            rows.reject(shown, "date is a weekend", at)
        elif day > today_ny:
            rows.reject(shown, "date is after now", at)
        else:
            rows.add(values, shown, available_at=available_at(day), is_synthetic=is_synthetic)


def _bar(key: str, raw: object) -> dict[str, Any]:
    try:
        trade_date = date.fromisoformat(key) if len(key) == 10 else None
    except ValueError:
        trade_date = None
    if trade_date is None:
        raise ValueError("unparsable date")
    if not isinstance(raw, dict):
        raise ValueError("bar is not an object")
    missing = [name for name in FIELDS[:4] if name not in raw]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    prices: list[Decimal] = []
    for name in FIELDS[:4]:
        price = _decimal(raw[name])
        if price is None:
            raise ValueError(f"unparsable {name[3:]}")
        if price <= 0:
            raise ValueError(f"{name[3:]} is not positive")
        prices.append(price)
    open_, high, low, close = prices
    volume: int | None = None
    value = raw.get(FIELDS[4])
    if value is not None:
        text = value.strip() if isinstance(value, str) else None
        if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
            raise ValueError("unparsable volume")
        volume = int(text)
    return {
        "trade_date": trade_date,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
    }


def _decimal(value: object) -> Decimal | None:
    """A price string -> Decimal with at most 8 places; None for anything else."""
    # Plain ASCII decimals only: Decimal() would also take "1_000", "١٢" or " 4.5 ".
    if not isinstance(value, str) or len(value) > 40 or not _DECIMAL.fullmatch(value):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) >= _PRICE_LIMIT:
        return None
    rounded = number.quantize(_EIGHT_PLACES)
    return rounded if rounded == number else None


def request_params(symbol: str, *, full: bool) -> dict[str, str]:
    """Query parameters (the client adds `apikey`)."""
    return {
        "function": FUNCTION,
        "symbol": symbol,
        "outputsize": "full" if full else "compact",
        "datatype": "json",
    }


def needs_full(first: date, today: date) -> bool:
    return (today - first).days > COMPACT_CALENDAR_DAYS


# -- the loader ---------------------------------------------------------------------------


class AlphaVantageLoader(DatasetLoader):
    """Lands every configured symbol (config `symbols`) over the context's days."""

    def __init__(self, ctx: VendorContext, sleep: Callable[[float], None] = _time.sleep) -> None:
        super().__init__(ctx)
        self.sleep = sleep
        self.retries = _config_number(ctx.config, "throttle_retries", DEFAULT_THROTTLE_RETRIES)
        self.backoff_s = float(
            _config_number(ctx.config, "throttle_backoff_s", DEFAULT_THROTTLE_BACKOFF_S)
        )

    def load_dataset(self, name: str) -> list[DatasetLine]:
        symbols = [s.upper() for s in config_list(self.ctx.config, "symbols", DEFAULT_SYMBOLS)]
        bad = [s for s in symbols if not set(s) <= _SYMBOL_CHARS or len(s) > 20]
        if bad:
            return [DatasetLine(name, "-", "failed", message=f"invalid symbols {bad}")]
        lines = []
        for symbol in symbols:
            try:
                lines.append(self.load_symbol(symbol))
            except self.FATAL as exc:  # throttled, bad key, no network: stop, keep the lines
                lines.append(DatasetLine(name, symbol, "failed", message=redact(exc)))
                break
            except IngestError as exc:  # e.g. an unknown symbol: the others go on
                lines.append(DatasetLine(name, symbol, "failed", message=redact(exc)))
        return lines

    def load_symbol(self, symbol: str) -> DatasetLine:
        ctx = self.ctx
        planned = plan_days(ctx, DATASET, symbol, None)
        if not planned:
            return DatasetLine(DATASET, symbol, message="nothing to fetch")
        days = [d for d in ctx.days() if d >= min(planned)]
        full = needs_full(days[0], ctx.now.date())
        rows = RowSet(VENDOR_DATASETS[DATASET])
        notes: list[str] = []
        try:
            fetched = self.fetch(symbol, full=full, rows=rows)
        except AlphaVantageThrottled as exc:
            if not (full and exc.premium):
                raise
            # A free key gets the latest 100 bars only: land those; the older days stay
            # unlanded (not final), so a premium key or a later backfill can still fill them.
            full = False
            fetched = self.fetch(symbol, full=False, rows=rows)
            oldest = min((r["trade_date"] for r in rows.rows), default=None)
            skipped = [d for d in days if oldest is None or d < oldest]
            days = [d for d in days if d not in skipped]
            notes.append(
                f"outputsize=full needs a premium key: landed compact (the last 100 bars); "
                f"{len(skipped)} older days not fetched"
            )
            if not days:
                return DatasetLine(DATASET, symbol, message=notes[0])
        page = save_raw_page(
            ctx, DATASET, days[0], fetched, f"{symbol}-{'full' if full else 'compact'}"
        )
        # Bars before the first requested day were landed (and their rejects quarantined)
        # by an earlier run: not ours to rewrite here.
        _keep_from(rows, days[0])
        result = land_rows(ctx, DATASET, symbol, None, rows, [page], days=days)
        if result.held_back:
            notes.append(f"{result.held_back} bar in session, not landed")
        return result.line(DATASET, symbol, "; ".join(notes))

    def fetch(self, symbol: str, *, full: bool, rows: RowSet) -> Fetched:
        """GET and parse, retrying in-band throttling a bounded number of times."""
        attempt = 0
        while True:
            fetched = self.ctx.client.get(QUERY_PATH, request_params(symbol, full=full))
            candidate = RowSet(rows.dataset, rows.source, rows.ingested_at)
            try:
                parse_daily(
                    fetched.body,
                    candidate,
                    symbol=symbol,
                    now=self.ctx.now,
                    is_synthetic=is_synthetic_response(fetched),
                )
            except AlphaVantageThrottled as exc:
                attempt += 1
                if not exc.retryable or attempt > self.retries:
                    why = "daily quota" if exc.daily_quota else "needs a premium plan"
                    tries = f"after {attempt} attempts" if exc.retryable else why
                    raise AlphaVantageThrottled(
                        f"{exc} ({tries})", daily_quota=exc.daily_quota, premium=exc.premium
                    ) from None
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            rows.rows, rows.raws, rows.rejected = candidate.rows, candidate.raws, candidate.rejected
            return fetched


def _keep_from(rows: RowSet, first: date) -> None:
    keep = [i for i, row in enumerate(rows.rows) if row["trade_date"] >= first]
    rows.rows = [rows.rows[i] for i in keep]
    rows.raws = [rows.raws[i] for i in keep]
    first_us = (first - date(1970, 1, 1)).days * 86_400_000_000
    rows.rejected = [r for r in rows.rejected if r[2] is None or r[2] >= first_us]


def _config_number(config: Mapping[str, Any], name: str, default: float) -> Any:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"vendors.alphavantage: `{name}` must be 0 or more, got {value!r}")
    return value


SPEC = VendorSpec(
    name=VENDOR,
    env_key=ENV_KEY,
    key_placement=query("apikey"),
    default_base_url=BASE_URL,
    base_url_env="ALPHA_VANTAGE_BASE_URL",
    datasets=(DATASET,),
    make_loader=AlphaVantageLoader,
    # The free tier allows one request a second: never two at once.
    client=ClientConfig(max_concurrency=1),
    description="Alpha Vantage daily bars of SPY (S&P 500) and UUP (dollar index)",
)
