"""`make demo`: run the whole pipeline offline against the replay server's synthetic market.

Starts `btcfs replay serve` on a free loopback port, then runs the pipeline's steps
(pipeline.run, the functions the jobs worker and `btcfs run` use): lands every dataset in
the lake (`btcfs ingest all`), shows `btcfs lake status`, builds the dbt warehouse and checks
its QA gates (`dbt build`, `btcfs qa`), trains a model per symbol (`btcfs train`: registry +
HTML report; BTCUSDT and ETHUSDT) and a triple-barrier classifier, publishes the warehouse
(`btcfs publish`), and ends live: `btcfs live --port` follows the replay server, which runs
on the real clock, landing each bar as it closes, publishing each 5m bar and serving the API
and dashboard (in the foreground, until Ctrl-C).
With CI=true or --no-serve it starts live, waits until it follows the market, checks the API
answers, prints the URLs and stops.
"""

from __future__ import annotations

import os
import signal
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
        print(
            f"\nDone. The lake is in {DataPaths.from_env().lake}; "
            "`make shell` opens the warehouse; `btcfs models list` shows the trained model."
        )
        if (ROOT / "dbt_project.yml").exists():
            go_live(url, foreground="--no-serve" not in sys.argv and os.environ.get("CI") != "true")
    except StepFailed as exc:
        raise SystemExit(f"demo stopped: {exc}") from None
    finally:
        server.terminate()
        server.wait(timeout=10)


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


def go_live(replay_url: str, *, foreground: bool) -> None:
    """`btcfs live --port P` against the replay server, which follows the real clock: it lands
    each bar as it closes, publishes each 5m bar, and serves the API. In the foreground until
    Ctrl-C; else (CI=true, --no-serve) started, checked while it follows, and stopped."""
    port = api_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "btcfs"), "live", "--config", "config/demo.yml",
               "--base-url", replay_url, "--port", str(port)]  # fmt: skip
    print(f"\n== live\n$ {' '.join(command)}", flush=True)
    live = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_until_up(url, live, timeout_s=300, path="/health")
        print(
            f"\nbtcfs live keeps {DataPaths.from_env().warehouse}/serve.duckdb current "
            "(a bar as it closes, a publish at each 5m close) and serves it:\n"
            f"  dashboard     {url}/\n"
            f"  API docs      {url}/docs\n"
            f"  health        {url}/health\n"
            f"  prediction    {url}/v1/predictions/latest?symbol=BTCUSDT (or ETHUSDT)\n"
            f"  forecast      {url}/v1/forecast?symbol=BTCUSDT&steps=12\n"
            f"  live stream   {url}/v1/stream\n",
            flush=True,
        )
        if not foreground:
            state = wait_following(live)
            print(f"btcfs live: {state}", flush=True)
            latest = httpx.get(f"{url}/v1/predictions/latest", timeout=30)
            print(f"GET /v1/predictions/latest -> {latest.status_code}", flush=True)
            return
        print("Ctrl-C stops it; `btcfs live --port PORT` starts it again.", flush=True)
        live.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if live.poll() is None:
            live.send_signal(signal.SIGTERM)
            try:
                live.wait(timeout=60)
            except subprocess.TimeoutExpired:
                live.kill()


def wait_following(live: subprocess.Popen[bytes], timeout_s: float = 600) -> str:
    """The live loop's status once it has caught up and follows the market."""
    from pipeline.live_state import read_state

    path = DataPaths.from_env().live_state
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and live.poll() is None:
        state = read_state(path)
        if state is not None and state.status in ("following", "degraded"):
            return state.status + ("" if not state.reasons else f" ({'; '.join(state.reasons)})")
        time.sleep(0.5)
    raise SystemExit(f"btcfs live did not start following within {timeout_s:.0f} s")


if __name__ == "__main__":
    main()
