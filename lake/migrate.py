"""Rename the lake's old `MANIFEST.json` files to `_MANIFEST.json` in place, folder by folder.

Engines skip files whose names start with `_` or `.`; `MANIFEST.json` made pyarrow, polars and
Spark fail on a dataset folder. Each folder moves under its partition lock with one rename, so a
crash leaves one valid name, and a rerun finishes the job. A folder holding both names (an older
btcfs rewrote a migrated partition, or a crash between writing the new one and removing the old
one) keeps the manifest that describes its data file, the new name when both or neither do; an
old one that describes nothing is set aside as a hidden file rather than deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lake.store import (
    LEGACY_MANIFEST_FILE,
    LOCKS_DIR,
    MANIFEST_FILE,
    PART_FILE,
    _fsync_dir,
    file_sha256,
    partition_lock,
)


@dataclass
class Migration:
    """What `migrate_lake` did, folder by folder."""

    renamed: list[Path] = field(default_factory=list)  # old name renamed to the new one
    kept_new: list[Path] = field(default_factory=list)  # both names: the new one kept
    kept_old: list[Path] = field(default_factory=list)  # both names: the old one was newer
    set_aside: list[Path] = field(default_factory=list)  # an old one matching no file, moved aside

    @property
    def folders(self) -> int:
        return len(self.renamed) + len(self.kept_new) + len(self.kept_old)


def legacy_manifest_folders(lake_root: Path) -> list[Path]:
    """Every folder below `lake_root` (quarantine included, locks not) holding a `MANIFEST.json`."""
    root = Path(lake_root)
    found = []
    for current, dirs, files in os.walk(root):
        if Path(current) == root:
            dirs[:] = [d for d in dirs if d != LOCKS_DIR]
        if LEGACY_MANIFEST_FILE in files:
            found.append(Path(current))
    return sorted(found)


def _describes_data(manifest: Path) -> bool:
    """The manifest's sha256 is the one of the data file it lists, as that file is now."""
    try:
        payload = json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(payload, dict) or not isinstance(payload.get("sha256"), str):
        return False
    listed = payload.get("file")
    if not isinstance(listed, str):
        listed = PART_FILE
    return file_sha256(manifest.parent / Path(listed).name) == payload["sha256"]


def migrate_folder(folder: Path, result: Migration) -> None:
    """Leave `folder` with `_MANIFEST.json` only; the caller holds its lock."""
    old, new = folder / LEGACY_MANIFEST_FILE, folder / MANIFEST_FILE
    if not old.exists():
        return
    if not new.exists():
        old.replace(new)  # one rename: a crash leaves either name, never none
        result.renamed.append(folder)
    elif _describes_data(new):
        old.unlink()
        result.kept_new.append(folder)
    elif _describes_data(old):
        old.replace(new)
        result.kept_old.append(folder)
    else:  # neither matches the data (`btcfs lake verify` says so): keep the old one aside
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        old.replace(folder / f".{LEGACY_MANIFEST_FILE}.unmatched-{stamp}")
        result.kept_new.append(folder)
        result.set_aside.append(folder)
    _fsync_dir(folder)


def migrate_lake(lake_root: Path) -> Migration:
    """Migrate every old-name manifest below `lake_root`; idempotent, safe beside writers."""
    root = Path(lake_root)
    result = Migration()
    for folder in legacy_manifest_folders(root):
        with partition_lock(root, folder), contextlib.suppress(FileNotFoundError):
            migrate_folder(folder, result)  # FileNotFoundError: another migration won the race
    return result
