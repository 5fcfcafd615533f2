"""lake.migrate: a lake of old `MANIFEST.json` names moves to `_MANIFEST.json` in place.

The old lakes are real ones: landed through `Lake`, then renamed back to the old name.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from ingest.verify import lake_fingerprint, verify_lake
from lake.migrate import legacy_manifest_folders, migrate_lake
from lake.store import (
    LEGACY_MANIFEST_FILE,
    MANIFEST_FILE,
    PART_FILE,
    Lake,
    PartitionKey,
    dataset_by_table,
    walk_partitions,
)
from tests.warehouse import lakefixtures

START = date(2025, 1, 1)


def land(root: Path) -> Path:
    lakefixtures.land(root, lakefixtures.synthetic_market(START, 2, vendors=False))
    return root


def to_old_names(root: Path) -> list[Path]:
    """Rename every manifest back to the old name; returns the partition folders."""
    folders = []
    for manifest in sorted(root.rglob(MANIFEST_FILE)):
        manifest.rename(manifest.with_name(LEGACY_MANIFEST_FILE))
        folders.append(manifest.parent)
    return folders


@pytest.fixture
def new_lake(tmp_path: Path) -> Path:
    return land(tmp_path / "lake")


@pytest.fixture
def old_lake(new_lake: Path) -> Path:
    to_old_names(new_lake)
    quarantine = new_lake / "_quarantine" / "vendor=binance" / "dataset=spot_klines"
    quarantine.mkdir(parents=True)  # an old quarantine folder that carried a manifest too
    (quarantine / LEGACY_MANIFEST_FILE).write_text(json.dumps({"rows": 0}))
    return new_lake


def names(root: Path) -> tuple[int, int]:
    return len(list(root.rglob(MANIFEST_FILE))), len(list(root.rglob(LEGACY_MANIFEST_FILE)))


def test_an_old_lake_is_read_and_verified_as_it_is_with_a_warning(
    new_lake: Path, tmp_path: Path
) -> None:
    before = lake_fingerprint(new_lake)
    to_old_names(new_lake)
    assert lake_fingerprint(new_lake) == before  # every reader still reads the old name
    result = verify_lake(new_lake)
    assert result.ok and result.checked == len(before)
    assert len(result.legacy) == len(before)
    found = next(walk_partitions(new_lake))
    assert found.manifest_file == LEGACY_MANIFEST_FILE and found.has_legacy_manifest


def test_migration_renames_every_manifest_quarantine_included_and_reruns_as_a_no_op(
    old_lake: Path,
) -> None:
    before = lake_fingerprint(old_lake)
    done = migrate_lake(old_lake)
    assert len(done.renamed) == len(before) + 1 and not (done.kept_new or done.set_aside)
    assert names(old_lake) == (len(before) + 1, 0)
    assert lake_fingerprint(old_lake) == before
    result = verify_lake(old_lake)
    assert result.ok and result.legacy == []
    assert migrate_lake(old_lake).folders == 0  # idempotent
    for dataset in {old_lake / str(f.vendor) / str(f.table) for f in walk_partitions(old_lake)}:
        assert ds.dataset(dataset, format="parquet", partitioning="hive").count_rows()


def test_a_mixed_lake_verifies_warns_about_its_old_half_and_migrates_only_that(
    new_lake: Path,
) -> None:
    folders = [f.folder for f in walk_partitions(new_lake)]
    old_half = folders[::2]
    for folder in old_half:
        (folder / MANIFEST_FILE).rename(folder / LEGACY_MANIFEST_FILE)
    result = verify_lake(new_lake)
    assert result.ok and result.checked == len(folders) and result.legacy == old_half
    assert migrate_lake(new_lake).renamed == old_half
    assert names(new_lake) == (len(folders), 0) and verify_lake(new_lake).legacy == []


def test_an_interrupted_migration_keeps_the_manifest_that_matches_the_data(
    new_lake: Path,
) -> None:
    """Both names in one folder: a crash between writing the new name and removing the old
    one (equal files), an older btcfs rewriting a migrated partition (the old one is newer),
    and a damaged data file that neither describes (the old one is set aside, not lost)."""
    before = lake_fingerprint(new_lake)
    crashed, rewritten, damaged = [f.folder for f in walk_partitions(new_lake)][:3]
    for folder in (crashed, rewritten, damaged):
        shutil.copy(folder / MANIFEST_FILE, folder / LEGACY_MANIFEST_FILE)
    stale = json.loads((rewritten / MANIFEST_FILE).read_text()) | {"sha256": "0" * 64}
    (rewritten / MANIFEST_FILE).write_text(json.dumps(stale))
    with (damaged / PART_FILE).open("ab") as handle:
        handle.write(b"bit rot")
    # Meanwhile the reader takes the new name, and verify names what does not match it.
    problems = [p.path for p in verify_lake(new_lake).problems]
    assert problems == [str(rewritten / PART_FILE), str(damaged / PART_FILE)]
    assert verify_lake(new_lake).legacy == [crashed, rewritten, damaged]

    done = migrate_lake(new_lake)
    assert (done.kept_new, done.kept_old, done.set_aside) == (
        [crashed, damaged],
        [rewritten],
        [damaged],
    )
    assert lake_fingerprint(new_lake) == before
    assert [p.path for p in verify_lake(new_lake).problems] == [str(damaged / PART_FILE)]
    aside = [p.name for p in damaged.iterdir() if p.name.startswith(".")]
    assert len(aside) == 1 and aside[0].startswith(f".{LEGACY_MANIFEST_FILE}.unmatched-")
    assert names(new_lake)[1] == 0 and migrate_lake(new_lake).folders == 0


def test_the_first_write_migrates_the_whole_lake(old_lake: Path) -> None:
    """Opening a lake for writing moves it: one partition written, every folder renamed."""
    one = next(walk_partitions(old_lake))
    dataset = dataset_by_table(str(one.table))
    key = PartitionKey(dataset, str(one.symbol), one.interval, date.fromisoformat(str(one.date)))
    lake = Lake(old_lake)
    table = lake.read_partition(key)
    result = lake.write_partition(
        key, table, source="archive", ingested_at=lakefixtures.INGESTED_AT, expected_rows=None
    )
    assert not result.written  # the same rows: skipped on the (migrated) manifest's word
    assert legacy_manifest_folders(old_lake) == []
    assert not (lake.partition_dir(key) / LEGACY_MANIFEST_FILE).exists()


def test_cli_verify_warns_and_migrate_fixes(
    old_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BTCFS_DATA_DIR", str(old_lake.parent))
    runner = CliRunner()
    result = runner.invoke(cli, ["lake", "verify"])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "btcfs lake migrate" in result.output
    legacy = json.loads(runner.invoke(cli, ["lake", "verify", "--json"]).output)
    assert len(legacy["legacy_manifests"]) == len(legacy_manifest_folders(old_lake))
    result = runner.invoke(cli, ["lake", "migrate", "--json"])
    assert result.exit_code == 0 and len(json.loads(result.output)["renamed"]) == len(
        legacy["legacy_manifests"]
    )
    result = runner.invoke(cli, ["lake", "verify"])
    assert result.exit_code == 0 and "WARNING" not in result.output
    result = runner.invoke(cli, ["lake", "migrate"])
    assert result.exit_code == 0 and "0 folders migrated" in result.output


def test_migrate_help() -> None:
    result = CliRunner().invoke(cli, ["lake", "migrate", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
