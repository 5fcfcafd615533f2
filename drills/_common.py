"""What every drill shares: its record (what it tried, what it found, pass or not), the
replayed market and ingest commands, and the paths of the repo and its tools."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the pinned environment

from ingest.timeutil import datetime_to_us, day_start_us
from pipeline.steps import Commands
from replay import SyntheticMarket

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BTCFS = str(BIN / "btcfs")
# The replay server's clock and the loaders' "now": mid-bar, so a still-open bar exists.
NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
DATASETS = (
    ("spot-klines", "1m"),
    ("perp-klines", "1m"),
    ("mark-klines", "1m"),
    ("premium-klines", "1m"),
    ("funding", None),
    ("open-interest", "5m"),
)


@dataclass(frozen=True)
class Context:
    """Where a drill works and how big it runs."""

    work: Path
    quick: bool = False
    seed: int = 20


@dataclass
class Record:
    """A drill's account of itself: printed as it goes, saved as JSON at the end."""

    name: str
    title: str
    tried: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def tried_(self, text: str) -> None:
        self.tried.append(text)
        print(f"  tried: {text}", flush=True)

    def found_(self, text: str) -> None:
        self.found.append(text)
        print(f"  found: {text}", flush=True)

    def expect(self, ok: bool, text: str) -> bool:
        """A finding that must hold: recorded either way, a failure when it does not."""
        if ok:
            self.found_(text)
        else:
            self.failures.append(text)
            print(f"  FAIL:  {text}", flush=True)
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def market(days: int, seed: int = 3) -> SyntheticMarket:
    """The seeded synthetic market the ingest drills replay: `days` whole days before NOW."""
    return SyntheticMarket(
        seed=seed,
        start_us=day_start_us(first_day(days) - timedelta(days=2)),
        end_us=datetime_to_us(NOW) + 3_600_000_000,
        symbols=("BTCUSDT",),
    )


def first_day(days: int) -> date:
    return NOW.date() - timedelta(days=days - 1)


def ingest_config(
    path: Path,
    days: int,
    datasets: tuple[tuple[str, str | None], ...],
    vendors: tuple[str, ...] = (),
) -> Path:
    """A `btcfs ingest all` config: these Binance datasets (and vendors) over `days` days."""
    entries = [{"dataset": d} if i is None else {"dataset": d, "interval": i} for d, i in datasets]
    config: dict[str, Any] = {"symbols": ["BTCUSDT"], "days_back": days, "datasets": entries}
    if vendors:
        config["vendors"] = {name: {"enabled": True} for name in vendors}
    path.write_text(yaml.safe_dump(config))
    return path


def ingest_all(url: str, config: Path, *, archive: bool = True) -> list[str]:
    """`btcfs ingest all` against the replay server at `url` (its archive too, or none)."""
    return Commands().ingest(
        config=config, base_url=url, archive=None if archive else "none", progress=False
    )


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, BTCFS_DATA_DIR=str(data_dir), BTCFS_NOW=NOW.isoformat(), **extra)


def run(
    command: list[str], env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def finished_partitions(data_dir: Path) -> int:
    return len(list((data_dir / "lake").rglob("_SUCCESS")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """A running process's resident memory in MiB (NaN once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(found.group(1)) / 1024 if found else float("nan")


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def save(record: Record, folder: Path, stamp: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.name}-{stamp}.json"
    path.write_text(json.dumps(record.to_dict(), indent=2, default=str) + "\n")
    return path


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.started
