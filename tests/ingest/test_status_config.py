"""ingest.status (lake status from manifests) and ingest.config (ingest all, endpoints, now)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.binance.endpoints import ARCHIVE_BASE_URL, FUTURES_BASE_URL, SPOT_BASE_URL
from ingest.binance.parse import parse_klines, quarantine_rows
from ingest.config import DatasetJob, Endpoints, load_config, resolve_now
from ingest.errors import ConfigError
from ingest.status import lake_status, quarantine_count
from lake.errors import LakeError
from lake.schemas import DATASETS
from lake.store import MANIFEST_FILE, SUCCESS_FILE, Lake, PartitionKey
from tests.ingest.binance_fakes import MINUTE_MS, day_ms, kline_row

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


def land(lake: Lake, day: date, rows: int, *, quarantined: int = 0, interval: str = "1m") -> None:
    first = day_ms(day)
    parsed = parse_klines(
        [kline_row(first + i * MINUTE_MS) for i in range(rows)],
        dataset="spot_klines",
        interval_us=60_000_000,
        source="rest",
        ingested_at=NOW,
    )
    bad = quarantine_rows(
        "spot_klines",
        [(["x", i], "unparsable open", first) for i in range(quarantined)],
        source="rest",
        ingested_at=NOW,
    )
    lake.write_partition(
        PartitionKey(DATASETS["spot-klines"], "BTCUSDT", interval, day),
        parsed.table,
        source="rest",
        ingested_at=NOW,
        expected_rows=1440,
        quarantine=bad,
    )


# ---- lake status --------------------------------------------------------------------------


def test_empty_lake(tmp_path: Path) -> None:
    assert lake_status(Lake(tmp_path / "lake")) == []
    assert quarantine_count(Lake(tmp_path / "lake")) == 0


def test_status_from_manifests(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    land(lake, date(2024, 1, 1), 1440)
    land(lake, date(2024, 1, 2), 1360, quarantined=2)
    land(lake, date(2024, 1, 4), 1440, quarantined=1)  # 2024-01-03 never landed
    land(lake, date(2024, 1, 5), 10)
    unfinished = PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", date(2024, 1, 5))
    (lake.partition_dir(unfinished) / SUCCESS_FILE).unlink()
    land(lake, date(2024, 1, 1), 24, interval="1h")
    statuses = lake_status(lake)
    assert [(s.dataset, s.interval) for s in statuses] == [
        ("spot_klines", "1h"),
        ("spot_klines", "1m"),
    ]
    minute = statuses[1]
    assert minute.to_dict() == {
        "vendor": "binance",
        "dataset": "spot_klines",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "days": 3,
        "rows": 1440 + 1360 + 1440,
        "first_at": "2024-01-01T00:00:00+00:00",
        "last_at": "2024-01-04T23:59:00+00:00",
        "missing_rows": 80,
        "missing_days": ["2024-01-03"],
        "incomplete_days": ["2024-01-02"],
        "unfinished_days": ["2024-01-05"],
        "quarantined_rows": 3,
        "synthetic_days": 0,
    }
    assert quarantine_count(lake) == 3


def test_partition_without_manifest_is_unfinished(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    land(lake, date(2024, 1, 1), 5)
    key = PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", date(2024, 1, 1))
    (lake.partition_dir(key) / MANIFEST_FILE).unlink()
    (status,) = lake_status(lake)
    assert (status.days, status.rows, status.unfinished_days) == (0, 0, ["2024-01-01"])


def test_corrupt_manifest_is_a_clear_error(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    land(lake, date(2024, 1, 1), 5)
    key = PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", date(2024, 1, 1))
    (lake.partition_dir(key) / MANIFEST_FILE).write_text("[")
    with pytest.raises(LakeError, match="corrupt manifest"):
        lake_status(lake)


# ---- config -------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ingest.yml"
    path.write_text(text)
    return path


def test_load_config(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "symbols: [BTCUSDT, ETHUSDT]\n"
        "days_back: 3\n"
        "refresh_tail: 1\n"
        "archive: none\n"
        "datasets:\n"
        "  - {dataset: spot-klines, interval: 1m}\n"
        "  - {dataset: funding}\n",
    )
    config = load_config(path, NOW)
    assert config.symbols == ("BTCUSDT", "ETHUSDT")
    assert config.start == date(2024, 2, 28)
    assert config.refresh_tail == 1
    assert config.archive == "none"
    assert config.jobs == (DatasetJob("spot-klines", "1m"), DatasetJob("funding", None))


def test_start_date_and_defaults(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path, "start: 2024-01-15\ndatasets: [{dataset: funding}]\n"), NOW
    )
    assert (config.start, config.symbols, config.refresh_tail) == (
        date(2024, 1, 15),
        ("BTCUSDT",),
        2,
    )
    config = load_config(write_config(tmp_path, "datasets: [{dataset: funding}]\n"), NOW)
    assert config.start == date(2024, 2, 1)  # 30 days back, today included


def test_the_repository_config_loads() -> None:
    repo_config = Path(__file__).resolve().parents[2] / "config" / "ingest.yml"
    if not repo_config.exists():
        pytest.skip("config/ingest.yml not in this checkout")
    config = load_config(repo_config, NOW)
    assert config.jobs


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("datasets: [\n", "not valid YAML"),
        ("- a\n- b\n", "mapping at the top level"),
        ("symbol: [BTCUSDT]\ndatasets: [{dataset: funding}]\n", "unknown keys \\['symbol'\\]"),
        ("datasets: [{dataset: spot-klines, intervall: 1m}]\n", "unknown keys \\['intervall'\\]"),
        ("datasets: {dataset: funding}\n", "`datasets` must be a list"),
        ("datasets: [funding]\n", "needs a `dataset` key"),
        ("datasets: []\n", "no datasets"),
        ("symbols: BTCUSDT\ndatasets: [{dataset: funding}]\n", "`symbols`"),
        ("symbols: []\ndatasets: [{dataset: funding}]\n", "`symbols`"),
        ("days_back: 0\ndatasets: [{dataset: funding}]\n", "days_back"),
        ("days_back: soon\ndatasets: [{dataset: funding}]\n", "days_back"),
        ("start: yesterday\ndatasets: [{dataset: funding}]\n", "YYYY-MM-DD"),
        ("refresh_tail: -1\ndatasets: [{dataset: funding}]\n", "refresh_tail"),
        ("archive: 5\ndatasets: [{dataset: funding}]\n", "`archive`"),
    ],
)
def test_bad_configs_are_config_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write_config(tmp_path, text), NOW)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yml", NOW)


# ---- endpoints and now --------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "BINANCE_SPOT_BASE_URL",
        "BINANCE_FUTURES_BASE_URL",
        "BINANCE_ARCHIVE_URL",
        "BTCFS_NOW",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_endpoints_default_to_binance(clean_env: Any) -> None:
    assert Endpoints.resolve() == Endpoints(SPOT_BASE_URL, FUTURES_BASE_URL, ARCHIVE_BASE_URL)


def test_endpoints_environment_then_flags(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BINANCE_SPOT_BASE_URL", "http://127.0.0.1:1/")
    clean_env.setenv("BINANCE_FUTURES_BASE_URL", "http://127.0.0.1:2")
    clean_env.setenv("BINANCE_ARCHIVE_URL", "/srv/archive")
    assert Endpoints.resolve() == Endpoints(
        "http://127.0.0.1:1", "http://127.0.0.1:2", "/srv/archive"
    )
    # --base-url beats the environment for both REST hosts; --archive beats it for the archive.
    assert Endpoints.resolve("http://127.0.0.1:9/", "none") == Endpoints(
        "http://127.0.0.1:9", "http://127.0.0.1:9", None
    )


def test_base_url_is_the_archive_too_unless_told_otherwise(clean_env: Any) -> None:
    assert Endpoints.resolve("http://127.0.0.1:9").archive == "http://127.0.0.1:9"
    assert Endpoints.resolve("http://127.0.0.1:9", "/tmp/archive").archive == "/tmp/archive"


def test_resolve_now(clean_env: pytest.MonkeyPatch) -> None:
    before = datetime.now(UTC)
    now = resolve_now()
    assert before <= now <= datetime.now(UTC)
    assert now.tzinfo is not None
    clean_env.setenv("BTCFS_NOW", "2025-05-19T10:30Z")
    assert resolve_now() == datetime(2025, 5, 19, 10, 30, tzinfo=UTC)
    clean_env.setenv("BTCFS_NOW", "2025-05-20T01:30+02:00")
    assert resolve_now().date() == date(2025, 5, 19)
    clean_env.setenv("BTCFS_NOW", "tomorrow")
    with pytest.raises(ConfigError, match="ISO 8601"):
        resolve_now()
