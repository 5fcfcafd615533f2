"""`btcfs lake verify`: each finished partition's Parquet file checked against its MANIFEST.

`btcfs lake status` reads manifests only, and a flipped byte inside a compressed page can
still decode (pyarrow writes no page checksums): only the file's sha256 against the one the
MANIFEST recorded when the partition was written tells a damaged file from a good one.
`--repair` moves a damaged file aside and removes `_SUCCESS`, so the next ingest of that day
lands it again (and dbt sees a missing day, which its gap gates report, never wrong rows).
It reads manifests under both names while a lake moves from `MANIFEST.json` to `_MANIFEST.json`
and warns about the old one; `btcfs lake migrate` (lake.migrate) renames them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from ingest.errors import IngestError
from lake.migrate import legacy_manifest_folders, migrate_lake
from lake.store import (
    LEGACY_MANIFEST_FILE,
    MANIFEST_FILE,
    SUCCESS_FILE,
    PartitionFolder,
    file_sha256,
    partition_lock,
    read_partition,
    walk_partitions,
)


@dataclass(frozen=True)
class Problem:
    """One finished partition whose files do not match what its MANIFEST says."""

    path: str  # the damaged file
    kind: str  # 'missing' | 'sha256' | 'manifest'
    detail: str

    def line(self) -> str:
        return f"CORRUPT {self.path}: {self.detail}"


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    problems: list[Problem]
    legacy: list[Path]  # folders still holding the old `MANIFEST.json`: a warning, not damage

    @property
    def ok(self) -> bool:
        return not self.problems


def finished_partitions(lake_root: Path) -> list[Path]:
    """Folders of every finished partition (with `_SUCCESS`), quarantine excluded."""
    return [found.folder for found in walk_partitions(lake_root) if found.is_finished]


def check_partition(folder: Path) -> Problem | None:
    return _check(read_partition(folder))


def _check(found: PartitionFolder) -> Problem | None:
    manifest_path = str(found.manifest_path)
    if not found.has_manifest:
        return Problem(manifest_path, "manifest", f"{MANIFEST_FILE} is missing")
    if found.manifest_error is not None or found.sha256 is None:
        reason = found.manifest_error or "no sha256"
        return Problem(manifest_path, "manifest", f"{found.manifest_file} is unreadable ({reason})")
    part, expected = found.folder / found.file, found.sha256
    actual = file_sha256(part)
    if actual is None:
        return Problem(str(part), "missing", "the file the MANIFEST lists is missing")
    if actual != expected:
        size = part.stat().st_size
        return Problem(
            str(part),
            "sha256",
            f"sha256 {actual[:12]}… differs from the MANIFEST's {expected[:12]}… "
            f"({size:,} bytes on disk)",
        )
    return None


def verify_lake(lake_root: Path) -> VerifyResult:
    finished = [found for found in walk_partitions(lake_root) if found.is_finished]
    problems = [p for p in map(_check, finished) if p is not None]
    return VerifyResult(len(finished), problems, legacy_manifest_folders(lake_root))


def repair(problem: Problem, lake_root: Path) -> Path | None:
    """Move the damaged file aside and mark its partition unfinished; returns the folder, or
    None when the partition checks out now (an ingest rewrote it since it was found)."""
    damaged = Path(problem.path)
    folder = damaged.parent
    # Under the partition's lock, so the check and the move see no ingest's half-done rewrite.
    with partition_lock(lake_root, folder):
        if check_partition(folder) is None:
            return None
        if damaged.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            damaged.replace(folder / f".{damaged.name}.corrupt-{stamp}")
        (folder / SUCCESS_FILE).unlink(missing_ok=True)
    return folder


@click.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--repair",
    "repair_requested",
    is_flag=True,
    help="Move damaged files aside and mark their partitions unfinished (the next ingest "
    "lands them again).",
)
def lake_verify_command(as_json: bool, repair_requested: bool) -> None:
    """Check every finished partition's Parquet file against its MANIFEST sha256.

    Exits 1 naming each damaged file. With --repair, the next `btcfs ingest` of those days
    lands them again.

    Example: btcfs lake verify --repair && btcfs ingest all
    """
    from core.settings import DataPaths

    root = DataPaths.from_env().lake
    result = verify_lake(root)
    moved = [repair(p, root) for p in result.problems] if repair_requested else []
    repaired = [str(folder) for folder in moved if folder is not None]
    if as_json:
        payload = {
            "lake": str(root),
            "checked": result.checked,
            "problems": [asdict(p) for p in result.problems],
            "repaired": repaired,
            "legacy_manifests": [str(folder) for folder in result.legacy],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for problem in result.problems:
            click.echo(problem.line(), err=True)
        if result.legacy:
            click.echo(
                f"WARNING {len(result.legacy)} folders still hold the old {LEGACY_MANIFEST_FILE} "
                f"(engines fail on it; first: {result.legacy[0]}): run `btcfs lake migrate`",
                err=True,
            )
        for folder in repaired:
            click.echo(f"repaired {folder}: moved aside, _SUCCESS removed (ingest that day again)")
        click.echo(f"{result.checked} partitions checked in {root}, {len(result.problems)} damaged")
    if result.problems:
        raise SystemExit(1)


@click.command("migrate")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lake_migrate_command(as_json: bool) -> None:
    """Rename the old MANIFEST.json of every partition to _MANIFEST.json, in place.

    Safe to rerun and beside an ingest; an ingest also does it before its first write.

    Example: btcfs lake migrate && btcfs lake verify
    """
    from core.settings import DataPaths

    root = DataPaths.from_env().lake
    done = migrate_lake(root)
    if as_json:
        payload = {
            name: [str(folder) for folder in getattr(done, name)]
            for name in ("renamed", "kept_new", "kept_old", "set_aside")
        }
        click.echo(json.dumps({"lake": str(root), **payload}, indent=2))
        return
    for folder in done.set_aside:
        click.echo(f"set aside an old {LEGACY_MANIFEST_FILE} matching no data file in {folder}")
    click.echo(f"{done.folders} folders migrated to {MANIFEST_FILE} in {root}")


def lake_fingerprint(lake_root: Path) -> dict[str, tuple[int | None, str | None, str | None]]:
    """Partition -> (rows, data sha256, quarantine sha256) from the MANIFESTs: two lakes
    holding the same data have equal fingerprints, whenever and however they were landed."""
    out = {}
    for found in walk_partitions(lake_root):
        if not found.has_manifest:
            continue
        if found.manifest_error is not None:
            raise IngestError(f"corrupt manifest {found.manifest_path}: {found.manifest_error}")
        out[str(found.folder.relative_to(lake_root))] = (
            found.rows,
            found.data_sha256,
            found.quarantine_sha256,
        )
    return out
