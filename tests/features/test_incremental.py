"""Incremental feature, label and training marts equal a full refresh.

The lake grows the way the daily loader grows it (whole partitions, the current day rewritten
as it fills up); after each step `dbt run` updates the marts incrementally. The end state must
equal `dbt run --full-refresh` on the final lake, row for row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lake.schemas import DATASETS
from tests.features.feature_harness import (
    MARTS,
    SELECT,
    FeatureWarehouse,
    Tables,
    assert_same_rows,
    cut_at,
    synthetic,
)

pytestmark = pytest.mark.dbt

DAYS = 8
STEPS = [
    datetime(2025, 1, 3, 12, 0, tzinfo=UTC),  # still warming up: the feature marts are empty
    datetime(2025, 1, 5, 0, 0, tzinfo=UTC),  # first rows, then one step per (part of a) day
    datetime(2025, 1, 7, 0, 0, tzinfo=UTC),
    datetime(2025, 1, 7, 12, 3, 20, tzinfo=UTC),
    datetime(2025, 1, 8, 0, 0, tzinfo=UTC),
    datetime(2025, 1, 9, 0, 0, tzinfo=UTC),
]


def without_days(tables: Tables, dataset: str, first: date, last: date) -> Tables:
    """`tables` with `dataset`'s rows of the days `first`..`last` gone (a vendor outage)."""
    out = dict(tables)
    for key, table in tables.items():
        if key[0] == dataset:
            day = pc.cast(table.column(DATASETS[dataset].time_column), pa.date32())
            keep = pc.or_(pc.less(day, pa.scalar(first)), pc.greater(day, pa.scalar(last)))
            out[key] = table.filter(keep)
    return out


OUTAGES = {
    "every-source": None,
    # the z-score parameters' read range starts inside it
    "open-interest-outage": ("open-interest", date(2025, 1, 2), date(2025, 1, 3)),
    # the funding percentile's read range starts inside it
    "funding-outage": ("funding", date(2025, 1, 2), date(2025, 1, 4)),
}


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_incremental_runs_equal_full_refresh(
    small_warehouse: FeatureWarehouse, outage: str
) -> None:
    """With a source's outage early in the lake, an incremental run reads a range that starts
    inside it: it must still judge each warm-up on the whole history, as the full refresh
    does."""
    tables = synthetic(DAYS)
    if OUTAGES[outage] is not None:
        dataset, first, last = OUTAGES[outage]
        tables = without_days(tables, dataset, first, last)
    small_warehouse.reset_database()
    sizes = []
    for step, cut in enumerate(STEPS):
        small_warehouse.land(cut_at(tables, cut), replace=step == 0)
        small_warehouse.dbt("run", *SELECT)
        sizes.append(len(small_warehouse.snapshot(("features_5m",))["features_5m"]))
    incremental = small_warehouse.snapshot()

    assert sizes[0] == 0
    assert sizes == sorted(sizes) and sizes[-1] == 5 * 288

    small_warehouse.dbt("run", *SELECT, "--full-refresh")
    refreshed = small_warehouse.snapshot()
    for mart in MARTS:
        assert len(refreshed[mart]) > 0, mart
        assert_same_rows(refreshed[mart], incremental[mart], what=f"{mart} incremental")

    # rows whose 1-day forward return was NULL on an earlier run got it on a later one
    labels = incremental["labels_5m"]
    known_day_ahead = labels["open_time"] < pd.Timestamp("2025-01-08 00:00", tz="UTC")
    assert labels.loc[known_day_ahead, "fwd_ret_1d"].notna().all()
    assert labels.loc[~known_day_ahead, "fwd_ret_1d"].isna().all()
