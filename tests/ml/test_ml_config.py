"""config/train.yml: the shipped file equals the defaults; mistakes are clear ConfigErrors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ml.config import TrainConfig, from_mapping, load_config, parse_duration
from ml.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_is_the_documented_default() -> None:
    assert load_config(REPO / "config" / "train.yml") == TrainConfig()


def test_defaults_are_sane() -> None:
    config = TrainConfig()
    assert config.thread_count <= 2  # the CPU is shared
    assert config.label_column == "fwd_ret_1h"
    assert config.horizon_bars == 12
    assert config.backtest.entry_threshold == pytest.approx(2 * (5 + 1) / 10_000)
    assert config.with_overrides(target="tb_label").label_column == "barrier_label"


def test_the_model_name_follows_the_symbol_unless_one_is_given() -> None:
    config = from_mapping({})
    assert config.model_name == "btcusdt_5m"
    assert config.with_overrides(symbol="ETHUSDT").model_name == "ethusdt_5m"
    assert config.with_overrides(symbol="ETHUSDT", target="tb_label").model_name == "ethusdt_5m_tb"
    assert from_mapping({"model": "mine"}).with_overrides(symbol="ETHUSDT").model_name == "mine"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"modle": "x"}, "unknown key(s) modle"),
        ({"cv": {"folds": 3}}, "cv: unknown key(s) folds"),
        ({"horizon": "2h"}, "horizon must be one of 5m, 1h, 4h, 1d"),
        ({"target": "price"}, "target must be one of fwd_ret, tb_label"),
        ({"seed": "seven"}, "seed must be an integer"),
        ({"regressor": {"learning_rate": "fast"}}, "learning_rate must be a number"),
        ({"cv": {"embargo": "soon"}}, "invalid duration 'soon'"),
        ({"cv": {"n_folds": 1}}, "cv.n_folds must be at least 2"),
        ({"quantiles": {"alphas": [0.5]}}, "quantiles.alphas"),
        ({"report": {"enabled": "yes"}}, "enabled must be true or false"),
        ({"model": "a b"}, "model: 1-64 letters"),
        ({"symbol": "btcusdt"}, "symbol: 'btcusdt': symbols are upper case (BTCUSDT)"),
        ({"backtest": {"taker_fee_bps": -1}}, "backtest.taker_fee_bps: a cost, not negative"),
        ({"backtest": {"slippage_bps": -0.5}}, "backtest.slippage_bps: a cost, not negative"),
        ({"symbol": "BTC;DROP"}, "symbol: 'BTC;DROP' is not a symbol"),
        ({"regressor": [1, 2]}, "regressor: expected a mapping"),
    ],
)
def test_mistakes_are_config_errors(payload: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_mapping(payload)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(scalar)


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "train.yml"
    path.write_text("horizon: 5m\ncv:\n  n_folds: 3\nbacktest:\n  entry_threshold_bps: 2\n")
    config = load_config(path)
    assert config.horizon == "5m" and config.cv.n_folds == 3 and config.cv.embargo == "1h"
    assert config.backtest.entry_threshold == pytest.approx(0.0002)
    assert config.regressor == TrainConfig().regressor


def test_durations() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("2d") == timedelta(days=2)
