"""`make demo`: run the whole pipeline offline against the replay server's synthetic market.

Starts `btcfs replay serve` on a free loopback port, then runs the pipeline's steps
(pipeline.run, the functions the jobs worker and `btcfs run` use): lands every dataset in
the lake (`btcfs ingest all`), shows `btcfs lake status`, builds the dbt warehouse and checks
its QA gates (`dbt build`, `btcfs qa`), trains a model per symbol (`btcfs train`: registry +
HTML report; BTCUSDT and ETHUSDT) and a triple-barrier classifier, publishes the warehouse
(`btcfs publish`), stops the replay server and ends with the API serving it (`btcfs serve`,
in the foreground).
With CI=true or --no-serve it starts the API, checks it answers, prints the URLs and stops.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from core.settings import DataPaths
from pipeline import run as steps
from pipeline.params import BuildParams, IngestParams, TrainParams
from pipeline.run import Context, StepFailed, TerminalRunner

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEED = 7
# Features publish after their 31-day warm-up: 80 days leave about 49 days of training rows.
DAYS = 80


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(
    url: str, server: subprocess.Popen[bytes], timeout_s: float = 60, path: str = "/api/v3/ping"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"{url} exited with code {server.returncode}")
        try:
            httpx.get(f"{url}{path}", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout_s:.0f} s")


def vendor_env(url: str) -> dict[str, str]:
    """The environment that points every registered vendor at the replay server, with a
    dummy key (any non-empty key is accepted there): a real key in the caller's environment
    is never sent anywhere."""
    from ingest.vendors import VENDORS

    env: dict[str, str] = {}
    for spec in VENDORS.values():
        env[spec.base_url_env] = url
        if spec.env_key is not None:
            env[spec.env_key] = f"demo-{spec.name}-key"
        for host in spec.hosts:
            env[host.base_url_env] = url
    return env


def title(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> None:
    os.environ.setdefault("BTCFS_DATA_DIR", str(ROOT / "data"))
    os.environ.setdefault("DBT_PROFILES_DIR", str(ROOT / "profiles"))
    os.environ.setdefault("DBT_TARGET_PATH", str(ROOT / "target"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start = (datetime.now(UTC) - timedelta(days=DAYS)).date().isoformat()
    print(f"== replay server: synthetic market, seed {SEED}, from {start}, at {url}", flush=True)
    server = subprocess.Popen(
        [str(BIN / "btcfs"), "replay", "serve", "--port", str(port),
         "--synthetic", "--seed", str(SEED), "--start", start],
        cwd=ROOT,
    )  # fmt: skip
    os.environ.update(vendor_env(url))
    try:
        wait_until_up(url, server)
        runner, context = TerminalRunner(cwd=ROOT), Context.from_env()
        title("ingest")
        steps.ingest(runner, context, IngestParams(config="config/demo.yml", base_url=url))
        title("lake status")
        runner.command(context.commands.exe("btcfs"), "lake", "status")
        if (ROOT / "dbt_project.yml").exists():
            title("dbt build")
            steps.build(runner, context, BuildParams())
            title("QA gates")
            steps.qa(runner, context)
            title("train")
            steps.train(runner, context, TrainParams(promote=False))
            title("train (triple-barrier classifier)")
            classifier = TrainParams(target="tb_label", model="btcusdt_5m_tb", promote=False)
            steps.train(runner, context, classifier)
            title("train ETHUSDT (one model per symbol)")
            steps.train(runner, context, TrainParams(symbol="ETHUSDT", promote=False))
            title("publish")
            steps.publish(runner, context)
    except StepFailed as exc:
        raise SystemExit(f"demo stopped: {exc}") from None
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"\nDone. The lake is in {DataPaths.from_env().lake}; "
        "`make shell` opens the warehouse; `btcfs models list` shows the trained model."
    )
    if (ROOT / "dbt_project.yml").exists():
        serve_api(foreground="--no-serve" not in sys.argv and os.environ.get("CI") != "true")


def api_port() -> int:
    """$BTCFS_API_PORT (default 8000), or a free port when that one is taken."""
    wanted = int(os.environ.get("BTCFS_API_PORT") or 8000)
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            print(f"(port {wanted} is taken: using another one)")
            return free_port()
    return wanted


def serve_api(*, foreground: bool) -> None:
    """`btcfs serve`: in the foreground until Ctrl-C, or started, checked and stopped."""
    port = api_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "btcfs"), "serve", "--port", str(port)]
    print(f"\n== API\n$ {' '.join(command)}", flush=True)
    api = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_until_up(url, api, path="/health")
        print(
            f"\nThe API is serving {DataPaths.from_env().warehouse}/serve.duckdb:\n"
            f"  dashboard     {url}/\n"
            f"  API docs      {url}/docs\n"
            f"  health        {url}/health\n"
            f"  prediction    {url}/v1/predictions/latest?symbol=BTCUSDT (or ETHUSDT)\n"
            f"  forecast      {url}/v1/forecast?symbol=BTCUSDT&steps=12\n"
            f"  live stream   {url}/v1/stream\n",
            flush=True,
        )
        if not foreground:
            latest = httpx.get(f"{url}/v1/predictions/latest", timeout=30)
            print(f"GET /v1/predictions/latest -> {latest.status_code}", flush=True)
            return
        print("Ctrl-C stops it; `make serve` starts it again.", flush=True)
        api.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if api.poll() is None:
            api.terminate()
            api.wait(timeout=15)


if __name__ == "__main__":
    main()
