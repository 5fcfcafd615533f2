"""Helpers for the pipeline-job tests: a small synthetic market behind the replay server
(which can hold every request, or serve a gap), a real `btcfs serve` per data folder, and
polling a job to its end.

Small on purpose: 12 days of the `planted` regime and a 2-day feature window (the
production one is 30 days) leave ~2,000 training rows, enough for the fast trainer recipe
to pass its gates; the whole `all` pipeline then takes tens of seconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ingest.timeutil import day_start_us
from replay import ReplayServer, SyntheticMarket
from replay.market import Bars, Kind
from tests.api.apipipeline import ADMIN_TOKEN, TRAIN_CONFIG, free_port
from tests.ml.mlpipeline import BIN

REPO = Path(__file__).resolve().parents[2]
START = date(2025, 1, 1)
DAYS = 12
NOW = datetime.combine(START, datetime.min.time(), UTC) + timedelta(days=DAYS, minutes=30)
#: A 2-day feature window: features publish after ~4 days, leaving ~8 days of rows.
BUILD_VARS = {"features_window_seconds": 172_800}
#: The day the gapped market misses three hours of spot 1m bars (0.5 % of a day is the gate).
GAP_DAY = START + timedelta(days=DAYS - 2)
SECRET = "vendor-key-0123456789"


class Market(SyntheticMarket):
    """The synthetic market with a switch that holds every request (`hold()` / `release()`),
    and optionally three hours missing from the spot klines of GAP_DAY."""

    def __init__(self, *, gap: bool = False) -> None:
        super().__init__(
            11,
            day_start_us(START),
            day_start_us(START + timedelta(days=DAYS + 1)),
            symbols=("BTCUSDT",),
            regime="planted",
        )
        self.gap = gap
        self.open = threading.Event()
        self.open.set()
        self.waiting = 0
        self._count = threading.Lock()
        self._cut: dict[str, Bars] = {}

    def hold(self) -> None:
        self.open.clear()

    def release(self) -> None:
        self.open.set()

    def native_klines(self, kind: Kind, symbol: str) -> Mapping[str, Bars]:
        with self._count:
            self.waiting += 1
        self.open.wait(timeout=600)
        with self._count:
            self.waiting -= 1
        natives = super().native_klines(kind, symbol)
        if not self.gap or kind != "spot":
            return natives
        if "1m" not in self._cut:
            bars = natives["1m"]
            lo = day_start_us(GAP_DAY) + 6 * 3_600_000_000
            keep = (bars.open_time < lo) | (bars.open_time >= lo + 3 * 3_600_000_000)
            columns = {name: np.asarray(column)[keep] for name, column in bars.columns().items()}
            self._cut["1m"] = Bars(bars.interval, missing_taker=bars.missing_taker, **columns)
        return {**natives, "1m": self._cut["1m"]}


@contextmanager
def replay(market: Market) -> Iterator[str]:
    with ReplayServer(market, now=NOW.isoformat()) as url:
        try:
            yield url
        finally:
            market.release()


def ingest_config(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "ingest.yml"
    path.write_text(
        f"symbols: [BTCUSDT]\nstart: {START.isoformat()}\nrefresh_tail: 2\n"
        "datasets:\n"
        "  - {dataset: spot-klines, interval: 1m}\n"
        "  - {dataset: perp-klines, interval: 1m}\n"
        "  - {dataset: funding}\n"
        "  - {dataset: open-interest, interval: 5m}\n"
    )
    return path


def all_params(root: Path, url: str, **train: Any) -> dict[str, Any]:
    """`all` on the small market: unit tests left to the warehouse suite, the fast trainer."""
    return {
        "ingest": {"config": str(ingest_config(root)), "base_url": url},
        "build": {"vars": BUILD_VARS, "unit_tests": False},
        "train": {"config": str(TRAIN_CONFIG), **train},
    }


def environment(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "MLFLOW_", "BTCFS_"))}
    # The jobs here ingest from the replay server on loopback (off by default).
    env["BTCFS_API_ALLOW_BASE_URL"] = "1"
    env.update(
        BTCFS_DATA_DIR=str(root),
        DBT_PROFILES_DIR=str(REPO / "profiles"),
        DBT_TARGET_PATH=str(root / "target"),
        DBT_LOG_PATH=str(root / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        BTCFS_NOW=NOW.isoformat(),
        BTCFS_ADMIN_TOKEN=ADMIN_TOKEN,
        BTCFS_API_WATCH_S="0.2",
        # Never used by the replay server; it must never show up in a job's log or answer.
        BINANCE_API_KEY=SECRET,
        **extra,
    )
    return env


@dataclass
class Api:
    url: str
    process: subprocess.Popen[str]
    root: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def start(self, pipeline: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/jobs",
            json={"pipeline": pipeline, "params": params or {}},
            headers=AUTH,
            timeout=60,
        )

    def job(self, job_id: int, lines: int = 50) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/jobs/{job_id}?lines={lines}", headers=AUTH, timeout=60)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait(self, job_id: int, until: str = "done", timeout: float = 400) -> dict[str, Any]:
        """Poll a job until it ends (`done`) or reaches a state/step condition (a generous
        bound, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if until == "done" and job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            if until == "running" and job["state"] == "running" and job["step"]:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not {until} after {timeout} s: {job}")
            time.sleep(0.3)


AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def api_server(root: Path, **env: str) -> Iterator[Api]:
    """`btcfs serve` on a free loopback port over one data folder."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = (root / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "btcfs"), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=environment(root, **env), stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    api = Api(f"http://127.0.0.1:{port}", process, root)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"btcfs serve exited: {Path(log.name).read_text()[-3000:]}")
            try:
                # (not /v1/jobs: a test may check what start-up alone did to the jobs)
                httpx.get(f"{api.url}/static/favicon.svg", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield api
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_for(predicate: Any, what: str, timeout: float = 120) -> Any:
    """Poll until `predicate()` is truthy (a generous bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout} s")
        time.sleep(0.2)
