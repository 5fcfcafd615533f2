"""`btcfs ingest binance|vendor|all` and `btcfs lake status`: wiring of loaders, clients, lake."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
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

from core.redact import redact
from core.settings import DataPaths
from ingest._client import HttpClient
from ingest.binance.endpoints import ENDPOINTS
from ingest.binance.loader import LoadRequest
from ingest.config import DEFAULT_CONFIG, DatasetJob, load_config, resolve_now
from ingest.errors import ConfigError
from ingest.runner import BINANCE, binance_options, run_one, vendor_runs
from ingest.runner import ingest_all as ingest_all_vendors
from ingest.status import lake_status
from ingest.timeutil import parse_day
from ingest.vendors import VENDORS, VendorReport
from ingest.vendors.binance import DEFAULT_INTERVALS, requests_of
from lake.store import Lake


def progress_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--no-progress", is_flag=True, help="Plain output, no progress bar (automatic off a TTY)."
    )(fn)


def debug_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--debug", is_flag=True, help="Log request parameters and response keys (keys redacted)."
    )(fn)


def _expected_rows(requests: list[LoadRequest], now: datetime) -> int:
    """Rows the requests land when every day is whole (funding: three a day)."""
    total = 0
    for req in requests:
        days = max((min(req.end, now.date()) - req.start).days + 1, 0)
        total += days * (3 if req.interval is None else req.step.per_day)
    return total


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:>10,.0f} rows/s")


@contextmanager
def _progress(
    enabled: bool, total: int | None, label: str
) -> Iterator[Callable[[int], None] | None]:
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


@click.command("binance")
@click.option("--dataset", required=True, type=click.Choice(list(ENDPOINTS)), help="What to land.")
@click.option("--symbol", default="BTCUSDT", show_default=True, help="Binance symbol (upper case).")
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
        interval = DEFAULT_INTERVALS[dataset]
    if dataset == "funding" and interval is not None:
        raise click.BadParameter("funding has no interval", param_hint="--interval")
    first = parse_day(start)
    # Without --end, a --start after today must be reported as in the future, not
    # as "--end (which the user never gave) is before --start".
    last = parse_day(end) if end else max(now.date(), first)
    options = {
        "symbols": [symbol],
        "jobs": [DatasetJob(dataset, interval)],
        "archive": archive,
        "force": force,
    }
    requests = requests_of(options, (dataset,), first, last, refresh_tail)
    with _progress(not no_progress, _expected_rows(requests, now), dataset) as on_progress:
        report = run_one(
            BINANCE,
            options,
            start=first,
            end=last,
            now=now,
            base_url=base_url,
            datasets=(dataset,),
            refresh_tail=refresh_tail,
            debug=debug,
            on_progress=on_progress,
            client_factory=HttpClient,
        )
    if report.error is not None:
        raise report.error
    _print_vendor(report)


@dataclass
class _Row:
    """One line of the summary table that ends `btcfs ingest all`."""

    vendor: str
    status: str
    rows: int
    days: int
    note: str = ""


def _vendor_row(report: VendorReport) -> _Row:
    # a failure's reason is printed once, in the error line that ends the run
    note = "the error below says why" if report.status == "failed" else report.message
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
        if line.status == "failed":
            # its reason goes into the error line that ends the run, once
            click.echo(f"{report.vendor} {line.dataset} {line.symbol}: failed")
            continue
        # A loader's own wording (Binance's per-day details) is printed as it is.
        click.echo(line.text or f"{report.vendor} {line.describe()}")
    if report.status == "failed" and not report.lines:
        click.echo(f"{report.vendor}: failed")


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
    vendor_runs(config, now, archive)  # a bad config is refused before anything is fetched
    with _progress(not no_progress, None, "ingest") as on_progress:
        reports = ingest_all_vendors(
            config,
            now=now,
            base_url=base_url,
            archive=archive,
            debug=debug,
            on_report=_print_vendor,
            on_progress=on_progress,
            client_factory=HttpClient,
        )
    _print_summary([_vendor_row(report) for report in reports])
    failed = [report for report in reports if report.status == "failed"]
    if failed:
        # The one place each failure's reason is printed, whole.
        reasons = "; ".join(f"{report.vendor}: {report.message}" for report in failed)
        raise click.ClickException(f"{len(failed)} failed: {reasons}")


def _vendor_options(config_path: Path | None, name: str, now: datetime) -> dict[str, Any]:
    """The vendor's section of the config (config/ingest.yml when it exists), else {};
    Binance's are the config's top level."""
    if config_path is None and not DEFAULT_CONFIG.exists():
        return {}
    config = load_config(config_path, now)
    return binance_options(config) if name == BINANCE.name else dict(config.vendors.get(name, {}))


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
    if spec.env_key is not None and spec.key() is None:
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
    report = run_one(
        spec,
        _vendor_options(config_path, name, now),
        start=first,
        end=last,
        now=now,
        base_url=base_url,
        datasets=datasets or None,
        refresh_tail=refresh_tail,
        debug=debug,
        client_factory=HttpClient,
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
