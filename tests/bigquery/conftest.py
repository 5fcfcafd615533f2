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

from collections.abc import Iterator

import pytest

from tests.bigquery.bqsupport import (
    BUCKET,
    CRUCIBLE,
    GCS_EMULATOR,
    LAKE_DAYS,
    LAKE_START,
    PROJECT,
    EmulatorBuild,
    create_bucket,
    dbt_process,
    finish,
    free_port,
    lakefixtures,
    serve,
)
from warehouse import bigquery as btcfs_bq
from warehouse import gcs


@pytest.fixture(scope="session")
def crucible(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A crucible BigQuery emulator on a free loopback port; its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(CRUCIBLE), "serve", "--dialect", "bigquery", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    url = f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets"
    with serve(command, url, "crucible", tmp_path_factory.mktemp("crucible")):
        yield endpoint


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gcp-storage-emulator (in memory) on a free loopback port; its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(GCS_EMULATOR), "start", "--host", "127.0.0.1", "--port", str(port),
               "--in-memory"]  # fmt: skip
    with serve(command, f"{endpoint}/storage/v1/b", "gcs", tmp_path_factory.mktemp("gcs")):
        yield endpoint


@pytest.fixture(scope="session")
def emulator_build(
    crucible: str, gcs_emulator: str, tmp_path_factory: pytest.TempPathFactory
) -> EmulatorBuild:
    root = tmp_path_factory.mktemp("emulator_build")
    lake = root / "lake"
    lakefixtures.land(lake, lakefixtures.synthetic_market(LAKE_START, LAKE_DAYS))
    port = int(crucible.rsplit(":", 1)[1])

    duck = dbt_process(root, "dev")  # DuckDB builds while the emulators load and BigQuery builds
    try:
        partitions = btcfs_bq.lake_partitions(lake)
        create_bucket(gcs_emulator, BUCKET)
        uploaded = gcs.upload_partitions(gcs.client(PROJECT, gcs_emulator), BUCKET, partitions)
        loaded = btcfs_bq.load_partitions(
            btcfs_bq.client(PROJECT, crucible), partitions, source="file"
        )
        finish(dbt_process(root, "bq_emulator", port), "dbt build --target bq_emulator")
    finally:
        finish(duck, "dbt build --target dev")
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
