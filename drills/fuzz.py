"""Hostile input. Every vendor parser and loader is fed real responses from the replay server,
mutated by hypothesis (truncated, bytes flipped, values of the wrong type, keys dropped, random
JSON and bytes, oversized): the only acceptable outcomes are a result or a known `IngestError`;
the peak memory of an oversized payload is measured in a child process. Every API operation is
fuzzed by schemathesis from the OpenAPI spec (tests/api/test_api_schemathesis.py's setup):
no 5xx, documented statuses, responses that match the spec.

Vendors are discovered from `ingest.vendors.VENDORS`: a vendor added there is fuzzed too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import resource
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from core.errors import BtcfsError
from drills._common import NOW, REPO, Context, Record, first_day, market
from ingest import ClientConfig, HttpClient, RetryPolicy
from ingest.binance.archive import parse_archive_csv
from ingest.binance.loader import BinanceLoader, LoadRequest
from ingest.binance.parse import (
    kline_page_summary,
    parse_funding,
    parse_kline_pages,
    parse_klines,
    parse_open_interest,
)
from ingest.timeutil import Interval, day_start_us
from lake.store import Lake
from replay import ReplayServer

PARSERS = "fuzz-parsers"
API = "fuzz-api"
MUTATIONS = ("as-is", "truncate", "flip", "retype", "drop", "empty", "random-json",
             "random-bytes", "huge-number")  # fmt: skip
WEIRD: list[Any] = [None, "", "abc", 10**30, -1, 1.5e308, [], {}, "NaN", "-0", True, "1e999"]
DUMMY_KEY = "fuzz-dummy-key-0000"


# ------------------------------------------------------------------------------ mutations


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _containers(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, (dict, list)):
        if node:
            yield path
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            yield from _containers(value, (*path, key))


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


def mutate(body: bytes, kind: str, seed: int) -> bytes:
    """One deterministic mutation of a response body."""
    rng = random.Random(seed)
    if kind == "as-is" or (not body and kind not in ("random-json", "random-bytes")):
        return body
    if kind == "truncate":
        return body[: rng.randrange(len(body))]
    if kind == "flip":
        data = bytearray(body)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == "random-bytes":
        return rng.randbytes(rng.randint(0, 512))
    if kind == "random-json":
        choice = rng.choice([*WEIRD, [WEIRD], {"data": WEIRD}, [[1, 2], ["a"]]])
        return json.dumps(choice, allow_nan=True).encode()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[::-1]
    if kind in ("retype", "huge-number"):
        leaves = list(_leaves(document))
        if not leaves or leaves == [()]:
            return orjson.dumps(rng.choice(WEIRD))
        path = rng.choice(leaves)
        value = "9" * 400 if kind == "huge-number" else rng.choice(WEIRD)
        _at(document, path[:-1])[path[-1]] = value
    elif kind in ("drop", "empty"):
        containers = list(_containers(document))
        if not containers:
            return b"{}"
        path = rng.choice(containers)
        node = _at(document, path)
        if kind == "empty":
            node.clear()
        elif isinstance(node, dict):
            del node[rng.choice(list(node))]
        else:
            del node[rng.randrange(len(node))]
    return json.dumps(document, allow_nan=True).encode()


def oversize(body: bytes, size: int) -> bytes:
    """The response grown to about `size` bytes: its rows repeated, else padded."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (body * (size // max(len(body), 1) + 1))[:size]
    rows = document if isinstance(document, list) else None
    if isinstance(document, dict):
        rows = next((v for v in document.values() if isinstance(v, list) and v), None)
    if not rows:
        return b" " * size + body
    times = size // max(len(orjson.dumps(rows)) - 2, 1) + 1
    rows[:] = rows * times
    return orjson.dumps(document)


# ------------------------------------------------------------------------------ targets


@dataclass(frozen=True)
class Target:
    """Something that reads vendor bytes: a parser (one body) or a whole loader (every
    response of a load, mutated alike)."""

    name: str
    call: Callable[[Callable[[bytes], bytes]], object]


class Upstream:
    """Real responses from the replay server, cached, for the mutations to start from."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        self.cache: dict[str, httpx.Response] = {}
        self.statuses: Counter[int] = Counter()

    def get(self, path: str, params: Any = None, headers: Any = None) -> httpx.Response:
        request = self.client.build_request("GET", path, params=params, headers=headers)
        key = str(request.url) + repr(sorted(request.headers.items()))
        if key not in self.cache:
            self.cache[key] = self.client.send(request)
        self.statuses[self.cache[key].status_code] += 1
        return self.cache[key]

    def transport(self, change: Callable[[bytes], bytes]) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            # The request as the loader sent it (its key included), to the replay server.
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() not in ("host", "content-length", "accept-encoding")
            }
            real = self.get(request.url.path, params=request.url.params, headers=headers)
            headers = {k: v for k, v in real.headers.items()
                       if k.lower() not in ("content-length", "content-encoding")}  # fmt: skip
            return httpx.Response(real.status_code, headers=headers, content=change(real.content))

        return httpx.MockTransport(handle)

    def close(self) -> None:
        self.client.close()


# Fuzz clients retry once and never back off: the run stays fast.
_RETRY = RetryPolicy(backoff_base=0.0, backoff_max=0.0, max_retries=1, max_rate_limit_retries=1)


def _client(upstream: Upstream, change: Callable[[bytes], bytes], vendor: str) -> HttpClient:
    return HttpClient("http://fuzz.invalid", vendor=vendor, transport=upstream.transport(change),
                      sleep=lambda s: None, config=ClientConfig(retry=_RETRY))  # fmt: skip


def binance_targets(upstream: Upstream) -> list[Target]:
    start_ms = day_start_us(first_day(2)) // 1000
    pages = {
        "klines": ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m",
                                      "startTime": start_ms, "limit": 1000}),
        "funding": ("/fapi/v1/fundingRate", {"symbol": "BTCUSDT", "startTime": start_ms,
                                             "limit": 1000}),
        "oi": ("/futures/data/openInterestHist", {"symbol": "BTCUSDT", "period": "5m",
                                                  "startTime": start_ms,
                                                  "endTime": start_ms + 86_400_000,
                                                  "limit": 500}),
    }  # fmt: skip
    base = {name: upstream.get(path, params).content for name, (path, params) in pages.items()}
    common: dict[str, Any] = {"source": "rest", "ingested_at": NOW}

    def rows(body: bytes) -> Any:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return decoded if isinstance(decoded, list) else None

    def kline_csv(body: bytes) -> bytes:
        decoded = rows(base["klines"]) or []
        text = "\n".join(",".join(str(v) for v in row) for row in decoded).encode()
        return body if body != base["klines"] else text

    def on_rows(parser: Callable[..., Any], name: str, **options: Any) -> Target:
        def call(change: Callable[[bytes], bytes]) -> None:
            decoded = rows(change(base[name]))
            if decoded is not None:
                parser(decoded, **options, **common)

        return Target(f"binance.{parser.__name__}", call)

    def loader(dataset: str, interval: str | None) -> Target:
        def call(change: Callable[[bytes], bytes]) -> None:
            with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
                client = _client(upstream, change, "binance")
                try:
                    day = NOW.date() - timedelta(days=1)
                    BinanceLoader(Lake(Path(tmp) / "lake"), Path(tmp) / "raw", spot=client,
                                  futures=client, archive=None, now=NOW).load(
                        LoadRequest(dataset, "BTCUSDT", interval, day, day))  # fmt: skip
                finally:
                    client.close()

        return Target(f"binance.loader.{dataset}", call)

    kline: dict[str, Any] = {"dataset": "spot_klines", "interval_us": 60_000_000}
    return [
        Target("binance.parse_kline_pages",
               lambda change: parse_kline_pages([change(base["klines"])], **kline, **common)),
        Target("binance.kline_page_summary",
               lambda change: kline_page_summary(change(base["klines"]))),
        on_rows(parse_klines, "klines", **kline),
        on_rows(parse_funding, "funding", symbol="BTCUSDT"),
        on_rows(parse_open_interest, "oi", symbol="BTCUSDT", period_us=300_000_000),
        Target("binance.parse_archive_csv",
               lambda change: parse_archive_csv("spot-klines", change(kline_csv(base["klines"])),
                                                symbol="BTCUSDT", interval=Interval.parse("1m"),
                                                ingested_at=NOW)),
        loader("spot-klines", "1m"),
        loader("funding", None),
        loader("open-interest", "5m"),
    ]  # fmt: skip


def vendor_targets(upstream: Upstream) -> list[Target]:
    """One loader target per vendor of the registry, every dataset, two days."""
    try:
        from ingest.vendors import VENDORS
        from ingest.vendors.base import VendorContext, build_client
    except ImportError:
        return []
    targets = []
    for spec in VENDORS.values():

        def call(change: Callable[[bytes], bytes], spec: Any = spec) -> object:
            factory = partial(HttpClient, transport=upstream.transport(change),
                              sleep=lambda s: None)  # fmt: skip
            client = build_client(spec, DUMMY_KEY, base_url="http://fuzz.invalid",
                                  client_factory=factory,
                                  config=replace(spec.client, retry=_RETRY))  # fmt: skip
            with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
                try:
                    context = VendorContext(
                        spec=spec, client=client, lake=Lake(Path(tmp) / "lake"),
                        raw_root=Path(tmp) / "raw", now=NOW, config={},
                        start=first_day(2), end=NOW.date(), datasets=tuple(spec.datasets),
                    )  # fmt: skip
                    return spec.make_loader(context).load()
                finally:
                    client.close()

        targets.append(Target(f"{spec.name}.loader", call))
    return targets


@contextmanager
def all_targets() -> Iterator[tuple[list[Target], Upstream]]:
    with ReplayServer(market(3), now=NOW) as url:
        upstream = Upstream(url)
        try:
            yield [*binance_targets(upstream), *vendor_targets(upstream)], upstream
        finally:
            upstream.close()


# ------------------------------------------------------------------------------ the drill


def fuzz_target(target: Target, examples: int, seed: int) -> tuple[Counter[str], list[str]]:
    """Outcomes (ok / known error class) and crashes of `examples` mutated inputs."""
    outcomes: Counter[str] = Counter()
    crashes: list[str] = []

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(kind=st.sampled_from(MUTATIONS), mutation_seed=st.integers(0, 2**32 - 1))
    def attempt(kind: str, mutation_seed: int) -> None:
        try:
            result = target.call(partial(mutate, kind=kind, seed=mutation_seed))
            # A vendor loader answers with a report: ok, or failed with a known reason.
            outcomes[f"report {result.status}" if hasattr(result, "status") else "ok"] += 1
        except BtcfsError as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:
            outcomes["CRASH"] += 1
            crashes.append(f"{target.name} {kind} seed={mutation_seed}: {exc!r}\n"
                           + traceback.format_exc()[-1500:])  # fmt: skip

    attempt()
    return outcomes, crashes


def peak_memory(name: str, size: int) -> dict[str, Any]:
    """Run one oversized payload through `name` in a child: peak RSS growth (MiB)."""
    proc = subprocess.run(
        [sys.executable, "-m", "drills.fuzz", "--oversized", name, "--size", str(size)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return {"error": (proc.stdout + proc.stderr)[-1500:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_kib() -> int:
    """Reset the peak-RSS mark (Linux: clear_refs 5) and return the current RSS in KiB.

    ru_maxrss will not do: it carries the parent's RSS at fork over the exec, so a child of a
    big process would show no growth at all."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        rss = _status_kib("VmRSS")
        if rss is not None:
            return rss
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_kib() -> int:
    peak = _status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child_oversized(name: str, size: int) -> None:
    with all_targets() as (targets, _):
        target = next(t for t in targets if t.name == name)
        target.call(lambda body: body)  # warm: imports and caches are not the payload's
        before = _reset_peak_kib()
        outcome = "ok"
        try:
            result = target.call(partial(oversize, size=size))
            if hasattr(result, "status"):
                outcome = f"report {result.status}"
        except BtcfsError as exc:
            outcome = type(exc).__name__
        peak = _peak_kib()
    print(json.dumps({"outcome": outcome, "growth_mib": round((peak - before) / 1024, 1),
                      "payload_mib": round(size / 2**20, 1)}))  # fmt: skip


#: Peak memory growth allowed per byte of an oversized payload (parsing into Python objects
#: and Arrow arrays costs a small multiple); above it, or above the cap, is "unbounded".
MEMORY_FACTOR = 40
MEMORY_CAP_MIB = 3072


def parsers_drill(ctx: Context) -> Record:
    record = Record(PARSERS, "hostile payloads into every vendor parser and loader")
    # Each refused payload is a logged warning (retry, quarantine): thousands of lines here.
    logging.getLogger("ingest").setLevel(logging.ERROR)
    examples = 15 if ctx.quick else 150
    size = (2 if ctx.quick else 32) << 20
    results: dict[str, Any] = {}
    with all_targets() as (targets, upstream):
        vendors = sorted({t.name.split(".")[0] for t in targets})
        record.tried_(f"{len(targets)} targets from {len(vendors)} vendors ({', '.join(vendors)});"
                      f" {examples} hypothesis examples each over mutations "
                      f"{', '.join(MUTATIONS)}")  # fmt: skip
        for target in targets:
            upstream.statuses.clear()
            outcomes, crashes = fuzz_target(target, examples, ctx.seed)
            served = dict(sorted(upstream.statuses.items()))
            results[target.name] = {"outcomes": dict(outcomes), "crashes": crashes[:5],
                                    "upstream_statuses": served}  # fmt: skip
            record.expect(not crashes, f"{target.name}: {dict(outcomes)}; replay served {served}")
            for crash in crashes[:3]:
                record.found_(crash)
    record.tried_(f"an oversized payload ({size >> 20} MiB) through each target, in a child")
    for name in results:
        memory = peak_memory(name, size)
        results[name]["oversized"] = memory
        growth = memory.get("growth_mib")
        bounded = growth is not None and growth <= min(MEMORY_FACTOR * size / 2**20, MEMORY_CAP_MIB)
        record.expect(bounded, f"{name}: {memory}")
    record.figures = {"examples_per_target": examples, "oversized_mib": size >> 20,
                      "targets": results}  # fmt: skip
    return record


def _schemathesis_cases(
    operation: Any, mode: Any, examples: int, statuses: Counter[int], problems: list[str]
) -> None:
    from hypothesis.errors import Unsatisfiable
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    label = f"{operation.method.upper()} {operation.path} ({mode.value})"

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        # Schema-valid requests the API rightly refuses (start after end, a horizon no model
        # serves) would fail positive_data_acceptance: as in tests/api, every other check runs.
        try:
            response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
            statuses[response.status_code] += 1
        except Exception as exc:
            problems.append(f"{label}: {str(exc)[:600]}")

    with contextlib.suppress(Unsatisfiable):  # no parameters or body to make invalid
        run()


def api_drill(ctx: Context) -> Record:
    """Schemathesis over every operation, positive and negative, on the published pipeline."""
    import schemathesis

    from api.app import create_app
    from api.settings import ApiSettings
    from drills._api import published

    record = Record(API, "schemathesis over every API operation")
    examples = 10 if ctx.quick else 100
    # Always the real pipeline: the quick mode's hand-made marts lack the columns routes read.
    pipeline = published(ctx.work / "pipeline", quick=False)
    state = ctx.work / "paper.sqlite"
    app = create_app(ApiSettings.from_env(pipeline.env(BTCFS_STATE_DB=str(state))))
    schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app)
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    operations = 0
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if operation.path == "/v1/stream":
            continue  # never ends by design (tests/api covers it against a live server)
        operations += 1
        for mode in modes:
            _schemathesis_cases(operation, mode, examples, statuses, problems)
    record.tried_(f"{operations} operations (all but the stream), {examples} positive and "
                  f"{examples} negative cases each, from /docs/openapi.json")  # fmt: skip
    record.found_(f"{sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    record.expect(not [s for s in statuses if s >= 500], "no 5xx")
    record.expect(not problems, f"{len(problems)} check failures (spec, status, schema)")
    for problem in problems[:5]:
        record.found_(problem)
    record.figures = {"operations": operations, "examples": examples,
                      "statuses": {str(k): v for k, v in statuses.items()},
                      "problems": problems[:20]}  # fmt: skip
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description="oversized-payload child of the fuzz drill")
    parser.add_argument("--oversized", required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()
    _child_oversized(args.oversized, args.size)


if __name__ == "__main__":
    main()
