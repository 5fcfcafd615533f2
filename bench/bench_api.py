"""API benchmarks: latency and throughput of GET /v1/predictions/latest and
GET /v1/features/latest on a live `btcfs serve`, loaded from this second process over
loopback (keep-alive HTTP/1.1 connections, one per client thread).

Uses the published warehouse of $BTCFS_DATA_DIR when it has serve.duckdb (e.g. after `make
demo`), else builds a small one the way the API tests do (replay server -> loaders -> dbt ->
train -> publish, ~1 minute). Target (the issue's): p99 < 5 ms at >= 1,000 requests/s.
"""

from __future__ import annotations

import http.client
import tempfile
import threading
import time
from pathlib import Path

from bench._report import quick, report
from core.settings import DataPaths
from tests.api.apipipeline import BuiltWarehouse, Pipeline, build_published, live_server

REPO = Path(__file__).resolve().parents[1]

PATHS = ("/v1/predictions/latest?symbol=BTCUSDT", "/v1/features/latest?symbol=BTCUSDT")
WARMUP = 200
SECONDS = 8.0


def load(port: int, path: str, threads: int, seconds: float) -> tuple[list[float], int]:
    """`threads` keep-alive clients hitting `path` for `seconds`: latencies (s), errors."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            bad += response.status != 200
        connection.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    data = DataPaths.from_env(default=REPO / "data").root
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        if (data / "warehouse" / "serve.duckdb").exists():
            pipeline = Pipeline(BuiltWarehouse(data))
            print(f"serving {data}/warehouse/serve.duckdb", flush=True)
        else:
            print("no serve.duckdb: building a small published warehouse first", flush=True)
            pipeline = build_published(Path(scratch) / "data")
        state = str(Path(scratch) / "paper.sqlite")
        with live_server(pipeline, BTCFS_STATE_DB=state) as (url, _):
            port = int(url.rsplit(":", 1)[1])
            for path in PATHS:
                load(port, path, 1, 0.5)  # warm: first attach, model load, memo
                for threads in (1, 4):
                    seconds = 1.0 if quick() else SECONDS
                    latencies, errors = load(port, path, threads, seconds)
                    name = f"GET {path.split('?')[0]} ({threads} client{'s' * (threads > 1)})"
                    report(f"{name} p50", quantile(latencies, 0.5) * 1000, "ms", width=58)
                    report(f"{name} p99", quantile(latencies, 0.99) * 1000, "ms", 5.0, "below",
                           width=58)  # fmt: skip
                    report(f"{name} throughput", len(latencies) / seconds, "req/s", 1000.0,
                           "above", width=58)  # fmt: skip
                    if errors:
                        report(f"{name} non-200 responses", errors, "", width=58)


if __name__ == "__main__":
    main()
