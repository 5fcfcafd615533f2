"""FRED's `series/observations` on the replay server: synthetic daily series with vintages.

Series: DGS10 (10-year Treasury yield, %), VIXCLS (VIX close) and DTWEXBGS (broad dollar
index), one value per weekday from 2015, "." on US federal holidays. Each observation has a
first vintage on its release day (the next business day; for DTWEXBGS the Monday after its
week, as the H.10 release) and, for some DGS10/DTWEXBGS days, a revised vintage a week
later, so `realtime_start`/`realtime_end` behave as FRED's real-time periods: clipped to the
request's real-time window, and no vintage released after the replay clock's today.

Errors as FRED sends them: `{"error_code": 400, "error_message": "Bad Request.  ..."}` with
HTTP 400 (no api_key, an unregistered key: any key starting with `bad-` in the replay, an
unknown series, a bad date or limit), XML when `file_type` is not json, a 429 body for an
injected 429. Values are a deterministic function of the seed and the date.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from replay.calendars import is_us_business_day, next_us_business_day
from replay.clock import day_of
from replay.rest import Reply
from replay.vendors import VendorRequest, VendorRoutes, json_reply

OBSERVATIONS = "/fred/series/observations"
ANCHOR = date(2015, 1, 1)  # first synthetic observation of every series
REJECTED_KEY_PREFIX = "bad-"  # replay convention: such keys are "not registered"
_EARLIEST = date(1776, 7, 4)
_LATEST = date(9999, 12, 31)
_MAX_LIMIT = 100_000


# -- deterministic daily draws (shared with the other macro/on-chain routes) ---------------


def daily_normals(seed: int, stream: int, first: date, last: date) -> np.ndarray:
    """One standard normal per calendar day in [first, last], the same whatever the window:
    drawn in yearly blocks keyed by (seed, stream, year)."""
    if last < first:
        return np.empty(0)
    out = []
    for year in range(first.year, last.year + 1):
        block = _year_block(seed, stream, year)
        lo = max(first, date(year, 1, 1))
        hi = min(last, date(year, 12, 31))
        start = (lo - date(year, 1, 1)).days
        out.append(block[start : start + (hi - lo).days + 1])
    return np.concatenate(out)


@functools.lru_cache(maxsize=256)
def _year_block(seed: int, stream: int, year: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 7_000 + stream, year])
    block = rng.standard_normal(366)
    block.flags.writeable = False
    return block


def unit_hash(*parts: object) -> float:
    """A deterministic draw in [0, 1) from the parts (seed, series, date, ...)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@functools.lru_cache(maxsize=64)
def ar_path(seed: int, stream: int, last: date, phi: float) -> np.ndarray:
    """An AR(1) (phi=1: a random walk) of unit shocks per calendar day from ANCHOR to last."""
    shocks = daily_normals(seed, stream, ANCHOR, last).tolist()
    level, path = 0.0, []
    for shock in shocks:
        level = phi * level + shock
        path.append(level)
    out = np.array(path)
    out.flags.writeable = False
    return out


# -- the series ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    series_id: str
    stream: int
    weekly_release: bool  # DTWEXBGS: the week's values come out the next Monday
    revised_share: float

    def value(self, seed: int, day: date, last: date) -> float:
        index = (day - ANCHOR).days
        if self.series_id == "DGS10":
            level = 4.0 + 0.04 * ar_path(seed, self.stream, last, 1.0)[index]
            return round(float(np.clip(level, 0.3, 9.0)), 2)
        if self.series_id == "VIXCLS":
            level = np.log(17.0) + 0.09 * ar_path(seed, self.stream, last, 0.97)[index]
            return round(float(np.exp(level)), 2)
        return round(float(120.0 * np.exp(0.003 * ar_path(seed, self.stream, last, 1.0)[index])), 4)

    def release(self, day: date) -> date:
        if not self.weekly_release:
            return next_us_business_day(day)
        monday = day - timedelta(days=day.weekday()) + timedelta(days=7)
        return monday if is_us_business_day(monday) else next_us_business_day(monday)


SERIES = {
    s.series_id: s
    for s in (
        _Series("DGS10", 1, False, 0.04),
        _Series("VIXCLS", 2, False, 0.0),
        _Series("DTWEXBGS", 3, True, 0.15),
    )
}


@dataclass(frozen=True)
class _Vintage:
    day: date
    start: date
    end: date
    value: str


def vintages(seed: int, series: _Series, first: date, last: date, today: date) -> list[_Vintage]:
    """Every vintage of the observations in [first, last] released by `today`."""
    out: list[_Vintage] = []
    day = max(first, ANCHOR)
    end = min(last, today)
    while day <= end:
        if day.weekday() < 5:
            out.extend(_day_vintages(seed, series, day, today))
        day += timedelta(days=1)
    return out


def _day_vintages(seed: int, series: _Series, day: date, today: date) -> list[_Vintage]:
    released = series.release(day)
    if released > today:
        return []
    if not is_us_business_day(day):
        return [_Vintage(day, released, _LATEST, ".")]
    value = series.value(seed, day, today)
    revised_on = next_us_business_day(released + timedelta(days=6))
    revised = unit_hash(seed, series.series_id, day) < series.revised_share and revised_on <= today
    if not revised:
        return [_Vintage(day, released, _LATEST, _fmt(series, value))]
    delta = (unit_hash(seed, series.series_id, day, "delta") - 0.5) * 0.02 * max(value, 1.0)
    return [
        _Vintage(day, released, revised_on - timedelta(days=1), _fmt(series, value)),
        _Vintage(day, revised_on, _LATEST, _fmt(series, value + delta)),
    ]


def _fmt(series: _Series, value: float) -> str:
    return f"{value:.4f}" if series.series_id == "DTWEXBGS" else f"{value:.2f}"


# -- the routes ----------------------------------------------------------------------------


class FredRoutes(VendorRoutes):
    name = "fred"
    prefixes = ("/fred/",)

    def handle(self, request: VendorRequest) -> Reply:
        params = request.params
        fmt = params.get("file_type", "xml")
        if request.path != OBSERVATIONS:
            return _error(404, "Not Found.  This replay serves fred/series/observations only.", fmt)
        if fmt not in ("json", "xml"):
            return _error(400, "Bad Request.  Variable file_type is not one of json, xml.", "json")
        key = params.get("api_key", "")
        if not key:
            return _error(400, "Bad Request.  Variable api_key has not been set.", fmt)
        if key.startswith(REJECTED_KEY_PREFIX):
            return _error(
                400,
                "Bad Request.  The value for variable api_key is not registered.  Read "
                "https://fred.stlouisfed.org/docs/api/api_key.html for more information.",
                fmt,
            )
        series_id = params.get("series_id", "")
        if not series_id:
            return _error(400, "Bad Request.  Variable series_id is not set.", fmt)
        series = SERIES.get(series_id)
        if series is None:
            return _error(400, "Bad Request.  The series does not exist.", fmt)
        today = day_of(request.now_us)
        try:
            obs_start = _date(params, "observation_start", _EARLIEST)
            obs_end = _date(params, "observation_end", _LATEST)
            rt_start = _date(params, "realtime_start", today)
            rt_end = _date(params, "realtime_end", today)
            limit = _int(params, "limit", _MAX_LIMIT, 1, _MAX_LIMIT)
            offset = _int(params, "offset", 0, 0, 2**31)
        except ValueError as exc:
            return _error(400, f"Bad Request.  {exc}", fmt)
        if rt_start > rt_end:
            return _error(400, "Bad Request.  The real-time period is invalid.", fmt)
        order = params.get("sort_order", "asc")
        if order not in ("asc", "desc"):
            return _error(400, "Bad Request.  Variable sort_order is not one of asc, desc.", fmt)
        rows = [
            {
                "realtime_start": max(v.start, rt_start).isoformat(),
                "realtime_end": min(v.end, rt_end).isoformat(),
                "date": v.day.isoformat(),
                "value": v.value,
            }
            for v in vintages(self.ctx.seed, series, obs_start, obs_end, today)
            if v.start <= rt_end and v.end >= rt_start and v.start <= today
        ]
        if order == "desc":
            rows.reverse()
        page = rows[offset : offset + limit]
        if fmt == "xml":
            return Reply(200, _xml(page), "text/xml; charset=UTF-8")
        payload: dict[str, Any] = {
            "realtime_start": rt_start.isoformat(),
            "realtime_end": rt_end.isoformat(),
            "observation_start": obs_start.isoformat(),
            "observation_end": obs_end.isoformat(),
            "units": "lin",
            "output_type": 1,
            "file_type": "json",
            "order_by": "observation_date",
            "sort_order": order,
            "count": len(rows),
            "offset": offset,
            "limit": limit,
            "observations": page,
        }
        return json_reply(200, payload)

    def fault_reply(self, status: int) -> Reply:
        if status == 429:
            return _error(429, "Too Many Requests.  Exceeded Rate Limit", "json")
        return _error(status, "Internal Server Error", "json")

    def vendor_fault(self, request: VendorRequest) -> Reply:
        # FRED's "Locked" answer while a series is being updated.
        return _error(423, "Locked.  The series is being updated; try again later.", "json")


def _date(params: dict[str, str] | Any, name: str, default: date) -> date:
    text = params.get(name)
    if text is None:
        return default
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Variable {name} is not a valid date (YYYY-MM-DD).") from None


def _int(params: Any, name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"Variable {name} is not an integer between {low} and {high}.")
    return int(text)


def _error(status: int, message: str, fmt: str) -> Reply:
    if fmt == "xml":
        head = '<?xml version="1.0" encoding="utf-8" ?>'
        body = f'{head}\n<error code="{status}" message={quoteattr(message)}/>'
        return Reply(status, body.encode(), "text/xml; charset=UTF-8")
    return json_reply(status, {"error_code": status, "error_message": message})


def _xml(rows: list[dict[str, str]]) -> bytes:
    lines = ['<?xml version="1.0" encoding="utf-8" ?>', "<observations>"]
    lines += [
        "  <observation " + " ".join(f"{k}={quoteattr(v)}" for k, v in row.items()) + "/>"
        for row in rows
    ]
    lines.append("</observations>")
    return "\n".join(lines).encode()
