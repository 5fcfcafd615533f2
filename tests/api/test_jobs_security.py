"""Job input is data: dbt vars from a request never become SQL, and vendor keys never go to a
host a request named. Real HTTP against a real `btcfs serve`; stand-in foreign hosts are real
listeners (tests/ingest/recorder.py) that record every header and query they receive."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.jobs import JobStore
from api.settings import ApiSettings
from tests.api.jobfixtures import AUTH, NOW, REPO, SECRET, Api, api_server, environment
from tests.ingest.recorder import Recorder

#: One real-looking key per vendor: none may ever reach a recorder.
KEYS = {
    "COINGLASS_API_KEY": "cg-key-5d1e8a0b7c2f4e6a",
    "COINAPI_KEY": "coinapi-key-9f2b4c6d8e0a1b3c",
    "FRED_API_KEY": "fredkey0123456789abcdef01234567",
    "ALPHA_VANTAGE_API_KEY": "AVKEY7Q2W4E6R8T0",
    "CQ_TOKEN": "cq-token-a1b2c3d4e5f60718293a",
}
SECRETS = (*KEYS.values(), SECRET)
#: The attack of the issue: a symbol that closes the string and reads a file in dbt's DuckDB.
SQL_SYMBOL = "BTCUSDT') and error((select content from read_text('/etc/hostname'))) --"


def unauthorised(_: str) -> tuple[int, dict[str, str], bytes]:
    return 401, {"Content-Type": "application/json"}, b'{"message": "recorder: no vendor here"}'


def foreign_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # UDP: no packet is sent, a route is chosen
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def vendor_config(root: Path) -> Path:
    """One day of spot klines and every vendor, so each key would be used."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "ingest-vendors.yml"
    path.write_text(
        f"symbols: [BTCUSDT]\nstart: {(NOW - timedelta(days=1)).date().isoformat()}\n"
        "datasets:\n  - {dataset: spot-klines, interval: 1m}\n"
        "vendors:\n"
        "  coinglass: {days_back: 1, symbol: BTCUSDT, interval: 5m}\n"
        "  coinapi: {days_back: 1, symbols: [BINANCE_SPOT_BTC_USDT]}\n"
        "  fred: {days_back: 1, series: [DGS10]}\n"
        "  alphavantage: {days_back: 1, symbols: [SPY], throttle_retries: 0}\n"
        "  cryptoquant: {days_back: 5, endpoints: [netflow]}\n"
    )
    return path


@pytest.fixture(scope="module")
def locked_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server with its default, no vendor host from a request (shared: nothing here may
    start a job)."""
    root = tmp_path_factory.mktemp("locked")
    with api_server(root, BTCFS_API_ALLOW_BASE_URL="0", **KEYS) as api:
        yield api


def no_jobs(api: Api) -> bool:
    answer = httpx.get(f"{api.url}/v1/jobs", headers=AUTH, timeout=60)
    return answer.json()["jobs"] == []


def refused(api: Api, pipeline: str, params: dict[str, Any], named: str) -> str:
    answer = api.start(pipeline, params)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert named in body["detail"] and "\n" not in body["detail"], body
    return str(body["detail"])


# --------------------------------------------------------------------------- dbt vars


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"symbols": [SQL_SYMBOL]}, "vars.symbols[0]"),
        ({"symbols": ["btcusdt"]}, "vars.symbols[0]"),
        ({"symbols": ["BTCUSDT", "BTCUSDT"]}, "twice"),
        ({"symbols": "BTCUSDT"}, "vars.symbols"),
        ({"lake_root": "/etc"}, "unknown field `lake_root`"),
        ({"gap_ratio_max": 1}, "unknown field `gap_ratio_max`"),
        ({"imputed_share_max": 1}, "unknown field `imputed_share_max`"),
        ({"allow_known_halts": True}, "unknown field `allow_known_halts`"),
        ({"known_exchange_halts": []}, "unknown field `known_exchange_halts`"),
        ({"quarantine_error_rows": 10**9}, "unknown field `quarantine_error_rows`"),
        ({"funding_available_lag_seconds": 0}, "unknown field"),
        ({"base_interval": "1m' or 1=1 --"}, "unknown field `base_interval`"),
        ({"gate_window_days": 1}, "0 (all history) or 2 or more"),
        ({"gate_window_days": 100_000}, "vars.gate_window_days"),
        ({"gate_window_days": "2"}, "vars.gate_window_days"),
        ({"features_window_seconds": 90_000}, "whole days"),
        ({"labels_barrier_atr_multiple": "1.2) or (1"}, "labels_barrier_atr_multiple"),
    ],
)
def test_build_vars_outside_the_allow_list_are_refused(
    locked_api: Api, variables: dict[str, Any], named: str
) -> None:
    for pipeline, params in (
        ("build", {"vars": variables}),
        ("all", {"build": {"vars": variables}}),
    ):
        refused(locked_api, pipeline, params, named)
    assert no_jobs(locked_api)  # nothing ran


def test_the_allowed_vars_are_documented_in_the_openapi_schema(locked_api: Api) -> None:
    spec = httpx.get(f"{locked_api.url}/docs/openapi.json", timeout=60).json()
    schema = spec["components"]["schemas"]["BuildVars"]
    assert set(schema["properties"]) == {
        "symbols", "gate_window_days", "disable_incremental", "features_window_seconds",
        "labels_atr_bars", "labels_barrier_atr_multiple", "labels_vertical_barrier_bars",
    }  # fmt: skip
    assert "lake_root" in schema["description"] and "gap_ratio_max" in schema["description"]


def test_the_worker_refuses_vars_that_bypassed_the_api(tmp_path: Path) -> None:
    """A job row written without the API (or by an older one): dbt is never started."""
    store = JobStore(tmp_path / "state" / "paper.sqlite")
    job = store.create("build", {"vars": {"symbols": [SQL_SYMBOL]}})
    run_worker(tmp_path, job.id)
    done = store.get(job.id)
    assert done is not None and done.state == "failed", done
    assert "symbols" in (done.error or "")
    assert not any(line.startswith("$ ") for line in done.log_path.read_text().splitlines())


# --------------------------------------------------------------------------- vendor hosts


def test_base_url_is_off_unless_the_server_enables_it(locked_api: Api) -> None:
    assert ApiSettings.from_env({}).allow_base_url is False
    with Recorder("127.0.0.1", unauthorised) as foreign:
        config = str(vendor_config(locked_api.root))
        for pipeline, params, key in (
            ("ingest", {"config": config, "base_url": foreign.url}, "params.base_url"),
            ("ingest", {"config": config, "archive": foreign.url}, "params.archive"),
            ("all", {"ingest": {"base_url": foreign.url}}, "params.ingest.base_url"),
        ):
            detail = refused(locked_api, pipeline, params, key)
            assert "BTCFS_API_ALLOW_BASE_URL is off" in detail
        assert no_jobs(locked_api)
    assert foreign.seen == []


NOT_LOOPBACK = (
    "http://example.com",
    "https://10.0.0.1:8443/",
    "http://127.0.0.1@example.com/",
    "http://example.com\\@127.0.0.1/",
    "http://u:p@127.0.0.1/",
    "http://2130706433/",
    "http://0.0.0.0/",
    "http://localhost.example.com/",
)


def test_only_loopback_hosts_even_when_enabled(tmp_path: Path) -> None:
    with api_server(tmp_path, BTCFS_API_ALLOW_BASE_URL="1") as api:
        for url in NOT_LOOPBACK:
            refused(api, "ingest", {"base_url": url}, "params.base_url: ")
            refused(api, "all", {"ingest": {"archive": url}}, "params.ingest.archive: ")
        assert no_jobs(api)


def test_a_host_on_the_network_is_refused_and_hears_nothing(tmp_path: Path) -> None:
    address = foreign_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to listen on")
    with (
        Recorder(address, unauthorised) as foreign,
        api_server(tmp_path, BTCFS_API_ALLOW_BASE_URL="1", **KEYS) as api,
    ):
        config = str(vendor_config(tmp_path))
        refused(api, "ingest", {"config": config, "base_url": foreign.url}, "not a loopback host")
        assert no_jobs(api)
    assert foreign.seen == []


def test_an_allowed_loopback_host_never_receives_a_real_key(tmp_path: Path) -> None:
    """The issue's SSRF: every vendor's request goes to the named host, with a placeholder."""
    with (
        Recorder("127.0.0.2", unauthorised) as foreign,
        api_server(tmp_path, BTCFS_API_ALLOW_BASE_URL="1", **KEYS) as api,
    ):
        params = {"config": str(vendor_config(tmp_path)), "base_url": foreign.url}
        started = api.start("ingest", params)
        assert started.status_code == 202, started.text
        job = api.wait(started.json()["id"], timeout=300)
    assert job["state"] == "failed"  # 401 from every "vendor"
    paths = [seen.path for seen in foreign.seen]
    headers = {name.lower() for seen in foreign.seen for name, _ in seen.headers}
    # Every key placement was exercised: CoinGlass and CoinAPI headers, CryptoQuant's
    # bearer, FRED's and Alpha Vantage's query keys ...
    assert {"cg-api-key", "x-coinapi-key", "authorization"} <= headers, job["log"]
    assert any("api_key=" in path for path in paths) and any("apikey=" in path for path in paths)
    # ... and none of them carried a real one.
    assert foreign.carried(*SECRETS) == []
    assert all(value not in json.dumps(job) for value in SECRETS)


def test_the_worker_refuses_a_host_that_bypassed_the_api(tmp_path: Path) -> None:
    with Recorder("127.0.0.2", unauthorised) as foreign:
        store = JobStore(tmp_path / "state" / "paper.sqlite")
        job = store.create("ingest", {"base_url": foreign.url})
        run_worker(tmp_path, job.id, BTCFS_API_ALLOW_BASE_URL="0", **KEYS)
    done = store.get(job.id)
    assert done is not None and done.state == "failed"
    assert "refusing to ingest from" in (done.error or "")
    assert foreign.seen == []


def run_worker(root: Path, job_id: int, **env: str) -> None:
    """`python -m api.worker <id>` as the API starts it, to its end."""
    subprocess.run(
        [sys.executable, "-m", "api.worker", str(job_id)],
        cwd=REPO, env=environment(root, **env), timeout=300, check=False,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
