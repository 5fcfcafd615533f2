"""Sustained load on a live `btcfs serve` while `dbt build` + `btcfs publish` run three times:
zero failed requests, latency before / during / after, build.duckdb never held by the API.

The load comes from a separate process (`python -m drills.apiload --url …`): the client
threads of tests/api/test_api_swap.py's `Load`, one batch per phase; the drill names the
phase on the child's stdin and reads each phase's figures back as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from typing import Any

from drills._api import live_server, open_files, published
from drills._common import REPO, Context, Record, Stopwatch, quantile

NAME = "api-load"
TITLE = "API under load through three dbt build + publish cycles"
CLIENTS = 4


def _phase_figures(load: Any, seconds: float) -> dict[str, Any]:
    latencies = load.latencies
    return {
        "requests": sum(load.statuses.values()),
        "failed": len(load.failures),
        "failures": load.failures[:10],
        "statuses": {str(k): v for k, v in load.statuses.items()},
        "seconds": round(seconds, 1),
        "requests_per_s": round(sum(load.statuses.values()) / max(seconds, 1e-9), 1),
        "p50_ms": round(quantile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(quantile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 2),
        "invocations": sorted(load.invocations),
    }


def generate(url: str, clients: int) -> None:
    """Child: a new batch of client threads per phase named on stdin; figures on stdout."""
    from tests.api.test_api_swap import Load

    current: tuple[str, Any, Stopwatch] | None = None
    for line in sys.stdin:
        if current is not None:
            name, load, watch = current
            load.__exit__(None, None, None)
            print(json.dumps({"phase": name, **_phase_figures(load, watch.seconds())}), flush=True)
        current = (line.strip(), Load(url, threads=clients).__enter__(), Stopwatch())
    if current is not None:
        name, load, watch = current
        load.__exit__(None, None, None)
        print(json.dumps({"phase": name, **_phase_figures(load, watch.seconds())}), flush=True)


def drill(ctx: Context) -> Record:
    record = Record(NAME, TITLE)
    quiet_s = 4.0 if ctx.quick else 15.0
    cycles = 1 if ctx.quick else 3
    pipeline = published(ctx.work / "pipeline", quick=False)
    held: set[str] = set()
    with live_server(pipeline, BTCFS_API_KEEPALIVE_S="1") as (url, server):
        load = subprocess.Popen(
            [sys.executable, "-m", "drills.apiload", "--url", url, "--clients", str(CLIENTS)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert load.stdin is not None and load.stdout is not None
        record.tried_(f"{CLIENTS} keep-alive clients in a separate process cycling through the "
                      "hot GETs (health, bars, features, predictions, forecast, qa)")  # fmt: skip
        load.stdin.write("before\n")
        load.stdin.flush()
        time.sleep(quiet_s)
        load.stdin.write("during\n")
        load.stdin.flush()
        watch = Stopwatch()
        for cycle in range(cycles):
            started = time.perf_counter()
            build = threading.Thread(target=pipeline.full_build)
            build.start()
            while build.is_alive():  # what the API holds open while dbt writes
                held.update(open_files(server.pid))
                build.join(timeout=0.5)
            built = time.perf_counter()
            pipeline.publish()
            held.update(open_files(server.pid))
            record.tried_(f"cycle {cycle + 1}: dbt build {built - started:.0f} s, "
                          f"btcfs publish {time.perf_counter() - built:.1f} s")  # fmt: skip
        during_s = watch.seconds()
        time.sleep(2.0)  # requests keep flowing on the last file before "after" starts
        load.stdin.write("after\n")
        load.stdin.flush()
        time.sleep(quiet_s)
        out, _ = load.communicate(timeout=120)
    phases = {p["phase"]: p for p in map(json.loads, out.strip().splitlines())}
    for name in ("before", "during", "after"):
        p = phases[name]
        record.expect(
            p["failed"] == 0 and p["requests"] > 0,
            f"{name:<6}: {p['requests']:>6} requests, {p['failed']} failed, "
            f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms, max {p['max_ms']} ms, "
            f"{p['requests_per_s']} req/s",
        )
    seen = {i for p in phases.values() for i in p["invocations"]}
    record.expect(len(seen) >= cycles + 1,
                  f"{len(seen)} published builds served (the first and one per cycle)")  # fmt: skip
    record.expect(not [p for p in held if p.endswith("build.duckdb")],
                  "the API never held build.duckdb open")  # fmt: skip
    record.figures = {"clients": CLIENTS, "cycles": cycles, "during_s": round(during_s, 1),
                      "phases": phases}  # fmt: skip
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description="load generator of the api-load drill")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args()
    generate(args.url, args.clients)


if __name__ == "__main__":
    main()
