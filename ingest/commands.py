"""`btcfs ingest binance|vendor|all` and `btcfs lake status`: wiring of loaders, clients, lake."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from core.errors import BtcfsError
from core.redact import redact
from core.settings import DataPaths
from ingest._client import ClientConfig, HttpClient, WeightBudget
from ingest.binance.archive import ArchiveSource, HttpArchive, LocalArchive
from ingest.binance.endpoints import ENDPOINTS, FUTURES_WEIGHT_BUDGET, SPOT_WEIGHT_BUDGET
from ingest.binance.loader import BinanceLoader, LoadReport, LoadRequest, validate_request
from ingest.config import DEFAULT_CONFIG, Endpoints, IngestConfig, load_config, resolve_now
from ingest.errors import ConfigError
from ingest.status import lake_status
from ingest.timeutil import parse_day
from ingest.vendors import VENDORS, VendorReport, run_vendor
from lake.store import Lake


def progress_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--no-progress", is_flag=True, help="Plain output, no progress bar (automatic off a TTY)."
    )(fn)


def debug_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--debug", is_flag=True, help="Log request parameters and response keys (keys redacted)."
    )(fn)


@contextmanager
def _loader(
    endpoints: Endpoints, *, debug: bool, on_progress: Callable[[int], None] | None, now: datetime
) -> Iterator[BinanceLoader]:
    if debug:
        logging.getLogger("ingest").setLevel(logging.DEBUG)
    paths = DataPaths.from_env()
    spot = HttpClient(
        endpoints.spot,
        vendor="binance-spot",
        config=ClientConfig(weight=WeightBudget(per_minute=SPOT_WEIGHT_BUDGET)),
        debug=debug,
    )
    futures = HttpClient(
        endpoints.futures,
        vendor="binance-futures",
        config=ClientConfig(weight=WeightBudget(per_minute=FUTURES_WEIGHT_BUDGET)),
        debug=debug,
    )
    archive_client: HttpClient | None = None
    archive: ArchiveSource | None = None
    if endpoints.archive:
        if endpoints.archive.startswith(("http://", "https://")):
            archive_client = HttpClient(endpoints.archive, vendor="binance-archive", debug=debug)
            archive = HttpArchive(archive_client)
        else:
            archive = LocalArchive(Path(endpoints.archive))
    try:
        yield BinanceLoader(
            Lake(paths.lake),
            paths.raw,
            spot=spot,
            futures=futures,
            archive=archive,
            now=now,
            on_progress=on_progress,
        )
    finally:
        spot.close()
        futures.close()
        if archive_client is not None:
            archive_client.close()


def _expected_rows(req: LoadRequest, days: int) -> int:
    if req.interval is None:
        return days * 3
    return days * req.step.per_day


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:>10,.0f} rows/s")


@contextmanager
def _progress(enabled: bool, total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RowsPerSecond(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda rows: bar.advance(task, rows)


def _print_report(report: LoadReport) -> None:
    req = report.request
    label = f"{req.dataset} {req.symbol}" + (f" {req.interval}" if req.interval else "")
    click.echo(
        f"{label}: {report.count('written')} days written, {report.count('unchanged')} unchanged, "
        f"{report.count('skipped')} already complete; {report.rows:,} rows, "
        f"{report.quarantined:,} quarantined"
    )
    for day in report.days:
        if day.action == "unavailable":
            click.echo(f"  {day.day}: unavailable ({day.note})")
        elif day.is_incomplete:
            missing = "; ".join(day.missing[:5]) + (" …" if len(day.missing) > 5 else "")
            click.echo(
                f"  {day.day}: incomplete, {day.rows}/{day.expected_rows} rows"
                + (f", missing {missing}" if missing else "")
            )
        if day.quarantined:
            click.echo(f"  {day.day}: {day.quarantined} rows quarantined (see btcfs lake status)")


def run_load(
    req: LoadRequest, endpoints: Endpoints, *, debug: bool, show_progress: bool, now: datetime
) -> LoadReport:
    validate_request(req)
    days = (min(req.end, now.date()) - req.start).days + 1
    with (
        _progress(show_progress, _expected_rows(req, max(days, 0)), req.dataset) as on_progress,
        _loader(endpoints, debug=debug, on_progress=on_progress, now=now) as loader,
    ):
        return loader.load(req)


@click.command("binance")
@click.option("--dataset", required=True, type=click.Choice(list(ENDPOINTS)), help="What to land.")
@click.option("--symbol", default="BTCUSDT", show_default=True, help="Binance symbol.")
@click.option(
    "--interval",
    default=None,
    help="Kline interval (1m, 5m, 1h, …) or OI period; none for funding.",
)
@click.option("--start", required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", default=None, help="Last UTC day (default: today).")
@click.option(
    "--base-url", default=None, help="One host for spot and futures REST (mirror/replay)."
)
@click.option(
    "--archive", default=None, help="Archive base URL or local folder; 'none' = REST only."
)
@click.option(
    "--refresh-tail", default=2, show_default=True, help="Always re-fetch the last N days."
)
@click.option("--force", is_flag=True, help="Re-fetch every day, complete or not.")
@debug_option
@progress_option
def ingest_binance(
    dataset: str,
    symbol: str,
    interval: str | None,
    start: str,
    end: str | None,
    base_url: str | None,
    archive: str | None,
    refresh_tail: int,
    force: bool,
    debug: bool,
    no_progress: bool,
) -> None:
    """Land one Binance dataset for a range of UTC days.

    History comes from Binance's archive (checksums verified), the recent tail from REST.

    Example: btcfs ingest binance --dataset spot-klines --symbol BTCUSDT --interval 1m
    --start 2025-05-19 --end 2025-05-25
    """
    now = resolve_now()
    if interval is None and dataset not in ("funding",):
        interval = "5m" if dataset == "open-interest" else "1m"
    if dataset == "funding" and interval is not None:
        raise click.BadParameter("funding has no interval", param_hint="--interval")
    req = LoadRequest(
        dataset=dataset,
        symbol=symbol,
        interval=interval,
        start=parse_day(start),
        # Without --end, a --start after today must be reported as in the future, not
        # as "--end (which the user never gave) is before --start".
        end=parse_day(end) if end else max(now.date(), parse_day(start)),
        refresh_tail=refresh_tail,
        force=force,
    )
    report = run_load(
        req,
        Endpoints.resolve(base_url, archive),
        debug=debug,
        show_progress=not no_progress,
        now=now,
    )
    _print_report(report)


@dataclass
class _Row:
    """One line of the summary table that ends `btcfs ingest all`."""

    vendor: str
    status: str
    rows: int
    days: int
    note: str = ""


def _binance_row(reports: list[LoadReport], error: str | None) -> _Row:
    days: set[date] = {
        d.day for r in reports for d in r.days if d.action in ("written", "unchanged", "skipped")
    }
    rows = sum(r.rows for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    if error is not None:
        return _Row("binance", "failed", rows, len(days), error)
    note = f"{len(reports)} datasets" + (f", {quarantined:,} quarantined" if quarantined else "")
    return _Row("binance", "ok", rows, len(days), note)


def _vendor_row(report: VendorReport) -> _Row:
    note = report.message
    if report.status == "ok":
        quarantined = sum(line.quarantined for line in report.lines)
        note = f"{len({line.dataset for line in report.lines})} datasets" + (
            f", {quarantined:,} quarantined" if quarantined else ""
        )
    return _Row(report.vendor, report.status, report.rows, report.days, note)


def _print_summary(rows: list[_Row]) -> None:
    click.echo("")
    header = f"{'vendor':<14} {'status':<8} {'rows':>12} {'days':>5}  note"
    click.echo(header)
    click.echo("-" * len(header))
    for row in rows:
        note = row.note if len(row.note) <= 110 else row.note[:109] + "…"
        click.echo(f"{row.vendor:<14} {row.status:<8} {row.rows:>12,} {row.days:>5}  {note}")


def _print_vendor(report: VendorReport) -> None:
    if report.status == "skipped":
        click.echo(f"{report.vendor}: skipped ({report.message})")
        return
    for line in report.lines:
        click.echo(f"{report.vendor} {line.describe()}")
    if report.status == "failed" and not report.lines:
        click.echo(f"{report.vendor}: failed: {report.message}")


def _check_vendor_config(config: IngestConfig) -> None:
    for name, options in config.vendors.items():
        if name not in VENDORS:
            raise ConfigError(f"config: unknown vendor {name!r}; known: {sorted(VENDORS)}")
        unknown = [d for d in options.get("datasets") or [] if d not in VENDORS[name].datasets]
        if unknown:
            raise ConfigError(
                f"config: vendors.{name}: unknown datasets {unknown}; "
                f"{name} has {list(VENDORS[name].datasets)}"
            )


def run_one_vendor(
    name: str,
    options: dict[str, Any],
    *,
    start: date,
    end: date,
    now: datetime,
    base_url: str | None,
    datasets: tuple[str, ...] | None,
    refresh_tail: int,
    debug: bool,
) -> VendorReport:
    if debug:
        logging.getLogger("ingest").setLevel(logging.DEBUG)
    paths = DataPaths.from_env()
    return run_vendor(
        VENDORS[name],
        lake=Lake(paths.lake),
        raw_root=paths.raw,
        now=now,
        config=options,
        start=start,
        end=end,
        datasets=datasets,
        base_url=base_url,
        debug=debug,
        refresh_tail=refresh_tail,
        client_factory=HttpClient,
    )


@click.command("all")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file (default: config/ingest.yml).",
)
@click.option(
    "--base-url",
    default=None,
    help="One host for every vendor's REST (a mirror or the replay server).",
)
@click.option(
    "--archive", default=None, help="Archive base URL or local folder; 'none' = REST only."
)
@debug_option
@progress_option
def ingest_all(
    config_path: Path | None,
    base_url: str | None,
    archive: str | None,
    debug: bool,
    no_progress: bool,
) -> None:
    """Land every configured dataset up to now (what `make ingest` runs).

    Binance first, then every vendor of the config's `vendors:` section; a vendor without its
    key in the environment is skipped with one line, a failing vendor does not stop the
    others. Ends with a table per vendor (ok / skipped / failed, rows, days) and exits
    non-zero when any failed.

    Example: btcfs ingest all --config config/ingest.yml
    """
    now = resolve_now()
    config = load_config(config_path, now)
    _check_vendor_config(config)
    endpoints = Endpoints.resolve(base_url, archive or config.archive)
    requests = [
        LoadRequest(
            job.dataset, symbol, job.interval, config.start, now.date(), config.refresh_tail
        )
        for symbol in config.symbols
        for job in config.jobs
    ]
    for req in requests:
        validate_request(req)
    summary: list[_Row] = []
    reports: list[LoadReport] = []
    error: str | None = None
    for req in requests:
        try:
            report = run_load(req, endpoints, debug=debug, show_progress=not no_progress, now=now)
        except BtcfsError as exc:
            error = exc.explain()
            click.echo(f"binance {req.dataset}: failed: {error}")
            break
        _print_report(report)
        reports.append(report)
    if requests:
        summary.append(_binance_row(reports, error))
    for name, options in config.vendors.items():
        if not options.get("enabled", True):
            summary.append(_Row(name, "skipped", 0, 0, "disabled in the config"))
            click.echo(f"{name}: skipped (disabled in the config)")
            continue
        vendor_report = run_one_vendor(
            name,
            options,
            start=config.vendor_start(name, now),
            end=now.date(),
            now=now,
            base_url=base_url,
            datasets=None,
            refresh_tail=int(options.get("refresh_tail", config.refresh_tail)),
            debug=debug,
        )
        _print_vendor(vendor_report)
        summary.append(_vendor_row(vendor_report))
    _print_summary(summary)
    failed = [row for row in summary if row.status == "failed"]
    if failed:
        # One line that names each failure and why (the table above cuts long notes).
        reasons = "; ".join(f"{row.vendor}: {row.note}" for row in failed)
        raise click.ClickException(f"{len(failed)} failed: {reasons}")


def _vendor_options(config_path: Path | None, name: str, now: datetime) -> dict[str, Any]:
    """The vendor's section of the config (config/ingest.yml when it exists), else {}."""
    if config_path is None and not DEFAULT_CONFIG.exists():
        return {}
    return dict(load_config(config_path, now).vendors.get(name, {}))


@click.command("vendor")
@click.argument("name")
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
@click.option("--start", required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", default=None, help="Last UTC day (default: today).")
@click.option("--base-url", default=None, help="Vendor host (a mirror or the replay server).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file whose vendors.<name> section has the options (symbols, series, ...).",
)
@click.option(
    "--refresh-tail", default=2, show_default=True, help="Always re-fetch the last N days."
)
@debug_option
def ingest_vendor(
    name: str,
    datasets: tuple[str, ...],
    start: str,
    end: str | None,
    base_url: str | None,
    config_path: Path | None,
    refresh_tail: int,
    debug: bool,
) -> None:
    """Land one vendor's datasets (keys from the environment) for a range of UTC days.

    Example: COINGLASS_API_KEY=... btcfs ingest vendor coinglass --dataset cg-price-ohlc
    --start 2025-05-19 --end 2025-05-25
    """
    if name not in VENDORS:
        raise ConfigError(f"unknown vendor {name!r}; known: {sorted(VENDORS)}")
    spec = VENDORS[name]
    unknown = [d for d in datasets if d not in spec.datasets]
    if unknown:
        raise ConfigError(f"{name}: unknown datasets {unknown}; it has {list(spec.datasets)}")
    if spec.key() is None:
        raise ConfigError(f"{name}: {spec.env_key} not set (keys come from the environment)")
    now = resolve_now()
    first = parse_day(start)
    last = parse_day(end) if end else max(now.date(), first)
    if last < first:
        raise ConfigError(f"--end {last} is before --start {first}")
    if first > now.date():
        raise ConfigError(f"--start {first} is in the future (today is {now.date()} UTC)")
    if refresh_tail < 0:
        raise ConfigError("--refresh-tail must be 0 or more")
    report = run_one_vendor(
        name,
        _vendor_options(config_path, name, now),
        start=first,
        end=last,
        now=now,
        base_url=base_url,
        datasets=datasets or None,
        refresh_tail=refresh_tail,
        debug=debug,
    )
    _print_vendor(report)
    if report.status == "failed":
        raise click.ClickException(redact(report.message))


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lake_status_command(as_json: bool) -> None:
    """Per dataset: days, rows, first/last bar, gaps, incomplete days, quarantined rows.

    Example: btcfs lake status --json
    """
    lake = Lake(DataPaths.from_env().lake)
    statuses = lake_status(lake)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
        return
    if not statuses:
        click.echo(f"the lake at {lake.root} is empty: run `make ingest` or `make demo`")
        return
    table = Table(title=f"lake: {lake.root}")
    for column in ("dataset", "symbol", "interval", "days", "rows", "first", "last",
                   "missing rows", "missing days", "incomplete", "quarantined",
                   "synthetic"):  # fmt: skip
        table.add_column(column)
    for s in statuses:
        table.add_row(
            f"{s.vendor}/{s.dataset}", s.symbol, s.interval or "-", str(s.days), f"{s.rows:,}",
            (s.first_at or "-")[:16], (s.last_at or "-")[:16], f"{s.missing_rows:,}",
            str(len(s.missing_days)), str(len(s.incomplete_days)), f"{s.quarantined_rows:,}",
            f"{s.synthetic_days} days" if s.synthetic_days else "-",
        )  # fmt: skip
    Console(width=200).print(table)
