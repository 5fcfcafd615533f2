"""Fixtures of the feature and label tests (the harness is in feature_harness.py)."""

from __future__ import annotations

import pytest

from tests.features.feature_harness import SMALL_WINDOWS, FeatureWarehouse


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> FeatureWarehouse:
    """One data folder (and dbt parse) for every build of a test module, 2-day windows."""
    return FeatureWarehouse(tmp_path_factory.mktemp("features"), SMALL_WINDOWS)
