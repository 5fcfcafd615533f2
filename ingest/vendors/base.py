"""The framework every vendor loader is written against, Binance's included.

A vendor is one `VendorSpec` in `ingest.vendors.VENDORS`:

    VendorSpec(
        name="coinglass",                       # CLI name, lake folder, report line
        env_key="COINGLASS_API_KEY",            # absent -> skipped, not failed; None: no key
        key_placement=header("CG-API-KEY"),     # or bearer() / query("api_key"); None: no key
        default_base_url="https://open-api-v4.coinglass.com",   # scheme + host: paths are full
        base_url_env="COINGLASS_BASE_URL",      # --base-url beats this beats the default
        datasets=("cg-price-ohlc", ...),        # keys of lake.schemas.DATASETS
        make_loader=CoinGlassLoader,            # Callable[[VendorContext], VendorLoader]
        client=ClientConfig(max_concurrency=2), # HttpClient settings (ingest.ClientConfig)
        hosts=(Host("futures", ...),),          # more hosts, a client each (Binance)
        check_options=...,                      # refuse a bad config section up front
    )

`run_vendor` (used by `btcfs ingest all|binance|vendor`) reads the key, builds an
`HttpClient` per host with the key applied and registered for redaction, and hands the
loader a `VendorContext` (clients, lake, raw root, `now`, the vendor's options, start/end
days, selected datasets, on_progress). `VendorLoader.load()` returns a `VendorReport` (status
ok | skipped | failed, rows, days, message, one `DatasetLine` per dataset and symbol, the
error itself). `DatasetLoader` is a convenient base: implement `load_dataset(name)`; one
failing dataset does not stop the others, an auth/network failure stops the vendor.

Landing, the same for every vendor:
- `save_raw_page(ctx, dataset, day, fetched, stem)` keeps a response as received under
  ``raw/<vendor>/<table>/date=D/page-<stem>-<sha12>.json.gz`` plus a ``.meta.json`` with the
  redacted URL, status and non-secret headers; a secret echoed in a body is redacted too.
- `RowSet` collects parsed rows (typed Python values) and rejected rows (reason, raw JSON);
  `RowSet.table()` adds `available_at` (given per row), `is_synthetic`, `source`, `ingested_at`.
- `land_rows(ctx, dataset, symbol, interval, rows, raw_pages, days=...)` checks the rows
  against the dataset's rules (`lake.rules`: the schema's, OHLC order, signs, `available_at`
  not before the row's own time), collapses identical duplicates, quarantines conflicting
  ones, and lands the requested days whole through `lake.landing` (rows not yet available
  at `now` held back, rows on no requested day quarantined). Binance's vectorised parsers
  check the same rules and land through the same writer.
- `plan_days(ctx, dataset, symbol, interval)` gives the days still to fetch: never landed,
  unfinished, incomplete, landed before the day was over, or inside the refresh tail.

`is_synthetic` comes from the replay server's `X-Btcfs-Replay: synthetic|recorded` response
header (`is_synthetic_response`); a live vendor never sends it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa

from core.errors import BtcfsError
from core.redact import is_sensitive_header, redact, register_secrets
from ingest._client import REPLAY_HEADER, ClientConfig, Fetched, HttpClient
from ingest.errors import (
    ConfigError,
    IngestError,
    NetworkUnavailable,
    VendorAuthError,
    VendorThrottled,
)
from ingest.planning import plan_days as days_to_fetch
from ingest.timeutil import US_PER_DAY, datetime_to_us, days_between, interval_us
from lake import landing
from lake.landing import Landing, land_days, row_json
from lake.rules import PROVENANCE, duplicates, epoch_us, problems
from lake.schemas import DATASETS, VENDOR_DATASETS, Dataset
from lake.store import Lake, PartitionKey, quarantine_table, write_bytes_atomic

log = logging.getLogger("ingest.vendors")

HELD_BACK_NOTE = "rows not yet available at ingest time were held back"
Status = Literal["ok", "skipped", "failed"]

# Decimal columns are DECIMAL(28, 8) or (18, 8): values are rounded half-even to 8 places
# (a vendor's 9th+ decimal is below the lake's resolution) and must fit the integer digits.
_EIGHT_PLACES = Decimal("1e-8")


# ---- the spec ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPlacement:
    """Where a vendor wants its key: a header, an `Authorization: Bearer`, or a query param."""

    kind: Literal["header", "bearer", "query"]
    name: str

    def headers(self, key: str) -> dict[str, str]:
        if self.kind == "header":
            return {self.name: key}
        if self.kind == "bearer":
            return {self.name: f"Bearer {key}"}
        return {}

    def params(self, key: str) -> dict[str, str]:
        return {self.name: key} if self.kind == "query" else {}


def header(name: str) -> KeyPlacement:
    return KeyPlacement("header", name)


def bearer(name: str = "Authorization") -> KeyPlacement:
    return KeyPlacement("bearer", name)


def query(name: str) -> KeyPlacement:
    """A key in the URL (FRED `api_key`, Alpha Vantage `apikey`): the name must be one
    `core.redact.SENSITIVE_PARAMS` masks, so no URL shown or saved carries it."""
    return KeyPlacement("query", name)


class VendorLoader(Protocol):
    def load(self) -> VendorReport: ...


def resolve_base_url(override: str | None, env: str, default: str) -> str:
    """A host's base URL: the flag beats the environment variable beats the default."""
    return (override or os.environ.get(env) or default).rstrip("/")


@dataclass(frozen=True)
class Host:
    """A second host of a vendor (Binance: USD-M futures beside spot), with its own settings."""

    name: str  # the client's label is "<vendor>-<name>"
    default_base_url: str
    base_url_env: str
    client: ClientConfig = field(default_factory=ClientConfig)

    def base_url(self, override: str | None = None) -> str:
        return resolve_base_url(override, self.base_url_env, self.default_base_url)


@dataclass(frozen=True)
class VendorSpec:
    name: str
    env_key: str | None  # None: public data, no key (the vendor is never skipped for one)
    key_placement: KeyPlacement | None
    default_base_url: str
    base_url_env: str
    datasets: tuple[str, ...]
    make_loader: Callable[[VendorContext], VendorLoader]
    # How this vendor's HttpClient behaves (concurrency, auth statuses, weight budget, ...).
    client: ClientConfig = field(default_factory=ClientConfig)
    description: str = ""
    # The main host's name when the vendor has more (`hosts`): its client is "<vendor>-<name>".
    host_name: str = ""
    hosts: tuple[Host, ...] = ()
    # Checks the vendor's options (its config section) before any vendor runs.
    check_options: Callable[[Mapping[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown:
            raise ConfigError(f"{self.name}: datasets {unknown} are not lake datasets")
        if (self.env_key is None) != (self.key_placement is None):
            raise ConfigError(f"{self.name}: a key needs both its variable and its placement")
        if self.key_placement is not None and self.key_placement.kind == "query":
            from core.redact import is_sensitive_param

            if not is_sensitive_param(self.key_placement.name):
                raise ConfigError(
                    f"{self.name}: query key {self.key_placement.name!r} would not be redacted"
                )

    def base_url(self, override: str | None = None) -> str:
        return resolve_base_url(override, self.base_url_env, self.default_base_url)

    def key(self) -> str | None:
        if self.env_key is None:
            return None
        value = os.environ.get(self.env_key, "").strip()
        return value or None

    @property
    def client_name(self) -> str:
        return f"{self.name}-{self.host_name}" if self.host_name else self.name


@dataclass
class VendorContext:
    spec: VendorSpec
    client: HttpClient
    lake: Lake
    raw_root: Path
    now: datetime
    config: Mapping[str, Any]
    start: date
    end: date
    datasets: tuple[str, ...]
    on_progress: Callable[[int], None] = lambda rows: None
    refresh_tail: int = 2
    # The clients of the spec's other `hosts`, by host name.
    hosts: Mapping[str, HttpClient] = field(default_factory=dict)
    # What the run was given, for a loader that opens more sources (Binance's archive).
    base_url: str | None = None
    client_factory: Callable[..., HttpClient] = HttpClient
    debug: bool = False

    @property
    def vendor(self) -> str:
        return self.spec.name

    @property
    def now_us(self) -> int:
        return datetime_to_us(self.now)

    def days(self) -> list[date]:
        """Every requested UTC day up to today."""
        end = min(self.end, self.now.date())
        return days_between(self.start, end) if end >= self.start else []


# ---- reports -------------------------------------------------------------------------------


@dataclass
class DatasetLine:
    dataset: str
    symbol: str
    status: Status = "ok"
    rows: int = 0
    days: int = 0
    written: int = 0
    unchanged: int = 0
    quarantined: int = 0
    message: str = ""
    # The line as its loader words it, whole (Binance's per-day details): printed as is.
    text: str = ""

    def describe(self) -> str:
        if self.text:
            return self.text
        if self.status != "ok":
            return f"{self.dataset} {self.symbol}: {self.status}: {self.message}"
        text = (
            f"{self.dataset} {self.symbol}: {self.written} days written, {self.unchanged} "
            f"unchanged; {self.rows:,} rows, {self.quarantined:,} quarantined"
        )
        return f"{text} ({self.message})" if self.message else text


@dataclass
class VendorReport:
    vendor: str
    status: Status
    rows: int = 0
    days: int = 0
    message: str = ""
    lines: list[DatasetLine] = field(default_factory=list)
    # The failure itself, for a caller that raises it (`btcfs ingest binance`).
    error: BtcfsError | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_lines(
        cls, vendor: str, lines: list[DatasetLine], error: BtcfsError | None = None
    ) -> VendorReport:
        failed = [line for line in lines if line.status == "failed"]
        return cls(
            vendor=vendor,
            status="failed" if failed else "ok",
            rows=sum(line.rows for line in lines),
            days=max((line.days for line in lines), default=0),
            message=failed[0].message if failed else "",
            lines=lines,
            error=error,
        )

    @classmethod
    def skipped(cls, vendor: str, message: str) -> VendorReport:
        return cls(vendor, "skipped", message=message)

    @classmethod
    def failed(cls, vendor: str, message: str, error: BtcfsError | None = None) -> VendorReport:
        return cls(vendor, "failed", message=message, error=error)


class DatasetLoader(ABC):
    """Runs `load_dataset` for each selected dataset; failures stay in their dataset's line,
    except those that doom every other request too (bad key, no network, quota spent)."""

    FATAL: tuple[type[IngestError], ...] = (VendorAuthError, NetworkUnavailable, VendorThrottled)

    def __init__(self, ctx: VendorContext) -> None:
        self.ctx = ctx

    def load(self) -> VendorReport:
        lines: list[DatasetLine] = []
        requested = len(self.ctx.days())
        for name in self.ctx.datasets:
            try:
                landed = self.load_dataset(name)
                for line in landed:
                    # Days already complete were not fetched again: they are covered all the same.
                    if line.status == "ok":
                        line.days = max(line.days, requested)
                lines.extend(landed)
            except self.FATAL as exc:
                lines.append(DatasetLine(name, "-", "failed", message=redact(exc)))
                break
            except BtcfsError as exc:
                lines.append(DatasetLine(name, "-", "failed", message=redact(exc)))
        return VendorReport.from_lines(self.ctx.vendor, lines)

    @abstractmethod
    def load_dataset(self, name: str) -> list[DatasetLine]:
        """Land one dataset over the context's days; one line per symbol."""


# ---- client and running a vendor -----------------------------------------------------------


def build_client(
    spec: VendorSpec,
    key: str | None,
    *,
    base_url: str | None = None,
    debug: bool = False,
    client_factory: Callable[..., HttpClient] = HttpClient,
    config: ClientConfig | None = None,
    host: Host | None = None,
) -> HttpClient:
    """An HttpClient for the vendor (or one of its other `hosts`) with its key applied
    (header, bearer or query) and registered for redaction before any request is made.

    `config` replaces the host's `client` settings whole: derive it from `spec.client` with
    `dataclasses.replace` to change one setting.
    """
    placement = spec.key_placement
    secrets = [key] if key is not None else []
    register_secrets(secrets)
    return client_factory(
        (host or spec).base_url(base_url),
        vendor=f"{spec.name}-{host.name}" if host else spec.client_name,
        config=config if config is not None else (host or spec).client,
        headers=placement.headers(key) if placement and key else {},
        params=placement.params(key) if placement and key else {},
        secrets=secrets,
        debug=debug,
    )


def run_vendor(
    spec: VendorSpec,
    *,
    lake: Lake,
    raw_root: Path,
    now: datetime,
    config: Mapping[str, Any],
    start: date,
    end: date,
    datasets: Sequence[str] | None = None,
    base_url: str | None = None,
    debug: bool = False,
    refresh_tail: int = 2,
    on_progress: Callable[[int], None] | None = None,
    client_factory: Callable[..., HttpClient] = HttpClient,
) -> VendorReport:
    """Run one vendor end to end; never raises for a known failure (the report says it)."""
    key = spec.key()
    if spec.env_key is not None and key is None:
        return VendorReport.skipped(spec.name, f"{spec.env_key} not set")
    chosen = tuple(datasets or config.get("datasets") or spec.datasets)
    unknown = [d for d in chosen if d not in spec.datasets]
    if unknown:
        return VendorReport.failed(
            spec.name, f"unknown datasets {unknown}; {spec.name} has {list(spec.datasets)}"
        )
    clients: list[HttpClient] = []
    try:
        try:
            for host in (None, *spec.hosts):
                clients.append(
                    build_client(
                        spec,
                        key,
                        base_url=base_url,
                        debug=debug,
                        client_factory=client_factory,
                        host=host,
                    )
                )
        except BtcfsError as exc:
            return VendorReport.failed(spec.name, redact(exc), error=exc)
        ctx = VendorContext(
            spec=spec,
            client=clients[0],
            lake=lake,
            raw_root=raw_root,
            now=now,
            config=config,
            start=start,
            end=end,
            datasets=chosen,
            on_progress=on_progress or (lambda rows: None),
            refresh_tail=refresh_tail,
            hosts={host.name: client for host, client in zip(spec.hosts, clients[1:], strict=True)},
            base_url=base_url,
            client_factory=client_factory,
            debug=debug,
        )
        return spec.make_loader(ctx).load()
    except BtcfsError as exc:
        return VendorReport.failed(spec.name, redact(exc), error=exc)
    except Exception as exc:  # a bug in one loader must not stop the other vendors
        log.exception("%s: unexpected error", spec.name)
        return VendorReport.failed(spec.name, redact(f"internal error: {type(exc).__name__}"))
    finally:
        for client in clients:
            client.close()


# ---- raw pages -----------------------------------------------------------------------------


def is_synthetic_response(fetched: Fetched) -> bool:
    """True when the replay server says the body came from its synthetic market."""
    return fetched.headers.get(REPLAY_HEADER, "").strip().lower() == "synthetic"


_KEPT_HEADERS = ("content-type", "date", REPLAY_HEADER.lower())


def save_raw_page(
    ctx: VendorContext, dataset: str | Dataset, day: date, fetched: Fetched, stem: str
) -> str:
    """Keep a response as received (secrets redacted); returns its path under raw_root.

    Named by the body's hash, so a rerun that receives the same bytes writes nothing.
    """
    ds = dataset if isinstance(dataset, Dataset) else VENDOR_DATASETS[dataset]
    body = _without_secrets(fetched.body)
    digest = hashlib.sha256(body).hexdigest()[:12]
    folder = ctx.raw_root / ds.vendor / ds.table / f"date={day.isoformat()}"
    safe_stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:80]
    path = folder / f"page-{safe_stem}-{digest}.json.gz"
    if not path.exists():
        meta = {
            "url": redact(fetched.url),
            "status": fetched.status,
            "headers": {
                name: redact(value)
                for name, value in fetched.headers.items()
                if name.lower() in _KEPT_HEADERS
                or (name.lower().startswith("api-key-") and not is_sensitive_header(name[8:]))
            },
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "redacted": body != fetched.body,
        }
        write_bytes_atomic(path.with_name(path.name[: -len(".json.gz")] + ".meta.json"),
                           json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n")  # fmt: skip
        write_bytes_atomic(path, gzip.compress(body, compresslevel=1, mtime=0))
    return str(path.relative_to(ctx.raw_root))


def _without_secrets(body: bytes) -> bytes:
    text = body.decode("utf-8", "surrogateescape")
    clean = redact(text)
    return body if clean == text else clean.encode("utf-8", "surrogateescape")


# ---- typed values --------------------------------------------------------------------------


class RowError(ValueError):
    """A row that cannot be landed; its message is the quarantine reason."""


def to_decimal(value: object, name: str, *, nullable: bool = False) -> Decimal | None:
    """A vendor decimal (string, int or float) -> Decimal with 8 places; RowError if bad."""
    if value is None or value == "":
        if nullable:
            return None
        raise RowError(f"missing {name}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowError(f"unparsable {name}: not a number")
    try:
        # str(float) is the shortest repr that round-trips: 0.1 stays 0.1, not 0.1000…055.
        number = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise RowError(f"unparsable {name}") from None
    if not number.is_finite():
        raise RowError(f"unparsable {name}: not finite")
    if abs(number) >= Decimal(10) ** 20:
        raise RowError(f"{name} out of range")
    return number.quantize(_EIGHT_PLACES, rounding=ROUND_HALF_EVEN)


def to_int(value: object, name: str, *, nullable: bool = False) -> int | None:
    if value is None or value == "":
        if nullable:
            return None
        raise RowError(f"missing {name}")
    if isinstance(value, bool):
        raise RowError(f"unparsable {name}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise RowError(f"unparsable {name}")
    if not -(2**63) <= number < 2**63:
        raise RowError(f"{name} out of range")
    return number


def ms_to_datetime(value: object, name: str) -> datetime:
    """Epoch milliseconds (int or digit string) -> aware UTC datetime."""
    ms = to_int(value, name)
    assert ms is not None
    # Year 1990..2200: anything else is a unit mistake or garbage, not a market time.
    if not 631_152_000_000 <= ms <= 7_258_118_400_000:
        raise RowError(f"{name} out of range: {ms}")
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


# ---- rows ----------------------------------------------------------------------------------


@dataclass
class RowSet:
    """Parsed rows of one dataset plus the rows rejected on the way, with their reasons.

    `add(values, raw, available_at=..., is_synthetic=...)` takes the dataset's value columns
    as Python values (Decimal, datetime, date, int, float, str); `reject(raw, reason)` keeps a
    row that could not be parsed. Provenance is added by `table()`.
    """

    dataset: Dataset
    source: str = "rest"
    ingested_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    rows: list[dict[str, Any]] = field(default_factory=list)
    raws: list[object] = field(default_factory=list)
    rejected: list[tuple[object, str, int | None]] = field(default_factory=list)

    def add(
        self, values: Mapping[str, Any], raw: object, *, available_at: datetime, is_synthetic: bool
    ) -> None:
        row = dict(values)
        row["available_at"] = available_at
        row["is_synthetic"] = is_synthetic
        self.rows.append(row)
        self.raws.append(raw)

    def reject(self, raw: object, reason: str, event_time: datetime | None = None) -> None:
        self.rejected.append(
            (raw, reason, datetime_to_us(event_time) if event_time is not None else None)
        )

    def __len__(self) -> int:
        return len(self.rows)

    def values(self) -> pa.Table:
        """The rows' value columns (`available_at`, `is_synthetic` included), decimals wide
        enough to hold a value the dataset's `out of range` rule refuses."""
        fields = [f for f in self.dataset.schema if f.name not in PROVENANCE]
        return pa.table(
            {
                f.name: pa.array([row.get(f.name) for row in self.rows], type=_wide(f.type))
                for f in fields
            }
        )

    def table(self, values: pa.Table | None = None) -> pa.Table:
        """`values` (default: every row) in the dataset's schema, with provenance."""
        values = self.values() if values is None else values
        n = values.num_rows
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for f in self.dataset.schema:
            if f.name == "source":
                columns[f.name] = pa.array([self.source] * n, type=f.type)
            elif f.name == "ingested_at":
                columns[f.name] = pa.array([self.ingested_at] * n, type=f.type)
            else:
                columns[f.name] = values.column(f.name).cast(f.type)
        return pa.table(columns, schema=self.dataset.schema)

    def quarantine(self, extra: Iterable[tuple[object, str, int | None]] = ()) -> pa.Table:
        # A vendor's row or message may echo a key: redacted before it is kept.
        items = [*self.rejected, *extra]
        return quarantine_table(
            self.dataset.table,
            ((redact(row_json(raw)), redact(reason)[:500], when) for raw, reason, when in items),
            source=self.source,
            ingested_at=self.ingested_at,
        )


def _wide(kind: pa.DataType) -> pa.DataType:
    return pa.decimal128(38, kind.scale) if pa.types.is_decimal(kind) else kind


# ---- checks and landing --------------------------------------------------------------------


class LandResult(landing.LandResult):
    """What `land_rows` did, day by day, and its report line."""

    def line(self, dataset: str, symbol: str, message: str = "") -> DatasetLine:
        return DatasetLine(
            dataset,
            symbol,
            "ok",
            rows=self.rows,
            days=len(self.results),
            written=self.written,
            unchanged=self.unchanged,
            quarantined=self.quarantined,
            message=message,
        )


def land_rows(
    ctx: VendorContext,
    dataset: str | Dataset,
    symbol: str,
    interval: str | None,
    rows: RowSet,
    raw_pages: Sequence[str],
    *,
    days: Sequence[date],
    key_columns: Sequence[str] | None = None,
    expected_rows: int | None = None,
    notes: Sequence[str] = (),
) -> LandResult:
    """Check, dedupe and land `rows` as whole day partitions for each of `days`.

    The checks are the dataset's rules (`lake.rules`); identical duplicates collapse and
    conflicting ones are quarantined; a row whose `available_at` is after `ctx.now` is held
    back (landed by a later run); a row on no requested day is quarantined with the first
    day's partition (`lake.landing`). `expected_rows` is the count of a complete day (e.g.
    288 five-minute bars), None when it cannot be known.
    """
    ds = dataset if isinstance(dataset, Dataset) else VENDOR_DATASETS[dataset]
    if ds.has_interval and interval is None:
        raise ConfigError(f"{ds.name} needs an interval")
    keys = tuple(key_columns or (ds.time_column,))
    if not sorted(set(days)):
        return LandResult()

    values = rows.values()
    reasons = problems(values, ds)
    good = np.array([reason is None for reason in reasons], dtype=bool)
    identical, conflicting = duplicates(values, keys, good)
    time_column = values.column(ds.time_column)
    time_us = epoch_us(time_column.fill_null(0))
    has_time = np.asarray(time_column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    conflict = f"duplicate {'/'.join(keys)} with conflicting values"
    extra: list[tuple[object, str, int | None]] = []
    for i in np.flatnonzero(~good | conflicting).tolist():
        when = int(time_us[i]) if has_time[i] else None
        extra.append((rows.raws[i], conflict if conflicting[i] else str(reasons[i]), when))

    kept = np.flatnonzero(good & ~identical & ~conflicting)
    kept = kept[np.argsort(time_us[kept], kind="stable")]
    table = rows.table(values.take(pa.array(kept, type=pa.int64())))
    landed = land_days(
        ctx.lake,
        Landing(
            ds,
            table,
            rows.quarantine(extra),
            rows.source,
            rows.ingested_at,
            raw_pages,
            duplicates_identical=int(identical.sum()),
            final_at_us=epoch_us(table.column("available_at")),
            raw_text=lambda i: redact(row_json(rows.raws[int(kept[i])])),
        ),
        lambda day: PartitionKey(ds, symbol, interval if ds.has_interval else None, day),
        days,
        now=ctx.now,
        held_back_note=HELD_BACK_NOTE,
        expected_rows=expected_rows,
        notes=notes,
        on_progress=ctx.on_progress,
    )
    return LandResult(landed.results, landed.held_back)


def plan_days(
    ctx: VendorContext, dataset: str | Dataset, symbol: str, interval: str | None
) -> list[date]:
    """Requested days that still need fetching (see the module docstring)."""
    ds = dataset if isinstance(dataset, Dataset) else VENDOR_DATASETS[dataset]
    partition_interval = interval if ds.has_interval else None
    return days_to_fetch(
        ctx.lake,
        lambda day: PartitionKey(ds, symbol, partition_interval, day),
        ctx.days(),
        today=ctx.now.date(),
        refresh_tail=ctx.refresh_tail,
    ).fetch


def chunk_days(days: Sequence[date], size: int) -> list[list[date]]:
    """Consecutive runs of days, each at most `size` long (one request window each)."""
    chunks: list[list[date]] = []
    for day in sorted(days):
        if chunks and len(chunks[-1]) < size and chunks[-1][-1] + timedelta(1) == day:
            chunks[-1].append(day)
        else:
            chunks.append([day])
    return chunks


def bars_per_day(interval: str) -> int:
    return US_PER_DAY // interval_us(interval)


def config_list(config: Mapping[str, Any], name: str, default: Sequence[str]) -> list[str]:
    """A list-of-strings option of a vendor section, with a clear error when it is not one."""
    value = config.get(name, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"vendors: `{name}` must be a list of strings, got {value!r}")
    return value


def config_str(config: Mapping[str, Any], name: str, default: str) -> str:
    value = config.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"vendors: `{name}` must be a non-empty string, got {value!r}")
    return value
