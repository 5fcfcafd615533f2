"""UTC time helpers: interval arithmetic and the ms/µs normalisation every loader applies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

# Re-exported: the loaders count in these.
from core.units import US_PER_DAY as US_PER_DAY
from core.units import US_PER_MS as US_PER_MS
from core.units import US_PER_S as US_PER_S
from ingest.errors import ConfigError

# Binance epoch values above this are microseconds (µs values have been > 1e15 since 2001;
# millisecond values stay below 1e14 until the year 5138).
_MICROS_THRESHOLD = 10**14

_INTERVAL_RE = re.compile(r"^(\d+)([smhdwM])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

# Binance's kline intervals (case-sensitive: 1m is a minute, 1M a month).
BINANCE_INTERVALS = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",  # noqa: E501
)  # fmt: skip


def interval_us(interval: str) -> int:
    """Length of a fixed interval in µs; calendar months (`1M`) have no fixed length."""
    match = _INTERVAL_RE.match(interval)
    if not match:
        raise ConfigError(f"invalid interval {interval!r}: expected e.g. 1m, 5m, 1h, 1d")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        raise ConfigError("calendar-month interval 1M has no fixed length")
    if count <= 0:
        raise ConfigError(f"invalid interval {interval!r}: count must be positive")
    return count * _UNIT_S[unit] * US_PER_S


@dataclass(frozen=True)
class Interval:
    """A fixed bar or period length as Binance spells it (`1m`, `5m`, `1h`, `1d`), parsed once
    where it enters (a request, a config) and carried typed from there."""

    code: str
    us: int

    @classmethod
    def parse(cls, code: str) -> Interval:
        """ConfigError for a malformed code or a calendar month (no fixed length)."""
        return cls(code, interval_us(code))

    @property
    def per_day(self) -> int:
        """Bars of this length in a UTC day (a partition's expected rows)."""
        return US_PER_DAY // self.us

    def __str__(self) -> str:
        return self.code


def normalise_epoch_us(values: np.ndarray) -> np.ndarray:
    """Epoch integers in ms or µs (mixed is fine) -> µs, element by element."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= _MICROS_THRESHOLD, values, values * US_PER_MS)


def epoch_to_us(value: int) -> int:
    """One epoch integer in ms or µs -> µs."""
    return value if value >= _MICROS_THRESHOLD else value * US_PER_MS


def us_to_datetime(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def datetime_to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ConfigError(
            f"naive datetime {moment.isoformat()} has no time zone; btcfs is UTC-only"
        )
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def day_start_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * US_PER_DAY


def us_to_day(us: int) -> date:
    return date(1970, 1, 1) + timedelta(days=us // US_PER_DAY)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"invalid date {text!r}: expected YYYY-MM-DD") from exc


def parse_moment(text: str) -> datetime:
    """An ISO date or datetime, in UTC; naive values are taken as UTC, offsets converted."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"invalid time {text!r}: expected ISO 8601, e.g. 2025-05-19T00:00Z"
        ) from exc
    # Converted, not just tagged: callers take `.date()` of it as the UTC day.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def days_between(start: date, end: date) -> list[date]:
    """Every UTC day from start to end, both included."""
    if end < start:
        raise ConfigError(f"end {end} is before start {start}")
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
