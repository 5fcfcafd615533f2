"""Time units every layer counts in: UTC microseconds since the epoch, days since 1970-01-01."""

from __future__ import annotations

from datetime import date

US_PER_MS = 1_000
US_PER_S = 1_000_000
US_PER_MINUTE = 60 * US_PER_S
US_PER_DAY = 86_400 * US_PER_S
EPOCH_DAY = date(1970, 1, 1)
