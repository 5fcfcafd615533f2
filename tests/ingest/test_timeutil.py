"""ingest.timeutil: ms/µs normalisation, intervals, UTC day helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from ingest.errors import ConfigError
from ingest.timeutil import (
    BINANCE_INTERVALS,
    US_PER_DAY,
    Interval,
    datetime_to_us,
    day_start_us,
    days_between,
    epoch_to_us,
    interval_us,
    normalise_epoch_us,
    parse_day,
    parse_moment,
    us_to_datetime,
    us_to_day,
)

# 2024-12-31 23:59 UTC in ms (spot archive before 2025) and 2025-01-01 00:00 in µs (after).
MS_2024 = 1_735_689_540_000
US_2025 = 1_735_689_600_000_000


def test_ms_and_us_rows_give_monotonic_utc_microseconds() -> None:
    out = normalise_epoch_us(np.array([MS_2024, US_2025], dtype=np.int64))
    assert out.tolist() == [MS_2024 * 1000, US_2025]
    assert np.all(np.diff(out) == 60_000_000)
    assert us_to_datetime(int(out[0])) == datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    assert us_to_datetime(int(out[1])) == datetime(2025, 1, 1, tzinfo=UTC)


def test_epoch_to_us_matches_the_vectorised_form() -> None:
    values = [0, 1, MS_2024, US_2025, 10**14 - 1, 10**14]
    assert [epoch_to_us(v) for v in values] == normalise_epoch_us(np.array(values)).tolist()
    assert epoch_to_us(10**14 - 1) == (10**14 - 1) * 1000  # still ms (year 5138)
    assert epoch_to_us(10**14) == 10**14  # µs


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [("1s", 1), ("1m", 60), ("5m", 300), ("15m", 900), ("1h", 3600), ("4h", 14_400),
     ("1d", 86_400), ("3d", 259_200), ("1w", 604_800)],
)  # fmt: skip
def test_interval_us(interval: str, seconds: int) -> None:
    assert interval_us(interval) == seconds * 1_000_000


@pytest.mark.parametrize("bad", ["", "m", "1", "0m", "1x", "1H", "1 m", "-1m", "1.5m", "m1", "1mm"])
def test_interval_errors_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="interval"):
        interval_us(bad)


def test_calendar_month_has_no_fixed_length() -> None:
    assert "1M" in BINANCE_INTERVALS
    with pytest.raises(ConfigError, match="1M"):
        interval_us("1M")


def test_day_helpers() -> None:
    day = date(2025, 5, 19)
    start = day_start_us(day)
    assert us_to_datetime(start) == datetime(2025, 5, 19, tzinfo=UTC)
    assert us_to_day(start) == day
    assert us_to_day(start + US_PER_DAY - 1) == day
    assert us_to_day(start + US_PER_DAY) == date(2025, 5, 20)
    assert us_to_day(-1) == date(1969, 12, 31)
    assert days_between(day, day) == [day]
    assert days_between(date(2024, 2, 28), date(2024, 3, 1)) == [
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
    ]
    with pytest.raises(ConfigError, match="before"):
        days_between(day, day - timedelta(days=1))


def test_datetime_round_trip_and_naive_refused() -> None:
    moment = datetime(2023, 3, 24, 12, 39, 41, 646_000, tzinfo=UTC)
    assert us_to_datetime(datetime_to_us(moment)) == moment
    assert datetime_to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    plus_two = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert datetime_to_us(plus_two) == datetime_to_us(datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match="UTC"):
        datetime_to_us(datetime(2024, 1, 1))


def test_parse_day() -> None:
    assert parse_day("2025-05-19") == date(2025, 5, 19)
    for bad in ("2025-13-01", "19/05/2025", "", "2025-05-19T00:00"):
        with pytest.raises(ConfigError, match="YYYY-MM-DD"):
            parse_day(bad)


def test_parse_moment_is_always_utc() -> None:
    assert parse_moment("2025-05-19") == datetime(2025, 5, 19, tzinfo=UTC)
    assert parse_moment("2025-05-19T10:30Z") == datetime(2025, 5, 19, 10, 30, tzinfo=UTC)
    # An offset is converted, so that .date() is the UTC day (01:00+02:00 is the day before).
    moment = parse_moment("2024-01-03T01:00+02:00")
    assert moment == datetime(2024, 1, 2, 23, 0, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)
    assert moment.date() == date(2024, 1, 2)
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_moment("yesterday")


def test_an_interval_is_parsed_once_and_carried_typed() -> None:
    five = Interval.parse("5m")
    assert (five.code, five.us, five.per_day, str(five)) == ("5m", 300_000_000, 288, "5m")
    assert Interval.parse("1h").per_day == 24 and Interval.parse("1d").per_day == 1
    for bad, match in [("1M", "1M"), ("7x", "interval"), ("0m", "positive")]:
        with pytest.raises(ConfigError, match=match):
            Interval.parse(bad)
