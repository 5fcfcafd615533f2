"""CryptoQuant daily BTC exchange flows: netflow, reserve and the exchange whale ratio.

Dataset `cq-daily`, one partition per exchange (`symbol=all_exchange`) and observed UTC day,
one row per (metric, vintage). CryptoQuant revises exchange flows after the fact (wallet
clustering is re-run weekly; its docs say these endpoints "do not support point-in-time
accuracy"), so a partition keeps every vintage: each ingest reads the partition, appends a
row only for a (date, metric) whose value differs from its latest vintage (`first_seen_at`
= this ingest's `now`), and rewrites the partition whole through `Lake.write_partition`;
identical values leave it untouched.

Point in time. available_at = max(end of the observed UTC day + PUBLICATION_LAG (2 h: the
daily window is computed after the day closes), first_seen_at): a value, and each revision
of it, is usable only from the moment this pipeline first saw it, so features join as-of on
available_at (ingested_at and first_seen_at are kept on every row). A backfill's values are
therefore only available from the backfill on: that is the price of revised data. The day
still running at `now` (its end + lag not reached) is never landed: its value is partial.
`first_seen_at` is the ingest's `now` (BTCFS_NOW in a replay); `ingested_at` the wall clock.

Wire format: `Authorization: Bearer <CQ_TOKEN>`; `?exchange=&window=day&from=&to=&limit=`;
`{"status": {"code": 200, ...}, "result": {"window": "day", "data": [...]}}` newest first,
`limit` counting back from `to` (so the next page ends the day before the oldest row);
null values are landed as NULL. The last `revision_days` (config, default 35: a month of
weekly re-clusterings) are re-fetched on every run to catch revisions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from core.redact import redact
from ingest._client import ClientConfig
from ingest.errors import (
    ConfigError,
    IngestError,
    MalformedResponse,
    VendorAuthError,
    VendorEnvelopeError,
    VendorThrottled,
)
from ingest.vendors.base import (
    DatasetLine,
    DatasetLoader,
    RowSet,
    VendorContext,
    VendorSpec,
    bearer,
    config_list,
    config_str,
    is_synthetic_response,
    save_raw_page,
)
from ingest.vendors.fred import shown_raw
from lake.schemas import CQ_DAILY_SCHEMA, TIMESTAMP, VENDOR_DATASETS
from lake.store import PartitionKey

VENDOR = "cryptoquant"
DATASET = "cq-daily"
BASE_URL = "https://api.cryptoquant.com"
ENV_KEY = "CQ_TOKEN"
DEFAULT_EXCHANGE = "all_exchange"
PUBLICATION_LAG = timedelta(hours=2)
PAGE_LIMIT = 1_000
DEFAULT_REVISION_DAYS = 35
MAX_BODY_BYTES = 16 * 1024 * 1024  # 1,000 rows a page: tens of KB
MAX_PAGES = 1_000
_EXCHANGE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    fields: tuple[str, ...]  # value fields of a row, as the vendor names them
    metrics: tuple[str, ...] = ()  # the lake's metric per field (default: the field name)

    def metric_names(self) -> tuple[str, ...]:
        return self.metrics or self.fields


#: Field names as CryptoQuant's API reference and its users' clients spell them; the lake's
#: metric is the field name except the whale ratio (`whale_ratio`, as the warehouse names it).
ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("netflow", "/v1/btc/exchange-flows/netflow", ("netflow_total",)),
        Endpoint("reserve", "/v1/btc/exchange-flows/reserve", ("reserve", "reserve_usd")),
        # The warehouse's series id is `whale_ratio` (models' daily_series_as_of_bars).
        Endpoint(
            "whale-ratio",
            "/v1/btc/flow-indicator/exchange-whale-ratio",
            ("exchange_whale_ratio",),
            ("whale_ratio",),
        ),
    )
}
DEFAULT_ENDPOINTS = tuple(ENDPOINTS)


class CryptoQuantError(VendorEnvelopeError):
    """CryptoQuant's status envelope with a code other than 200."""


# -- point in time ------------------------------------------------------------------------


def day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def available_at(observation_date: date, first_seen_at: datetime) -> datetime:
    """max(end of the observed day + lag, when this value was first seen)."""
    return max(day_end(observation_date) + PUBLICATION_LAG, first_seen_at)


def is_final(observation_date: date, now: datetime) -> bool:
    """The day is over (plus the lag): its value is no longer a running partial."""
    return day_end(observation_date) + PUBLICATION_LAG <= now


# -- the wire format ----------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    observation_date: date
    metric: str
    value: float | None


@dataclass
class CqPage:
    observations: list[Observation]
    returned: int  # rows in the page, valid or not
    oldest: date | None  # oldest date in the page: the next page ends the day before
    duplicates_identical: int = 0
    out_of_order: bool = False  # not newest-first as documented (sorted anyway)


def decode(body: bytes, *, what: str) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise MalformedResponse(
            f"{VENDOR}: {what}: response of {len(body)} bytes is over {MAX_BODY_BYTES}"
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(f"{VENDOR}: {what}: response is not JSON: {exc}") from None


def raise_for_status(payload: Any, *, what: str) -> Mapping[str, Any]:
    """The `result` object of a success envelope; raise for anything else."""
    if not isinstance(payload, dict):
        raise MalformedResponse(
            f"{VENDOR}: {what}: expected a JSON object, got {type(payload).__name__}"
        )
    status = payload.get("status")
    if not isinstance(status, dict) or "code" not in status:
        raise MalformedResponse(f"{VENDOR}: {what}: no `status` envelope")
    code = status.get("code")
    if code != 200 or isinstance(code, bool):
        message = _one_line(status.get("message", "no message"))
        text = f"{VENDOR}: {what}: status {_one_line(code)[:20]}: {message}"
        numeric = code if isinstance(code, int) and not isinstance(code, bool) else None
        if numeric == 429:
            raise VendorThrottled(text, status=429)
        if numeric in (401, 403):
            raise VendorAuthError(text, status=numeric)
        raise CryptoQuantError(text, status=numeric)
    result = payload.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("data"), list):
        raise MalformedResponse(f"{VENDOR}: {what}: no `result.data` list")
    window = result.get("window", "day")
    if window != "day":
        raise MalformedResponse(f"{VENDOR}: {what}: window is {_one_line(window)[:20]!r}")
    return result


def _one_line(value: object) -> str:
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
    return redact(flat)[:300]


def parse_page(
    body: bytes, endpoint: Endpoint, rejects: RowSet, *, first: date, last: date
) -> CqPage:
    """One page of a daily endpoint -> observations in [first, last]; bad rows to `rejects`."""
    result = raise_for_status(decode(body, what=endpoint.path), what=endpoint.path)
    return parse_rows(result["data"], endpoint, rejects, first=first, last=last)


def parse_rows(
    rows: Sequence[object], endpoint: Endpoint, rejects: RowSet, *, first: date, last: date
) -> CqPage:
    good: dict[date, tuple[tuple[float | None, ...], object]] = {}
    conflicts: set[date] = set()
    identical = 0
    previous: date | None = None
    out_of_order = False
    oldest: date | None = None
    for raw in rows:
        try:
            day, values = _row(raw, endpoint)
        except _BadRow as exc:
            when = datetime.combine(exc.day, time(), tzinfo=UTC) if exc.day else None
            rejects.reject(shown_raw(raw), f"{endpoint.name}: {exc}", when)
            continue
        out_of_order = out_of_order or (previous is not None and day > previous)
        previous = day
        oldest = day if oldest is None else min(oldest, day)
        at = datetime.combine(day, time(), tzinfo=UTC)
        if not first <= day <= last:
            rejects.reject(shown_raw(raw), f"{endpoint.name}: date outside the request", at)
            continue
        if day in good:
            if good[day][0] == values:
                identical += 1
                continue
            conflicts.add(day)
            rejects.reject(shown_raw(raw), f"{endpoint.name}: duplicate date, other values", at)
            continue
        good[day] = (values, raw)
    for day in sorted(conflicts):
        at = datetime.combine(day, time(), tzinfo=UTC)
        rejects.reject(
            shown_raw(good.pop(day)[1]), f"{endpoint.name}: duplicate date, other values", at
        )
    observations = [
        Observation(day, name, value)
        for day in sorted(good)
        for name, value in zip(endpoint.metric_names(), good[day][0], strict=True)
    ]
    return CqPage(observations, len(rows), oldest, identical, out_of_order)


class _BadRow(ValueError):
    """A row that cannot be landed; `day` is its date when that much could be read."""

    def __init__(self, reason: str, day: date | None = None) -> None:
        super().__init__(reason)
        self.day = day


def _row(raw: object, endpoint: Endpoint) -> tuple[date, tuple[float | None, ...]]:
    if not isinstance(raw, dict):
        raise _BadRow("row is not an object")
    text = raw.get("date")
    day = None
    if isinstance(text, str) and len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            day = None
    if day is None:
        raise _BadRow("missing or unparsable date")
    values: list[float | None] = []
    for name in endpoint.fields:
        if name not in raw:
            raise _BadRow(f"missing {name}", day)
        value = raw[name]
        if value is None:
            values.append(None)  # CryptoQuant sends nulls: landed as NULL, never 0
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _BadRow(f"{name} is not a number", day)
        number = float(value)
        if not math.isfinite(number):
            raise _BadRow(f"{name} is not finite", day)
        values.append(number)
    return day, tuple(values)


def request_params(
    exchange: str, first: date, last: date, limit: int = PAGE_LIMIT
) -> dict[str, str]:
    return {
        "exchange": exchange,
        "window": "day",
        "from": first.strftime("%Y%m%d"),
        "to": last.strftime("%Y%m%d"),
        "limit": str(limit),
    }


# -- vintages -----------------------------------------------------------------------------


class VintageConflict(IngestError):
    """A value changed between two ingests that share the same `now`."""


@dataclass
class Merged:
    table: pa.Table  # the whole partition: every old vintage plus the new ones
    appended: int


def merge_vintages(
    existing: pa.Table | None,
    observations: Iterable[Observation],
    *,
    seen_at: datetime,
    ingested_at: datetime,
    is_synthetic: bool,
    source: str = "rest",
) -> Merged:
    """Append a vintage for each observation whose value differs from its latest vintage.

    Old rows are kept exactly (first_seen_at, available_at, ingested_at included), so an
    ingest that finds nothing new yields the same table and the lake skips the write.
    """
    old = existing if existing is not None else CQ_DAILY_SCHEMA.empty_table()
    old = old.select(CQ_DAILY_SCHEMA.names).cast(CQ_DAILY_SCHEMA)
    latest: dict[tuple[date, str], tuple[datetime, float | None]] = {}
    for row in old.select(["observation_date", "metric", "first_seen_at", "value"]).to_pylist():
        key = (row["observation_date"], row["metric"])
        if key not in latest or row["first_seen_at"] >= latest[key][0]:
            latest[key] = (row["first_seen_at"], row["value"])
    new: list[Observation] = []
    for obs in observations:
        key = (obs.observation_date, obs.metric)
        if key in latest and latest[key][1] == obs.value:
            continue
        if key in latest and latest[key][0] >= seen_at:
            # Two values at one instant: which was known first is not ours to invent.
            raise VintageConflict(
                f"{VENDOR}: {obs.metric} of {obs.observation_date} changed but the lake "
                f"already has a vintage first seen at {latest[key][0].isoformat()}, not "
                f"before this ingest's now ({seen_at.isoformat()})"
            )
        latest[key] = (seen_at, obs.value)
        new.append(obs)
    n = len(new)
    added = pa.table(
        {
            "observation_date": pa.array([o.observation_date for o in new], pa.date32()),
            "metric": pa.array([o.metric for o in new], pa.string()),
            "value": pa.array([o.value for o in new], pa.float64()),
            "first_seen_at": pa.array([seen_at] * n, TIMESTAMP),
            "available_at": pa.array(
                [available_at(o.observation_date, seen_at) for o in new], TIMESTAMP
            ),
            "is_synthetic": pa.array([is_synthetic] * n, pa.bool_()),
            "source": pa.array([source] * n, pa.string()),
            "ingested_at": pa.array([ingested_at] * n, TIMESTAMP),
        },
        schema=CQ_DAILY_SCHEMA,
    )
    table = pa.concat_tables([old, added]).combine_chunks()
    order = pc.sort_indices(
        table,
        sort_keys=[
            ("observation_date", "ascending"),
            ("metric", "ascending"),
            ("first_seen_at", "ascending"),
        ],
    )
    return Merged(table.take(order), n)


# -- the loader ---------------------------------------------------------------------------


@dataclass
class _Fetched:
    observations: list[Observation] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    is_synthetic: bool = False
    duplicates_identical: int = 0
    out_of_order: int = 0
    failed: list[str] = field(default_factory=list)


class CryptoQuantLoader(DatasetLoader):
    """Fetches the configured endpoints (config `endpoints`) and lands their vintages."""

    def load_dataset(self, name: str) -> list[DatasetLine]:
        ctx = self.ctx
        exchange = config_str(ctx.config, "exchange", DEFAULT_EXCHANGE)
        if not set(exchange) <= _EXCHANGE_CHARS or len(exchange) > 40:
            raise ConfigError(f"vendors.cryptoquant: invalid exchange {exchange!r}")
        chosen = config_list(ctx.config, "endpoints", DEFAULT_ENDPOINTS)
        unknown = [e for e in chosen if e not in ENDPOINTS]
        if unknown:
            raise ConfigError(
                f"vendors.cryptoquant: unknown endpoints {unknown}; known: {list(ENDPOINTS)}"
            )
        days = [d for d in days_to_fetch(ctx, exchange) if is_final(d, ctx.now)]
        if not days:
            return [DatasetLine(DATASET, exchange, message="nothing to fetch")]
        rejects = RowSet(VENDOR_DATASETS[DATASET])
        got = _Fetched()
        for endpoint in (ENDPOINTS[e] for e in chosen):
            try:
                self.fetch_endpoint(endpoint, exchange, days[0], days[-1], rejects, got)
            except self.FATAL:
                raise
            except IngestError as exc:  # the other endpoints still land
                got.failed.append(redact(exc))
        line = self.land(exchange, days, got, rejects)
        if got.failed:
            line.status, line.message = "failed", "; ".join(got.failed)
        return [line]

    def fetch_endpoint(
        self,
        endpoint: Endpoint,
        exchange: str,
        first: date,
        last: date,
        rejects: RowSet,
        got: _Fetched,
    ) -> None:
        """Every page of one endpoint over [first, last], newest page first."""
        to = last
        for _ in range(MAX_PAGES):
            params = request_params(exchange, first, to, PAGE_LIMIT)
            fetched = self.ctx.client.get(endpoint.path, params)
            page = parse_page(fetched.body, endpoint, rejects, first=first, last=to)
            got.pages.append(
                save_raw_page(self.ctx, DATASET, first, fetched, f"{endpoint.name}-{first}-{to}")
            )
            got.is_synthetic = got.is_synthetic or is_synthetic_response(fetched)
            got.observations.extend(page.observations)
            got.duplicates_identical += page.duplicates_identical
            got.out_of_order += page.out_of_order
            if page.returned < PAGE_LIMIT or page.oldest is None or page.oldest <= first:
                return
            if page.oldest > to:  # the next `to` would not move back: never ends
                raise MalformedResponse(
                    f"{VENDOR}: {endpoint.path}: a full page with nothing on or before to={to}"
                )
            to = page.oldest - timedelta(days=1)
        raise MalformedResponse(f"{VENDOR}: {endpoint.path}: more than {MAX_PAGES} pages")

    def land(self, exchange: str, days: list[date], got: _Fetched, rejects: RowSet) -> DatasetLine:
        ctx = self.ctx
        dataset = VENDOR_DATASETS[DATASET]
        by_day: dict[date, list[Observation]] = {}
        for obs in got.observations:
            by_day.setdefault(obs.observation_date, []).append(obs)
        quarantine = rejects.quarantine()
        q_day = _quarantine_days(quarantine)
        wanted = set(days)
        line = DatasetLine(DATASET, exchange, days=len(days))
        appended = 0
        notes = []
        if got.out_of_order:
            notes.append("pages were not newest-first as documented (sorted on landing)")
        for day in days:
            key = PartitionKey(dataset, exchange, None, day)
            existing = ctx.lake.read_partition(key) if ctx.lake.is_finished(key) else None
            merged = merge_vintages(
                existing,
                by_day.get(day, []),
                seen_at=ctx.now,
                ingested_at=rejects.ingested_at,
                is_synthetic=got.is_synthetic,
            )
            # Rejects with no day, or a day not landed here, go with the first day: none vanish.
            mask = [d == day or ((d is None or d not in wanted) and day == days[0]) for d in q_day]
            result = ctx.lake.write_partition(
                key,
                merged.table,
                source=rejects.source,
                ingested_at=rejects.ingested_at,
                expected_rows=None,
                quarantine=quarantine.filter(pa.array(mask, pa.bool_())),
                duplicates_identical=got.duplicates_identical if day == days[0] else 0,
                raw_pages=sorted(set(got.pages)),
                notes=notes,
                # Synthetic when any vintage is, or this run's answers were: it must never
                # pass for real data on the way to production.
                is_synthetic=got.is_synthetic
                or bool(pc.any(merged.table.column("is_synthetic")).as_py()),
            )
            appended += merged.appended
            line.rows += result.manifest.rows
            line.written += int(result.written)
            line.unchanged += int(not result.written)
            line.quarantined += result.manifest.quarantined_rows
            ctx.on_progress(merged.appended)
        line.message = f"{appended} new vintages"
        return line


def _quarantine_days(quarantine: pa.Table) -> list[date | None]:
    times = quarantine.column("event_time").to_pylist()
    return [t.date() if t is not None else None for t in times]


def days_to_fetch(ctx: VendorContext, exchange: str) -> list[date]:
    """From the oldest day never landed (or inside the revision window) up to today."""
    window = config_int(ctx.config, "revision_days", DEFAULT_REVISION_DAYS)
    today = ctx.now.date()
    dataset = VENDOR_DATASETS[DATASET]
    wanted = [
        d
        for d in ctx.days()
        if d > today - timedelta(days=window)
        or not ctx.lake.is_finished(PartitionKey(dataset, exchange, None, d))
    ]
    if not wanted:
        return []
    return [d for d in ctx.days() if d >= min(wanted)]


def config_int(config: Mapping[str, Any], name: str, default: int) -> int:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"vendors.{VENDOR}: `{name}` must be 0 or more, got {value!r}")
    return value


SPEC = VendorSpec(
    name=VENDOR,
    env_key=ENV_KEY,
    key_placement=bearer(),
    default_base_url=BASE_URL,
    base_url_env="CQ_BASE_URL",
    datasets=(DATASET,),
    make_loader=CryptoQuantLoader,
    client=ClientConfig(max_concurrency=1, auth_statuses=(401, 403)),
    description="CryptoQuant daily BTC exchange netflow, reserve and whale ratio (vintaged)",
)
