"""Point in time (ARCHITECTURE.md invariant 2): a feature row keyed at bar t uses only data whose
available_at is at or before t's.

Proof by truncation: the warehouse built from the lake as it stood at T (later partitions gone,
T's day cut to what was published by T) has exactly the full build's feature rows known by T.
Proof by perturbation: changing every row after T wildly leaves those rows unchanged.
Both on a synthetic lake with every dataset (spot, perp, funding, open interest), with 2-day
windows (the vars of SMALL_WINDOWS) so that warm-up leaves rows on an 8-day lake; the last test
repeats the truncation once with the production windows (30 days) on a 64-day lake.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from feature_harness import (
    FeatureWarehouse,
    assert_same_rows,
    cut_at,
    perturb_after,
    rows_known_at,
    synthetic,
)

pytestmark = pytest.mark.dbt

DAYS = 8
CUTS = [
    # mid-bar, mid-day (partial 5m and 1h bars at the edge)
    datetime(2025, 1, 6, 13, 37, 30, tzinfo=UTC),
    # a day boundary: new winsorisation bounds start here
    datetime(2025, 1, 7, 0, 0, tzinfo=UTC),
    # just after a funding event (08:00 + jitter) and a bar close
    datetime(2025, 1, 8, 8, 0, 0, 5_000, tzinfo=UTC),
]


@pytest.fixture(scope="module")
def full_build(small_warehouse: FeatureWarehouse) -> dict[str, pd.DataFrame]:
    return small_warehouse.build(synthetic(DAYS))


def test_full_build_has_rows_after_warm_up(full_build: dict[str, pd.DataFrame]) -> None:
    features = full_build["features_5m"]
    # warm-up: 2 days for the first bounds + 2 days of winsorised values, from 2025-01-01
    assert features["open_time"].min() == pd.Timestamp("2025-01-05 23:55", tz="UTC")
    assert len(features) == 865
    assert len(full_build["features_1h"]) == 73
    assert features["liq60_z"].isna().all()
    assert not features.drop(columns="liq60_z").isna().any().any()


@pytest.mark.parametrize("cut", CUTS, ids=lambda c: c.strftime("%m%dT%H%M%S"))
def test_truncated_lake_gives_the_same_rows_up_to_the_cut(
    small_warehouse: FeatureWarehouse, full_build: dict[str, pd.DataFrame], cut: datetime
) -> None:
    truncated = small_warehouse.build(cut_at(synthetic(DAYS), cut))
    for mart in ("features_5m", "features_1h"):
        expected = rows_known_at(full_build[mart], cut)
        actual = truncated[mart]
        assert len(expected) > 100 if mart == "features_5m" else len(expected) > 10
        # the truncated build knows nothing later than the cut, and everything up to it
        assert (actual["available_at"] <= pd.Timestamp(cut)).all()
        assert_same_rows(expected, actual, what=f"{mart} cut at {cut}")


def test_perturbed_future_leaves_past_features_unchanged(
    small_warehouse: FeatureWarehouse, full_build: dict[str, pd.DataFrame]
) -> None:
    cut = CUTS[0]
    perturbed = small_warehouse.build(perturb_after(synthetic(DAYS), cut))
    for mart in ("features_5m", "features_1h"):
        assert_same_rows(
            rows_known_at(full_build[mart], cut),
            rows_known_at(perturbed[mart], cut),
            what=f"{mart} perturbed after {cut}",
        )
        later = perturbed[mart]["available_at"] > pd.Timestamp(cut)
        original = full_build[mart][full_build[mart]["available_at"] > pd.Timestamp(cut)]
        # the perturbation did reach the later rows (else this test proves nothing)
        assert (
            perturbed[mart].loc[later, "basis_bps"].to_numpy() != original["basis_bps"].to_numpy()
        ).mean() > 0.9

    # labels look forward but stop at t1: a label decided by the cut is unchanged too
    decided = full_build["labels_5m"]
    decided = decided[decided["t1"] <= pd.Timestamp(cut)]
    after = (
        perturbed["labels_5m"]
        .set_index(["symbol", "open_time"])
        .loc[list(zip(decided["symbol"], decided["open_time"], strict=True))]
    )
    columns = ["barrier_label", "touch_type", "bars_to_touch", "t1", "atr", "fwd_ret_5m"]
    pd.testing.assert_frame_equal(
        after[columns].reset_index(drop=True), decided[columns].reset_index(drop=True)
    )


@pytest.mark.slow
def test_production_windows_truncated_lake(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The 30-day windows of dbt_project.yml: 61 days of warm-up, then three days compared."""
    warehouse = FeatureWarehouse(tmp_path_factory.mktemp("features_30d"), {})
    tables = synthetic(64)
    full = warehouse.build(tables)
    assert full["features_5m"]["open_time"].min() == pd.Timestamp("2025-03-02 23:55", tz="UTC")
    cut = datetime(2025, 3, 4, 17, 42, 10, tzinfo=UTC)
    truncated = warehouse.build(cut_at(tables, cut))
    for mart in ("features_5m", "features_1h"):
        expected = rows_known_at(full[mart], cut)
        assert len(expected) > (300 if mart == "features_5m" else 30)
        assert_same_rows(expected, truncated[mart], what=f"{mart} (30-day windows) cut at {cut}")
