"""Adding a feature is one SQL expression and one YAML entry (docs/features.md): in a copy of
the project, a new spot feature flows into the marts, the training set, the trainer's inputs,
the catalog, the published file and the API, and the point-in-time truncation covers it, with
no other edit."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.settings import ApiSettings
from btcfs.cli import cli
from ml import dataset
from tests.features.feature_harness import (
    REPO,
    SMALL_WINDOWS,
    FeatureWarehouse,
    assert_same_rows,
    cut_at,
    rows_known_at,
    synthetic,
)
from warehouse.catalog import load_catalog

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

NEW = "ret_5m_squared"
EXPRESSION = f"        ret_5m * ret_5m as {NEW},\n"
DECLARATION = f"""      - name: {NEW}
        description: "The squared 5-minute log return, `ret_5m^2` (a test's feature)."
        data_type: *double
        config:
          meta:
            role: feature
            feature_set: spot
            unit: "squared log return"
            inputs: ["spot klines"]
            point_in_time: "spot klines to the bar's close"
            nulls: "never"
            warm_up: "2 bars"
            model_input: true
"""


def copy_with_a_new_feature(folder: Path) -> Path:
    project = folder / "project"
    project.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(REPO / name, project / name)
    for name in ("models", "macros", "data-tests", "profiles"):
        shutil.copytree(REPO / name, project / name)
    for mart in ("features_5m", "features_1h"):  # the SQL expression, in both grains
        path = project / "models" / "marts" / "features" / f"{mart}.sql"
        text = path.read_text()
        assert text.count("        ret_5m,\n") == 1
        path.write_text(text.replace("        ret_5m,\n", "        ret_5m,\n" + EXPRESSION))
    path = project / "models" / "marts" / "features" / "_features__models.yml"
    text = path.read_text()  # the YAML entry, once (both marts share the declaration)
    anchor = "      - name: ret_1h\n"
    assert text.count(anchor) == 1
    path.write_text(text.replace(anchor, DECLARATION + anchor))
    return project


def test_one_expression_and_one_entry_reach_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_with_a_new_feature(tmp_path)
    warehouse = FeatureWarehouse(tmp_path / "data", SMALL_WINDOWS, project=project)
    tables = synthetic(8)
    warehouse.land(tables)
    warehouse.dbt("build", "--exclude-resource-type", "unit_test")  # every gate runs on it
    marts = warehouse.snapshot()
    for mart in ("features_5m", "features_1h", "training_set_5m", "latest_features"):
        frame = marts[mart]
        columns = list(frame.columns)
        assert columns[columns.index("ret_5m") + 1] == NEW, mart
        assert np.allclose(frame[NEW], frame["ret_5m"] ** 2, rtol=1e-12), mart

    # the catalog and the trainer read it from the copy's manifest
    target = warehouse.root / "target"
    column = load_catalog(target).column(NEW)
    assert (column.feature_set, column.model_input) == ("spot", True)
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    assert NEW in dataset.feature_columns(marts["training_set_5m"].columns, ("spot",))

    # published and served
    env = {"BTCFS_DATA_DIR": str(warehouse.root), "DBT_TARGET_PATH": str(target)}
    published = CliRunner().invoke(cli, ["publish", "--target-path", str(target)], env=env)
    assert published.exit_code == 0, published.output
    settings = ApiSettings.from_env(
        {**env, "BTCFS_STATE_DB": str(tmp_path / "state.sqlite"),
         "BTCFS_API_ALLOWED_HOSTS": "testserver.local,testserver"}
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        served = client.get("/v1/catalog", params={"feature_set": "spot"}).json()
        assert NEW in {f["name"] for f in served["features"]}
        latest = client.get("/v1/features/latest", params={"interval": "5m"}).json()
        assert latest["values"][NEW] == pytest.approx(latest["values"]["ret_5m"] ** 2)

    # the point-in-time truncation covers it like every column
    cut = datetime(2025, 1, 6, 13, 37, 30, tzinfo=UTC)
    full = warehouse.build(tables)
    truncated = warehouse.build(cut_at(tables, cut))
    for mart in ("features_5m", "features_1h"):
        assert NEW in truncated[mart].columns
        assert_same_rows(rows_known_at(full[mart], cut), truncated[mart], what=f"{mart} {NEW}")
