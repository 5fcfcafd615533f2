"""Shared emulators and ONE BigQuery build per test session for tests/bigquery.

* `crucible`: the crucible BigQuery API emulator on a free loopback port.
* `gcs_emulator`: gcp-storage-emulator (a local GCS JSON/upload API) on a free loopback port.
* `emulator_build`: a synthetic 8-day lake uploaded to the GCS emulator and loaded into the
  BigQuery emulator's `raw` dataset partition by partition (`btcfs warehouse load-bq`'s code),
  then `dbt build --target bq_emulator`, while `dbt build --target dev` builds the same lake on
  DuckDB in parallel. The parity test, the trainer's reader and `btcfs publish --from bigquery`
  all read this one build (the two dbt builds are most of the suite's time).
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

import pytest

from btcfs import bigquery as btcfs_bq
from btcfs import gcs

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "warehouse"))

import lakefixtures  # noqa: E402

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
def _serve(
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


@pytest.fixture(scope="session")
def crucible(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A crucible BigQuery emulator on a free loopback port; its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(CRUCIBLE), "serve", "--dialect", "bigquery", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    url = f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets"
    with _serve(command, url, "crucible", tmp_path_factory.mktemp("crucible")):
        yield endpoint


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gcp-storage-emulator (in memory) on a free loopback port; its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(GCS_EMULATOR), "start", "--host", "127.0.0.1", "--port", str(port),
               "--in-memory"]  # fmt: skip
    with _serve(command, f"{endpoint}/storage/v1/b", "gcs", tmp_path_factory.mktemp("gcs")):
        yield endpoint


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


def _dbt(root: Path, target: str, port: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(DBT), "build", "--target", target, "--vars", DBT_VARS],
        cwd=REPO, env=dbt_env(root, target, port), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], what: str) -> str:
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


@pytest.fixture(scope="session")
def emulator_build(
    crucible: str, gcs_emulator: str, tmp_path_factory: pytest.TempPathFactory
) -> EmulatorBuild:
    root = tmp_path_factory.mktemp("emulator_build")
    lake = root / "lake"
    lakefixtures.land(lake, lakefixtures.synthetic_market(LAKE_START, LAKE_DAYS))
    port = int(crucible.rsplit(":", 1)[1])

    duck = _dbt(root, "dev")  # DuckDB builds while the emulators load and BigQuery builds
    try:
        partitions = btcfs_bq.lake_partitions(lake)
        create_bucket(gcs_emulator, BUCKET)
        uploaded = gcs.upload_partitions(gcs.client(PROJECT, gcs_emulator), BUCKET, partitions)
        loaded = btcfs_bq.load_partitions(
            btcfs_bq.client(PROJECT, crucible), partitions, source="file"
        )
        _finish(_dbt(root, "bq_emulator", port), "dbt build --target bq_emulator")
    finally:
        _finish(duck, "dbt build --target dev")
    return EmulatorBuild(
        endpoint=crucible,
        gcs_endpoint=gcs_emulator,
        root=root,
        lake=lake,
        duckdb_path=root / "warehouse" / "build.duckdb",
        bq_target_path=root / "target_bq_emulator",
        dev_target_path=root / "target_dev",
        uploaded=uploaded,
        loaded=loaded,
        partitions=partitions,
    )
