"""`btcfs live` and `btcfs live verify` refuse bad input with one clear line and write nothing
(the loop itself: tests/pipeline/test_live.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from btcfs.cli import cli


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BTCFS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "8000", "--no-serve"], "--port and --no-serve contradict each other"),
        (["--price-every", "0"], "Invalid value for '--price-every'"),
        (["--price-every", "nan"], "Invalid value for '--price-every'"),
        (["--slow-every", "10"], "Invalid value for '--slow-every'"),
        (["--slow-every", "inf"], "Invalid value for '--slow-every'"),
        (["--port", "http"], "Invalid value for '--port'"),
        (["--bogus"], "No such option '--bogus'"),
    ],
)
def test_bad_options_are_refused(data_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["live", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (data_dir / "live").exists()


def test_a_missing_or_bad_config_is_refused_before_anything_runs(
    data_dir: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["live", "--config", str(tmp_path / "nope.yml")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "nope.yml" in result.output
    bad = tmp_path / "bad.yml"
    bad.write_text("symbols: [BTCUSDT]\ndatasets: [{dataset: spot-klines, interval: 7m}]\n")
    result = CliRunner().invoke(cli, ["live", "--config", str(bad)])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert not (data_dir / "live").exists()  # no state written, nothing landed
    assert not (data_dir / "lake").exists()


def test_verify_without_a_served_log_says_so(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["live", "verify"])
    assert result.exit_code == 1
    assert "no served log" in result.output
