"""Which days a loader fetches: one rule for Binance and every other vendor.

A day is fetched unless the lake holds it final (finished, complete, landed after the day was
over: `Lake.is_final`); the last `refresh_tail` days up to today are fetched again whatever
they hold (late corrections, a vendor's revisions); `force` fetches every day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from lake.store import Lake, PartitionKey


@dataclass(frozen=True)
class DayPlan:
    fetch: list[date] = field(default_factory=list)
    skip: list[date] = field(default_factory=list)  # already final in the lake


def plan_days(
    lake: Lake,
    key: Callable[[date], PartitionKey],
    days: Iterable[date],
    *,
    today: date,
    refresh_tail: int,
    force: bool = False,
) -> DayPlan:
    """Split `days` into those to fetch and those the lake already holds final; `key` gives
    a day's partition."""
    tail_from = today - timedelta(days=max(refresh_tail - 1, 0))
    plan = DayPlan()
    for day in days:
        in_tail = refresh_tail > 0 and day >= tail_from
        (plan.fetch if force or in_tail or not lake.is_final(key(day)) else plan.skip).append(day)
    return plan
