"""lake.store: layout, exact schemas, MANIFEST, idempotent and whole-partition atomic writes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lake.store as lake_module
from ingest.binance.parse import parse_klines, quarantine_rows
from lake.errors import LakeError
from lake.schemas import DATASETS, KLINE_SCHEMA, QUARANTINE_SCHEMA
from lake.store import (
    DAY_OPEN_NOTE,
    MANIFEST_FILE,
    PART_FILE,
    SUCCESS_FILE,
    Lake,
    Manifest,
    PartitionKey,
    dataset_by_table,
    day_batches,
    table_data_sha256,
)
from tests.ingest.binance_fakes import MINUTE_MS, day_ms, kline_row

DAY = date(2024, 1, 1)
T1 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)
SPOT = PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", DAY)


def bars(n: int, *, bump: int = 0, start: int | None = None) -> pa.Table:
    first = day_ms(DAY) if start is None else start
    rows = [kline_row(first + i * MINUTE_MS, bump=bump) for i in range(n)]
    parsed = parse_klines(
        rows, dataset="spot_klines", interval_us=60_000_000, source="rest", ingested_at=T1
    )
    assert parsed.quarantine.num_rows == 0
    return parsed.table


def bad_rows(n: int = 1) -> pa.Table:
    return quarantine_rows(
        "spot_klines",
        [(["bad", i], "unparsable open", None) for i in range(n)],
        source="rest",
        ingested_at=T1,
    )


def write(lake: Lake, table: pa.Table, *, at: datetime = T1, **kw: Any) -> Any:
    options: dict[str, Any] = {"source": "rest", "ingested_at": at, "expected_rows": 1440}
    options.update(kw)
    return lake.write_partition(SPOT, table, **options)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: bytes and mtime (ns)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


# ---- layout -------------------------------------------------------------------------------


def test_layout_paths() -> None:
    assert SPOT.relative_dir() == Path(
        "binance/spot_klines/symbol=BTCUSDT/interval=1m/date=2024-01-01"
    )
    funding = PartitionKey(DATASETS["funding"], "BTCUSDT", None, DAY)
    assert funding.relative_dir() == Path("binance/funding/symbol=BTCUSDT/date=2024-01-01")
    oi = PartitionKey(DATASETS["open-interest"], "BTCUSDT", "5m", DAY)
    assert oi.relative_dir() == Path(
        "binance/open_interest/symbol=BTCUSDT/interval=5m/date=2024-01-01"
    )
    assert SPOT.quarantine_dir() == Path(
        "_quarantine/vendor=binance/dataset=spot_klines/symbol=BTCUSDT/interval=1m/date=2024-01-01"
    )
    assert funding.quarantine_dir().parts[-2] == "interval=none"
    for name, table in [
        ("perp-klines", "perp_klines"),
        ("mark-klines", "mark_klines"),
        ("premium-klines", "premium_klines"),
    ]:
        assert DATASETS[name].table == table
        assert dataset_by_table(table) is DATASETS[name]
    with pytest.raises(LakeError):
        dataset_by_table("nope")


# ---- round trip and manifest --------------------------------------------------------------


def test_round_trip_keeps_the_exact_schema_and_values(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    table = bars(1440)
    result = write(lake, table)
    assert result.written
    back = lake.read_partition(SPOT)
    assert back.schema.equals(KLINE_SCHEMA)
    assert back.equals(table)
    # The file itself carries the schema (not just the reader's cast).
    on_disk = pq.read_schema(lake.partition_dir(SPOT) / PART_FILE)
    assert on_disk.remove_metadata().equals(KLINE_SCHEMA)
    assert (
        pq.ParquetFile(lake.partition_dir(SPOT) / PART_FILE)
        .metadata.row_group(0)
        .column(0)
        .compression.lower()
        == "zstd"
    )
    assert sorted(p.name for p in lake.partition_dir(SPOT).iterdir()) == sorted(
        [PART_FILE, MANIFEST_FILE, SUCCESS_FILE]
    )


def test_rows_are_sorted_by_time_and_column_order_is_the_schema(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    table = bars(10)
    shuffled = table.take([9, 3, 0, 5, 1, 2, 8, 4, 7, 6])
    reordered = shuffled.select(list(reversed(shuffled.column_names)))
    write(lake, reordered)
    assert lake.read_partition(SPOT).equals(table)


def test_manifest_fields(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    table = bars(1000)
    write(lake, table, raw_pages=["b.json.gz", "a.json.gz"], notes=["missing 16:40–23:59"])
    manifest = lake.read_manifest(SPOT)
    assert manifest is not None
    part = (lake.partition_dir(SPOT) / PART_FILE).read_bytes()
    assert manifest.sha256 == hashlib.sha256(part).hexdigest()
    assert manifest.rows == 1000
    assert manifest.expected_rows == 1440
    assert manifest.missing_rows == 440
    assert manifest.is_complete is False
    assert manifest.first_at == "2024-01-01T00:00:00+00:00"
    assert manifest.last_at == "2024-01-01T16:39:00+00:00"
    assert (manifest.vendor, manifest.dataset, manifest.symbol, manifest.interval) == (
        "binance",
        "spot_klines",
        "BTCUSDT",
        "1m",
    )
    assert manifest.date == "2024-01-01"
    assert manifest.source == "rest"
    assert manifest.ingested_at == T1.isoformat()
    assert manifest.raw_pages == ["a.json.gz", "b.json.gz"]
    assert manifest.notes == ["missing 16:40–23:59"]
    assert manifest.quarantined_rows == 0
    assert manifest.quarantine_sha256 is None
    assert manifest.data_sha256 == table_data_sha256(table)
    raw = json.loads((lake.partition_dir(SPOT) / MANIFEST_FILE).read_text())
    assert raw["file"] == PART_FILE
    assert raw["manifest_version"] == 2
    assert raw["day_closed"] is True
    assert Manifest.from_json((lake.partition_dir(SPOT) / MANIFEST_FILE).read_bytes()) == manifest


def test_complete_and_unbounded_partitions(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert write(lake, bars(1440)).manifest.is_complete
    funding_key = PartitionKey(DATASETS["funding"], "BTCUSDT", None, DAY)
    empty = DATASETS["funding"].schema.empty_table()
    result = lake.write_partition(
        funding_key, empty, source="rest", ingested_at=T1, expected_rows=None
    )
    assert result.manifest.is_complete
    assert (result.manifest.rows, result.manifest.missing_rows) == (0, 0)
    assert (result.manifest.first_at, result.manifest.last_at) == (None, None)
    assert lake.read_partition(funding_key).num_rows == 0


def test_data_sha256_ignores_ingested_at_and_chunking() -> None:
    table = bars(50)
    later = table.set_column(
        table.schema.get_field_index("ingested_at"),
        table.schema.field("ingested_at"),
        pa.array([T2] * 50, type=table.schema.field("ingested_at").type),
    )
    assert table_data_sha256(table) == table_data_sha256(later)
    chunked = pa.concat_tables([table.slice(0, 20), table.slice(20)])
    assert chunked.column(0).num_chunks == 2
    assert table_data_sha256(chunked) == table_data_sha256(table)
    assert table_data_sha256(bars(50, bump=1)) != table_data_sha256(table)


# ---- idempotence --------------------------------------------------------------------------


def test_rewriting_identical_data_is_a_no_op(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    first = write(lake, bars(1440), quarantine=bad_rows(2))
    before = snapshot(tmp_path)
    again = write(lake, bars(1440), at=T2, quarantine=bad_rows(2))
    assert again.written is False
    assert again.manifest == first.manifest  # ingested_at stays the first write's
    assert snapshot(tmp_path) == before


def test_same_rows_under_new_notes_get_the_new_manifest(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write(lake, bars(3), notes=["day not over yet"])
    result = write(lake, bars(3), at=T2, notes=[])
    assert result.written
    assert result.manifest.notes == []
    assert result.manifest.ingested_at == T2.isoformat()
    assert write(lake, bars(3), notes=[]).written is False


def test_changed_data_replaces_the_partition_whole(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write(lake, bars(1440))
    result = write(lake, bars(700, bump=3), at=T2)
    assert result.written
    assert lake.read_partition(SPOT).equals(bars(700, bump=3))
    manifest = lake.read_manifest(SPOT)
    assert manifest is not None
    assert manifest.rows == 700
    assert manifest.ingested_at == T2.isoformat()
    assert lake.is_finished(SPOT)
    assert temp_files(tmp_path) == []


def test_quarantine_partition_written_then_removed(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    qfile = tmp_path / SPOT.quarantine_dir() / PART_FILE
    result = write(lake, bars(10), quarantine=bad_rows(3))
    assert result.manifest.quarantined_rows == 3
    assert result.manifest.quarantine_sha256 is not None
    stored = pq.read_table(qfile)
    assert stored.schema.remove_metadata().equals(QUARANTINE_SCHEMA)
    assert stored.column("raw").to_pylist() == ['["bad",0]', '["bad",1]', '["bad",2]']
    # Same rows, different quarantine: a rewrite.
    assert write(lake, bars(10), quarantine=bad_rows(1)).written
    assert pq.read_table(qfile).num_rows == 1
    # No bad rows any more: the quarantine file goes.
    result = write(lake, bars(10), quarantine=QUARANTINE_SCHEMA.empty_table())
    assert result.written
    assert result.manifest.quarantined_rows == 0
    assert not qfile.exists()
    assert write(lake, bars(10)).written is False


# ---- crashes ------------------------------------------------------------------------------


def _crash_on(monkeypatch: pytest.MonkeyPatch, file_name: str) -> None:
    real = lake_module.write_bytes_atomic

    def flaky(path: Path, data: bytes) -> None:
        if path.name == file_name:
            raise OSError(f"simulated crash before {file_name}")
        real(path, data)

    monkeypatch.setattr(lake_module, "write_bytes_atomic", flaky)


@pytest.mark.parametrize("crash_before", [PART_FILE, MANIFEST_FILE, SUCCESS_FILE])
def test_interrupted_replace_is_visible_as_unfinished_and_a_rerun_repairs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_before: str
) -> None:
    lake = Lake(tmp_path)
    old, new = bars(1440), bars(1440, bump=5)
    write(lake, old)
    assert lake.is_finished(SPOT)
    with monkeypatch.context() as patch:
        _crash_on(patch, crash_before)
        with pytest.raises(OSError, match="simulated crash"):
            write(lake, new, at=T2)
    assert not lake.is_finished(SPOT)
    # Whatever is there is one whole, valid file: the old data or the new, never a mix.
    on_disk = lake.read_partition(SPOT).drop_columns(["ingested_at"])
    assert on_disk.equals(old.drop_columns(["ingested_at"])) or on_disk.equals(
        new.drop_columns(["ingested_at"])
    )
    if crash_before == PART_FILE:
        assert on_disk.equals(old.drop_columns(["ingested_at"]))
    assert temp_files(tmp_path) == []
    # Rerun: the unfinished partition is rewritten even when its manifest looks current.
    result = write(lake, new, at=T2)
    assert result.written
    assert lake.is_finished(SPOT)
    assert lake.read_partition(SPOT).equals(new)
    manifest = lake.read_manifest(SPOT)
    assert manifest is not None
    part = (lake.partition_dir(SPOT) / PART_FILE).read_bytes()
    assert manifest.sha256 == hashlib.sha256(part).hexdigest()


def test_rerun_after_a_crash_with_the_same_data_still_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path)
    with monkeypatch.context() as patch:
        _crash_on(patch, SUCCESS_FILE)
        with pytest.raises(OSError):
            write(lake, bars(5))
    # The manifest already matches the data, but without _SUCCESS it is not trusted.
    assert lake.read_manifest(SPOT) is not None
    assert not lake.is_finished(SPOT)
    assert write(lake, bars(5)).written
    assert lake.is_finished(SPOT)


def test_a_failed_rename_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path)
    write(lake, bars(3))
    before = (lake.partition_dir(SPOT) / PART_FILE).read_bytes()

    def refuse(self: Path, target: Any) -> Path:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "replace", refuse)
        with pytest.raises(OSError, match="disk full"):
            write(lake, bars(3, bump=1))
    assert (lake.partition_dir(SPOT) / PART_FILE).read_bytes() == before
    assert temp_files(tmp_path) == []


def test_write_bytes_atomic(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    lake_module.write_bytes_atomic(target, b"one")
    lake_module.write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


# ---- reading back -------------------------------------------------------------------------


def test_iter_partitions_and_unfinished(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    write(lake, bars(3))
    other = PartitionKey(SPOT.dataset, "BTCUSDT", "1m", DAY + timedelta(days=1))
    lake.write_partition(
        other,
        bars(3, start=day_ms(other.day)),
        source="archive",
        ingested_at=T1,
        expected_rows=1440,
    )
    (lake.partition_dir(other) / SUCCESS_FILE).unlink()
    found = list(lake.iter_partitions(DATASETS["spot-klines"]))
    assert [(k.day, m is not None) for k, m in found] == [(DAY, True), (other.day, True)]
    assert [lake.is_finished(k) for k, _ in found] == [True, False]
    assert list(lake.iter_partitions(DATASETS["funding"])) == []


def test_missing_and_corrupt_manifest(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.read_manifest(SPOT) is None
    assert not lake.is_finished(SPOT)
    write(lake, bars(3))
    (lake.partition_dir(SPOT) / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(LakeError, match="corrupt manifest"):
        lake.read_manifest(SPOT)
    (lake.partition_dir(SPOT) / MANIFEST_FILE).write_text('{"rows": 3}')
    with pytest.raises(LakeError, match="corrupt manifest"):
        lake.read_manifest(SPOT)


def test_a_day_landed_before_it_was_over_is_not_final_until_landed_closed(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    ingested = datetime(2024, 1, 1, 12, tzinfo=UTC)
    opened = lake.write_partition(
        SPOT, bars(720), source="rest", ingested_at=ingested, expected_rows=1440, day_open=True
    )
    assert not opened.manifest.day_closed and DAY_OPEN_NOTE in opened.manifest.notes
    assert not lake.is_final(SPOT)
    # Every row of the day, still landed while it was open: complete, yet not final.
    full = lake.write_partition(
        SPOT, bars(1440), source="rest", ingested_at=ingested, expected_rows=1440, day_open=True
    )
    assert full.written and full.manifest.is_complete and not lake.is_final(SPOT)
    # The same rows landed after the day closed: a new manifest (not skipped), final.
    closed = lake.write_partition(
        SPOT, bars(1440), source="rest", ingested_at=T1, expected_rows=1440
    )
    assert closed.written and closed.manifest.day_closed and lake.is_final(SPOT)
    assert DAY_OPEN_NOTE not in closed.manifest.notes


@pytest.mark.parametrize(("notes", "closed"), [([], True), ([DAY_OPEN_NOTE], False)])
def test_a_version_1_manifest_says_whether_its_day_was_over_by_its_note(
    notes: list[str], closed: bool
) -> None:
    version_1 = {
        "vendor": "binance", "dataset": "spot_klines", "symbol": "BTCUSDT", "interval": "1m",
        "date": "2024-01-01", "rows": 1440, "sha256": "a", "data_sha256": "b",
        "source": "rest", "ingested_at": T1.isoformat(), "expected_rows": 1440,
        "is_complete": True, "missing_rows": 0, "first_at": None, "last_at": None,
        "notes": notes, "manifest_version": 1,
    }  # fmt: skip
    manifest = Manifest.from_json(json.dumps(version_1).encode())
    assert manifest.day_closed is closed
    assert manifest.is_final is closed


def test_day_batches_route_rows_and_every_quarantined_row_to_a_partition() -> None:
    day1, day2, stray_day = date(2024, 1, 1), date(2024, 1, 2), date(2024, 3, 1)
    table = pa.table(
        {"t": pa.array([datetime(2024, 1, 1, 5, tzinfo=UTC), datetime(2024, 1, 2, 6, tzinfo=UTC)],
                       type=pa.timestamp("us", tz="UTC"))}
    )  # fmt: skip
    event_times = [datetime(2024, 1, 2, 7, tzinfo=UTC), None, datetime(2024, 3, 1, tzinfo=UTC)]
    quarantine = pa.table(
        {"event_time": pa.array(event_times, type=pa.timestamp("us", tz="UTC")),
         "reason": ["day 2", "no time", "a day not written"]}
    )  # fmt: skip
    batches = day_batches(table, "t", quarantine, [day2, day1])
    assert [(b.day, b.rows.num_rows, b.first) for b in batches] == [
        (day1, 1, True), (day2, 1, False)
    ]  # fmt: skip
    assert batches[0].quarantine.column("reason").to_pylist() == ["no time", "a day not written"]
    assert batches[1].quarantine.column("reason").to_pylist() == ["day 2"]
    # A covered day keeps its own quarantine rows out of the first day's partition.
    covered = day_batches(table, "t", quarantine, [day1, day2], [day1, day2, stray_day])
    assert covered[0].quarantine.column("reason").to_pylist() == ["no time"]
    # A daily series (date32) splits by its own day.
    daily = pa.table({"d": pa.array([day1, day2, day2], type=pa.date32())})
    split = day_batches(daily, "d", quarantine.slice(0, 0), [day1, day2])
    assert [b.rows.num_rows for b in split] == [1, 2]
