"""Landing everything a config names: the loop behind `btcfs ingest all` and `make ingest`.

Binance (the config's top-level `symbols` and `datasets`) runs first, then each vendor of its
`vendors:` section in order, every one through `run_vendor`. A vendor without its key is
skipped, a disabled one too, and a failing one does not stop the others: each ends as one
`VendorReport`. A bad config is refused whole before anything is fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core.settings import DataPaths
from ingest._client import HttpClient
from ingest.config import IngestConfig
from ingest.errors import ConfigError
from ingest.vendors import VENDORS, VendorReport, VendorSpec, run_vendor
from ingest.vendors.binance import SPEC as BINANCE
from lake.store import Lake


@dataclass(frozen=True)
class VendorRun:
    """One vendor as the config asks for it."""

    spec: VendorSpec
    options: Mapping[str, Any]
    start: date
    refresh_tail: int
    enabled: bool = True


def binance_options(config: IngestConfig, archive: str | None = None) -> dict[str, Any]:
    """The config's top level as Binance's options (`--archive` beats the config's)."""
    return {
        "symbols": list(config.symbols),
        "jobs": list(config.jobs),
        "archive": archive or config.archive,
    }


def vendor_runs(config: IngestConfig, now: datetime, archive: str | None = None) -> list[VendorRun]:
    """What the config asks for, in order, checked (ConfigError before anything runs)."""
    runs = [VendorRun(BINANCE, binance_options(config, archive), config.start, config.refresh_tail)]
    for name, options in config.vendors.items():
        if name == BINANCE.name:
            raise ConfigError(
                "config: binance is configured by the top-level `symbols` and `datasets` keys, "
                "not under `vendors:`"
            )
        if name not in VENDORS:
            known = sorted(set(VENDORS) - {BINANCE.name})
            raise ConfigError(f"config: unknown vendor {name!r}; known: {known}")
        spec = VENDORS[name]
        unknown = [d for d in options.get("datasets") or [] if d not in spec.datasets]
        if unknown:
            raise ConfigError(
                f"config: vendors.{name}: unknown datasets {unknown}; {name} has "
                f"{list(spec.datasets)}"
            )
        runs.append(
            VendorRun(
                spec,
                options,
                config.vendor_start(name, now),
                int(options.get("refresh_tail", config.refresh_tail)),
                bool(options.get("enabled", True)),
            )
        )
    for run in runs:
        if run.enabled and run.spec.check_options is not None:
            run.spec.check_options(run.options)
    return runs


def run_one(
    spec: VendorSpec,
    options: Mapping[str, Any],
    *,
    start: date,
    end: date,
    now: datetime,
    base_url: str | None = None,
    datasets: tuple[str, ...] | None = None,
    refresh_tail: int = 2,
    debug: bool = False,
    on_progress: Callable[[int], None] | None = None,
    client_factory: Callable[..., HttpClient] = HttpClient,
) -> VendorReport:
    """One vendor into the lake of `BTCFS_DATA_DIR`."""
    if debug:
        logging.getLogger("ingest").setLevel(logging.DEBUG)
    paths = DataPaths.from_env()
    return run_vendor(
        spec,
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
        on_progress=on_progress,
        client_factory=client_factory,
    )


def ingest_all(
    config: IngestConfig,
    *,
    now: datetime,
    base_url: str | None = None,
    archive: str | None = None,
    debug: bool = False,
    on_report: Callable[[VendorReport], None] = lambda report: None,
    on_progress: Callable[[int], None] | None = None,
    client_factory: Callable[..., HttpClient] = HttpClient,
) -> list[VendorReport]:
    """Land every vendor the config names up to `now`; one report each, in order."""
    reports = []
    for run in vendor_runs(config, now, archive):
        if not run.enabled:
            report = VendorReport.skipped(run.spec.name, "disabled in the config")
        else:
            report = run_one(
                run.spec,
                run.options,
                start=run.start,
                end=now.date(),
                now=now,
                base_url=base_url,
                refresh_tail=run.refresh_tail,
                debug=debug,
                on_progress=on_progress,
                client_factory=client_factory,
            )
        on_report(report)
        reports.append(report)
    return reports
