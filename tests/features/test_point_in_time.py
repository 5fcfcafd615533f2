"""Point in time (ARCHITECTURE.md invariant 2): a feature row keyed at bar t uses only data whose
available_at is at or before t's.

Proof by truncation: the warehouse built from the lake as it stood at T (later partitions gone,
T's day cut to what was published by T) has exactly the full build's feature rows known by T.
Proof by perturbation: changing every row after T wildly leaves those rows unchanged.
Both on a synthetic lake with every dataset (spot, perp, funding, open interest, and the other
vendors: CoinGlass, CoinAPI, FRED and CryptoQuant vintages, Alpha Vantage), with 2-day windows
(the vars of SMALL_WINDOWS) so that warm-up leaves rows on an 8-day lake; cuts just before and
at a FRED vintage and a CryptoQuant revision; a later CryptoQuant revision leaves every row
computed before it was first seen unchanged. The last test repeats the truncation once with the
production windows (30 days) on a 64-day lake.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from tests.features.feature_harness import (
    FeatureWarehouse,
    Tables,
    assert_same_rows,
    cut_at,
    later_vintage,
    optional_features,
    perturb_after,
    rows_known_at,
    synthetic,
)
from warehouse.catalog import load_catalog

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
# A FRED vintage (DGS10 of Monday 01-06, usable from Tuesday's end + 6 h) and a CryptoQuant
# revision (of 01-05, first seen 01-08 01:49): cut 1 µs before each, at the FRED one (a bar
# close) and at the first bar close after the revision (01:50).
FRED_VINTAGE_AT = datetime(2025, 1, 8, 6, 0, tzinfo=UTC)
CQ_REVISION_AT = datetime(2025, 1, 8, 1, 49, tzinfo=UTC)
CQ_REVISION_BAR = datetime(2025, 1, 8, 1, 50, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
VENDOR_CUTS = [
    FRED_VINTAGE_AT - MICROSECOND,
    FRED_VINTAGE_AT,
    CQ_REVISION_AT - MICROSECOND,
    CQ_REVISION_BAR,
]
CQ = ("cq-daily", "all_exchange", None)


def _vintages_at(tables: Tables, key: tuple[str, str, None], moment: datetime) -> pd.DataFrame:
    frame = tables[key].to_pandas()
    return frame[frame["available_at"] == pd.Timestamp(moment)]


@pytest.fixture(scope="module")
def full_build(small_warehouse: FeatureWarehouse) -> dict[str, pd.DataFrame]:
    return small_warehouse.build(synthetic(DAYS))


def test_full_build_has_rows_after_warm_up(full_build: dict[str, pd.DataFrame]) -> None:
    features = full_build["features_5m"]
    # warm-up: the first day whose 2-day window of z-score parameters lies inside the inputs'
    # history (rv_5m's first value is at 01:00 on 2025-01-01): 2025-01-04; at 1h, the 100
    # bars of the longest spot window. The optional vendor features never hold a row back.
    assert features["open_time"].min() == pd.Timestamp("2025-01-04 00:00", tz="UTC")
    assert len(features) == 5 * 288
    assert len(full_build["features_1h"]) == 93
    # every source was landed from the first day: every row holds every set
    assert (
        features["is_derivatives_complete"].all() and features["is_vendors_complete"].mean() > 0.9
    )
    optional = optional_features()
    assert {"liq60_z", "cq_netflow_z", "dgs10_change_1d_bps"} <= optional
    for mart in ("features_5m", "features_1h"):
        frame = full_build[mart]
        assert not frame.drop(columns=sorted(optional)).isna().any().any(), mart
        # every vendor was landed: each optional feature is there on (nearly) every row
        coverage = frame[sorted(optional)].notna().mean()
        assert (coverage > 0.9).all(), coverage[coverage <= 0.9]
    assert (features["funding_agg_source"] == "coinglass_oi_weighted").all()
    assert features["has_synthetic_input"].all()

    # the vintages the cuts below sit on are in the lake and change features when known
    tables = synthetic(DAYS)
    assert len(_vintages_at(tables, ("fred-series", "DGS10", None), FRED_VINTAGE_AT)) == 1
    revision = _vintages_at(tables, CQ, CQ_REVISION_AT)
    assert (revision["observation_date"] == date(2025, 1, 5)).all() and len(revision) == 4
    by_time = features.set_index("available_at")
    before, at = (
        pd.Timestamp(FRED_VINTAGE_AT) - pd.Timedelta(minutes=5),
        pd.Timestamp(FRED_VINTAGE_AT),
    )
    assert by_time.loc[before, "dgs10_change_1d_bps"] != by_time.loc[at, "dgs10_change_1d_bps"]
    before, at = (
        pd.Timestamp(CQ_REVISION_BAR) - pd.Timedelta(minutes=5),
        pd.Timestamp(CQ_REVISION_BAR),
    )
    assert by_time.loc[before, "cq_netflow_z"] != by_time.loc[at, "cq_netflow_z"]


@pytest.mark.parametrize("cut", CUTS + VENDOR_CUTS, ids=lambda c: c.strftime("%m%dT%H%M%S.%f"))
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


def test_later_revision_leaves_earlier_features_unchanged(
    small_warehouse: FeatureWarehouse, full_build: dict[str, pd.DataFrame]
) -> None:
    """CryptoQuant revises 01-06's netflow (to 900 000) and the pipeline first sees it on 01-07
    at 12:00: every row known before then is unchanged, later rows use the revision."""
    seen = datetime(2025, 1, 7, 12, 0, tzinfo=UTC)
    tables = later_vintage(
        synthetic(DAYS), CQ, observation=date(2025, 1, 6), seen=seen,
        metric="netflow_total", value=9.0e5,
    )  # fmt: skip
    revised = small_warehouse.build(tables)
    for mart in ("features_5m", "features_1h"):
        before = seen - MICROSECOND
        assert_same_rows(
            rows_known_at(full_build[mart], before),
            rows_known_at(revised[mart], before),
            what=f"{mart} before a revision first seen at {seen}",
        )
        later = revised[mart]["available_at"] >= pd.Timestamp(seen)
        original = full_build[mart][full_build[mart]["available_at"] >= pd.Timestamp(seen)]
        changed = (
            revised[mart].loc[later, "cq_netflow_z"].to_numpy()
            != original["cq_netflow_z"].to_numpy()
        )
        assert changed.all(), f"{mart}: the revision should move cq_netflow_z from {seen} on"


@pytest.mark.slow
def test_production_windows_truncated_lake(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The 30-day windows of dbt_project.yml: 31 days of warm-up, then the rows compared."""
    warehouse = FeatureWarehouse(tmp_path_factory.mktemp("features_30d"), {})
    tables = synthetic(64)
    full = warehouse.build(tables)
    assert full["features_5m"]["open_time"].min() == pd.Timestamp("2025-02-01 00:00", tz="UTC")
    cut = datetime(2025, 3, 4, 17, 42, 10, tzinfo=UTC)
    truncated = warehouse.build(cut_at(tables, cut))
    for mart in ("features_5m", "features_1h"):
        expected = rows_known_at(full[mart], cut)
        assert len(expected) > (300 if mart == "features_5m" else 30)
        assert_same_rows(expected, truncated[mart], what=f"{mart} (30-day windows) cut at {cut}")


def spot_only(tables: Tables) -> Tables:
    """The lake of a binance.us user: spot klines and nothing else."""
    return {key: table for key, table in tables.items() if key[0] == "spot-klines"}


def test_a_lake_of_spot_klines_alone_gives_the_spot_set_truncated_and_perturbed(
    small_warehouse: FeatureWarehouse,
) -> None:
    full = small_warehouse.build(spot_only(synthetic(DAYS)))
    features = full["features_5m"]
    # the same warm-up as with every source: the spot set does not wait for the others
    assert features["open_time"].min() == pd.Timestamp("2025-01-04 00:00", tz="UTC")
    assert len(features) == 5 * 288 and len(full["features_1h"]) == 93
    assert not features["is_derivatives_complete"].any()
    contract = load_catalog()
    derivatives = contract.set_members("derivatives")
    assert len(derivatives) > 10 and features[derivatives].isna().all().all()
    spot = contract.set_members("spot")
    assert features[spot].notna().all().all()
    assert len(full["training_set_5m"]) > 1000

    cut = CUTS[0]
    truncated = small_warehouse.build(cut_at(spot_only(synthetic(DAYS)), cut))
    perturbed = small_warehouse.build(perturb_after(spot_only(synthetic(DAYS)), cut))
    for mart in ("features_5m", "features_1h"):
        expected = rows_known_at(full[mart], cut)
        assert len(expected) > (100 if mart == "features_5m" else 10)
        assert_same_rows(expected, truncated[mart], what=f"spot-only {mart} cut at {cut}")
        assert_same_rows(
            expected, rows_known_at(perturbed[mart], cut), what=f"spot-only {mart} perturbed"
        )
        later = perturbed[mart]["available_at"] > pd.Timestamp(cut)
        original = full[mart][full[mart]["available_at"] > pd.Timestamp(cut)]
        moved = perturbed[mart].loc[later, "ret_5m"].to_numpy() != original["ret_5m"].to_numpy()
        assert moved.mean() > 0.9, "the perturbation reached the later rows"
