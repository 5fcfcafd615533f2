"""`btcfs ingest all` configuration: which datasets, symbols and days to land, and from where."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.config import load_mapping
from core.symbols import symbol_problem
from ingest.binance.endpoints import ARCHIVE_BASE_URL, FUTURES_BASE_URL, SPOT_BASE_URL
from ingest.errors import ConfigError
from ingest.timeutil import parse_day, parse_moment

DEFAULT_CONFIG = Path("config/ingest.yml")


@dataclass(frozen=True)
class Endpoints:
    spot: str
    futures: str
    archive: str | None  # URL or folder; None = REST only

    @classmethod
    def resolve(cls, base_url: str | None = None, archive: str | None = None) -> Endpoints:
        """Flags beat environment variables beat Binance's public hosts.

        `--base-url` points spot and futures at one host (a mirror or the replay server); the
        archive then defaults to that host too, since the replay server serves both.
        """
        spot = base_url or os.environ.get("BINANCE_SPOT_BASE_URL") or SPOT_BASE_URL
        futures = base_url or os.environ.get("BINANCE_FUTURES_BASE_URL") or FUTURES_BASE_URL
        chosen = archive or os.environ.get("BINANCE_ARCHIVE_URL") or base_url or ARCHIVE_BASE_URL
        return cls(spot.rstrip("/"), futures.rstrip("/"), None if chosen == "none" else chosen)


def is_loopback_url(url: str) -> bool:
    """True for an http(s) URL whose host is this machine (127.0.0.0/8, ::1, `localhost`):
    the only hosts the API lets a caller point ingest at (the replay server)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return False
    # Both parsers must see the same host (the client that connects is httpx), with no
    # userinfo to hide a second host behind.
    if (
        parts.scheme not in ("http", "https")
        or not host
        or parsed.host.lower() != host
        or parts.username is not None
        or parsed.userinfo
    ):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DatasetJob:
    dataset: str
    interval: str | None


@dataclass(frozen=True)
class IngestConfig:
    symbols: tuple[str, ...]
    start: date
    jobs: tuple[DatasetJob, ...]
    refresh_tail: int = 2
    archive: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    # `vendors:` section: vendor name -> its options (enabled, datasets, symbols, ...).
    vendors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def vendor_start(self, name: str, now: datetime) -> date:
        """A vendor's first day: its own `start`/`days_back`, else the global one."""
        options = self.vendors.get(name, {})
        if "start" in options:
            return parse_day(str(options["start"]))
        if "days_back" in options:
            return now.date() - timedelta(days=int(options["days_back"]) - 1)
        return self.start


def load_config(path: Path | None, now: datetime) -> IngestConfig:
    source = path or DEFAULT_CONFIG
    payload = load_mapping(source, ConfigError)
    known = {"symbols", "start", "days_back", "datasets", "refresh_tail", "archive", "vendors"}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise ConfigError(f"config file {source}: unknown keys {unknown}; known: {sorted(known)}")
    symbols = payload.get("symbols", ["BTCUSDT"])
    if not isinstance(symbols, list) or not symbols:
        raise ConfigError(f"config file {source}: `symbols` must be a list of symbols")
    for symbol in symbols:
        if (problem := symbol_problem(symbol)) is not None:
            raise ConfigError(f"config file {source}: `symbols`: {problem}")
    if "start" in payload:
        start = parse_day(str(payload["start"]))
    else:
        days_back = payload.get("days_back", 30)
        if not isinstance(days_back, int) or days_back < 1:
            raise ConfigError(f"config file {source}: `days_back` must be a positive integer")
        start = now.date() - timedelta(days=days_back - 1)
    jobs = []
    entries = payload.get("datasets", [])
    if not isinstance(entries, list):
        raise ConfigError(f"config file {source}: `datasets` must be a list")
    for entry in entries:
        if not isinstance(entry, dict) or "dataset" not in entry:
            raise ConfigError(f"config file {source}: each dataset needs a `dataset` key: {entry}")
        unknown = sorted(set(entry) - {"dataset", "interval"})
        if unknown:
            # A misspelt `interval` would otherwise be ignored without a word.
            raise ConfigError(
                f"config file {source}: unknown keys {unknown} in dataset entry {entry}; "
                "known: ['dataset', 'interval']"
            )
        interval = entry.get("interval")
        jobs.append(DatasetJob(str(entry["dataset"]), None if interval is None else str(interval)))
    if not jobs:
        raise ConfigError(f"config file {source}: no datasets listed")
    tail = payload.get("refresh_tail", 2)
    if not isinstance(tail, int) or tail < 0:
        raise ConfigError(f"config file {source}: `refresh_tail` must be 0 or more")
    archive = payload.get("archive")
    if archive is not None and not isinstance(archive, str):
        raise ConfigError(f"config file {source}: `archive` must be a URL, a folder or 'none'")
    vendors = _vendor_sections(payload.get("vendors"), source)
    return IngestConfig(tuple(symbols), start, tuple(jobs), tail, archive, vendors=vendors)


def _vendor_sections(value: object, source: Path) -> dict[str, dict[str, Any]]:
    """`vendors:` -> {name: options}; shapes checked here, names and datasets by the runner."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"config file {source}: `vendors` must map vendor names to options")
    out: dict[str, dict[str, Any]] = {}
    for name, options in value.items():
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise ConfigError(f"config file {source}: vendors.{name} must be a mapping")
        if not isinstance(options.get("enabled", True), bool):
            raise ConfigError(f"config file {source}: vendors.{name}.enabled must be true/false")
        datasets = options.get("datasets")
        if datasets is not None and (
            not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets)
        ):
            raise ConfigError(f"config file {source}: vendors.{name}.datasets must be a list")
        days_back = options.get("days_back")
        if days_back is not None and (not isinstance(days_back, int) or days_back < 1):
            raise ConfigError(
                f"config file {source}: vendors.{name}.days_back must be a positive integer"
            )
        if "start" in options:
            parse_day(str(options["start"]))
        out[str(name)] = dict(options)
    return out


def resolve_now() -> datetime:
    """The moment that decides which bars are final: the clock, or BTCFS_NOW for replays."""
    override = os.environ.get("BTCFS_NOW")
    if override:
        return parse_moment(override)
    from datetime import UTC

    return datetime.now(UTC)
