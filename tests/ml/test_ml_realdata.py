"""Real Binance days (../shared/data) through dbt and the trainer on the spot feature set (the
recordings hold spot klines only): an honest out-of-sample score.

Skipped with the reason when ../shared/data is absent. The figures are printed (pytest -s):
a model that beat its baselines by a lot here would deserve a hunt for leakage first.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ml.cli import format_backtest, format_scores
from ml.config import load_config
from ml.training import train_and_register
from tests.ml.mlframes import isolate
from tests.ml.mlpipeline import REAL_DATA_REASON, SHARED_DATA, BuiltWarehouse, real_warehouse

pytestmark = [pytest.mark.realdata, pytest.mark.slow, pytest.mark.dbt]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    if not (SHARED_DATA / "binance").is_dir():
        pytest.skip(REAL_DATA_REASON)
    return real_warehouse(tmp_path_factory.mktemp("real"))


@pytest.mark.parametrize(
    ("target", "horizon"), [("fwd_ret", "5m"), ("fwd_ret", "1h"), ("tb_label", "1h")]
)
def test_real_days_out_of_sample(
    real: BuiltWarehouse,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    horizon: str,
) -> None:
    isolate(monkeypatch, real.root, real.target)
    config = dataclasses.replace(
        load_config(REPO / "config" / "train.yml"),
        target=target,
        horizon=horizon,
        feature_set="spot",
    )
    outcome = train_and_register(
        config,
        warehouse=real.database,
        registry_root=tmp_path / "registry",
        reports_dir=tmp_path / "reports",
    )
    overall = outcome.cv.overall
    window = outcome.info.metadata["training_window"]
    print(f"\nreal data, spot set, {outcome.info.metadata['label']}: {window}")
    for line in format_scores(overall, target):
        print(line)
    print("gates:", "passed" if outcome.cv.gates.passed else outcome.cv.gates.failures())
    print(format_backtest(outcome.backtest.as_dict()))
    assert outcome.info.metadata["feature_sets"] == ["spot"]
    assert window["rows"] > 18_000  # ~74 of the 105 days after the 31-day warm-up
    assert overall["n"] > 14_000
    # Leak alarms, not skill requirements: minute-bar BTC is close to a martingale.
    if target == "fwd_ret":
        assert abs(overall["rank_ic"]) < 0.1
        assert overall["directional_accuracy"] < 0.56
        assert overall["rmse_skill_vs_zero"] < 0.02
    else:
        assert overall["log_loss_skill_vs_prior"] < 0.05
        assert overall["accuracy_vs_prior"] < 0.06
    assert outcome.report_path is not None and outcome.report_path.is_file()
