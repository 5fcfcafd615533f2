"""lake.store under concurrent writers (real processes): the stale-temporary sweep spares a
live writer's file, and two ingests rewriting one partition never leave it inconsistent."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from filelock import FileLock

from ingest.binance.parse import parse_klines, quarantine_rows
from ingest.verify import check_partition, repair, verify_lake
from lake.errors import LakeError
from lake.schemas import DATASETS
from lake.store import SUCCESS_FILE, Lake, PartitionKey, write_bytes_atomic
from tests.ingest.binance_fakes import MINUTE_MS, day_ms, kline_row

DAY = date(2024, 1, 1)
T1 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
SPOT = PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", DAY)
SPAWN = multiprocessing.get_context("spawn")


def _temporaries(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def _wait_until(moment: float) -> None:
    while time.time() < moment:
        time.sleep(0.001)


# ---- the sweep and a live writer -----------------------------------------------------------

# A process that writes the way write_bytes_atomic does, then stops half-way: its temporary
# exists and is locked (not yet renamed) until the process ends.
_HALF_WRITER = """
import os, sys, time
from filelock import lock_descriptor
path = sys.argv[1]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
assert lock_descriptor(fd, blocking=False)
os.write(fd, b"half of a file")
print("ready", flush=True)
time.sleep(120)
"""


def test_the_sweep_spares_a_live_writers_temporary_and_removes_a_dead_ones(
    tmp_path: Path,
) -> None:
    target = tmp_path / "raw" / "page.json.gz"
    target.parent.mkdir(parents=True)
    temporary = target.with_name(f".{target.name}.0123456789ab.tmp")
    command = [sys.executable, "-c", _HALF_WRITER, str(temporary)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as writer:
        try:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
            write_bytes_atomic(target, b"whole")  # sweeps this path's temporaries first
            assert temporary.read_bytes() == b"half of a file"  # the live writer's is intact
            assert target.read_bytes() == b"whole"
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=10)
    # Killed: the kernel dropped its lock, so the next write of that path removes the leftover.
    write_bytes_atomic(target, b"again")
    assert _temporaries(tmp_path) == []
    assert target.read_bytes() == b"again"


def _hammer(path: str, fill: int, writes: int, start_at: float) -> list[str]:
    """One process writing `path` over and over; the errors it met."""
    data = bytes([fill]) * (2 << 20)
    _wait_until(start_at)
    errors = []
    for _ in range(writes):
        try:
            write_bytes_atomic(Path(path), data)
        except OSError as exc:
            errors.append(repr(exc))
    return errors


def test_two_processes_writing_one_file_never_sweep_each_other(tmp_path: Path) -> None:
    """Raw pages have no partition lock: two ingests of one day write the same page name."""
    target = tmp_path / "raw" / "page.json.gz"
    start_at = time.time() + 2.0
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        futures = [pool.submit(_hammer, str(target), fill, 60, start_at) for fill in (1, 2)]
        errors = [error for future in futures for error in future.result(timeout=120)]
    assert errors == []
    assert target.read_bytes() in (b"\1" * (2 << 20), b"\2" * (2 << 20))
    assert _temporaries(tmp_path) == []


# ---- two ingests on one partition ----------------------------------------------------------


def _bars(bump: int) -> pa.Table:
    rows = [kline_row(day_ms(DAY) + i * MINUTE_MS, bump=bump) for i in range(1440)]
    return parse_klines(
        rows, dataset="spot_klines", interval_us=60_000_000, source="rest", ingested_at=T1
    ).table


def _ingest(root: str, bumps: tuple[int, int], writes: int, start_at: float) -> list[str]:
    """One ingest rewriting the partition with its own data (alternating, so every write
    replaces), with a quarantined row every other time."""
    lake = Lake(Path(root))
    tables = [_bars(bump) for bump in bumps]
    bad = quarantine_rows(
        "spot_klines", [(["bad", bumps[0]], "unparsable open", None)], source="rest",
        ingested_at=T1,
    )  # fmt: skip
    _wait_until(start_at)
    errors = []
    for n in range(writes):
        try:
            lake.write_partition(
                SPOT, tables[n % 2], source="rest", ingested_at=T1, expected_rows=1440,
                quarantine=bad if n % 2 else None,
            )  # fmt: skip
        except (OSError, LakeError) as exc:
            errors.append(repr(exc))
    return errors


def _check(root: str, stop: str, start_at: float) -> tuple[int, list[str]]:
    """A reader that takes the partition lock, as `lake verify --repair` does: whenever the
    partition says it is finished, its file must be the one its MANIFEST describes."""
    lake = Lake(Path(root))
    folder = lake.partition_dir(SPOT)
    _wait_until(start_at)
    checks, problems = 0, []
    while not os.path.exists(stop):
        with lake.partition_lock(SPOT):
            if (folder / SUCCESS_FILE).exists():
                problem = check_partition(folder)
                checks += 1
                if problem is not None:
                    problems.append(problem.line())
        time.sleep(0.001)
    return checks, problems


def test_two_ingests_rewriting_one_partition_keep_it_whole(tmp_path: Path) -> None:
    start_at = time.time() + 2.5
    stop = tmp_path / "stop"
    with ProcessPoolExecutor(3, mp_context=SPAWN) as pool:
        checker = pool.submit(_check, str(tmp_path), str(stop), start_at)
        writers = [
            pool.submit(_ingest, str(tmp_path), bumps, 40, start_at) for bumps in ((1, 2), (3, 4))
        ]
        errors = [error for future in writers for error in future.result(timeout=120)]
        stop.touch()
        checks, problems = checker.result(timeout=60)
    assert errors == []
    assert problems == [], f"{len(problems)} of {checks} checks saw a torn partition"
    assert checks > 0
    lake = Lake(tmp_path)
    assert lake.is_finished(SPOT)
    assert verify_lake(tmp_path).ok
    assert _temporaries(tmp_path) == []
    manifest = lake.read_manifest(SPOT)
    assert manifest is not None
    quarantine = tmp_path / SPOT.quarantine_dir() / "part-0.parquet"
    assert quarantine.exists() == (manifest.quarantined_rows > 0)


def test_a_held_partition_lock_ends_in_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path)
    monkeypatch.setenv("BTCFS_LOCK_TIMEOUT_S", "0.3")
    with FileLock(lake.lock_file(SPOT), timeout=5), pytest.raises(LakeError) as caught:
        lake.write_partition(SPOT, _bars(0), source="rest", ingested_at=T1, expected_rows=1440)
    assert str(lake.lock_file(SPOT)) in str(caught.value) and "0.3 s" in str(caught.value)
    assert not lake.partition_dir(SPOT).exists()  # nothing was written
    assert lake.lock_file(SPOT).is_relative_to(tmp_path / "_locks")


def test_repair_spares_a_partition_an_ingest_rewrote_after_verify_found_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path)
    lake.write_partition(SPOT, _bars(1), source="rest", ingested_at=T1, expected_rows=1440)
    part = lake.partition_dir(SPOT) / "part-0.parquet"
    part.write_bytes(part.read_bytes()[:-100])  # damaged
    [problem] = verify_lake(tmp_path).problems
    # Between `lake verify` and its `--repair`, an ingest lands the day again, whole.
    lake.write_partition(SPOT, _bars(2), source="rest", ingested_at=T1, expected_rows=1440)
    assert repair(problem, tmp_path) is None
    assert lake.is_finished(SPOT) and verify_lake(tmp_path).ok
    assert lake.read_partition(SPOT).equals(_bars(2))
    # While an ingest holds the partition, a repair waits, then says which lock it met.
    part.write_bytes(part.read_bytes()[:-100])
    [problem] = verify_lake(tmp_path).problems
    monkeypatch.setenv("BTCFS_LOCK_TIMEOUT_S", "0.3")
    with FileLock(lake.lock_file(SPOT), timeout=5), pytest.raises(LakeError, match="_locks"):
        repair(problem, tmp_path)
    assert lake.is_finished(SPOT)
    assert repair(problem, tmp_path) == lake.partition_dir(SPOT)
    assert not lake.is_finished(SPOT)
