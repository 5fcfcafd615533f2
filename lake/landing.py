"""Landing checked rows as whole UTC-day partitions: the one writer every loader uses.

A loader fetches some days of a dataset, parses them into the dataset's schema, checks them
(`lake.rules`) and hands the result over as a `Landing`. `land_days` then:

1. holds back rows that were not final at `now` (a bar still open, a value not yet
   published): they are valid, just early, and the next run lands them;
2. quarantines rows on no requested (or `covered`) day: not ours to land, nor to drop;
3. splits the rest by UTC day and writes each requested day whole (`Lake.write_partition`:
   atomic, with its MANIFEST and quarantine), a day not over yet marked so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.units import EPOCH_DAY, US_PER_DAY
from lake.rules import PROVENANCE, epoch_us
from lake.schemas import Dataset
from lake.store import Lake, PartitionKey, WriteResult, day_batches, quarantine_table

OUTSIDE_DAYS = "outside the requested days"


def row_json(value: object) -> str:
    """A row (or any value) as compact, key-sorted JSON text, for a quarantine's `raw`."""
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


@dataclass
class Landing:
    """One fetch's rows of a dataset, parsed and checked, ready for the lake."""

    dataset: Dataset
    table: pa.Table  # rows in the dataset's schema, provenance included, in time order
    quarantine: pa.Table  # rows refused on the way, with their reasons
    source: str
    ingested_at: datetime
    raw_pages: Sequence[str]
    duplicates_identical: int = 0
    # When each row became final (µs); None: at its own time. A row final after `now` is held.
    final_at_us: np.ndarray | None = None
    # A row of `table` as received, for the quarantine; None: the typed row as JSON.
    raw_text: Callable[[int], str] | None = None


@dataclass
class LandResult:
    """What `land_days` did, day by day."""

    results: list[WriteResult] = field(default_factory=list)
    held_back: int = 0

    @property
    def rows(self) -> int:
        return sum(r.manifest.rows for r in self.results)

    @property
    def written(self) -> int:
        return sum(1 for r in self.results if r.written)

    @property
    def unchanged(self) -> int:
        return sum(1 for r in self.results if not r.written)

    @property
    def quarantined(self) -> int:
        return sum(r.manifest.quarantined_rows for r in self.results)


def land_days(
    lake: Lake,
    landing: Landing,
    key: Callable[[date], PartitionKey],
    days: Sequence[date],
    *,
    now: datetime,
    held_back_note: str,
    covered: Sequence[date] | None = None,
    expected_rows: int | None = None,
    notes: Sequence[str] = (),
    day_notes: Callable[[date, pa.Table], list[str]] | None = None,
    is_synthetic: bool | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LandResult:
    """Write each of `days` whole from `landing` (see the module docstring).

    `covered` are days the fetch held beyond `days` (a month's archive file): their rows are
    neither landed nor quarantined. `day_notes(day, rows)` adds a day's own MANIFEST notes
    (e.g. its missing bars); `is_synthetic` None reads the rows' own `is_synthetic` column.
    """
    ds = landing.dataset
    wanted = sorted(set(days))
    if not wanted:
        return LandResult()
    table = landing.table
    time_us = epoch_us(table.column(ds.time_column))
    final_at = time_us if landing.final_at_us is None else landing.final_at_us
    ready = final_at <= _us(now)
    held_back = int((~ready).sum())

    day_of = time_us // US_PER_DAY
    landable = {(d - EPOCH_DAY).days for d in (*wanted, *(covered or wanted))}
    outside = ready & ~np.isin(day_of, list(landable))
    quarantine = landing.quarantine
    if outside.any():
        raw_text = landing.raw_text or _typed_row_text(table)
        stray = quarantine_table(
            ds.table,
            ((raw_text(int(i)), OUTSIDE_DAYS, int(time_us[i])) for i in np.flatnonzero(outside)),
            source=landing.source,
            ingested_at=landing.ingested_at,
        )
        quarantine = pa.concat_tables([quarantine, stray])
    table = table.filter(pa.array(ready & ~outside))

    result = LandResult(held_back=held_back)
    today = now.date()
    progress = on_progress or (lambda rows: None)
    for batch in day_batches(table, ds.time_column, quarantine, wanted, list(covered or [])):
        day, rows = batch.day, batch.rows
        these_notes = [*notes, *(day_notes(day, rows) if day_notes else [])]
        if held_back and day == today:
            these_notes.append(held_back_note)
        synthetic = (
            bool(pc.any(rows.column("is_synthetic")).as_py())
            if is_synthetic is None
            else is_synthetic
        )
        written = lake.write_partition(
            key(day),
            rows,
            source=landing.source,
            ingested_at=landing.ingested_at,
            expected_rows=expected_rows,
            quarantine=batch.quarantine,
            duplicates_identical=landing.duplicates_identical if batch.first else 0,
            raw_pages=list(landing.raw_pages),
            notes=these_notes,
            is_synthetic=synthetic,
            day_open=day >= today,
        )
        result.results.append(written)
        progress(rows.num_rows)
    return result


def _us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _typed_row_text(table: pa.Table) -> Callable[[int], str]:
    """A landed row as JSON, without provenance: a raw that embeds `ingested_at` would differ
    on every run, so a rerun could never be 'unchanged'."""
    values = table.drop_columns([c for c in PROVENANCE if c in table.column_names])
    return lambda i: row_json(values.slice(i, 1).to_pylist()[0])
