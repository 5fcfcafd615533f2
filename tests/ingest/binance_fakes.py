"""Helpers for the ingest tests: a fake Binance (REST + archive files) and real-data paths.

`FakeBinance` answers like Binance's REST endpoints over `httpx.MockTransport`: it honours
startTime/endTime (inclusive, ms) and limit (default and maximum per endpoint) on a series it
generates or is given, records every request, and never touches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ingest import ClientConfig, HttpClient, RetryPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
REAL_1M = SHARED_DATA / "binance" / "spot" / "klines" / "1m"

MINUTE_MS = 60_000
DAY_MS = 86_400_000

requires_real_data = pytest.mark.skipif(
    not REAL_1M.is_dir(),
    reason=f"real Binance data not found at {SHARED_DATA} (../shared/data from the repo root)",
)


def day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def kline_row(open_ms: int, interval_ms: int = MINUTE_MS, *, bump: int = 0) -> list[Any]:
    """A valid Binance kline row (ms times, decimal strings) whose values depend on open_ms."""
    k = (open_ms // interval_ms) % 997 + bump
    o = 30_000 + k
    c = o + (k % 7) - 3
    h = max(o, c) + 2
    lo = min(o, c) - 2
    vol = 10 + k % 13
    taker = vol // 2
    return [
        open_ms,
        f"{o}.12000000",
        f"{h}.50000000",
        f"{lo}.01000000",
        f"{c}.99000000",
        f"{vol}.00100000",
        open_ms + interval_ms - 1,
        f"{vol * o}.25000000",
        100 + k,
        f"{taker}.00050000",
        f"{taker * o}.12500000",
        "0",
    ]


def kline_grid(start_ms: int, end_ms: int, interval_ms: int = MINUTE_MS) -> list[list[Any]]:
    """Bars with open time in [start_ms, end_ms)."""
    return [kline_row(t, interval_ms) for t in range(start_ms, end_ms, interval_ms)]


_KLINE_PATHS = {
    "/api/v3/klines": (500, 1000),
    "/fapi/v1/continuousKlines": (500, 1500),
    "/fapi/v1/markPriceKlines": (500, 1500),
    "/fapi/v1/premiumIndexKlines": (500, 1500),
}
_OTHER_PATHS = {
    "/fapi/v1/fundingRate": (100, 1000, "fundingTime"),
    "/futures/data/openInterestHist": (30, 500, "timestamp"),
}


@dataclass
class FakeBinance:
    """Binance-shaped REST answers over a fixed series; every request is recorded."""

    klines: list[list[Any]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)
    open_interest: list[dict[str, Any]] = field(default_factory=list)
    # Optional hook: (path, rows that would be served) -> rows served, to inject faults.
    tamper: Callable[[str, list[Any]], list[Any]] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        path = request.url.path
        params = request.url.params
        if path in _KLINE_PATHS:
            default, maximum = _KLINE_PATHS[path]
            series: list[Any] = self.klines
            time_of: Callable[[Any], int] = lambda row: int(row[0])  # noqa: E731
        elif path in _OTHER_PATHS:
            default, maximum, key = _OTHER_PATHS[path]
            series = self.funding if "funding" in path else self.open_interest
            time_of = lambda row: int(row[key])  # noqa: E731
        else:
            return httpx.Response(404, json={"code": -1, "msg": "not found"})
        limit = min(int(params.get("limit", default)), maximum)
        start = int(params.get("startTime", 0))
        end = int(params.get("endTime", 2**62))
        rows = [row for row in series if start <= time_of(row) <= end][:limit]
        if self.tamper is not None:
            rows = self.tamper(path, rows)
        return httpx.Response(200, content=orjson.dumps(rows))

    def start_times(self, path: str | None = None) -> list[int]:
        return sorted(
            int(r.url.params["startTime"])
            for r in self.requests
            if path is None or r.url.path == path
        )


def fake_client(fake: FakeBinance | None, vendor: str = "binance-test") -> HttpClient:
    """An HttpClient whose every request goes to `fake` (or fails the test if none)."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    handler = fake.handler if fake is not None else refuse
    return HttpClient(
        "https://fake.binance.test",
        vendor=vendor,
        transport=httpx.MockTransport(handler),
        sleep=lambda seconds: None,
        config=ClientConfig(retry=RetryPolicy(max_retries=0)),
    )


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def put_archive_file(
    root: Path,
    relative_path: str,
    csv_bytes: bytes | None = None,
    *,
    members: dict[str, bytes] | None = None,
    checksum: str | None = None,
    with_checksum: bool = True,
) -> bytes:
    """Write `relative_path` (a zip holding one CSV named like it) and its `.CHECKSUM`."""
    path = root / relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    if members is None:
        assert csv_bytes is not None
        members = {path.name.removesuffix(".zip") + ".csv": csv_bytes}
    payload = make_zip(members)
    path.write_bytes(payload)
    if with_checksum:
        digest = checksum if checksum is not None else hashlib.sha256(payload).hexdigest()
        (root / (relative_path + ".CHECKSUM")).write_text(f"{digest}  {path.name}\n")
    return payload


def real_csv(day: date) -> bytes:
    """The real archive CSV of one day (as inside Binance's daily zip)."""
    return gzip.decompress((REAL_1M / f"BTCUSDT-1m-{day.isoformat()}.csv.gz").read_bytes())


def real_days() -> list[date]:
    return sorted(
        date.fromisoformat(p.name.removeprefix("BTCUSDT-1m-").removesuffix(".csv.gz"))
        for p in REAL_1M.glob("BTCUSDT-1m-*.csv.gz")
    )


def csv_rows(data: bytes) -> list[list[Any]]:
    """An archive CSV as kline rows with ints where Binance sends ints (for REST bodies)."""
    out = []
    for line in data.decode().splitlines():
        f = line.split(",")
        out.append([int(f[0]), *f[1:6], int(f[6]), f[7], int(f[8]), *f[9:12]])
    return out
