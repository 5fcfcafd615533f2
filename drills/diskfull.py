"""The disk fills while a lake partition is being replaced: the old partition survives intact
(its bytes, its MANIFEST, readable), no temporary file is left, and once there is room again
the same write goes through.

The lake sits on a size-limited tmpfs (`mount -t tmpfs -o size=…`, needs root) filled up to
the last few KiB; without root, the writer runs with RLIMIT_FSIZE below the new file's size
(EFBIG instead of ENOSPC). The record says which was used. The writer is a child process
running the lake's own `Lake.write_partition`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import random
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from drills._common import REPO, Context, Record
from ingest.binance.parse import parse_klines
from ingest.verify import check_partition
from lake.schemas import DATASETS
from lake.store import MANIFEST_FILE, PART_FILE, SUCCESS_FILE, Lake, PartitionKey

NAME = "diskfull"
TITLE = "disk full during a lake write"
KEY = PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", date(2026, 3, 1))
DAY_MS = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
TMPFS_BYTES = 1 << 20
LEFT_FREE = 16 << 10  # room for the small files, not for a new part file
FSIZE_LIMIT = 16 << 10


def bars(seed: int, rows: int = 1440) -> pa.Table:
    """A day of 1m klines with random (so incompressible) prices and volumes."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        t = DAY_MS + i * 60_000
        low = 60_000 + rng.random() * 1_000
        high = low + rng.random() * 50
        prices = [f"{low + rng.random() * (high - low):.2f}" for _ in range(2)]
        volume = f"{rng.random() * 100:.8f}"
        out.append([t, prices[0], f"{high:.2f}", f"{low:.2f}", prices[1], volume, t + 59_999,
                    f"{rng.random() * 1e6:.8f}", rng.randint(1, 9_999), "0", "0", "0"])  # fmt: skip
    parsed = parse_klines(
        out,
        dataset="spot_klines",
        interval_us=60_000_000,
        source="rest",
        ingested_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    return parsed.table


def write_child(lake_root: Path, seed: int, fsize_limit: int | None) -> int:
    """Child process: replace the partition with seed's bars; exit 3 on a full disk."""
    if fsize_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))
    try:
        Lake(lake_root).write_partition(
            KEY,
            bars(seed),
            source="rest",
            ingested_at=datetime(2026, 3, 2, tzinfo=UTC),
            expected_rows=1440,
        )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG):
            print(f"{errno.errorcode[exc.errno]}: {exc}", file=sys.stderr)
            return 3
        raise
    return 0


def write(
    lake_root: Path, seed: int, fsize_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "drills.diskfull", str(lake_root), str(seed)]
    if fsize_limit is not None:
        command += ["--fsize-limit", str(fsize_limit)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def small_disk(folder: Path, *, allow_mount: bool) -> Iterator[str]:
    """A tmpfs of TMPFS_BYTES at `folder` when mounting is allowed; yields the mode used."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = False
    if allow_mount and os.geteuid() == 0:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(folder)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        mounted = proc.returncode == 0
    try:
        yield "tmpfs" if mounted else "rlimit"
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False, capture_output=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill the filesystem of `folder` until ENOSPC, then free `leave` bytes."""
    filler = folder / "filler.bin"
    block = os.urandom(4096)
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def drill(ctx: Context, *, mode: str = "auto") -> Record:
    record = Record(NAME, TITLE)
    disk = ctx.work / "disk"
    with small_disk(disk, allow_mount=mode != "rlimit") as used:
        lake_root = disk / "lake"
        part_dir = Lake(lake_root).partition_dir(KEY)
        first = write(lake_root, seed=1)
        if not record.expect(first.returncode == 0, "the first version of the partition lands"):
            record.found_(first.stderr[-2000:])
            return record
        old_part = (part_dir / PART_FILE).read_bytes()
        old_manifest = (part_dir / MANIFEST_FILE).read_bytes()
        limit = None
        if used == "tmpfs":
            filler = fill(disk, LEFT_FREE)
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            record.tried_(
                f"lake on a {TMPFS_BYTES >> 10} KiB tmpfs filled to {free >> 10} KiB free; "
                f"replacing a {len(old_part) >> 10} KiB partition with new data"
            )
        else:
            filler = None
            limit = FSIZE_LIMIT
            record.tried_(
                f"no mount allowed: the writer runs with RLIMIT_FSIZE = {limit >> 10} KiB; "
                f"replacing a {len(old_part) >> 10} KiB partition with new data"
            )
        second = write(lake_root, seed=2, fsize_limit=limit)
        said = second.stderr.strip().splitlines()[-1:] or [""]
        record.expect(
            second.returncode == 3, f"the write fails with a full disk: {said[0][:200]!r}"
        )
        record.expect(
            (part_dir / PART_FILE).read_bytes() == old_part,
            "the old part file is byte for byte intact",
        )
        record.expect(
            (part_dir / MANIFEST_FILE).read_bytes() == old_manifest, "its MANIFEST is intact"
        )
        rows = pq.read_table(part_dir / PART_FILE).num_rows
        record.expect(
            check_partition(part_dir) is None and rows == 1440,
            f"it still matches its MANIFEST sha256 and reads ({rows} rows)",
        )
        leftovers = [p.name for p in part_dir.iterdir() if p.name.endswith(".tmp")]
        record.expect(not leftovers, f"temporary files left: {leftovers or 'none'}")
        unfinished = not (part_dir / SUCCESS_FILE).exists()
        record.found_(
            "_SUCCESS was removed before the write: the partition is marked unfinished, so the "
            "next run rewrites it (readers still see the old rows)"
            if unfinished
            else "_SUCCESS is still there"
        )
        if filler is not None:
            filler.unlink()
        third = write(lake_root, seed=2)
        record.expect(
            third.returncode == 0
            and check_partition(part_dir) is None
            and (part_dir / SUCCESS_FILE).exists()
            and (part_dir / PART_FILE).read_bytes() != old_part,
            "with room again the same write lands the new partition, finished and verified",
        )
        record.figures = {
            "mode": used,
            "old_part_bytes": len(old_part),
            "write_exit": second.returncode,
            "error": said[0][:200],
            "marked_unfinished": unfinished,
        }
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description="child writer of the disk-full drill")
    parser.add_argument("lake", type=Path)
    parser.add_argument("seed", type=int)
    parser.add_argument("--fsize-limit", type=int, default=None)
    args = parser.parse_args()
    return write_child(args.lake, args.seed, args.fsize_limit)


if __name__ == "__main__":
    sys.exit(main())
