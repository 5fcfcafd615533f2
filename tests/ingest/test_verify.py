"""ingest.verify (`btcfs lake verify`): damaged part files are named, repaired and relanded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from ingest.verify import lake_fingerprint, verify_lake
from lake.store import MANIFEST_FILE, PART_FILE, SUCCESS_FILE, Lake
from tests.lake.test_lake import SPOT, bars, write

LATER = datetime(2024, 1, 3, tzinfo=UTC)


def damage(path: Path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    write(lake, bars(30))
    return lake


def test_an_intact_lake_verifies(lake: Lake) -> None:
    result = verify_lake(lake.root)
    assert (result.checked, result.problems) == (1, [])


def test_a_flipped_byte_is_named_with_its_path(lake: Lake) -> None:
    part = lake.partition_dir(SPOT) / PART_FILE
    damage(part)
    [problem] = verify_lake(lake.root).problems
    assert (problem.path, problem.kind) == (str(part), "sha256")


def test_a_missing_file_and_a_broken_manifest_are_named(lake: Lake) -> None:
    (lake.partition_dir(SPOT) / PART_FILE).unlink()
    assert [p.kind for p in verify_lake(lake.root).problems] == ["missing"]
    (lake.partition_dir(SPOT) / MANIFEST_FILE).write_text("{not json")
    assert [p.kind for p in verify_lake(lake.root).problems] == ["manifest"]


def test_rewriting_the_same_data_repairs_a_damaged_file(lake: Lake) -> None:
    before = lake_fingerprint(lake.root)
    damage(lake.partition_dir(SPOT) / PART_FILE)
    assert write(lake, bars(30), at=LATER).written  # not skipped on the manifest's word
    assert verify_lake(lake.root).ok and lake_fingerprint(lake.root) == before


def test_cli_reports_then_repair_marks_the_partition_unfinished(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BTCFS_DATA_DIR", str(lake.root.parent))
    part = lake.partition_dir(SPOT) / PART_FILE
    damage(part)
    result = CliRunner().invoke(cli, ["lake", "verify"])
    assert result.exit_code == 1 and str(part) in result.output
    result = CliRunner().invoke(cli, ["lake", "verify", "--repair"])
    assert result.exit_code == 1 and "repaired" in result.output
    assert not part.exists() and not (part.parent / SUCCESS_FILE).exists()
    assert CliRunner().invoke(cli, ["lake", "verify"]).exit_code == 0
    assert not lake.is_finished(SPOT)


def test_help() -> None:
    result = CliRunner().invoke(cli, ["lake", "verify", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
