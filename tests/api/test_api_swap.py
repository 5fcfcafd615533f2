"""Swap without errors: a live `btcfs serve` keeps answering while `dbt build` rewrites
build.duckdb and `btcfs publish` replaces serve.duckdb; the stream announces the publish."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.api.apipipeline import Pipeline, live_server, open_files, published_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.dbt]

PATHS = (
    "/health",
    "/v1/bars?limit=100",
    "/v1/bars?interval=1h&limit=24",
    "/v1/features/latest",
    "/v1/predictions/latest",
    "/v1/forecast?steps=6",
    "/v1/qa",
)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return published_pipeline(tmp_path_factory)


class Load:
    """Client threads cycling through PATHS until stopped; every non-200 is kept."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.stop = threading.Event()
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.invocations: set[str] = set()
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            count = offset
            while not self.stop.is_set():
                path = PATHS[count % len(PATHS)]
                count += 1
                started = time.perf_counter()
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"{path}: {exc!r}")
                    continue
                elapsed = time.perf_counter() - started
                with self._lock:
                    self.statuses[response.status_code] += 1
                    self.latencies.append(elapsed)
                    if response.status_code != 200:
                        self.failures.append(
                            f"{path}: {response.status_code} {response.text[:200]}"
                        )
                    elif path == "/health":
                        self.invocations.add(response.json()["dbt_invocation_id"])

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def listen(url: str, events: list[dict[str, Any]], stop: threading.Event) -> None:
    """Collect the stream's events until stopped (keep-alives let it check every second)."""
    with httpx.stream("GET", f"{url}/v1/stream", timeout=30) as response:
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: {"):
                events.append({"event": kind, **json.loads(line.removeprefix("data: "))})
            if stop.is_set():
                return


def test_requests_flow_through_a_build_and_a_publish(pipeline: Pipeline) -> None:
    with live_server(pipeline, BTCFS_API_KEEPALIVE_S="1") as (url, server):
        before = httpx.get(f"{url}/health").json()["dbt_invocation_id"]
        events: list[dict[str, Any]] = []
        stop_listening = threading.Event()
        listener = threading.Thread(target=listen, args=(url, events, stop_listening))
        listener.start()
        held: set[str] = set()
        with Load(url) as load:
            time.sleep(1)
            build = threading.Thread(target=pipeline.full_build)
            build.start()
            while build.is_alive():  # sample what the server holds open while dbt writes
                held.update(open_files(server.pid))
                build.join(timeout=0.5)
            pipeline.publish()
            deadline = time.monotonic() + 60
            while len(load.invocations) < 2 and time.monotonic() < deadline:
                held.update(open_files(server.pid))
                time.sleep(0.2)
            time.sleep(1)  # keep requests flowing on the new file for a moment
        after = httpx.get(f"{url}/health").json()["dbt_invocation_id"]
        deadline = time.monotonic() + 30
        while not any(e.get("dbt_invocation_id") == after and e["event"] == "publish"
                      for e in events) and time.monotonic() < deadline:  # fmt: skip
            time.sleep(0.2)
        stop_listening.set()
        listener.join(timeout=30)
    total = sum(load.statuses.values())
    latencies = sorted(load.latencies)
    print(
        f"\nswap: {total} requests, {len(load.failures)} failed, statuses {dict(load.statuses)}, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )
    assert load.failures == []
    assert total > 50
    assert after != before and load.invocations == {before, after}
    assert not [path for path in held if path.endswith("build.duckdb")], held
    assert events[0]["event"] == "hello" and events[0]["dbt_invocation_id"] == before
    published = [e for e in events if e["event"] == "publish" and e["dbt_invocation_id"] == after]
    assert published, [e["event"] for e in events]
    symbol = published[-1]["symbols"]["BTCUSDT"]
    assert symbol["prediction"]["model"] == "btcusdt_5m"
