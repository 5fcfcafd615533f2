"""lake.store's one MANIFEST reader: `walk_partitions` over folders the real `Lake` wrote."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.binance.parse import parse_klines, quarantine_rows
from lake.errors import LakeError
from lake.schemas import DATASETS
from lake.store import (
    MANIFEST_FILE,
    SUCCESS_FILE,
    Lake,
    PartitionKey,
    read_partition,
    walk_partitions,
)
from tests.ingest.binance_fakes import MINUTE_MS, day_ms, kline_row

DAY = date(2024, 1, 1)
AT = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
SPOT = DATASETS["spot-klines"]


def key(day: date, symbol: str = "BTCUSDT") -> PartitionKey:
    return PartitionKey(SPOT, symbol, "1m", day)


def bars(day: date, n: int) -> pa.Table:
    rows = [kline_row(day_ms(day) + i * MINUTE_MS) for i in range(n)]
    parsed = parse_klines(
        rows, dataset="spot_klines", interval_us=60_000_000, source="rest", ingested_at=AT
    )
    return parsed.table


def land(lake: Lake, day: date, n: int, **options: object) -> None:
    lake.write_partition(
        key(day),
        bars(day, n),
        source="rest",
        ingested_at=AT,
        expected_rows=1440,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """Three days: a finished one with quarantined rows, a synthetic one, an unfinished one."""
    lake = Lake(tmp_path / "lake")
    bad = quarantine_rows(
        "spot_klines", [(["bad", 0], "unparsable open", None)], source="rest", ingested_at=AT
    )
    land(lake, DAY, 3, quarantine=bad)
    land(lake, DAY + timedelta(days=1), 2, is_synthetic=True)
    land(lake, DAY + timedelta(days=2), 4)
    (lake.partition_dir(key(DAY + timedelta(days=2))) / SUCCESS_FILE).unlink()
    return lake


def test_every_partition_with_its_manifest_fields_in_path_order(lake: Lake) -> None:
    found = list(walk_partitions(lake.root))
    # The quarantine folder and the partition locks are not partitions.
    assert [f.folder for f in found] == [
        lake.partition_dir(key(DAY + timedelta(n))) for n in range(3)
    ]
    first = found[0]
    manifest = lake.read_manifest(key(DAY))
    assert manifest is not None
    assert (first.vendor, first.table, first.symbol, first.interval, first.date) == (
        "binance",
        "spot_klines",
        "BTCUSDT",
        "1m",
        "2024-01-01",
    )
    assert first.labels == {"symbol": "BTCUSDT", "interval": "1m", "date": "2024-01-01"}
    assert (first.rows, first.sha256, first.data_sha256, first.quarantine_sha256) == (
        3,
        manifest.sha256,
        manifest.data_sha256,
        manifest.quarantine_sha256,
    )
    assert (first.quarantined_rows, first.is_synthetic, first.file) == (1, False, "part-0.parquet")
    assert first.is_finished and first.has_data and first.is_readable
    assert first.manifest() == manifest
    assert [f.is_synthetic for f in found] == [False, True, False]


def test_a_partition_without_success_is_found_unfinished(lake: Lake) -> None:
    unfinished = list(walk_partitions(lake.root))[-1]
    assert not unfinished.is_finished
    assert unfinished.is_readable and unfinished.rows == 4


def test_a_damaged_or_missing_manifest_is_reported_not_raised(lake: Lake) -> None:
    folder = lake.partition_dir(key(DAY))
    (folder / MANIFEST_FILE).write_text("{not json")
    damaged = read_partition(folder, lake.root)
    assert damaged.has_manifest and damaged.manifest_error and damaged.payload is None
    assert damaged.rows is None and damaged.is_finished
    with pytest.raises(LakeError, match="corrupt manifest"):
        damaged.manifest()

    (folder / MANIFEST_FILE).write_text(json.dumps({"sha256": "aa", "rows": "three"}))
    assert "rows should be int" in str(read_partition(folder).manifest_error)

    (folder / MANIFEST_FILE).write_text("[]")
    assert "not a JSON object" in str(read_partition(folder).manifest_error)

    (folder / MANIFEST_FILE).unlink()
    missing = read_partition(folder, lake.root)
    assert not missing.has_manifest and missing.manifest_error is None
    assert missing.manifest() is None
    assert [f.has_manifest for f in walk_partitions(lake.root)] == [False, True, True]


def test_a_manifest_lacking_fields_leaves_them_none(tmp_path: Path) -> None:
    folder = tmp_path / "lake" / "binance" / "spot_klines" / "symbol=BTCUSDT" / "date=2025-01-01"
    folder.mkdir(parents=True)
    (folder / MANIFEST_FILE).write_text(json.dumps({"data_sha256": "aa"}))
    (found,) = walk_partitions(tmp_path / "lake")
    assert (found.data_sha256, found.sha256, found.rows) == ("aa", None, None)
    assert not found.is_finished and not found.has_data
    with pytest.raises(LakeError, match="corrupt manifest"):
        found.manifest()


def test_under_one_table_and_odd_roots(tmp_path: Path) -> None:
    root = tmp_path / "odd=root" / "lake"
    lake = Lake(root)
    land(lake, DAY, 2)
    (found,) = walk_partitions(root, "binance/spot_klines")
    assert found.labels == {"symbol": "BTCUSDT", "interval": "1m", "date": "2024-01-01"}
    assert list(walk_partitions(root, "binance/funding")) == []
    assert list(walk_partitions(tmp_path / "nowhere")) == []


def test_written_since_finds_the_partitions_a_later_write_touched(lake: Lake) -> None:
    """What `btcfs update` counts as landed: the partitions rewritten after a moment (one
    rewritten, one new), not the ones untouched, and never the quarantine or the locks."""
    import os
    import time

    from lake.store import written_since

    assert [f.folder for f in written_since(lake.root, 0.0)] == [
        lake.partition_dir(key(DAY + timedelta(n))) for n in range(3)
    ]
    # every folder so far as if written long ago
    for folder in lake.root.rglob("date=*"):
        os.utime(folder, (1_000_000, 1_000_000))
    since = time.time() - 0.1
    land(lake, DAY + timedelta(days=1), 5)  # a re-landed day
    land(lake, DAY + timedelta(days=3), 1)  # a new day
    found = list(written_since(lake.root, since))
    assert [(f.folder, f.rows) for f in found] == [
        (lake.partition_dir(key(DAY + timedelta(days=1))), 5),
        (lake.partition_dir(key(DAY + timedelta(days=3))), 1),
    ]
    assert list(written_since(lake.root, time.time() + 60)) == []
