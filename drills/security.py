"""The security drill: the attacks of the security review (docs/security.md), replayed against a
live `btcfs serve` of a published warehouse, each reported refused or not."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

from drills._api import published
from drills._common import BIN, REPO, Context, Record
from tests.ingest.recorder import Recorder

NAME = "security"
TOKEN = "drill-admin-token-0123456789"  # noqa: S105 (the drill's own server)
#: Fake vendor keys the served API holds: none may ever reach a listener.
KEYS = {
    "COINGLASS_API_KEY": "drill-coinglass-key-5f1d2a7c",
    "COINAPI_KEY": "drill-coinapi-key-9b3e4c1d",
    "FRED_API_KEY": "drill-fred-key-2c8a6f0e",
    "ALPHA_VANTAGE_API_KEY": "drill-alphavantage-key-7d4b1e9a",
    "CRYPTOQUANT_API_KEY": "drill-cryptoquant-key-3a6c8e2f",
}
EVIL = "http://evil.example"
#: What an ingest job sent to a caller's (loopback) host holds instead of a real key.
PLACEHOLDER = "btcfs-replay-placeholder"
_TIMEOUT = 30.0


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _jobs(url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/v1/jobs", params={"limit": 200}, headers=_auth(), timeout=_TIMEOUT)
    answer.raise_for_status()
    jobs: list[dict[str, Any]] = answer.json()["jobs"]
    return jobs


def _refused(record: Record, what: str, response: httpx.Response, *codes: int) -> bool:
    return record.expect(
        response.status_code in codes,
        f"{what}: {response.status_code} (refused with {'/'.join(map(str, codes))} expected)",
    )


def _wait_job(url: str, job_id: int, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = httpx.get(
            f"{url}/v1/jobs/{job_id}", params={"lines": 200}, headers=_auth(), timeout=_TIMEOUT
        ).json()
        if job["state"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def job_input(record: Record, url: str, listener: Recorder) -> None:
    """Item 1 and 2: caller strings never reach dbt's SQL, caller hosts never hear a key."""
    before = len(_jobs(url))
    injected = "BTCUSDT') and error(cast(read_text('/etc/hostname') as varchar)) --"
    attempts: dict[str, dict[str, Any]] = {
        "SQL in the symbols var": {"symbols": [injected]},
        "the lake_root var": {"lake_root": "/etc"},
        "a gate-loosening var (gap_ratio_max)": {"gap_ratio_max": 1.0},
        "a gate-loosening var (allow_known_halts)": {"allow_known_halts": True},
        "gate_window_days beyond its range": {"gate_window_days": -5},
    }
    for what, variables in attempts.items():
        record.tried_(f"POST /v1/jobs build with {what}")
        answer = httpx.post(
            f"{url}/v1/jobs",
            headers=_auth(),
            timeout=_TIMEOUT,
            json={"pipeline": "build", "params": {"vars": variables}},
        )
        _refused(record, f"build job with {what}", answer, 422)
    record.tried_(f"POST /v1/jobs ingest with base_url {listener.url} (overrides off)")
    answer = httpx.post(
        f"{url}/v1/jobs",
        headers=_auth(),
        timeout=_TIMEOUT,
        json={"pipeline": "ingest", "params": {"base_url": listener.url}},
    )
    _refused(record, "ingest job with a caller's base_url", answer, 422)
    record.expect(len(_jobs(url)) == before, "no job was created by a refused request")


def loopback_override(record: Record, url: str, listener: Recorder) -> None:
    """With overrides enabled: loopback only, and the listener hears placeholder keys only."""
    record.tried_("POST /v1/jobs ingest with base_url on the network (overrides on)")
    answer = httpx.post(
        f"{url}/v1/jobs",
        headers=_auth(),
        timeout=_TIMEOUT,
        json={"pipeline": "ingest", "params": {"base_url": "http://192.0.2.2:8080"}},
    )
    _refused(record, "a base_url off loopback", answer, 422)
    record.tried_(f"an ingest job against a recording listener at {listener.url}")
    answer = httpx.post(
        f"{url}/v1/jobs",
        headers=_auth(),
        timeout=_TIMEOUT,
        json={"pipeline": "ingest", "params": {"base_url": listener.url, "archive": "none"}},
    )
    if not record.expect(
        answer.status_code == 202, f"the loopback job started ({answer.status_code})"
    ):
        return
    job = _wait_job(url, answer.json()["id"])
    record.found_(
        f"job {job['id']} ended {job['state']}; the listener got {len(listener.seen)} requests"
    )
    placeholder = [seen.path.split("?")[0] for seen in listener.seen if PLACEHOLDER in seen.text()]
    record.expect(
        bool(placeholder),
        f"{len(placeholder)} vendor requests carried the placeholder "
        f"key instead (e.g. {placeholder[:3]})",
    )
    leaked = listener.carried(*KEYS.values())
    record.expect(not leaked, f"no real vendor key reached the caller's host ({len(leaked)} did)")


def redirects(record: Record, listener: Recorder) -> None:
    """Every vendor's client, redirected by its host to another: the key stays behind."""
    from ingest.vendors import VENDORS
    from ingest.vendors.base import build_client

    key = "drill-redirected-key-4e2a9c"

    def moved(_: str) -> tuple[int, dict[str, str], bytes]:
        return 302, {"Location": f"{listener.url}/landing?k={key}"}, b""

    for vendor in sorted(VENDORS):
        with Recorder("127.0.0.1", moved) as vendor_host:
            client = build_client(VENDORS[vendor], key, base_url=vendor_host.url)
            record.tried_(f"{vendor}: its host answers 302 to {listener.url}")
            with client:
                try:
                    client.get_json("/first", {"symbol": "BTC"})
                except Exception as exc:  # the listener's 404 ends it; the key is the point
                    record.found_(f"{vendor}: {type(exc).__name__}")
        record.expect(not listener.carried(key), f"{vendor}: the redirect carried no key")


def web(record: Record, url: str) -> None:
    """Item 3 and 8: foreign Host, cross-site writes, non-JSON bodies, deep JSON, echoes."""
    record.tried_("GET /health with Host: evil.example (DNS rebinding)")
    _refused(
        record,
        "a foreign Host",
        httpx.get(f"{url}/health", headers={"Host": "evil.example"}, timeout=_TIMEOUT),
        400,
    )
    count = httpx.get(f"{url}/v1/paper/positions", timeout=_TIMEOUT).json()["total"]
    body = '{"symbol": "BTCUSDT", "side": "long", "amount_usd": 100}'
    writes: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
        ("cross-site text/plain write (no preflight)",
         {"content": body, "headers": {"content-type": "text/plain", "Origin": EVIL}}, (403, 415)),
        ("form-encoded write",
         {"data": {"symbol": "BTCUSDT", "side": "long", "amount_usd": "100"}}, (415,)),
        ("cross-site JSON write (Origin: evil.example)",
         {"content": body, "headers": {"content-type": "application/json", "Origin": EVIL}},
         (403,)),
    ]  # fmt: skip
    for what, request, codes in writes:
        record.tried_(f"a {what} to POST /v1/paper/positions")
        answer = httpx.post(f"{url}/v1/paper/positions", timeout=_TIMEOUT, **request)
        _refused(record, what, answer, *codes)
    after = httpx.get(f"{url}/v1/paper/positions", timeout=_TIMEOUT).json()["total"]
    record.expect(after == count, f"no position was opened by a refused write ({count} -> {after})")
    record.tried_("a JSON body nested 10,000 levels deep to POST /v1/predict")
    deep = "[" * 10_000 + "]" * 10_000
    answer = httpx.post(
        f"{url}/v1/predict",
        content=deep,
        timeout=_TIMEOUT,
        headers={"content-type": "application/json"},
    )
    record.expect(400 <= answer.status_code < 500, f"deep JSON answers {answer.status_code}, a 4xx")
    record.tried_("GET /v1/bars?symbol=<20,000 characters>")
    answer = httpx.get(f"{url}/v1/bars", params={"symbol": "X" * 20_000}, timeout=_TIMEOUT)
    record.expect(
        400 <= answer.status_code < 500 and len(answer.content) < 4_000,
        f"an over-long parameter answers {answer.status_code} in {len(answer.content)} "
        "bytes (not echoed)",
    )
    page = httpx.get(f"{url}/", timeout=_TIMEOUT)
    csp = page.headers.get("content-security-policy", "")
    record.expect(
        "frame-ancestors 'none'" in csp and "script-src 'self'" in csp,
        "the dashboard carries a CSP (own scripts only, no framing)",
    )
    record.expect(
        page.headers.get("x-content-type-options") == "nosniff", "X-Content-Type-Options: nosniff"
    )


def job_records(record: Record, url: str) -> None:
    """Item 4: job rows, logs and cancel need the admin token."""
    for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/jobs/1"), ("DELETE", "/v1/jobs/1")):
        record.tried_(f"{method} {path} without the admin token")
        answer = httpx.request(method, f"{url}{path}", timeout=_TIMEOUT)
        _refused(record, f"{method} {path} without a token", answer, 401)


def streams(record: Record, url: str, cap: int) -> None:
    """Item 8: SSE subscribers per client are capped."""
    record.tried_(f"{cap + 1} event streams from one client (cap {cap})")
    with httpx.Client(timeout=_TIMEOUT) as client:
        opened = []
        try:
            for _ in range(cap):
                stream = client.stream("GET", f"{url}/v1/stream")
                opened.append(stream)
                stream.__enter__()
            extra = httpx.get(f"{url}/v1/stream", timeout=_TIMEOUT)
            _refused(record, f"stream number {cap + 1}", extra, 429)
        finally:
            for stream in opened:
                stream.__exit__(None, None, None)


def short_token(record: Record, env: dict[str, str]) -> None:
    """Item 8: a short admin token stops the server before it listens."""
    token = "short-token"  # noqa: S105 (refused by design)
    record.tried_(f"btcfs serve with a {len(token)}-character admin token")
    proc = subprocess.run(
        [str(BIN / "btcfs"), "serve", "--port", "9"],
        cwd=REPO,
        timeout=120,
        check=False,
        env={**env, "BTCFS_ADMIN_TOKEN": token},
        capture_output=True,
        text=True,
    )
    said = (proc.stdout + proc.stderr).strip().splitlines()
    record.expect(
        proc.returncode != 0 and token not in proc.stdout + proc.stderr,
        f"refused to start (exit {proc.returncode}): {said[-1] if said else ''}",
    )


def drill(ctx: Context) -> Record:
    from drills._api import live_server

    record = Record(NAME, "the security review's attacks against a served warehouse")
    pipeline = published(ctx.work / "pipeline", quick=ctx.quick)
    cap = 2
    env: dict[str, str] = {
        **KEYS,
        "BTCFS_ADMIN_TOKEN": TOKEN,
        "BTCFS_STATE_DB": str(ctx.work / "state.sqlite"),
        "BTCFS_API_SSE_MAX_PER_CLIENT": str(cap),
    }
    steps: list[Callable[[str, Recorder], None]] = [
        lambda url, listener: job_input(record, url, listener),
        lambda url, _: job_records(record, url),
        lambda url, _: web(record, url),
        lambda url, _: streams(record, url, cap),
    ]
    with Recorder("127.0.0.2") as listener:
        with live_server(pipeline, **env) as (url, _):
            for step in steps:
                step(url, listener)
        with live_server(pipeline, **env, BTCFS_API_ALLOW_BASE_URL="1") as (url, _):
            loopback_override(record, url, listener)
        listener.seen.clear()
        redirects(record, listener)
    short_token(record, pipeline.env(**env))
    record.figures = {"refused": len(record.found), "not_refused": len(record.failures)}
    record.found_(json.dumps(record.figures))
    return record
