"""An empty mart is a failure: with bars but too little history for the features' warm-up, the
rows_past_warmup gates fail naming the warm-up and the missing days, `btcfs qa` says so and
`btcfs publish` refuses; with history enough, an empty mart names a missing input; and the
default ingest config lands more history than the warm-up needs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner, Result

from btcfs.cli import cli
from ingest.config import load_config
from tests.features.feature_harness import REPO, FeatureWarehouse, synthetic

pytestmark = pytest.mark.dbt

BUILD = ("build", "--exclude-resource-type", "unit_test")


def btcfs(warehouse: FeatureWarehouse, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        [*args, "--target-path", str(warehouse.root / "target"),
         "--warehouse", str(warehouse.database)],
        env={"BTCFS_DATA_DIR": str(warehouse.root), "DBT_TARGET_PATH": None},
    )  # fmt: skip


def test_too_little_history_fails_the_warmup_gates_qa_and_publish(
    small_warehouse: FeatureWarehouse,
) -> None:
    # 2-day windows: the warm-up is 2 days + a 1-day refresh = 3 days; 2 days landed.
    small_warehouse.land(synthetic(2))
    small_warehouse.reset_database()
    # The marts exist (an earlier `dbt run` made them, empty), as in a warehouse built before.
    small_warehouse.dbt("run")
    output = small_warehouse.dbt(*BUILD, expect_ok=False)
    line = next(x for x in output.splitlines() if "GATE FAIL rows_past_warmup__features_5m" in x)
    assert "dataset=features_5m symbol=BTCUSDT day=2025-01-02 count=576" in line
    assert "no rows although bars_5m holds 2.0 days of bars (2025-01-01 to 2025-01-02)" in line
    assert "the feature warm-up needs 3.0 days (2.0-day features_window_seconds" in line
    assert "1.0 days of history missing (land more: config/ingest.yml days_back)" in line
    assert "GATE FAIL rows_past_warmup__features_1h: dataset=features_1h" in output

    qa = btcfs(small_warehouse, "qa")
    assert qa.exit_code == 1, qa.output
    assert re.search(r"FAIL\s+rows_past_warmup__features_5m \[", qa.output), qa.output
    assert "1.0 days of history missing" in qa.output

    published = btcfs(small_warehouse, "publish")
    assert published.exit_code == 1, published.output
    assert "refusing to publish" in published.output
    assert "rows_past_warmup__features_5m [features_5m, fail]" in published.output
    assert not (small_warehouse.root / "warehouse" / "serve.duckdb").exists()


def test_an_empty_mart_with_history_enough_names_a_missing_input(
    small_warehouse: FeatureWarehouse,
) -> None:
    small_warehouse.land(synthetic(8))
    small_warehouse.reset_database()
    small_warehouse.dbt(*BUILD)
    con = duckdb.connect(str(small_warehouse.database))
    try:
        con.execute("delete from latest_features where bar_interval = '1h'")
    finally:
        con.close()
    output = small_warehouse.dbt("test", "--select", "latest_features", expect_ok=False)
    line = next(x for x in output.splitlines() if "GATE FAIL rows_past_warmup__latest" in x)
    assert "rows_past_warmup__latest_features_1h: dataset=latest_features" in line
    assert "bars_1h holds 8.0 days of bars" in line
    assert "the history covers it, so an input is missing" in line
    assert "rows_past_warmup__latest_features_5m" not in output.split("Finished running")[-1]


def test_the_default_ingest_config_lands_the_feature_warmup(tmp_path: Path) -> None:
    """`days_back` of config/ingest.yml against the warm-up of the default windows, as dbt
    computes it (the gate's own macro)."""
    defaults = FeatureWarehouse(tmp_path, {})
    output = defaults.dbt("run-operation", "features_warmup")
    match = re.search(r"features warm-up: (\d+) s", output)
    assert match, output[-2000:]
    warmup_days = int(match.group(1)) / 86_400
    now = datetime(2026, 1, 1, tzinfo=UTC)
    days_back = (now.date() - load_config(REPO / "config" / "ingest.yml", now).start).days + 1
    assert warmup_days == 31
    # a month of feature rows after the warm-up
    assert days_back >= warmup_days + 30, (days_back, warmup_days)
    # ...of the symbols the warehouse builds: the loader and dbt default to the same two
    landed = load_config(REPO / "config" / "ingest.yml", now).symbols
    built = yaml.safe_load((REPO / "dbt_project.yml").read_text())["vars"]["symbols"]
    assert list(landed) == built == ["BTCUSDT", "ETHUSDT"]
