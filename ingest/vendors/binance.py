"""Binance as one more vendor: a keyless `VendorSpec` with two hosts and an archive.

`run_vendor(SPEC, ...)` runs it like every other vendor (`btcfs ingest all|binance|vendor`).
Its options (the top level of config/ingest.yml, or `btcfs ingest binance`'s flags):

    symbols: [BTCUSDT]
    jobs: [DatasetJob(dataset, interval), ...]   # default: the selected datasets, default interval
    archive: URL | folder | none                 # default: $BINANCE_ARCHIVE_URL, the --base-url
                                                 # host, data.binance.vision
    force: false                                 # re-fetch complete days too

Each (symbol, job) is one `LoadRequest` landed by `BinanceLoader` (archive for history, REST
for the tail, through the lake's planner, rules and day writer); the first that fails stops
the rest, as a failing host would fail them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from core.errors import BtcfsError
from core.redact import redact
from ingest._client import ClientConfig, HttpClient, WeightBudget
from ingest.binance.archive import ArchiveSource, HttpArchive, LocalArchive
from ingest.binance.endpoints import (
    ENDPOINTS,
    FUTURES_BASE_URL,
    FUTURES_WEIGHT_BUDGET,
    SPOT_BASE_URL,
    SPOT_WEIGHT_BUDGET,
)
from ingest.binance.loader import BinanceLoader, LoadReport, LoadRequest, validate_request
from ingest.config import DatasetJob, Endpoints
from ingest.errors import ConfigError
from ingest.vendors.base import DatasetLine, Host, VendorContext, VendorReport, VendorSpec

#: The interval a dataset lands at when a job names none (funding has none).
DEFAULT_INTERVALS: dict[str, str | None] = {
    "spot-klines": "1m",
    "perp-klines": "1m",
    "mark-klines": "1m",
    "premium-klines": "1m",
    "funding": None,
    "open-interest": "5m",
}


def jobs_of(options: Mapping[str, Any], datasets: tuple[str, ...]) -> list[DatasetJob]:
    jobs = options.get("jobs")
    if jobs is None:
        return [DatasetJob(name, DEFAULT_INTERVALS[name]) for name in datasets]
    if not isinstance(jobs, list | tuple) or not all(isinstance(j, DatasetJob) for j in jobs):
        raise ConfigError(f"binance: `jobs` must be a list of datasets, got {jobs!r}")
    # Only the selected datasets; an unknown one stays, for validate_request to name it.
    return [job for job in jobs if job.dataset in datasets or job.dataset not in ENDPOINTS]


def requests_of(
    options: Mapping[str, Any],
    datasets: tuple[str, ...],
    start: date,
    end: date,
    refresh_tail: int,
) -> list[LoadRequest]:
    """Every (symbol, job) of the options as a checked `LoadRequest` (ConfigError if bad)."""
    symbols = options.get("symbols", ["BTCUSDT"])
    if not isinstance(symbols, list | tuple) or not all(isinstance(s, str) for s in symbols):
        raise ConfigError(f"binance: `symbols` must be a list of symbols, got {symbols!r}")
    requests = [
        LoadRequest(
            job.dataset,
            symbol,
            job.interval,
            start,
            end,
            refresh_tail,
            force=bool(options.get("force", False)),
        )
        for symbol in symbols
        for job in jobs_of(options, datasets)
    ]
    for request in requests:
        validate_request(request)
    return requests


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse a bad dataset, interval or symbol before any vendor runs."""
    some_day = date(2020, 1, 1)
    requests_of(options, tuple(ENDPOINTS), some_day, some_day, 0)


def describe(report: LoadReport) -> str:
    """A request's summary line, then a line per day that needs a reader's eye."""
    req = report.request
    label = f"{req.dataset} {req.symbol}" + (f" {req.interval}" if req.interval else "")
    lines = [
        f"{label}: {report.count('written')} days written, {report.count('unchanged')} unchanged, "
        f"{report.count('skipped')} already complete; {report.rows:,} rows, "
        f"{report.quarantined:,} quarantined"
    ]
    for day in report.days:
        if day.action == "unavailable":
            lines.append(f"  {day.day}: unavailable ({day.note})")
        elif day.is_incomplete:
            missing = "; ".join(day.missing[:5]) + (" …" if len(day.missing) > 5 else "")
            lines.append(
                f"  {day.day}: incomplete, {day.rows}/{day.expected_rows} rows"
                + (f", missing {missing}" if missing else "")
            )
        if day.quarantined:
            lines.append(f"  {day.day}: {day.quarantined} rows quarantined (see btcfs lake status)")
    return "\n".join(lines)


def _line(report: LoadReport) -> DatasetLine:
    req = report.request
    return DatasetLine(
        req.dataset,
        req.symbol,
        "ok",
        rows=report.rows,
        days=sum(1 for d in report.days if d.action in ("written", "unchanged", "skipped")),
        written=report.count("written"),
        unchanged=report.count("unchanged"),
        quarantined=report.quarantined,
        text=describe(report),
    )


def _archive(ctx: VendorContext) -> tuple[ArchiveSource | None, HttpClient | None]:
    """The archive the options, the environment or the run's base URL name; 'none': REST."""
    chosen = Endpoints.resolve(ctx.base_url, ctx.config.get("archive")).archive
    if chosen is None:
        return None, None
    if chosen.startswith(("http://", "https://")):
        client = ctx.client_factory(chosen, vendor="binance-archive", debug=ctx.debug)
        return HttpArchive(client), client
    return LocalArchive(Path(chosen)), None


class BinanceVendor:
    """The `VendorLoader` of Binance: one `LoadRequest` per symbol and dataset."""

    def __init__(self, ctx: VendorContext) -> None:
        self.ctx = ctx

    def load(self) -> VendorReport:
        ctx = self.ctx
        requests = requests_of(ctx.config, ctx.datasets, ctx.start, ctx.end, ctx.refresh_tail)
        archive, archive_client = _archive(ctx)
        try:
            loader = BinanceLoader(
                ctx.lake,
                ctx.raw_root,
                spot=ctx.client,
                futures=ctx.hosts["futures"],
                archive=archive,
                now=ctx.now,
                on_progress=ctx.on_progress,
            )
            lines: list[DatasetLine] = []
            for request in requests:
                try:
                    lines.append(_line(loader.load(request)))
                except BtcfsError as exc:
                    message = redact(exc.explain())
                    failed = f"binance {request.dataset}: failed: {message}"
                    lines.append(
                        DatasetLine(request.dataset, request.symbol, "failed", message=message,
                                    text=failed)
                    )  # fmt: skip
                    return VendorReport.from_lines(ctx.vendor, lines, error=exc)
            return VendorReport.from_lines(ctx.vendor, lines)
        finally:
            if archive_client is not None:
                archive_client.close()


SPEC = VendorSpec(
    name="binance",
    env_key=None,  # public market data: no key
    key_placement=None,
    default_base_url=SPOT_BASE_URL,
    base_url_env="BINANCE_SPOT_BASE_URL",
    datasets=tuple(ENDPOINTS),
    make_loader=BinanceVendor,
    client=ClientConfig(weight=WeightBudget(per_minute=SPOT_WEIGHT_BUDGET)),
    description="spot and USD-M perpetual klines, funding and open interest (no key)",
    host_name="spot",
    hosts=(
        Host(
            "futures",
            FUTURES_BASE_URL,
            "BINANCE_FUTURES_BASE_URL",
            ClientConfig(weight=WeightBudget(per_minute=FUTURES_WEIGHT_BUDGET)),
        ),
    ),
    check_options=check_options,
)
