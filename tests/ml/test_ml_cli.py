"""`btcfs train|evaluate|backtest|models` end to end on a small DuckDB table (no dbt)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from btcfs.cli import cli
from tests.ml.mlframes import isolate, training_frame, write_mart


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, parsed_target: Path) -> None:
    isolate(monkeypatch, tmp_path / "data", parsed=parsed_target)


FAST = {
    "horizon": "5m",
    "regressor": {"iterations": 40, "depth": 3},
    "quantiles": {"iterations": 40, "depth": 3},
    "classifier": {"iterations": 40, "depth": 3},
    "cv": {"n_folds": 3, "min_train_rows": 100},
    "report": {"shap_rows": 200},
}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """($BTCFS_DATA_DIR, config file, full table); the warehouse holds the first 1800 rows."""
    data_dir = tmp_path / "data"  # the autouse fixture points BTCFS_DATA_DIR here
    config = tmp_path / "train.yml"
    config.write_text(yaml.safe_dump(FAST))
    frame = training_frame(2200, effect=0.6, seed=4)
    write_mart(data_dir / "warehouse" / "build.duckdb", frame.iloc[:1800])
    return data_dir, config, frame


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "command",
    [
        ["train"], ["evaluate"], ["backtest"], ["models"], ["models", "list"],
        ["models", "show"], ["models", "promote"], ["models", "rollback"],
    ],
)  # fmt: skip
def test_help_has_an_example(command: list[str]) -> None:
    output = run(*command, "--help")
    assert "Usage:" in output and "Example: btcfs " in output


def test_train_register_promote_evaluate_backtest(setup: tuple[Path, Path, pd.DataFrame]) -> None:
    data_dir, config, frame = setup
    output = run("train", "--config", str(config))
    assert "btcusdt_5m v0001: fwd_ret_5m on 1800 rows" in output
    assert re.search(r"rank IC\s+\S+\s+0\s+\S+", output)  # model beside zero and persistence
    assert "backtest (after costs)" in output
    report = data_dir / "reports" / "train-btcusdt_5m-v0001.html"
    assert report.is_file() and f"report: {report}" in output
    assert (data_dir / "registry" / "btcusdt_5m" / "v0001" / "model.cbm").is_file()

    # One name may hold both targets of a symbol when asked (the default is btcusdt_5m_tb).
    run("train", "--config", str(config), "--target", "tb_label", "--model", "btcusdt_5m")
    listing = run("models", "list")
    assert re.search(r"v0001\s+(candidate|rejected)\s+fwd_ret_5m", listing)
    listed = json.loads(run("models", "list", "--json"))["models"]
    assert [(m["model"], m["version"], m["label"]) for m in listed] == [
        ("btcusdt_5m", "v0001", "fwd_ret_5m"), ("btcusdt_5m", "v0002", "barrier_label")
    ]  # fmt: skip
    assert listed[0]["symbols"] == ["BTCUSDT"] and "rank_ic" in listed[0]["metrics"]
    assert re.search(r"v0002\s+(candidate|rejected)\s+barrier_label", listing)

    promoted = CliRunner().invoke(cli, ["models", "promote", "btcusdt_5m", "v0001", "--force"])
    assert promoted.exit_code == 0 and "v0001 is now production" in promoted.output
    run("models", "promote", "btcusdt_5m", "v0002", "--force")
    shown = run("models", "show", "btcusdt_5m", "v0002")
    assert "(production)" in shown and "dbt invocation" in shown and "promote" in shown
    assert "v0001" in run("models", "rollback", "btcusdt_5m")
    assert '"stage_now": "production"' in run("models", "show", "btcusdt_5m", "v0001", "--json")

    # No newer rows yet: evaluate says so; then the warehouse grows and it scores them.
    refused = CliRunner().invoke(cli, ["evaluate", "--config", str(config)])
    assert refused.exit_code == 1 and "no rows after" in refused.output
    write_mart(data_dir / "warehouse" / "build.duckdb", frame)
    scored = run("evaluate", "--config", str(config))
    assert "v0001 on 399 rows after its training window" in scored
    assert "persistence" in scored
    walk = run("evaluate", "--config", str(config), "--walk-forward")
    assert "walk-forward (fwd_ret_5m, 3 folds" in walk and "gates:" in walk

    tested = run("backtest", "--fee-bps", "0", "--slippage-bps", "0", "--threshold", "0")
    assert "fee 0 + slippage 0 bps" in tested and "buy and hold" in tested

    # One name is one symbol's model: refused before any training, the registry unchanged.
    mixed = CliRunner().invoke(
        cli, ["train", "--config", str(config), "--symbol", "ETHUSDT", "--model", "btcusdt_5m"]
    )
    assert mixed.exit_code == 1, mixed.output
    assert "btcusdt_5m holds versions trained on BTCUSDT, not on ETHUSDT" in mixed.output
    assert len(list((data_dir / "registry" / "btcusdt_5m").glob("v*"))) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train"], "run `dbt build`"),
        (["train", "--config", "/nonexistent/train.yml"], "not found"),
        (["evaluate"], "run `btcfs train` first"),
        (["backtest"], "run `btcfs train` first"),
        (["models", "show", "nope"], "no registered versions of nope"),
        (["models", "promote", "nope", "v0001"], "no version v0001"),
        (["models", "rollback", "nope"], "no production version to roll back"),
        (["models", "list", "--model", "nope"], "no registered versions of nope"),
    ],
)
def test_known_errors_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "args",
    [["backtest", "--fee-bps", "-5"], ["backtest", "--slippage-bps", "-0.1"]],
)
def test_negative_costs_are_refused(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "is not in the range x>=0" in result.output


def test_models_list_when_empty() -> None:
    assert "no models under" in run("models", "list")


def test_train_refuses_a_bad_option() -> None:
    result = CliRunner().invoke(cli, ["train", "--horizon", "2h"])
    assert result.exit_code == 2 and "'2h' is not one of" in result.output


def test_an_unwritable_registry_is_a_clean_error(setup: tuple[Path, Path, pd.DataFrame]) -> None:
    data_dir, config, _ = setup
    (data_dir / "registry").write_text("a file where the registry folder should be")
    result = CliRunner().invoke(cli, ["train", "--config", str(config)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "registry" in result.output
