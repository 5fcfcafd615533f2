"""dbt the way dbt users expect: every model, column and source described, every model with
an owner, exposures for the API, the dashboard and the trainer naming the marts they really
read (the API's are what `btcfs publish` copies), read from dbt's own manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ml.dataset import FUNDING_RELATION
from warehouse.publish import OPTIONAL_MARTS, REQUIRED_MARTS

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    target = tmp_path_factory.mktemp("docs_target")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(DBT_TARGET_PATH=str(target), DBT_LOG_PATH=str(target / "logs"),
               DBT_SEND_ANONYMOUS_USAGE_STATS="false")  # fmt: skip
    proc = subprocess.run(
        [str(DBT), "parse", "--quiet"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    payload: dict[str, Any] = json.loads((target / "manifest.json").read_text())
    return payload


def _ours(manifest: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == kind and node["package_name"] == "btcfs"
    ]


def test_every_model_column_and_source_is_described_and_owned(manifest: dict[str, Any]) -> None:
    models = _ours(manifest, "model")
    assert len(models) > 40
    undescribed = [m["name"] for m in models if not m["description"].strip()]
    columns = [
        f"{m['name']}.{name}"
        for m in models
        for name, column in m["columns"].items()
        if not column["description"].strip()
    ]
    unowned = [m["name"] for m in models if not m["config"]["meta"].get("owner")]
    sources = [
        f"{s['source_name']}.{s['name']}"
        for s in manifest["sources"].values()
        if not s["description"].strip()
    ]
    assert (undescribed, columns, unowned, sources) == ([], [], [], [])


def test_exposures_name_who_reads_each_mart(manifest: dict[str, Any]) -> None:
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == {"btcfs_api", "btcfs_dashboard", "btcfs_trainer"}

    def reads(name: str) -> set[str]:
        return {uid.rsplit(".", 1)[1] for uid in exposures[name]["depends_on"]["nodes"]}

    assert reads("btcfs_api") == {*REQUIRED_MARTS, *OPTIONAL_MARTS}
    assert reads("btcfs_dashboard") < reads("btcfs_api")
    assert reads("btcfs_trainer") == {"training_set_5m", FUNDING_RELATION}
    for exposure in exposures.values():
        assert exposure["owner"]["name"] and len(exposure["description"].split()) > 10


def test_make_docs_and_docs_serve_are_targets() -> None:
    listed = subprocess.run(
        ["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, timeout=60
    ).stdout
    assert "docs-serve" in listed and "docs " in listed
