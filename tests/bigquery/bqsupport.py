"""Shared by tests/bigquery: emulator processes, dbt runs, the session build's record.

A module of its own, not conftest: the test modules import it as `tests.bigquery.bqsupport`
(conftest.py holds the fixtures).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from tests.warehouse import lakefixtures  # noqa: F401  (the lake the tests land; imported from here)
from warehouse import bigquery as btcfs_bq
from warehouse import gcs

REPO = Path(__file__).resolve().parents[2]

BIN = Path(sys.executable).parent
DBT = BIN / "dbt"
CRUCIBLE = BIN / "crucible"
GCS_EMULATOR = BIN / "gcp-storage-emulator"
PROJECT = "local-project"
DATASET = "btcfs"
BUCKET = "btcfs-lake"
DBT_VARS = json.dumps({"features_window_seconds": 2 * 86_400})
LAKE_START = date(2025, 1, 1)
LAKE_DAYS = 8


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_answers(
    url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{what} did not answer at {url} within {timeout} s")


@contextlib.contextmanager
def serve(
    command: list[str], url: str, what: str, log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    log = (log_dir / f"{what}.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_answers(url, proc, what)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def dbt_env(root: Path, target: str, port: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "BTCFS_"))}
    env.update(
        BTCFS_DATA_DIR=str(root),
        DBT_TARGET_PATH=str(root / f"target_{target}"),
        DBT_LOG_PATH=str(root / f"logs_{target}"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    if port is not None:
        env["BTCFS_BQ_EMULATOR_PORT"] = str(port)
    return env


def dbt_process(root: Path, target: str, port: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(DBT), "build", "--target", target, "--vars", DBT_VARS],
        cwd=REPO, env=dbt_env(root, target, port), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], what: str) -> str:
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"{what} failed:\n{output[-8000:]}"
    return output


@dataclass
class EmulatorBuild:
    """The session's one lake, its GCS copy, its raw tables and both dbt builds."""

    endpoint: str  # BigQuery emulator
    gcs_endpoint: str
    root: Path  # BTCFS_DATA_DIR of both builds
    lake: Path
    duckdb_path: Path  # the dev build
    bq_target_path: Path  # dbt's target folder of the bq_emulator build
    dev_target_path: Path
    uploaded: gcs.UploadResult
    loaded: btcfs_bq.LoadReport
    partitions: list[btcfs_bq.LakePartition]

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def client(self) -> Any:
        return btcfs_bq.client(PROJECT, self.endpoint)


def create_bucket(endpoint: str, name: str) -> None:
    storage = gcs.client(PROJECT, endpoint)
    if storage.lookup_bucket(name) is None:
        storage.create_bucket(name)
