"""`btcfs ingest all` configuration: which datasets, symbols and days to land, and from where."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # no stubs in the pinned environment

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


def load_config(path: Path | None, now: datetime) -> IngestConfig:
    source = path or DEFAULT_CONFIG
    try:
        payload = yaml.safe_load(source.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {source} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source} is not valid YAML: {exc}") from exc
    if not isinstance(payload, dict):
        raise ConfigError(f"config file {source}: expected a mapping at the top level")
    known = {"symbols", "start", "days_back", "datasets", "refresh_tail", "archive"}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise ConfigError(f"config file {source}: unknown keys {unknown}; known: {sorted(known)}")
    symbols = payload.get("symbols", ["BTCUSDT"])
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise ConfigError(f"config file {source}: `symbols` must be a list of symbols")
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
    return IngestConfig(tuple(symbols), start, tuple(jobs), tail, archive)


def resolve_now() -> datetime:
    """The moment that decides which bars are final: the clock, or BTCFS_NOW for replays."""
    override = os.environ.get("BTCFS_NOW")
    if override:
        return parse_moment(override)
    from datetime import UTC

    return datetime.now(UTC)
