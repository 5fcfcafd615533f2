"""The replay server's calendars and wire constants are its own; these tests make the two
independent implementations (replay and the loaders) check each other."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ingest import REPLAY_HEADER as LOADER_REPLAY_HEADER
from ingest.binance.archive import SYNTHETIC_MARKER as LOADER_SYNTHETIC_MARKER
from ingest.vendors.alphavantage import NEW_YORK as LOADER_NEW_YORK
from ingest.vendors.fred import is_business_day, next_business_day
from replay.archive import SYNTHETIC_MARKER
from replay.calendars import (
    NEW_YORK,
    federal_holidays,
    is_us_business_day,
    next_us_business_day,
)
from replay.server import REPLAY_HEADER


def test_replay_and_loaders_agree_on_every_us_business_day_2015_to_2035() -> None:
    day, disagreements = date(2015, 1, 1), []
    while day <= date(2035, 12, 31):
        if is_us_business_day(day) != is_business_day(day):
            disagreements.append(day)
        if next_us_business_day(day) != next_business_day(day):
            disagreements.append(day)
        day += timedelta(days=1)
    assert disagreements == []


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2021, 12, 31), "New Year's Day 2022 fell on a Saturday"),
        (date(2021, 6, 18), "the first Juneteenth, 19 June 2021, was a Saturday"),
        (date(2022, 12, 26), "Christmas 2022 fell on a Sunday"),
        (date(2024, 11, 28), "Thanksgiving: the fourth Thursday of November"),
        (date(2025, 5, 26), "Memorial Day: the last Monday of May"),
        (date(2026, 7, 3), "Independence Day 2026 falls on a Saturday"),
    ],
)
def test_observed_federal_holidays_from_opm_are_not_business_days(day: date, why: str) -> None:
    assert day in federal_holidays(day.year), why
    assert not is_us_business_day(day), why


def test_no_juneteenth_before_2021_and_eleven_holidays_a_year_after() -> None:
    assert date(2020, 6, 19) not in federal_holidays(2020)
    assert len(federal_holidays(2020)) == 10
    assert len(federal_holidays(2023)) == 11
    # 2022's New Year's Day was observed in 2021: that year holds eleven, 2022 ten.
    assert len(federal_holidays(2021)) == 12
    assert len(federal_holidays(2022)) == 10


def test_wire_constants_match_what_the_loaders_read() -> None:
    assert REPLAY_HEADER == LOADER_REPLAY_HEADER
    assert SYNTHETIC_MARKER == LOADER_SYNTHETIC_MARKER
    assert NEW_YORK.key == LOADER_NEW_YORK.key
