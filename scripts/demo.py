"""`make demo`: run the whole pipeline offline against the replay server's synthetic market.

Starts `btcfs replay serve` on a free loopback port, lands every dataset in the lake with
`btcfs ingest all`, shows `btcfs lake status`, builds the dbt warehouse, prints its QA gates
(`btcfs qa`), trains a model (`btcfs train`: registry + HTML report), and stops the server.
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

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEED = 7
# Features publish after ~2 x their 30-day windows: 80 days leave ~20 days of training rows.
DAYS = 80


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"replay server exited with code {server.returncode}")
        try:
            httpx.get(f"{url}/api/v3/ping", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"replay server at {url} did not come up within {timeout_s:.0f} s")


def step(title: str, *command: str) -> None:
    print(f"\n== {title}\n$ {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo stopped: `{' '.join(command)}` exited with {result.returncode}")


def main() -> None:
    os.environ.setdefault("BTCFS_DATA_DIR", str(ROOT / "data"))
    os.environ.setdefault("DBT_PROFILES_DIR", str(ROOT / "profiles"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start = (datetime.now(UTC) - timedelta(days=DAYS)).date().isoformat()
    print(f"== replay server: synthetic market, seed {SEED}, from {start}, at {url}", flush=True)
    server = subprocess.Popen(
        [str(BIN / "btcfs"), "replay", "serve", "--port", str(port),
         "--synthetic", "--seed", str(SEED), "--start", start],
        cwd=ROOT,
    )  # fmt: skip
    try:
        wait_until_up(url, server)
        step("ingest", str(BIN / "btcfs"), "ingest", "all", "--config", "config/demo.yml",
             "--base-url", url)  # fmt: skip
        step("lake status", str(BIN / "btcfs"), "lake", "status")
        if (ROOT / "dbt_project.yml").exists():
            # DuckDB creates the file, not its folder.
            (Path(os.environ["BTCFS_DATA_DIR"]) / "warehouse").mkdir(parents=True, exist_ok=True)
            step("dbt build", str(BIN / "dbt"), "build")
            step("QA gates", str(BIN / "btcfs"), "qa")
            step("train", str(BIN / "btcfs"), "train")
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"\nDone. The lake is in {os.environ['BTCFS_DATA_DIR']}/lake; "
        "`make shell` opens the warehouse; `btcfs models list` shows the trained model."
    )


if __name__ == "__main__":
    main()
