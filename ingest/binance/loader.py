"""Land one Binance dataset for a range of UTC days: archive for history, REST for the tail.

Work is done per UTC-day partition. A day that is already complete is skipped unless it
falls in the refresh tail (the last N days) or `force` is set; everything else is fetched,
validated, and written whole. Days missing bars are landed as they are, marked incomplete
in the manifest with the missing ranges, and reported; no price is ever invented.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

from core.symbols import symbol_problem
from core.units import EPOCH_DAY
from ingest._client import HttpClient
from ingest.binance import archive as arch
from ingest.binance.endpoints import (
    ENDPOINTS,
    OPEN_INTEREST_PERIODS,
    OPEN_INTEREST_REST_DAYS,
)
from ingest.binance.parse import (
    Parsed,
    kline_page_summary,
    parse_funding,
    parse_kline_pages,
    parse_open_interest,
)
from ingest.errors import ConfigError, DataUnavailable, MalformedResponse, NotFound
from ingest.planning import plan_days
from ingest.timeutil import (
    BINANCE_INTERVALS,
    US_PER_DAY,
    US_PER_MS,
    Interval,
    datetime_to_us,
    day_start_us,
    days_between,
    us_to_datetime,
)
from lake.landing import Landing, land_days
from lake.rules import epoch_us
from lake.schemas import DATASETS, Dataset
from lake.store import Lake, PartitionKey, WriteResult, write_bytes_atomic

log = logging.getLogger("ingest.binance")

_T = TypeVar("_T")
_R = TypeVar("_R")

# Binance publishes a day's archive file the next day; leave one more day of slack.
ARCHIVE_LAG_DAYS = 2
STILL_OPEN_NOTE = "the still-open bar was not landed"


@dataclass(frozen=True)
class LoadRequest:
    dataset: str
    symbol: str
    interval: str | None
    start: date
    end: date
    refresh_tail: int = 2
    force: bool = False

    @functools.cached_property
    def step(self) -> Interval:
        """The interval, parsed once; only for a dataset with one, after validate_request."""
        if self.interval is None:
            raise ConfigError(f"{self.dataset} has no interval")
        return Interval.parse(self.interval)


@dataclass
class DayOutcome:
    day: date
    action: str  # 'written' | 'unchanged' | 'skipped' | 'unavailable'
    source: str = ""
    rows: int = 0
    expected_rows: int | None = None
    quarantined: int = 0
    missing: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def is_incomplete(self) -> bool:
        return self.expected_rows is not None and self.rows < self.expected_rows


@dataclass(frozen=True)
class OpenBar:
    """The still-open bar a fetch returned: a price to show, never landed."""

    open_time_us: int
    close: float


@dataclass
class LoadReport:
    request: LoadRequest
    days: list[DayOutcome] = field(default_factory=list)
    #: the still-open bar of a tail fetch (load_tail), when the exchange sent one
    open_bar: OpenBar | None = None

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.days if d.action in ("written", "unchanged"))

    @property
    def quarantined(self) -> int:
        return sum(d.quarantined for d in self.days)

    def count(self, action: str) -> int:
        return sum(1 for d in self.days if d.action == action)


def validate_request(req: LoadRequest) -> Dataset:
    if req.dataset not in ENDPOINTS:
        raise ConfigError(f"unknown dataset {req.dataset!r}; choose one of {', '.join(ENDPOINTS)}")
    dataset = DATASETS[req.dataset]
    if (problem := symbol_problem(req.symbol)) is not None:
        raise ConfigError(f"invalid symbol {problem}")
    if req.dataset == "open-interest":
        if req.interval not in OPEN_INTEREST_PERIODS:
            raise ConfigError(
                f"open interest period {req.interval!r} not one of "
                f"{', '.join(OPEN_INTEREST_PERIODS)}"
            )
    elif dataset.has_interval and (
        req.interval not in BINANCE_INTERVALS or req.interval in ("3d", "1w", "1M")
    ):
        raise ConfigError(
            f"interval {req.interval!r} not supported; use one of "
            f"{', '.join(i for i in BINANCE_INTERVALS if i not in ('3d', '1w', '1M'))}"
        )
    if not dataset.has_interval and req.interval is not None:
        raise ConfigError(f"{req.dataset} has no interval (got {req.interval!r})")
    if req.end < req.start:
        raise ConfigError(f"--end {req.end} is before --start {req.start}")
    if req.refresh_tail < 0:
        raise ConfigError("--refresh-tail must be 0 or more")
    return dataset


@dataclass(frozen=True)
class _ArchiveUnit:
    """One archive file and the days it lands (`wanted`) and holds (`covered`)."""

    path: str
    wanted: tuple[date, ...]
    covered: tuple[date, ...]
    is_month: bool


class BinanceLoader:
    """Lands Binance datasets in a lake. Clients are shared; `now` decides what is final."""

    def __init__(
        self,
        lake: Lake,
        raw_root: Path,
        *,
        spot: HttpClient,
        futures: HttpClient,
        archive: arch.ArchiveSource | None,
        now: datetime,
        on_progress: Callable[[int], None] | None = None,
    ):
        self.lake = lake
        self.raw_root = raw_root
        self.spot = spot
        self.futures = futures
        self.archive = archive
        self.now = now
        self.now_us = datetime_to_us(now)
        self.on_progress = on_progress or (lambda rows: None)

    # ---- planning -------------------------------------------------------------------------

    def plan(self, req: LoadRequest) -> tuple[list[date], list[date]]:
        """(days to fetch, days skipped as already complete)."""
        validate_request(req)
        today = self.now.date()
        end = min(req.end, today)
        if req.start > today:
            raise ConfigError(f"--start {req.start} is in the future (today is {today} UTC)")
        plan = plan_days(
            self.lake,
            lambda day: self._key(req, day),
            days_between(req.start, end),
            today=today,
            refresh_tail=req.refresh_tail,
            force=req.force,
        )
        return plan.fetch, plan.skip

    def load(self, req: LoadRequest) -> LoadReport:
        dataset = validate_request(req)
        fetch, skipped = self.plan(req)
        report = LoadReport(req, [DayOutcome(day, "skipped") for day in skipped])
        today = self.now.date()
        # The archive's `metrics` files hold 5-minute open interest only.
        archive_serves = self.archive is not None and (
            req.dataset != "open-interest" or req.interval == "5m"
        )
        archive_days = [
            d for d in fetch if archive_serves and d <= today - timedelta(ARCHIVE_LAG_DAYS)
        ]
        rest_days = [d for d in fetch if d not in set(archive_days)]
        if req.dataset == "open-interest":
            oldest_rest = (self.now - timedelta(days=OPEN_INTEREST_REST_DAYS)).date() + timedelta(1)
            too_old = [d for d in rest_days if d < oldest_rest]
            if too_old and not archive_serves:
                raise DataUnavailable(
                    f"{req.interval} open interest before {oldest_rest} is not on REST (Binance "
                    f"keeps only the "
                    f"last {OPEN_INTEREST_REST_DAYS} days of openInterestHist); backfill it from "
                    "the archive's daily `metrics` files (5m) with --archive "
                    "(data/futures/um/daily/metrics/SYMBOL/SYMBOL-metrics-YYYY-MM-DD.zip)"
                )
        outcomes: list[DayOutcome] = []
        if archive_days:
            fallback = self._load_archive(req, dataset, archive_days, outcomes)
            rest_days = sorted(set(rest_days) | set(fallback))
        if rest_days:
            self._load_rest(req, dataset, rest_days, outcomes)
        report.days.extend(outcomes)
        report.days.sort(key=lambda d: d.day)
        return report

    def load_tail(self, req: LoadRequest) -> LoadReport:
        """Land only the bars after the newest one landed (what `btcfs live` runs each bar).

        The newest landed bar is read from today's partition, else yesterday's; the fetch
        starts one interval after it and runs to now (usually one short page). Each day the
        new rows fall on is written whole, as every write is: its landed rows and quarantine
        with the new ones added. Without a partition of today or yesterday, or for a dataset
        that is not klines, this is `load` of the request. The still-open bar the exchange
        sends is reported (`LoadReport.open_bar`) and, as always, not landed.
        """
        dataset = validate_request(req)
        today = self.now.date()
        if dataset.time_column != "open_time" or req.dataset == "open-interest":
            return self.load(req)
        newest: tuple[date, pa.Table] | None = None
        for day in (today, today - timedelta(1)):
            key = self._key(req, day)
            if self.lake.is_finished(key):
                table = self.lake.read_partition(key)
                if table.num_rows:
                    newest = (day, table)
                    break
        if newest is None:
            return self.load(req)
        last_us = int(epoch_us(newest[1].column("open_time")).max())
        step = req.step.us
        start_ms = (last_us + step) // US_PER_MS
        end_ms = self.now_us // US_PER_MS
        report = LoadReport(req)
        if start_ms > end_ms:
            return report
        parsed, pages = self._fetch_range(req, dataset, today, start_ms, end_ms)
        times = epoch_us(parsed.table.column("open_time"))
        still_open = times + step > self.now_us
        if still_open.any():
            row = int(np.flatnonzero(still_open)[-1])
            close = parsed.table.column("close")[row].as_py()
            report.open_bar = OpenBar(int(times[row]), float(close))
        fresh = times > last_us
        if not (fresh & ~still_open).any() and not parsed.quarantine.num_rows:
            return report
        new_days = sorted(
            {EPOCH_DAY + timedelta(days=int(us // US_PER_DAY)) for us in times[fresh]} | {newest[0]}
        )
        days = [d for d in new_days if d <= today]
        landed: list[pa.Table] = [parsed.table.filter(pa.array(fresh))]
        quarantine: list[pa.Table] = [parsed.quarantine]
        old_pages: set[str] = set()
        for day in days:
            key = self._key(req, day)
            if day == newest[0]:
                landed.append(newest[1])
            elif self.lake.is_finished(key):
                landed.append(self.lake.read_partition(key))
            else:
                continue
            kept = self.lake.read_quarantine(key)
            if kept is not None:
                quarantine.append(kept)
            manifest = self.lake.read_manifest(key)
            if manifest is not None:
                old_pages.update(manifest.raw_pages)
        combined = pa.concat_tables(
            [t.select(dataset.schema.names).cast(dataset.schema) for t in landed]
        ).sort_by("open_time")
        rows = quarantine[0]
        if len(quarantine) > 1:
            rows = pa.concat_tables(
                [q.select(rows.schema.names).cast(rows.schema) for q in quarantine]
            )
        whole = Parsed(combined, rows, parsed.duplicates_identical)
        report.days.extend(
            self._write_days(
                req, dataset, days, whole, "rest", datetime.now(UTC), [*old_pages, *pages]
            )
        )
        return report

    # ---- archive --------------------------------------------------------------------------

    def _load_archive(
        self, req: LoadRequest, dataset: Dataset, days: list[date], outcomes: list[DayOutcome]
    ) -> list[date]:
        """Land days from archive files; return the days the archive does not have.

        A whole past month of klines comes from the month's file when it is published (one
        request instead of ~30), else from the daily files; funding has monthly files only.
        """
        units = self._archive_units(req, days, monthly_klines=True)
        missing: list[date] = []
        for retry_daily in (False, True):
            not_found: list[_ArchiveUnit] = []
            for unit, results in self._map(
                lambda u: (u, self._land_archive_unit(req, dataset, u)), units
            ):
                if results is None:
                    log.info("archive has no %s", unit.path)
                    not_found.append(unit)
                else:
                    outcomes.extend(results)
            monthly_klines = [u for u in not_found if u.is_month and req.dataset != "funding"]
            missing.extend(d for u in not_found if u not in monthly_klines for d in u.wanted)
            if retry_daily or not monthly_klines:
                break
            units = self._archive_units(
                req, [d for u in monthly_klines for d in u.wanted], monthly_klines=False
            )
        return sorted(missing)

    def _archive_units(
        self, req: LoadRequest, days: list[date], *, monthly_klines: bool
    ) -> list[_ArchiveUnit]:
        units = []
        by_month: dict[date, list[date]] = {}
        for day in days:
            by_month.setdefault(day.replace(day=1), []).append(day)
        for month, wanted in sorted(by_month.items()):
            whole = days_between(month, _month_end(month))
            if req.dataset == "funding" or (monthly_klines and wanted == whole):
                path = arch.monthly_path(req.dataset, req.symbol, self._interval(req), month)
                # The month's other days are in a funding file too; their partitions are not
                # ours to rewrite this run, so their rows are neither landed nor quarantined.
                units.append(_ArchiveUnit(path, tuple(wanted), tuple(whole), is_month=True))
            else:
                units.extend(
                    _ArchiveUnit(
                        arch.daily_path(req.dataset, req.symbol, self._interval(req), day),
                        (day,),
                        (day,),
                        is_month=False,
                    )
                    for day in wanted
                )
        return units

    def _land_archive_unit(
        self, req: LoadRequest, dataset: Dataset, unit: _ArchiveUnit
    ) -> list[DayOutcome] | None:
        assert self.archive is not None
        try:
            payload = arch.fetch_verified(self.archive, unit.path)
        except NotFound:
            return None
        name = unit.path.rsplit("/", 1)[-1]
        self._keep_raw(dataset, unit.wanted[0], "archive", name, payload)
        csv_bytes = arch.unzip_single_csv(payload, unit.path)
        ingested_at = datetime.now(UTC)
        parsed = arch.parse_archive_csv(
            req.dataset,
            csv_bytes,
            symbol=req.symbol,
            interval=self._interval(req),
            ingested_at=ingested_at,
        )
        return self._write_days(
            req,
            dataset,
            list(unit.wanted),
            parsed,
            "archive",
            ingested_at,
            [unit.path],
            list(unit.covered),
        )

    # ---- REST -----------------------------------------------------------------------------

    def _load_rest(
        self, req: LoadRequest, dataset: Dataset, days: list[date], outcomes: list[DayOutcome]
    ) -> None:
        if req.dataset == "open-interest":
            oldest = (self.now - timedelta(days=OPEN_INTEREST_REST_DAYS)).date() + timedelta(1)
            for day in [d for d in days if d < oldest]:
                outcomes.append(
                    DayOutcome(
                        day,
                        "unavailable",
                        note="not in the archive and older than the 30 days openInterestHist keeps",
                    )
                )
            days = [d for d in days if d >= oldest]
        chunks = _chunks(days, self._days_per_request(req))

        def land(chunk: list[date]) -> list[DayOutcome]:
            parsed, pages = self._fetch_chunk(req, dataset, chunk)
            return self._write_days(req, dataset, chunk, parsed, "rest", datetime.now(UTC), pages)

        for results in self._map(land, chunks):
            outcomes.extend(results)

    def _days_per_request(self, req: LoadRequest) -> int:
        endpoint = ENDPOINTS[req.dataset]
        if req.dataset == "funding":
            return 30  # three a day at most: a month per page
        if req.dataset == "open-interest":
            return 1  # one day per request keeps every window well under the 500 limit
        return max(1, endpoint.limit // req.step.per_day)

    def _is_synthetic(self) -> bool:
        """Did any of this loader's data come from the replay server's synthetic market?

        Per loader, not per row: a base URL is either a live vendor or the replay server.
        """
        clients = [self.spot, self.futures]
        if isinstance(self.archive, arch.HttpArchive):
            clients.append(self.archive.client)
        if any(client.stats.synthetic_responses for client in clients):
            return True
        return isinstance(self.archive, arch.LocalArchive) and self.archive.is_synthetic

    def _client(self, dataset: Dataset) -> HttpClient:
        return self.spot if dataset.market == "spot" else self.futures

    def _fetch_chunk(
        self, req: LoadRequest, dataset: Dataset, chunk: list[date]
    ) -> tuple[Parsed, list[str]]:
        """Page through [first day 00:00, last day 24:00) exactly; parse all pages at once."""
        start_ms = day_start_us(chunk[0]) // US_PER_MS
        end_ms = day_start_us(chunk[-1] + timedelta(1)) // US_PER_MS - 1
        return self._fetch_range(req, dataset, chunk[0], start_ms, end_ms)

    def _fetch_range(
        self, req: LoadRequest, dataset: Dataset, raw_day: date, start_ms: int, end_ms: int
    ) -> tuple[Parsed, list[str]]:
        """Page through [start_ms, end_ms]; raw pages are kept under `raw_day`."""
        endpoint = ENDPOINTS[req.dataset]
        client = self._client(dataset)
        bodies: list[bytes] = []
        pages: list[str] = []
        cursor = start_ms
        while cursor <= end_ms:
            params = endpoint.params(req.symbol, req.interval, cursor, end_ms)
            fetched = client.get(endpoint.path, params, weight=endpoint.weight)
            bodies.append(fetched.body)
            pages.append(self._keep_raw(dataset, raw_day, "rest", f"page-{cursor}", fetched.body))
            count, last = _page_summary(fetched.body, req.dataset)
            if last is None or count < endpoint.limit:
                break
            if last < cursor:
                raise MalformedResponse(
                    f"{endpoint.path}: page starting {cursor} ended at {last}; "
                    "pagination would loop"
                )
            # Rows are keyed by open time, strictly increasing: the next page starts right
            # after the last row, so nothing is fetched twice and nothing is skipped.
            cursor = last + 1
        ingested_at = datetime.now(UTC)
        name = dataset.table
        if dataset.schema.names[0] == "open_time":
            parsed = parse_kline_pages(
                bodies,
                dataset=name,
                interval_us=req.step.us,
                source="rest",
                ingested_at=ingested_at,
            )
        else:
            rows: list[object] = []
            for body in bodies:
                decoded = _json_rows(body, endpoint.path)
                rows.extend(decoded)
            if req.dataset == "funding":
                parsed = parse_funding(
                    rows,  # type: ignore[arg-type]
                    symbol=req.symbol,
                    source="rest",
                    ingested_at=ingested_at,
                )
            else:
                parsed = parse_open_interest(
                    rows,  # type: ignore[arg-type]
                    symbol=req.symbol,
                    period_us=req.step.us,
                    source="rest",
                    ingested_at=ingested_at,
                )
        return parsed, pages

    # ---- writing --------------------------------------------------------------------------

    def _write_days(
        self,
        req: LoadRequest,
        dataset: Dataset,
        days: list[date],
        parsed: Parsed,
        source: str,
        ingested_at: datetime,
        raw_pages: list[str],
        covered: list[date] | None = None,
    ) -> list[DayOutcome]:
        """Write each of `days` whole from `parsed`, which covers `covered` (default: days),
        through the lake's one day writer (`lake.landing`)."""
        table = parsed.table
        step = req.step.us if dataset.has_interval else None
        time_us = epoch_us(table.column(dataset.time_column))
        # A bar is final once its interval is over: open_time + interval <= now. (Its
        # close_time is 1 ms or 1 µs before that, or earlier after a halt.)
        bar = step if step is not None and dataset.name != "open-interest" else 0
        missing: dict[date, list[str]] = {}

        def missing_notes(day: date, rows: pa.Table) -> list[str]:
            if step is None:
                return []
            missing[day] = _missing_ranges(day, epoch_us(rows.column(dataset.time_column)), step)
            return [f"missing {m}" for m in missing[day]]

        landed = land_days(
            self.lake,
            Landing(
                dataset,
                table,
                parsed.quarantine,
                source,
                ingested_at,
                raw_pages,
                duplicates_identical=parsed.duplicates_identical,
                final_at_us=time_us + bar,
            ),
            lambda day: self._key(req, day),
            days,
            now=self.now,
            held_back_note=STILL_OPEN_NOTE,
            covered=covered,
            expected_rows=US_PER_DAY // step if step else None,
            day_notes=missing_notes,
            is_synthetic=self._is_synthetic(),
            on_progress=self.on_progress,
        )
        return [
            self._outcome(result, result.key.day, source, missing.get(result.key.day, []))
            for result in landed.results
        ]

    @staticmethod
    def _outcome(result: WriteResult, day: date, source: str, missing: list[str]) -> DayOutcome:
        m = result.manifest
        return DayOutcome(
            day=day,
            action="written" if result.written else "unchanged",
            source=source if result.written else m.source,
            rows=m.rows,
            expected_rows=m.expected_rows,
            quarantined=m.quarantined_rows,
            missing=missing,
        )

    @staticmethod
    def _interval(req: LoadRequest) -> Interval | None:
        return req.step if DATASETS[req.dataset].has_interval else None

    def _key(self, req: LoadRequest, day: date) -> PartitionKey:
        dataset = DATASETS[req.dataset]
        return PartitionKey(
            dataset, req.symbol, req.interval if dataset.has_interval else None, day
        )

    def _keep_raw(self, dataset: Dataset, day: date, kind: str, stem: str, body: bytes) -> str:
        """Keep a response exactly as received; its name carries its hash: reruns don't pile up."""
        digest = hashlib.sha256(body).hexdigest()[:12]
        folder = self.raw_root / dataset.vendor / dataset.table / f"date={day.isoformat()}"
        if kind == "archive":
            path = folder / f"{stem}.{digest}"
            data = body
        else:
            path = folder / f"{stem}-{digest}.json.gz"
            data = gzip.compress(body, compresslevel=1, mtime=0)
        if not path.exists():
            write_bytes_atomic(path, data)
        return str(path.relative_to(self.raw_root))

    def _map(self, fn: Callable[[_T], _R], items: list[_T]) -> list[_R]:
        return self.spot.map(fn, items) if items else []


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _chunks(days: list[date], size: int) -> list[list[date]]:
    """Consecutive runs of days, each at most `size` long."""
    chunks: list[list[date]] = []
    for day in sorted(days):
        if chunks and len(chunks[-1]) < size and chunks[-1][-1] + timedelta(1) == day:
            chunks[-1].append(day)
        else:
            chunks.append([day])
    return chunks


def _missing_ranges(day: date, present_us: np.ndarray, step: int) -> list[str]:
    """Missing bar times of a day as 'HH:MM–HH:MM (n bars)' ranges."""
    grid = np.arange(day_start_us(day), day_start_us(day) + US_PER_DAY, step, dtype=np.int64)
    absent = grid[~np.isin(grid, present_us)]
    if not len(absent):
        return []
    breaks = np.flatnonzero(np.diff(absent) != step)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(absent) - 1]])
    ranges = []
    for s, e in zip(starts, ends, strict=True):
        first, last = us_to_datetime(int(absent[s])), us_to_datetime(int(absent[e]))
        ranges.append(f"{first:%H:%M}–{last:%H:%M} ({e - s + 1} bars)")
    return ranges


def _json_rows(body: bytes, path: str) -> list[object]:
    import orjson

    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(f"{path}: response is not JSON ({exc})") from exc
    if not isinstance(decoded, list):
        raise MalformedResponse(f"{path}: expected a JSON array, got {type(decoded).__name__}")
    return decoded


_TIME_KEYS = {"funding": "fundingTime", "open-interest": "timestamp"}


def _page_summary(body: bytes, dataset: str) -> tuple[int, int | None]:
    """(rows, last row's time in ms) of a page, for the next page's startTime."""
    if dataset.endswith("klines"):
        count, last = kline_page_summary(body)
    else:
        rows = _json_rows(body, dataset)
        if not rows:
            return 0, None
        try:
            last = int(rows[-1][_TIME_KEYS[dataset]])  # type: ignore[index]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"{dataset}: cannot read the time of the last row ({exc})"
            ) from exc
        count = len(rows)
    if last is None:
        return count, None
    return count, last // US_PER_MS if last >= 10**14 else last
