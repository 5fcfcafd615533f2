"""`btcfs lake verify`: each finished partition's Parquet file checked against its MANIFEST.

`btcfs lake status` reads manifests only, and a flipped byte inside a compressed page can
still decode (pyarrow writes no page checksums): only the file's sha256 against the one the
MANIFEST recorded when the partition was written tells a damaged file from a good one.
`--repair` moves a damaged file aside and removes `_SUCCESS`, so the next ingest of that day
lands it again (and dbt sees a missing day, which its gap gates report, never wrong rows).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from ingest.errors import IngestError
from ingest.lake import MANIFEST_FILE, PART_FILE, SUCCESS_FILE, file_sha256, partition_lock
from ingest.schemas import QUARANTINE


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

    @property
    def ok(self) -> bool:
        return not self.problems


def finished_partitions(lake_root: Path) -> list[Path]:
    """Folders of every finished partition (with `_SUCCESS`), quarantine excluded."""
    quarantine = lake_root / QUARANTINE.table
    return sorted(
        marker.parent
        for marker in lake_root.rglob(SUCCESS_FILE)
        if quarantine not in marker.parents
    )


def check_partition(folder: Path) -> Problem | None:
    manifest_path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_bytes())
        name, expected = manifest.get("file", PART_FILE), manifest["sha256"]
    except FileNotFoundError:
        return Problem(str(manifest_path), "manifest", "MANIFEST.json is missing")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return Problem(str(manifest_path), "manifest", f"MANIFEST.json is unreadable ({exc})")
    part = folder / name
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
    folders = finished_partitions(lake_root)
    problems = [p for p in map(check_partition, folders) if p is not None]
    return VerifyResult(len(folders), problems)


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
    from btcfs.settings import DataPaths

    root = DataPaths.from_env().lake
    result = verify_lake(root)
    try:
        moved = [repair(p, root) for p in result.problems] if repair_requested else []
    except IngestError as exc:
        raise click.ClickException(str(exc)) from None
    repaired = [str(folder) for folder in moved if folder is not None]
    if as_json:
        payload = {
            "lake": str(root),
            "checked": result.checked,
            "problems": [asdict(p) for p in result.problems],
            "repaired": repaired,
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for problem in result.problems:
            click.echo(problem.line(), err=True)
        for folder in repaired:
            click.echo(f"repaired {folder}: moved aside, _SUCCESS removed (ingest that day again)")
        click.echo(f"{result.checked} partitions checked in {root}, {len(result.problems)} damaged")
    if result.problems:
        raise SystemExit(1)


def lake_fingerprint(lake_root: Path) -> dict[str, tuple[int, str, str | None]]:
    """Partition -> (rows, data sha256, quarantine sha256) from the MANIFESTs: two lakes
    holding the same data have equal fingerprints, whenever and however they were landed."""
    out = {}
    for path in sorted(lake_root.rglob(MANIFEST_FILE)):
        payload = json.loads(path.read_text())
        out[str(path.parent.relative_to(lake_root))] = (
            payload["rows"],
            payload["data_sha256"],
            payload["quarantine_sha256"],
        )
    return out
