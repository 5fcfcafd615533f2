"""One planning rule for every loader: what is final in the lake is skipped, the refresh tail
and --force are fetched again, and everything else (never landed, unfinished, incomplete,
landed while the day was open) is fetched."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ingest.planning import plan_days
from lake.schemas import DATASETS
from lake.store import SUCCESS_FILE, Lake, PartitionKey
from tests.ingest.binance_fakes import day_ms
from tests.lake.test_lake import bars

DAYS = [date(2024, 1, 1) + timedelta(days=n) for n in range(6)]
TODAY = date(2024, 1, 6)


def key(day: date) -> PartitionKey:
    return PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", day)


def land(lake: Lake, day: date, rows: int, *, day_open: bool = False) -> None:
    table = bars(rows, start=day_ms(day))
    lake.write_partition(
        key(day), table, source="rest", ingested_at=datetime.now(UTC), expected_rows=1440,
        day_open=day_open,
    )  # fmt: skip


def test_only_final_days_outside_the_tail_are_skipped(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    land(lake, DAYS[0], 1440)  # final
    land(lake, DAYS[1], 1000)  # incomplete
    land(lake, DAYS[2], 1440, day_open=True)  # every row, landed while the day was open
    land(lake, DAYS[3], 1440)
    (lake.partition_dir(key(DAYS[3])) / SUCCESS_FILE).unlink()  # unfinished
    land(lake, DAYS[5], 1440)  # final, but inside the refresh tail
    # DAYS[4]: never landed
    plan = plan_days(lake, key, DAYS, today=TODAY, refresh_tail=2)
    assert plan.skip == [DAYS[0]]
    assert plan.fetch == DAYS[1:]
    assert plan_days(lake, key, DAYS, today=TODAY, refresh_tail=0).skip == [DAYS[0], DAYS[5]]
    forced = plan_days(lake, key, DAYS, today=TODAY, refresh_tail=0, force=True)
    assert forced.fetch == DAYS and forced.skip == []
