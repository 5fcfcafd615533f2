"""The Parquet lake: whole-partition atomic writes with a MANIFEST and `_SUCCESS` per partition.

Layout: ``<lake>/<vendor>/<table>/symbol=S/[interval=I/]date=YYYY-MM-DD/`` holding
``part-0.parquet``, ``_MANIFEST.json`` and ``_SUCCESS``. Quarantined rows of a partition live at
``<lake>/_quarantine/vendor=V/dataset=T/symbol=S/interval=I/date=D/part-0.parquet``.

A replace never exposes a partial file: the Parquet file is written to a hidden temporary
name, fsynced and renamed over the old one; `_SUCCESS` is removed first and written last, so a
partition without `_SUCCESS` is known to be unfinished and the next run rewrites it.
Two ingests can meet on a partition (a scheduled run and an API job): a rewrite holds
``<lake>/_locks/<partition path>.lock`` from reading the old MANIFEST to writing `_SUCCESS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from filelock import lock_descriptor

from core.locks import exclusive
from core.units import EPOCH_DAY, US_PER_DAY
from lake.errors import LakeError
from lake.schemas import DATASETS, QUARANTINE, QUARANTINE_SCHEMA, TIMESTAMP, Dataset

PART_FILE = "part-0.parquet"
#: Named with a leading `_` like `_SUCCESS`: pyarrow, polars, DuckDB and Spark skip such files,
#: so any engine opens a dataset folder as it is (lake.migrate renames the old name).
MANIFEST_FILE = "_MANIFEST.json"
#: The name lakes written before `_MANIFEST.json` used; read during the move, then migrated.
LEGACY_MANIFEST_FILE = "MANIFEST.json"
SUCCESS_FILE = "_SUCCESS"
LOCKS_DIR = "_locks"  # beside `_quarantine`: outside every dataset's partition glob
#: 2: `day_closed`, the typed flag that replaced matching DAY_OPEN_NOTE in `notes`.
MANIFEST_VERSION = 2
#: The note a partition of a day that was not over when it was landed carries, for a reader.
DAY_OPEN_NOTE = "day not over yet: landed so far, refreshed on the next run"
_PROVENANCE_COLUMNS = ("ingested_at",)


@dataclass(frozen=True)
class PartitionKey:
    dataset: Dataset
    symbol: str
    interval: str | None
    day: date

    def relative_dir(self) -> Path:
        parts = [self.dataset.vendor, self.dataset.table, f"symbol={self.symbol}"]
        if self.dataset.has_interval:
            parts.append(f"interval={self.interval}")
        parts.append(f"date={self.day.isoformat()}")
        return Path(*parts)

    def quarantine_dir(self) -> Path:
        return Path(
            QUARANTINE.table,
            f"vendor={self.dataset.vendor}",
            f"dataset={self.dataset.table}",
            f"symbol={self.symbol}",
            f"interval={self.interval or 'none'}",
            f"date={self.day.isoformat()}",
        )


@dataclass
class Manifest:
    vendor: str
    dataset: str
    symbol: str
    interval: str | None
    date: str
    rows: int
    sha256: str  # of part-0.parquet as written
    data_sha256: str  # of the rows without ingestion provenance: equal data, equal hash
    source: str
    ingested_at: str
    expected_rows: int | None
    is_complete: bool
    missing_rows: int
    first_at: str | None
    last_at: str | None
    quarantined_rows: int = 0
    quarantine_sha256: str | None = None
    duplicates_identical: int = 0
    raw_pages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The rows came from the replay server's synthetic market: fine for demos and tests,
    # refused on the way to production (`btcfs warehouse load-bq`).
    is_synthetic: bool = False
    # False when the day was not over at landing: more rows may come, the next run lands it
    # again whatever its row count (funding has none to check).
    day_closed: bool = True
    file: str = PART_FILE
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        return cls.from_payload(json.loads(data))

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Manifest:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in payload.items() if k in known}
        if "day_closed" not in values:  # a version 1 manifest said so only in a note
            values["day_closed"] = DAY_OPEN_NOTE not in (values.get("notes") or [])
        return cls(**values)

    @property
    def is_final(self) -> bool:
        """Every row of a day that is over: nothing more will come (a rewrite would only
        repeat it, short of a refresh asked for)."""
        return self.is_complete and self.day_closed


@dataclass(frozen=True)
class WriteResult:
    key: PartitionKey
    manifest: Manifest
    written: bool  # False when the partition already held exactly this data


def table_data_sha256(table: pa.Table) -> str:
    """Hash of a table's content, ingestion provenance excluded, independent of chunking."""
    content = table.drop_columns([c for c in _PROVENANCE_COLUMNS if c in table.column_names])
    content = content.combine_chunks()
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, content.schema) as writer:
        writer.write_table(content)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def quarantine_table(
    dataset: str,
    items: Iterable[tuple[str, str, int | None]],
    *,
    source: str,
    ingested_at: datetime,
) -> pa.Table:
    """Quarantine rows of `dataset` (its lake table name): (raw row as received, as text;
    the reason; its event time in UTC µs when it could be read) each, with provenance."""
    rows = list(items)
    n = len(rows)
    return pa.table(
        {
            "dataset": pa.array([dataset] * n, type=pa.string()),
            "event_time": pa.array([t for _, _, t in rows], type=pa.int64()).cast(TIMESTAMP),
            "reason": pa.array([reason for _, reason, _ in rows], type=pa.string()),
            "raw": pa.array([raw for raw, _, _ in rows], type=pa.string()),
            "source": pa.array([source] * n, type=pa.string()),
            "ingested_at": pa.array([ingested_at] * n, type=TIMESTAMP),
        },
        schema=QUARANTINE_SCHEMA,
    )


@dataclass(frozen=True)
class DayBatch:
    """The rows and quarantined rows one day partition receives in a write."""

    day: date
    rows: pa.Table
    quarantine: pa.Table
    first: bool  # the first requested day: also takes quarantine rows of no requested day


def day_batches(
    table: pa.Table,
    time_column: str,
    quarantine: pa.Table,
    days: list[date],
    covered: list[date] | None = None,
) -> list[DayBatch]:
    """Split landed rows and their quarantine into the UTC-day partitions `days`, in order.

    Rows fall on their own day. A quarantined row goes with its `event_time`'s day; one
    without a time, or on a day neither requested nor `covered` (a page that spans more
    days than are written), goes with the first requested day, so nothing is dropped.
    """
    times = table.column(time_column)
    if pa.types.is_date32(times.type):  # a daily series: the value is the day (since 1970)
        day_of = pc.cast(times, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    else:  # UTC microseconds
        day_of = pc.cast(times, pa.int64()).to_numpy(zero_copy_only=False) // US_PER_DAY
    wanted = {(day - EPOCH_DAY).days: day for day in days}
    covered_index = list({(day - EPOCH_DAY).days for day in covered or days} | set(wanted))
    q_time = pc.cast(quarantine.column("event_time"), pa.int64()).to_numpy(zero_copy_only=False)
    q_day = np.where(np.isnan(q_time.astype(float)), -1, np.nan_to_num(q_time) // US_PER_DAY)
    q_elsewhere = ~np.isin(q_day, covered_index)
    first = min(days) if days else None
    return [
        DayBatch(
            day,
            table.filter(pa.array(day_of == index)),
            quarantine.filter(pa.array((q_day == index) | (q_elsewhere & (day == first)))),
            day == first,
        )
        for index, day in sorted(wanted.items())
    ]


def file_sha256(path: Path) -> str | None:
    """sha256 of a file's bytes, None when it does not exist."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sweep_dead_temporaries(path: Path) -> None:
    """Remove temporary files of `path` that killed writers left, and only those.

    A live writer holds a lock on its temporary until it has renamed it (the kernel drops
    the lock when the writer dies), so a temporary this sweep can lock has no writer left;
    one it cannot lock is another process's write in progress (raw pages, for one, are not
    under a partition lock).
    """
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except FileNotFoundError:
            continue  # renamed into place or swept meanwhile
        try:
            if lock_descriptor(fd, blocking=False):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        finally:
            os.close(fd)


def _new_temporary(path: Path) -> tuple[Path, int]:
    """A hidden temporary beside `path`, created and locked by this writer."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            # A sweep can lock and unlink it in the instant between its creation and our lock.
            if lock_descriptor(fd, blocking=False) and os.fstat(fd).st_nlink:
                return tmp, fd
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
    raise LakeError(f"could not create a temporary file beside {path}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old bytes or the new bytes, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead_temporaries(path)
    tmp, fd = _new_temporary(path)
    try:
        # Closing the file releases its lock: only once it is renamed into place.
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    # Dictionary-encode only low-cardinality text: on prices and times it costs twice the time
    # and makes files bigger. Statistics stay on: DuckDB prunes row groups with them.
    text = [f.name for f in table.schema if pa.types.is_string(f.type)]
    pq.write_table(table, sink, compression="zstd", use_dictionary=text, write_statistics=True)
    return sink.getvalue().to_pybytes()


def partition_lock_file(lake_root: Path, folder: Path) -> Path:
    relative = folder.relative_to(lake_root)
    return lake_root / LOCKS_DIR / relative.parent / f"{relative.name}.lock"


def partition_lock(lake_root: Path, folder: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the partition in `folder` against every other writer of it: a rewrite, a repair."""
    return exclusive(
        partition_lock_file(lake_root, folder),
        f"rewrite {folder.relative_to(lake_root)}",
        error=LakeError,
    )


class Lake:
    """A lake rooted at a folder; all writes go through `write_partition`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._migrated = False

    def migrate(self) -> None:
        """Rename old-name manifests once per Lake, before its first write (lake.migrate)."""
        if not self._migrated:
            from lake.migrate import migrate_lake

            migrate_lake(self.root)
            self._migrated = True

    def partition_dir(self, key: PartitionKey) -> Path:
        return self.root / key.relative_dir()

    def lock_file(self, key: PartitionKey) -> Path:
        """The lock a rewrite of this partition (and its quarantine) holds."""
        return partition_lock_file(self.root, self.partition_dir(key))

    def partition_lock(self, key: PartitionKey) -> contextlib.AbstractContextManager[None]:
        """Hold the partition against other writers (LakeError naming the lock on timeout)."""
        return partition_lock(self.root, self.partition_dir(key))

    def read_manifest(self, key: PartitionKey) -> Manifest | None:
        return read_partition(self.partition_dir(key), self.root).manifest()

    def is_finished(self, key: PartitionKey) -> bool:
        """True when the partition was fully written (has `_SUCCESS`)."""
        return (self.partition_dir(key) / SUCCESS_FILE).exists()

    def is_final(self, key: PartitionKey) -> bool:
        """The partition was fully written and holds a whole, closed day (Manifest.is_final):
        a loader skips it unless asked to refresh it. A damaged MANIFEST is LakeError."""
        manifest = self.read_manifest(key)
        return manifest is not None and self.is_finished(key) and manifest.is_final

    def read_partition(self, key: PartitionKey) -> pa.Table:
        return pq.read_table(self.partition_dir(key) / PART_FILE, schema=key.dataset.schema)

    def read_quarantine(self, key: PartitionKey) -> pa.Table | None:
        """The partition's quarantined rows (None when it has none)."""
        path = self.root / key.quarantine_dir() / PART_FILE
        try:
            return pq.read_table(path, schema=QUARANTINE.schema)
        except FileNotFoundError:
            return None

    def write_partition(
        self,
        key: PartitionKey,
        table: pa.Table,
        *,
        source: str,
        ingested_at: datetime,
        expected_rows: int | None,
        quarantine: pa.Table | None = None,
        duplicates_identical: int = 0,
        raw_pages: list[str] | None = None,
        notes: list[str] | None = None,
        is_synthetic: bool = False,
        day_open: bool = False,
    ) -> WriteResult:
        """Replace one partition whole; skip the write when it already holds this exact data.
        `day_open`: the day is not over, so the partition is not final (and says so in a note)."""
        notes = [*(notes or []), DAY_OPEN_NOTE] if day_open else list(notes or [])
        schema = key.dataset.schema
        if not table.schema.equals(schema):
            table = table.select(schema.names).cast(schema)
        table = table.sort_by(key.dataset.time_column)
        quarantine = quarantine if quarantine is not None and quarantine.num_rows else None
        data_sha = table_data_sha256(table)
        quarantine_sha = table_data_sha256(quarantine) if quarantine is not None else None
        self.migrate()
        with self.partition_lock(key):
            existing = self.read_manifest(key)
            # Notes count too: they say what is known about the rows (e.g. that the day was not
            # over yet), so the same rows under different notes still need the new manifest.
            if (
                existing is not None
                and self.is_finished(key)
                and existing.data_sha256 == data_sha
                and existing.quarantine_sha256 == quarantine_sha
                and existing.notes == notes
                and existing.is_synthetic == is_synthetic
                and existing.day_closed == (not day_open)
                # A damaged file (bit rot, a bad copy) is rewritten, not trusted for its manifest.
                and file_sha256(self.partition_dir(key) / existing.file) == existing.sha256
            ):
                return WriteResult(key, existing, written=False)

            times = table.column(key.dataset.time_column)
            payload = parquet_bytes(table)
            rows = table.num_rows
            manifest = Manifest(
                vendor=key.dataset.vendor,
                dataset=key.dataset.table,
                symbol=key.symbol,
                interval=key.interval,
                date=key.day.isoformat(),
                rows=rows,
                sha256=hashlib.sha256(payload).hexdigest(),
                data_sha256=data_sha,
                source=source,
                ingested_at=ingested_at.isoformat(),
                expected_rows=expected_rows,
                is_complete=expected_rows is None or rows >= expected_rows,
                missing_rows=max(0, (expected_rows or 0) - rows),
                first_at=times[0].as_py().isoformat() if rows else None,
                last_at=times[-1].as_py().isoformat() if rows else None,
                quarantined_rows=quarantine.num_rows if quarantine is not None else 0,
                quarantine_sha256=quarantine_sha,
                duplicates_identical=duplicates_identical,
                raw_pages=sorted(raw_pages or []),
                notes=notes,
                is_synthetic=is_synthetic,
                day_closed=not day_open,
            )

            part_dir = self.partition_dir(key)
            part_dir.mkdir(parents=True, exist_ok=True)
            success = part_dir / SUCCESS_FILE
            with contextlib.suppress(FileNotFoundError):
                success.unlink()
            _fsync_dir(part_dir)
            write_bytes_atomic(part_dir / PART_FILE, payload)
            self._write_quarantine(key, quarantine)
            write_bytes_atomic(part_dir / MANIFEST_FILE, manifest.to_json())
            # An old-name manifest written meanwhile by an older btcfs describes the old file.
            (part_dir / LEGACY_MANIFEST_FILE).unlink(missing_ok=True)
            write_bytes_atomic(success, b"")
            return WriteResult(key, manifest, written=True)

    def _write_quarantine(self, key: PartitionKey, quarantine: pa.Table | None) -> None:
        qdir = self.root / key.quarantine_dir()
        if quarantine is None:
            with contextlib.suppress(FileNotFoundError):
                (qdir / PART_FILE).unlink()
            return
        qtable = quarantine.select(QUARANTINE.schema.names).cast(QUARANTINE.schema)
        write_bytes_atomic(qdir / PART_FILE, parquet_bytes(qtable))

    def iter_partitions(self, dataset: Dataset) -> Iterator[tuple[PartitionKey, Manifest | None]]:
        """Every partition folder of a dataset, finished or not, in path order."""
        keys = ("symbol", "interval", "date") if dataset.has_interval else ("symbol", "date")
        for found in walk_partitions(self.root, f"{dataset.vendor}/{dataset.table}"):
            if (found.vendor, found.table) != (dataset.vendor, dataset.table):
                continue
            if tuple(found.labels) != keys:
                continue
            key = PartitionKey(
                dataset=dataset,
                symbol=found.labels["symbol"],
                interval=found.labels.get("interval"),
                day=date.fromisoformat(found.labels["date"]),
            )
            yield key, found.manifest()


def dataset_by_table(table: str) -> Dataset:
    for dataset in DATASETS.values():
        if dataset.table == table:
            return dataset
    raise LakeError(f"unknown lake dataset {table!r}")


# ------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class PartitionFolder:
    """One partition folder of the lake as found on disk, with what its MANIFEST says.

    The manifest is `_MANIFEST.json`, or the old name `MANIFEST.json` of a lake not migrated
    yet (`has_legacy_manifest` says the old name is there, read or not).
    Read leniently: a missing MANIFEST leaves `has_manifest` False, a damaged one sets
    `manifest_error`, and a field the MANIFEST lacks is None, so each reader decides whether
    that is a gap to report, to skip or to fail on.
    """

    folder: Path
    vendor: str | None  # the two folders above the first `key=value` one
    table: str | None
    labels: dict[str, str]  # partition key -> value, in path order (symbol, interval, date)
    is_finished: bool  # `_SUCCESS` is there
    has_data: bool  # `part-0.parquet` is there
    has_manifest: bool
    manifest_file: str = MANIFEST_FILE  # the name the manifest was read from
    has_legacy_manifest: bool = False
    manifest_error: str | None = None  # why a MANIFEST that is there could not be read
    payload: dict[str, Any] | None = None  # the MANIFEST as written, when readable
    rows: int | None = None
    sha256: str | None = None  # of the data file as written
    data_sha256: str | None = None
    quarantine_sha256: str | None = None
    quarantined_rows: int = 0
    is_synthetic: bool = False
    file: str = PART_FILE  # the data file the MANIFEST lists

    @property
    def symbol(self) -> str | None:
        return self.labels.get("symbol")

    @property
    def interval(self) -> str | None:
        return self.labels.get("interval")

    @property
    def date(self) -> str | None:
        return self.labels.get("date")

    @property
    def manifest_path(self) -> Path:
        return self.folder / self.manifest_file

    @property
    def is_readable(self) -> bool:
        return self.has_manifest and self.manifest_error is None

    def manifest(self) -> Manifest | None:
        """The whole MANIFEST; None when there is none, LakeError when it is damaged."""
        if not self.has_manifest:
            return None
        try:
            if self.payload is None:
                raise ValueError(self.manifest_error)
            return Manifest.from_payload(self.payload)
        except (ValueError, TypeError) as exc:
            raise LakeError(f"corrupt manifest {self.manifest_path}: {exc}") from exc


_FIELD_TYPES: dict[str, type] = {
    "rows": int,
    "sha256": str,
    "data_sha256": str,
    "quarantine_sha256": str,
    "quarantined_rows": int,
    "is_synthetic": bool,
    "file": str,
}


def read_partition(folder: Path, lake_root: Path | None = None) -> PartitionFolder:
    """The partition in `folder`: its labels, its markers and its MANIFEST's fields.

    Labels are read below `lake_root` when given (a root whose path holds `=` stays out).
    """
    folder = Path(folder)
    has_legacy = (folder / LEGACY_MANIFEST_FILE).exists()
    only_legacy = has_legacy and not (folder / MANIFEST_FILE).exists()
    name = LEGACY_MANIFEST_FILE if only_legacy else MANIFEST_FILE
    parts = folder.relative_to(lake_root).parts if lake_root is not None else folder.parts
    first = next((i for i, part in enumerate(parts) if "=" in part), len(parts))
    labels = dict(part.split("=", 1) for part in parts[first:])
    vendor, table = (parts[first - 2], parts[first - 1]) if first >= 2 else (None, None)
    found = PartitionFolder(
        folder=folder,
        vendor=vendor,
        table=table,
        labels=labels,
        is_finished=(folder / SUCCESS_FILE).exists(),
        has_data=(folder / PART_FILE).exists(),
        has_manifest=True,
        manifest_file=name,
        has_legacy_manifest=has_legacy,
    )
    try:
        payload = json.loads((folder / name).read_bytes())
    except FileNotFoundError:
        return replace(found, has_manifest=False)
    except (OSError, ValueError) as exc:
        return replace(found, manifest_error=str(exc))
    if not isinstance(payload, dict):
        return replace(found, manifest_error=f"not a JSON object: {type(payload).__name__}")
    fields: dict[str, Any] = {}
    for name, kind in _FIELD_TYPES.items():
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return replace(found, manifest_error=f"{name} should be {kind.__name__}, not {value!r}")
        fields[name] = value
    return replace(found, payload=payload, **fields)


def walk_partitions(lake_root: Path, under: str | None = None) -> Iterator[PartitionFolder]:
    """Every partition folder below `lake_root` (one holding a data file, a MANIFEST or
    `_SUCCESS`), finished or not, in path order; quarantine and locks are not partitions.

    `under` (e.g. ``binance/spot_klines``) walks one table's folder only.
    """
    root = Path(lake_root)
    markers = {PART_FILE, MANIFEST_FILE, LEGACY_MANIFEST_FILE, SUCCESS_FILE}
    folders = []
    for current, dirs, files in os.walk(root / under if under else root):
        if Path(current) == root:
            dirs[:] = [d for d in dirs if d not in (QUARANTINE.table, LOCKS_DIR)]
        if markers.intersection(files):
            folders.append(Path(current))
    for folder in sorted(folders):
        yield read_partition(folder, root)


def written_since(lake_root: Path, since: float) -> Iterator[PartitionFolder]:
    """The partition folders (re)written at or after `since` (a `time.time()`), found by
    their folders' modification times without reading any other MANIFEST: an atomic write
    renames its files into the folder (or the folder into place), which sets that time. One
    stat per partition, so an ingest's step counts what it wrote in a lake of any age."""
    root = Path(lake_root)
    found = []
    stack = [root]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                if current == root and entry.name in (QUARANTINE.table, LOCKS_DIR):
                    continue
                if not entry.name.startswith("date="):
                    stack.append(Path(entry.path))
                elif entry.stat(follow_symlinks=False).st_mtime >= since:
                    found.append(Path(entry.path))
    for folder in sorted(found):
        yield read_partition(folder, root)


def lake_digest(lake_root: Path) -> dict[str, Any]:
    """sha256 over every partition's MANIFEST data_sha256 (with its path): equal lakes, equal.
    What a model version and a retrieved training set record of the lake they come from."""
    digest = hashlib.sha256()
    count = 0
    if lake_root.is_dir():
        for found in walk_partitions(lake_root):
            if not found.has_manifest:
                continue
            relative = found.folder.relative_to(lake_root).as_posix()
            data_sha = "unreadable" if found.manifest_error else found.data_sha256 or ""
            digest.update(f"{relative}:{data_sha}\n".encode())
            count += 1
    return {"sha256": digest.hexdigest() if count else None, "partitions": count}
