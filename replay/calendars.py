"""The calendars the replayed vendors publish on, written from the rules themselves.

The loaders have their own (ingest.vendors.fred uses pandas' USFederalHolidayCalendar); this
module must not import them, so a wrong rule on one side shows up as a failing replay test
instead of passing everywhere. The rule is the one the US Office of Personnel Management
publishes for federal holidays (5 U.S.C. 6103): fixed-date holidays falling on a Saturday are
observed the Friday before, on a Sunday the Monday after.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from zoneinfo import ZoneInfo

#: US equity and bond markets keep New York time (Alpha Vantage's daily bars, FRED's day).
NEW_YORK = ZoneInfo("America/New_York")

_MONDAY, _THURSDAY = 0, 3


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` of the month (n = -1: the last one)."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    after = date(year + (month == 12), month % 12 + 1, 1)
    last = after - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def _fixed(year: int) -> list[date]:
    days = [date(year, 1, 1), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    if year >= 2021:  # Juneteenth National Independence Day, signed 17 June 2021
        days.append(date(year, 6, 19))
    return days


@functools.lru_cache(maxsize=64)
def federal_holidays(year: int) -> frozenset[date]:
    """The days in `year` on which US federal holidays are observed.

    A New Year's Day on a Saturday is observed on 31 December of the year before, so that
    day belongs to the earlier year's set.
    """
    observed = {_observed(day) for day in _fixed(year) + _fixed(year + 1)}
    floating = {
        _nth_weekday(year, 1, _MONDAY, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, _MONDAY, 3),  # Washington's Birthday
        _nth_weekday(year, 5, _MONDAY, -1),  # Memorial Day
        _nth_weekday(year, 9, _MONDAY, 1),  # Labor Day
        _nth_weekday(year, 10, _MONDAY, 2),  # Columbus Day
        _nth_weekday(year, 11, _THURSDAY, 4),  # Thanksgiving Day
    }
    return frozenset(day for day in observed | floating if day.year == year)


def is_us_business_day(day: date) -> bool:
    """Monday to Friday and not an observed US federal holiday."""
    return day.weekday() < 5 and day not in federal_holidays(day.year)


def next_us_business_day(day: date) -> date:
    """The first US business day strictly after `day`."""
    candidate = day + timedelta(days=1)
    while not is_us_business_day(candidate):
        candidate += timedelta(days=1)
    return candidate
