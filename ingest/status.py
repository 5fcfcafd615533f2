"""`btcfs lake status`: what the lake holds per dataset, from the partition manifests."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import pyarrow.parquet as pq

from lake.schemas import DATASETS, QUARANTINE
from lake.store import PART_FILE, Lake


@dataclass
class DatasetStatus:
    vendor: str
    dataset: str
    symbol: str
    interval: str | None
    days: int = 0
    rows: int = 0
    first_at: str | None = None
    last_at: str | None = None
    missing_rows: int = 0
    missing_days: list[str] = field(default_factory=list)
    incomplete_days: list[str] = field(default_factory=list)
    unfinished_days: list[str] = field(default_factory=list)
    quarantined_rows: int = 0
    synthetic_days: int = 0  # partitions landed from the replay server's synthetic market

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def lake_status(lake: Lake) -> list[DatasetStatus]:
    """One entry per (dataset, symbol, interval) found in the lake."""
    out: dict[tuple[str, str, str | None], DatasetStatus] = {}
    seen_days: dict[tuple[str, str, str | None], list[date]] = {}
    for dataset in DATASETS.values():
        for key, manifest in lake.iter_partitions(dataset):
            ident = (dataset.table, key.symbol, key.interval)
            status = out.setdefault(
                ident, DatasetStatus(dataset.vendor, dataset.table, key.symbol, key.interval)
            )
            seen_days.setdefault(ident, []).append(key.day)
            if manifest is None or not lake.is_finished(key):
                status.unfinished_days.append(key.day.isoformat())
                continue
            status.days += 1
            status.rows += manifest.rows
            status.missing_rows += manifest.missing_rows
            status.quarantined_rows += manifest.quarantined_rows
            status.synthetic_days += manifest.is_synthetic
            if not manifest.is_complete:
                status.incomplete_days.append(key.day.isoformat())
            if manifest.first_at and (
                status.first_at is None or manifest.first_at < status.first_at
            ):
                status.first_at = manifest.first_at
            if manifest.last_at and (status.last_at is None or manifest.last_at > status.last_at):
                status.last_at = manifest.last_at
    for ident, days in seen_days.items():
        present = set(days)
        first, last = min(days), max(days)
        out[ident].missing_days = [
            (first + timedelta(n)).isoformat()
            for n in range((last - first).days + 1)
            if first + timedelta(n) not in present
        ]
    return sorted(out.values(), key=lambda s: (s.vendor, s.dataset, s.symbol, s.interval or ""))


def quarantine_count(lake: Lake) -> int:
    """Rows in the quarantine table (cross-check of the manifests' counts)."""
    base = lake.root / QUARANTINE.table
    return sum(pq.ParquetFile(p).metadata.num_rows for p in base.rglob(PART_FILE))
