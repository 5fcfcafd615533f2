"""Ingest benchmarks: parse + write throughput, archive backfill, REST over loopback.

Prints one line per figure: name, value, target (bench/_report.py). Real data comes from
../shared/data; the REST figure uses the replay server's synthetic market.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from bench._report import quick, report
from ingest import HttpClient
from ingest.binance.archive import LocalArchive
from ingest.binance.loader import BinanceLoader, LoadRequest
from ingest.binance.parse import parse_kline_pages
from ingest.timeutil import day_start_us
from lake.store import Lake, parquet_bytes

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "binance"
SPOT_1M = SHARED / "spot" / "klines" / "1m"


def real_pages() -> list[bytes]:
    """Every real 2025 1m bar as Binance REST pages of 1000 rows (ms timestamps)."""
    rows = []
    for path in sorted(SPOT_1M.glob("BTCUSDT-1m-2025-*.csv.gz")):
        with gzip.open(path, "rt") as lines:
            for line in lines:
                f = line.rstrip("\n").split(",")
                rows.append(
                    [int(f[0]) // 1000, *f[1:6], int(f[6]) // 1000, f[7], int(f[8]), *f[9:12]]
                )
    return [orjson.dumps(rows[i : i + 1000]) for i in range(0, len(rows), 1000)]


def bench_parse_write(pages: list[bytes]) -> None:
    now = datetime.now(UTC)
    # A day of 1m bars is two pages: the loader parses each request window at once.
    # CPU time of this process: the figure is "per core" even on a busy machine (the parser and
    # the Parquet writer run on one thread). The parse and the write are also reported apart
    # (no target): what each costs, and so what bounds the total.
    for window in (2, 30):
        parse_s = write_s = 0.0
        rows = 0
        for i in range(0, len(pages), window):
            started = time.process_time()
            parsed = parse_kline_pages(
                pages[i : i + window],
                dataset="spot_klines",
                interval_us=60_000_000,
                source="rest",
                ingested_at=now,
            )
            parsed_at = time.process_time()
            parquet_bytes(parsed.table)
            write_s += time.process_time() - parsed_at
            parse_s += parsed_at - started
            rows += parsed.table.num_rows
        report(
            f"parse+write kline pages, {window} pages/window",
            rows / (parse_s + write_s),
            "rows/s",
            1_000_000,
            "above",
        )
        report(f"of which parse alone, {window} pages/window", rows / parse_s, "rows/s")
        report(f"of which Parquet write alone, {window} pages/window", rows / write_s, "rows/s")


def bench_archive_backfill(workdir: Path) -> None:
    archive = workdir / "archive"
    subprocess.run(
        [str(Path(sys.executable).parent / "btcfs"), "replay", "export-archive", "--out",
         str(archive), "--data", str(SHARED), "--datasets", "spot-klines"],
        check=True, capture_output=True,
    )  # fmt: skip
    lake_root = workdir / "lake-archive"
    with HttpClient("http://127.0.0.1:9", vendor="unused") as client:
        loader = BinanceLoader(
            Lake(lake_root / "lake"),
            lake_root / "raw",
            spot=client,
            futures=client,
            archive=LocalArchive(archive),
            now=datetime.now(UTC),
        )
        started = time.perf_counter()
        first = date(2025, 8, 25) if quick() else date(2025, 5, 19)
        loader.load(LoadRequest("spot-klines", "BTCUSDT", "1m", first, date(2025, 8, 31)))
        elapsed = time.perf_counter() - started
    days = (date(2025, 8, 31) - first).days + 1
    report(f"archive backfill, {days} real days", elapsed, "s", 5.0, "below")


def bench_rest_loopback(workdir: Path) -> None:
    from replay.server import ReplayServer
    from replay.synthetic import SyntheticMarket

    end = datetime.now(UTC).date() - timedelta(days=1)
    days = 3 if quick() else 30
    start = end - timedelta(days=days - 1)
    market = SyntheticMarket(
        seed=11,
        start_us=day_start_us(start - timedelta(days=1)),
        end_us=day_start_us(end + timedelta(days=2)),
    )
    with ReplayServer(market) as url, HttpClient(url, vendor="binance-spot") as client:
        loader = BinanceLoader(
            Lake(workdir / "lake-rest" / "lake"),
            workdir / "lake-rest" / "raw",
            spot=client,
            futures=client,
            archive=None,
            now=datetime.now(UTC),
        )
        started = time.perf_counter()
        result = loader.load(LoadRequest("spot-klines", "BTCUSDT", "1m", start, end))
        elapsed = time.perf_counter() - started
        requests = client.stats.requests
    report(f"REST ingest {days} days 1m over loopback: requests", requests / elapsed, "req/s")
    report(f"REST ingest {days} days 1m over loopback: rows", result.rows / elapsed, "rows/s")


def main() -> None:
    if not SPOT_1M.is_dir():
        print(f"skipped: real data not found at {SPOT_1M} (../shared/data is absent)")
    else:
        pages = real_pages()
        bench_parse_write(pages[: len(pages) // 20] if quick() else pages)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if SPOT_1M.is_dir():
            bench_archive_backfill(workdir)
        bench_rest_loopback(workdir)
    os.sync()


if __name__ == "__main__":
    main()
