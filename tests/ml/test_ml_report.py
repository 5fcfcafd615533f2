"""The HTML report opens offline: no URL to fetch, plots inlined, every section present."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from btcfs.cli import cli
from tests.ml.mlframes import isolate, training_frame
from tests.ml.test_ml_cli import FAST, write_mart


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, parsed_target: Path) -> None:
    isolate(monkeypatch, tmp_path / "data", parsed=parsed_target)


def report_for(tmp_path: Path, target: str) -> str:
    config = tmp_path / "train.yml"
    config.write_text(yaml.safe_dump({**FAST, "target": target}))
    write_mart(tmp_path / "data" / "warehouse" / "build.duckdb", training_frame(1500, effect=0.5))
    result = CliRunner().invoke(cli, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "data" / "reports").glob("train-*.html")
    return path.read_text()


def test_regression_report_is_self_contained(tmp_path: Path) -> None:
    document = report_for(tmp_path, "fwd_ret")
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", document)  # nothing to fetch
    assert "<script" not in document
    assert len(re.findall(r"src='data:image/png;base64,", document)) == 3
    for section in ("Gates", "Folds", "Calibration", "Feature importance", "Backtest"):
        assert f"<h2>{section}" in document
    assert "persistence" in document and "zero return" in document
    assert "liq60_z" in document  # the documented feature left out, and why


def test_classifier_report_has_reliability(tmp_path: Path) -> None:
    document = report_for(tmp_path, "tb_label")
    assert "class prior" in document and "log-loss" in document
    assert len(re.findall(r"data:image/png;base64,", document)) == 3
