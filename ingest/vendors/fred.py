"""FRED (St. Louis Fed) daily series: every vintage of each observation, "." as NULL.

Dataset `fred-series`, one partition per series (`symbol=`) and observation day, one row per
vintage (`realtime_start`..`realtime_end`, as FRED's real-time periods give them): the loader
asks for `realtime_start=1776-07-04&realtime_end=9999-12-31`, so every vintage lands and a
revised value never overwrites the one that was known before it.

Point in time. FRED dates each vintage but does not say at what hour it went out, and daily
series such as DGS10 or VIXCLS are published the business day after the observation
(DTWEXBGS once a week, for the week before: its vintage dates say so). A vintage is taken as
known only at

    available_at = max(next US business day after `date`, day after `realtime_start`)
                   at 00:00 UTC + PUBLICATION_LAG (6 h)

i.e. once the whole vintage day is over in St. Louis (midnight CST is 06:00 UTC, CDT 05:00
UTC): a value published at any hour of its vintage day is never used before it existed.
The business-day floor guards vintages whose `realtime_start` is earlier than the real
release (FRED clips it to the series' first real-time date). Holidays: the US federal
calendar (pandas); where it closes a day the bond market kept open, the rule only gets later.

Refresh: FRED publishes a day's value days later (a week for DTWEXBGS) and revises it, so
besides the days never landed, the last `revision_days` (config, default 14, at least 10:
the weekly DTWEXBGS comes out up to 8 days late, and a vintage held back because its
available_at is after `now` is landed by a later run) are re-fetched on every run;
unchanged partitions are not rewritten.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from core.redact import redact
from ingest._client import ClientConfig
from ingest.errors import (
    ConfigError,
    IngestError,
    MalformedResponse,
    VendorAuthError,
    VendorEnvelopeError,
    VendorHTTPError,
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
from lake.schemas import VENDOR_DATASETS

VENDOR = "fred"
DATASET = "fred-series"
BASE_URL = "https://api.stlouisfed.org"
OBSERVATIONS_PATH = "/fred/series/observations"
ENV_KEY = "FRED_API_KEY"
DEFAULT_SERIES = ("DTWEXBGS", "DGS10", "VIXCLS")
#: After the end of the vintage day in UTC: covers the rest of that day in St. Louis (CT).
PUBLICATION_LAG = timedelta(hours=6)
#: FRED's earliest real-time date and its "still current" end: ask for every vintage.
REALTIME_START = "1776-07-04"
REALTIME_END = "9999-12-31"
PAGE_LIMIT = 100_000  # FRED's maximum rows per request
MAX_PAGES = 100  # 10 million vintages: a `count` beyond that is not a daily series
DEFAULT_REVISION_DAYS = 14
MIN_REVISION_DAYS = 10
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_RAW_CHARS = 2_000
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|-?\.[0-9]+([eE][-+]?[0-9]+)?")
_SERIES_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


# -- point in time ------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    from pandas.tseries.holiday import USFederalHolidayCalendar

    days = USFederalHolidayCalendar().holidays(date(year, 1, 1), date(year, 12, 31))
    return frozenset(day.date() for day in days)


def is_business_day(day: date) -> bool:
    """A weekday that is not a US federal holiday."""
    return day.weekday() < 5 and day not in _holidays(day.year)


def next_business_day(day: date) -> date:
    """The first US business day strictly after `day`."""
    candidate = day + timedelta(days=1)
    while not is_business_day(candidate):
        candidate += timedelta(days=1)
    return candidate


def available_at(observation_date: date, realtime_start: date) -> datetime:
    """When a FRED vintage may first be used (see the module docstring for why)."""
    first_day = max(next_business_day(observation_date), realtime_start + timedelta(days=1))
    return datetime.combine(first_day, time(), tzinfo=UTC) + PUBLICATION_LAG


# -- the wire format ----------------------------------------------------------------------


class FredAPIError(VendorEnvelopeError):
    """FRED's own error body: {"error_code": 400, "error_message": "..."}."""


def shown_raw(raw: object, limit: int = MAX_RAW_CHARS) -> object:
    """A rejected row for quarantine: as received unless huge (then its JSON text, cut)."""
    try:
        text = orjson.dumps(raw, default=str).decode()
    except TypeError:  # an integer beyond 64 bits
        text = str(raw)
    if len(text) <= limit:
        return raw
    return text[:limit] + "...(truncated)"


def decode(body: bytes, *, what: str) -> Any:
    """A FRED body as JSON; XML (no file_type=json) and anything else is a MalformedResponse."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedResponse(
            f"{VENDOR}: {what}: response of {len(body)} bytes is over {MAX_BODY_BYTES}"
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        kind = "XML (was file_type=json sent?)" if body.lstrip()[:1] == b"<" else "not JSON"
        raise MalformedResponse(f"{VENDOR}: {what}: response is {kind}: {exc}") from None


def raise_for_error(payload: Any, *, what: str) -> None:
    """Raise FRED's error envelope: a bad key is fatal, 429 throttled, the rest per series."""
    if not isinstance(payload, dict) or (
        "error_code" not in payload and "error_message" not in payload
    ):
        return
    code = payload.get("error_code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = _one_line(payload.get("error_message", "no message"))
    text = f"{VENDOR}: {what}: FRED error {redact(code)}: {message}"
    if status == 429:
        raise VendorThrottled(text, status=429)
    if "variable api_key" in message.lower():
        raise VendorAuthError(text, status=status)
    raise FredAPIError(text, status=status)


def _one_line(value: object) -> str:
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
    return redact(flat)[:300]


def parse_observations(
    body: bytes,
    rows: RowSet,
    *,
    series_id: str,
    is_synthetic: bool,
) -> tuple[int, int, int]:
    """One `series/observations?file_type=json` body into `rows` (valid or rejected).

    Returns FRED's (count, offset, observations in this page). Raises MalformedResponse for
    a body that is not the documented envelope and FredAPIError & co for its error envelope.
    """
    what = f"series {series_id}"
    payload = decode(body, what=what)
    raise_for_error(payload, what=what)
    if not isinstance(payload, dict):
        raise MalformedResponse(
            f"{VENDOR}: {what}: expected a JSON object, got {type(payload).__name__}"
        )
    observations = payload.get("observations")
    if not isinstance(observations, list):
        raise MalformedResponse(f"{VENDOR}: {what}: no `observations` list in the response")
    count = _count(payload, "count", len(observations), what)
    offset = _count(payload, "offset", 0, what)
    for raw in observations:
        add_observation(rows, raw, is_synthetic=is_synthetic)
    return count, offset, len(observations)


def _count(payload: Mapping[str, Any], name: str, default: int, what: str) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedResponse(f"{VENDOR}: {what}: `{name}` is not a count: {redact(value)!r}")
    return value


def add_observation(rows: RowSet, raw: object, *, is_synthetic: bool) -> None:
    """One observation object -> a row of `rows`, or a rejection with its reason."""
    try:
        values = _observation(raw)
    except ValueError as exc:
        rows.reject(shown_raw(raw), str(exc))
        return
    rows.add(
        values,
        shown_raw(raw),
        available_at=available_at(values["observation_date"], values["realtime_start"]),
        is_synthetic=is_synthetic,
    )


def _observation(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError("observation is not an object")
    missing = [k for k in ("date", "realtime_start", "realtime_end", "value") if k not in raw]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    days = {
        name: _parse_date(raw[name], name) for name in ("date", "realtime_start", "realtime_end")
    }
    if days["realtime_end"] < days["realtime_start"]:
        raise ValueError("realtime_end before realtime_start")
    value = raw["value"]
    if not isinstance(value, str):
        raise ValueError("value is not a string")
    number: float | None
    if value == ".":
        number = None  # FRED's missing value (holidays): NULL, never 0
    else:
        # Plain ASCII decimals only: float() would also take "1_000", "١٢" or " 4.5 ".
        if not _NUMBER.fullmatch(value):
            raise ValueError("unparsable value")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("value is not finite")
    return {
        "observation_date": days["date"],
        "realtime_start": days["realtime_start"],
        "realtime_end": days["realtime_end"],
        "value": number,
    }


def _parse_date(value: object, name: str) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"unparsable {name}")


def request_params(
    series_id: str, observation_start: date, observation_end: date, offset: int = 0
) -> dict[str, str]:
    """Query parameters of one observations page: every vintage of the window (the client
    adds `api_key`)."""
    params = {
        "series_id": series_id,
        "file_type": "json",
        "observation_start": observation_start.isoformat(),
        "observation_end": observation_end.isoformat(),
        "realtime_start": REALTIME_START,
        "realtime_end": REALTIME_END,
        "sort_order": "asc",
        "limit": str(PAGE_LIMIT),
    }
    if offset:
        params["offset"] = str(offset)
    return params


# -- the loader ---------------------------------------------------------------------------


class FredLoader(DatasetLoader):
    """Lands every configured series (config `series`) over the context's days."""

    def load_dataset(self, name: str) -> list[DatasetLine]:
        series = config_list(self.ctx.config, "series", DEFAULT_SERIES)
        bad = [s for s in series if not set(s) <= _SERIES_CHARS or len(s) > 40]
        if bad:
            return [DatasetLine(name, "-", "failed", message=f"invalid series ids {bad}")]
        lines = []
        for series_id in series:
            try:
                lines.append(self.load_series(series_id))
            except self.FATAL as exc:  # bad key, throttled, no network: stop, keep the lines
                lines.append(DatasetLine(name, series_id, "failed", message=redact(exc)))
                break
            except IngestError as exc:  # e.g. a series FRED does not have: the others go on
                lines.append(DatasetLine(name, series_id, "failed", message=redact(exc)))
        return lines

    def load_series(self, series_id: str) -> DatasetLine:
        ctx = self.ctx
        days = days_to_fetch(ctx, series_id)
        if not days:
            return DatasetLine(DATASET, series_id, message="nothing to fetch")
        first, last = days[0], days[-1]
        rows = RowSet(VENDOR_DATASETS[DATASET])
        pages: list[str] = []
        offset = 0
        for _ in range(MAX_PAGES):
            params = request_params(series_id, first, last, offset)
            try:
                fetched = ctx.client.get(OBSERVATIONS_PATH, params)
            except VendorHTTPError as exc:
                raise _http_error(exc, series_id) from None
            count, offset_seen, returned = parse_observations(
                fetched.body,
                rows,
                series_id=series_id,
                is_synthetic=is_synthetic_response(fetched),
            )
            pages.append(
                save_raw_page(ctx, DATASET, first, fetched, f"{series_id}-{first}-{last}-{offset}")
            )
            if offset_seen != offset:
                raise MalformedResponse(
                    f"{VENDOR}: series {series_id}: asked for offset {offset}, "
                    f"the page says {offset_seen}"
                )
            offset += returned
            if returned == 0 or offset >= count:
                break
        else:
            raise MalformedResponse(
                f"{VENDOR}: series {series_id}: more than {MAX_PAGES} pages ({offset} of {count})"
            )
        result = land_rows(
            ctx,
            DATASET,
            series_id,
            None,
            rows,
            pages,
            days=days,
            key_columns=("observation_date", "realtime_start"),
        )
        held = f"{result.held_back} vintages not yet available" if result.held_back else ""
        return result.line(DATASET, series_id, held)


def days_to_fetch(ctx: VendorContext, series_id: str) -> list[date]:
    """Every day from the oldest one that needs fetching (never landed, unfinished, or in
    the revision window) up to today: days in between are rewritten only if they changed."""
    window = _revision_days(ctx.config)
    today = ctx.now.date()
    planned = plan_days(ctx, DATASET, series_id, None)
    recent = [d for d in ctx.days() if d > today - timedelta(days=window)]
    wanted = planned + recent
    if not wanted:
        return []
    oldest = min(wanted)
    return [d for d in ctx.days() if d >= oldest]


def _revision_days(config: Mapping[str, Any]) -> int:
    value = config.get("revision_days", DEFAULT_REVISION_DAYS)
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_REVISION_DAYS:
        raise ConfigError(
            f"vendors.fred: `revision_days` must be an integer of at least {MIN_REVISION_DAYS} "
            f"(DTWEXBGS comes out up to 8 days late, and a vintage held back for its "
            f"available_at is landed by a later run), got {value!r}"
        )
    return value


def _http_error(exc: VendorHTTPError, series_id: str) -> IngestError:
    """FRED answers a bad key or series with HTTP 400 and its JSON error in the body."""
    if isinstance(exc, VendorAuthError | VendorThrottled) or exc.status == 429:
        return exc
    text = str(exc)
    if exc.status == 400 and "variable api_key" in text.lower():
        return VendorAuthError(text, status=400, url=exc.url)
    if exc.status in (400, 404):
        return FredAPIError(text, status=exc.status, url=exc.url)
    return exc


SPEC = VendorSpec(
    name=VENDOR,
    env_key=ENV_KEY,
    key_placement=query("api_key"),
    default_base_url=BASE_URL,
    base_url_env="FRED_BASE_URL",
    datasets=(DATASET,),
    make_loader=FredLoader,
    # FRED allows about 120 requests a minute; one series is one request.
    client=ClientConfig(max_concurrency=2),
    description="FRED daily series, every vintage (DTWEXBGS, DGS10, VIXCLS)",
)
