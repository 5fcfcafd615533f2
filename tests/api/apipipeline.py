"""One published warehouse for the API tests, built the real way once per session:
replay server (planted regime, BTCUSDT and ETHUSDT) -> `btcfs ingest all` -> `dbt build`
(tests/ml's helpers), a full `dbt build` for the marts the trainer does not need, `btcfs train`
(per symbol: a 5m forecaster, promoted when it passes its gates; for BTCUSDT also a
triple-barrier classifier), `btcfs publish`.

Also a real `btcfs serve` on a free loopback port for the tests that need a live server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ml.mlpipeline import BIN, REPO, SHORT_WINDOW_VARS, BuiltWarehouse, synthetic_warehouse

TRAIN_CONFIG = Path(__file__).resolve().parent / "train_fast.yml"
#: The served symbols: each gets its own model (ethusdt_5m beside btcusdt_5m).
SYMBOLS = ("BTCUSDT", "ETHUSDT")
ADMIN_TOKEN = "test-admin-token"
#: The Host names in-process clients send (Litestar's TestClient, schemathesis' ASGI
#: transport): an app they call must serve them (api.security refuses other Host headers).
IN_PROCESS_HOSTS = "testserver.local,testserver"


@dataclass(frozen=True)
class Pipeline:
    warehouse: BuiltWarehouse

    @property
    def root(self) -> Path:
        return self.warehouse.root

    @property
    def serve(self) -> Path:
        return self.root / "warehouse" / "serve.duckdb"

    def env(self, **extra: str) -> dict[str, str]:
        env = self.warehouse.env()
        env.update({"BTCFS_ADMIN_TOKEN": ADMIN_TOKEN, "BTCFS_API_WATCH_S": "0.2",
                    "BTCFS_API_ALLOWED_HOSTS": IN_PROCESS_HOSTS, **extra})  # fmt: skip
        return env

    def run(self, *command: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / command[0]), *command[1:]],
            cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
            )
        return proc

    def full_build(self) -> None:
        self.run(
            "dbt", "build", "--vars", SHORT_WINDOW_VARS, "--exclude-resource-type", "unit_test"
        )

    def publish(self) -> str:
        return self.run("btcfs", "publish").stdout


_BUILT: dict[str, Pipeline] = {}


def build_published(root: Path) -> Pipeline:
    """Replay -> ingest -> dbt -> train (forecasters + barrier classifier) -> publish."""
    pipeline = Pipeline(synthetic_warehouse(root, "planted", symbols=SYMBOLS))
    pipeline.full_build()
    config = str(TRAIN_CONFIG)
    pipeline.run("btcfs", "train", "--config", config, "--promote")
    pipeline.run("btcfs", "train", "--config", config, "--symbol", "ETHUSDT", "--promote")
    pipeline.run("btcfs", "train", "--config", config, "--target", "tb_label",
                 "--model", "btcusdt_5m_tb")  # fmt: skip
    pipeline.publish()
    return pipeline


def published_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The session's one published warehouse (built on first use)."""
    if "pipeline" not in _BUILT:
        _BUILT["pipeline"] = build_published(tmp_path_factory.mktemp("api_pipeline"))
    return _BUILT["pipeline"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(pipeline: Pipeline, **env: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`btcfs serve` on a free loopback port; yields its base URL and process."""
    port = free_port()
    log = (pipeline.root / f"serve-{port}.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "btcfs"), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=pipeline.env(**env), stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"btcfs serve exited: {Path(log.name).read_text()[-3000:]}")
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def open_files(pid: int) -> list[str]:
    """Paths a process holds open (Linux /proc)."""
    folder = Path(f"/proc/{pid}/fd")
    paths = []
    for fd in folder.iterdir():
        try:
            paths.append(os.readlink(fd))
        except OSError:
            continue
    return paths
