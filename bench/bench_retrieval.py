"""Point-in-time retrieval benchmarks (warehouse.retrieval, POST /v1/features/as-of).

Offline: 1,000,000 random events (unsorted, with repeats) answered from a DuckDB warehouse
file with every column of features_5m, in one process on this machine; the figure is the
whole call (checks, the ASOF join, the Arrow result), with its parts to show what bounds it.
REST: one time and 10,000 times per request against a live `btcfs serve` over loopback
(one keep-alive client), every feature.

Uses the published warehouse of $BTCFS_DATA_DIR when it has serve.duckdb (e.g. after `make
demo`), else builds a small one the way the API tests do (~1 minute). Targets (the issue's):
offline 1,000,000 events < 2 s; REST p99 < 5 ms for 1 time, < 100 ms for 10,000. Feast's
published figures for comparison: its tuned Python feature server p99 4.61 ms for one row.
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bench._report import quick, report
from core.settings import DataPaths
from tests.api.apipipeline import BuiltWarehouse, Pipeline, build_published, live_server
from warehouse.retrieval import (
    Selection,
    assemble,
    catalog_of,
    join_duckdb,
    prepare_events,
    retrieve_duckdb,
    select_features,
)

REPO = Path(__file__).resolve().parents[1]
WIDTH = 62


def random_events(serve: Path, n: int, seed: int = 1) -> pa.Table:
    """`n` events at random microseconds over the mart's span (and a day either side)."""
    con = duckdb.connect(str(serve), read_only=True)
    try:
        row = con.execute(
            "select epoch_us(min(available_at)), epoch_us(max(available_at)), count(*) "
            "from features_5m where symbol = 'BTCUSDT'"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    first, last, _ = row
    rng = np.random.default_rng(seed)
    day = 86_400_000_000
    times = rng.integers(first - day, last + day, n)
    times[rng.uniform(0, 1, n) < 0.1] = times[0]  # repeats
    return pa.table(
        {
            "label": pa.array(rng.normal(0, 1, n)),
            "symbol": pa.array(["BTCUSDT"] * n),
            "event_time": pa.array(times, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        }
    )


def offline(serve: Path) -> None:
    n = 100_000 if quick() else 1_000_000
    events = random_events(serve, n)
    con = duckdb.connect(str(serve), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        catalog = catalog_of(con)
        rows = con.execute("select count(*) from features_5m").fetchone()
    finally:
        con.close()
    assert catalog is not None, f"{serve} carries no feature catalog: publish it again"
    print(f"features_5m: {rows[0] if rows else 0:,} rows; {n:,} events", flush=True)
    retrieve_duckdb(serve, prepare_events(events.slice(0, 1000)), catalog=catalog)  # warm
    for label, choice in (("every feature", None), ("spot set", "spot")):
        timings = []
        for _ in range(1 if quick() else 3):
            started = time.perf_counter()
            result = retrieve_duckdb(serve, prepare_events(events), feature_set=choice,
                                     catalog=catalog)  # fmt: skip
            timings.append(time.perf_counter() - started)
        best = min(timings)
        columns = len(result.selection.features)
        name = f"offline {n:,} events, {label} ({columns})"
        report(f"{name}: seconds", best, "s", 2.0 if choice is None else None,
               "below" if choice is None else "report", width=WIDTH)  # fmt: skip
        report(f"{name}: events/s", n / best, "ev/s", width=WIDTH)
        if choice is None:
            megabytes = result.table.nbytes / 1e6
            report(f"{name}: result size", megabytes, "MB", width=WIDTH)
    parts(serve, events, catalog)


def parts(serve: Path, events: pa.Table, catalog: object) -> None:
    """Where the time goes: keying the events, the join itself (the sorts: events by symbol
    and time for the ASOF join, then back to input order), and writing the features out."""
    from warehouse.catalog import Catalog

    assert isinstance(catalog, Catalog)
    started = time.perf_counter()
    prepared = prepare_events(events)
    report("  part: events checked and keyed", time.perf_counter() - started, "s", width=WIDTH)
    every = select_features(catalog, "5m")
    con = duckdb.connect(str(serve), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        for label, selection in (("no feature", Selection("5m", ())), ("every feature", every)):
            best = float("inf")
            for _ in range(1 if quick() else 2):
                started = time.perf_counter()
                joined = join_duckdb(con, selection, prepared.keys)
                best = min(best, time.perf_counter() - started)
            report(f"  part: DuckDB ASOF join and reorder, {label}", best, "s", width=WIDTH)
    finally:
        con.close()
    started = time.perf_counter()
    assemble(prepared, joined)
    report("  part: caller's columns put back", time.perf_counter() - started, "s", width=WIDTH)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rest(pipeline: Pipeline, scratch: Path) -> None:
    events = random_events(pipeline.serve, 10_000, seed=2)
    times = [t.isoformat().replace("+00:00", "Z") for t in events.column("event_time").to_pylist()]
    with live_server(pipeline, BTCFS_STATE_DB=str(scratch / "paper.sqlite")) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for count, requests, target in ((1, 2000, 5.0), (10_000, 200, 100.0)):
            if quick():
                requests //= 10
            body = json.dumps({"symbol": "BTCUSDT", "times": times[:count]})
            headers = {"Content-Type": "application/json"}
            latencies = []
            for attempt in range(requests + 20):
                started = time.perf_counter()
                connection.request("POST", "/v1/features/as-of", body, headers)
                response = connection.getresponse()
                payload = response.read()
                if attempt >= 20:  # the first ones load the row index
                    latencies.append(time.perf_counter() - started)
                assert response.status == 200, payload[:300]
            name = f"POST /v1/features/as-of, {count:,} time{'s' * (count > 1)}, every feature"
            report(f"{name} p50", quantile(latencies, 0.5) * 1000, "ms", width=WIDTH)
            report(f"{name} p99", quantile(latencies, 0.99) * 1000, "ms", target, "below",
                   width=WIDTH)  # fmt: skip
            report(f"{name} response", len(payload) / 1e6, "MB", width=WIDTH)
        connection.close()


def main() -> None:
    data = DataPaths.from_env(default=REPO / "data").root
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        if (data / "warehouse" / "serve.duckdb").exists():
            pipeline = Pipeline(BuiltWarehouse(data))
            print(f"reading {data}/warehouse/serve.duckdb", flush=True)
        else:
            print("no serve.duckdb: building a small published warehouse first", flush=True)
            pipeline = build_published(Path(scratch) / "data")
        offline(pipeline.serve)
        rest(pipeline, Path(scratch))


if __name__ == "__main__":
    main()
