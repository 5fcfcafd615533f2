"""One rule for a symbol at every door (core.symbols): `btcusdt` is refused the same way by
the trainer's config and CLI, the ingest config and CLI, and named in upper case."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from core.symbols import symbol_problem
from ingest.config import ConfigError, load_config
from ml.config import ConfigError as TrainConfigError
from ml.config import from_mapping

UPPER = "'btcusdt': symbols are upper case (BTCUSDT)"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("BTCUSDT", None),
        ("ETHUSDT", None),
        ("1000PEPEUSDT", None),
        ("btcusdt", UPPER),
        ("BTC-USDT", "'BTC-USDT' is not a symbol"),
        ("BTC;DROP", "'BTC;DROP' is not a symbol"),
        ("", "'' is not a symbol"),
        ("A" * 21, "is not a symbol"),
        (7, "7 is not a symbol"),
    ],
)
def test_symbol_problem(value: object, problem: str | None) -> None:
    found = symbol_problem(value)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_every_door_refuses_lower_case_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match=r"symbols are upper case \(BTCUSDT\)"):
        from_mapping({"symbol": "btcusdt"})
    config = tmp_path / "ingest.yml"
    config.write_text("symbols: [BTCUSDT, btcusdt]\ndays_back: 3\n")
    with pytest.raises(ConfigError, match=r"symbols are upper case \(BTCUSDT\)"):
        load_config(config, datetime(2026, 1, 1, tzinfo=UTC))
    for args in (
        ["train", "--symbol", "btcusdt"],
        ["ingest", "binance", "--dataset", "spot-klines", "--symbol", "btcusdt",
         "--interval", "1m", "--start", "2025-01-01"],
    ):  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code in (1, 2) and UPPER in result.output, result.output
