"""Upload lake partitions to Google Cloud Storage, skipping those already there unchanged.

Objects mirror the lake: ``gs://<bucket>/<prefix>/<table>/symbol=…/[interval=…/]date=…/part-0.parquet``
(prefix ``raw``). Each object carries the partition's content hash in its custom metadata
(``data_sha256``, the MANIFEST's), so a rerun lists the table's objects once and uploads only
partitions whose hash differs: an unchanged lake uploads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from warehouse.connect import first_line

if TYPE_CHECKING:
    from google.cloud import storage  # type: ignore[attr-defined]

    from lake.schemas import Dataset

DEFAULT_PREFIX = "raw"
SHA_KEY = "data_sha256"


# What an upload needs of a raw table and of a finished lake partition, described here so that
# this module does not import the BigQuery loader (which imports it): `warehouse.bigquery`'s
# `RawTable` and `LakePartition` fit these shapes.
class RawTable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dataset(self) -> Dataset: ...


class LakePartition(Protocol):
    @property
    def table(self) -> RawTable: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def file(self) -> Path: ...

    @property
    def data_sha256(self) -> str: ...

    @property
    def rows(self) -> int | None: ...

    def verify(self) -> None: ...


class GCSError(Exception):
    """A failed upload (missing bucket, unreachable endpoint): one line, no traceback."""


@dataclass(frozen=True)
class UploadResult:
    uploaded: list[str]  # object names written in this run
    skipped: int  # partitions already in the bucket with the same data_sha256


def client(project: str | None, api_endpoint: str | None = None) -> storage.Client:
    """A GCS client; with `api_endpoint` (an emulator) anonymous credentials are used."""
    from google.cloud import storage  # type: ignore[attr-defined]

    if api_endpoint is None:
        return storage.Client(project=project)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return storage.Client(
        project=project or "local-project",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=api_endpoint),
    )


def path_key(table: RawTable, key: str) -> str:
    """A partition key's name in the object path: a key the file also holds as a column (the
    quarantine's `dataset`) is renamed, as a Hive-partitioned load refuses a key that
    collides with a file column."""
    return f"lake_{key}" if key in table.dataset.schema.names else key


def object_name(prefix: str, partition: LakePartition) -> str:
    table = partition.table
    path = "/".join(f"{path_key(table, k)}={v}" for k, v in partition.labels.items())
    return f"{prefix.strip('/')}/{table.name}/{path}/{partition.file.name}"


def uri(bucket: str, prefix: str, partition: LakePartition) -> str:
    return f"gs://{bucket}/{object_name(prefix, partition)}"


def _existing(gcs: storage.Client, bucket: str, prefix: str) -> dict[str, str | None]:
    """Object name -> its data_sha256 metadata, for every object under `prefix` (one listing)."""
    from google.api_core import exceptions

    try:
        blobs = list(gcs.list_blobs(bucket, prefix=prefix))
    except exceptions.NotFound:
        raise GCSError(f"bucket gs://{bucket} does not exist (create it first)") from None
    except exceptions.GoogleAPIError as exc:
        raise GCSError(f"cannot list gs://{bucket}/{prefix}: {first_line(exc)}") from None
    return {blob.name: (blob.metadata or {}).get(SHA_KEY) for blob in blobs}


def upload_partitions(
    gcs: storage.Client,
    bucket: str,
    partitions: Iterable[LakePartition],
    *,
    prefix: str = DEFAULT_PREFIX,
    dry_run: bool = False,
) -> UploadResult:
    """Upload each partition whose object is missing or holds other data; verify files first."""
    from google.api_core import exceptions

    by_table: dict[str, list[LakePartition]] = {}
    for partition in partitions:
        by_table.setdefault(partition.table.name, []).append(partition)
    uploaded: list[str] = []
    skipped = 0
    target = gcs.bucket(bucket)
    for table, parts in by_table.items():
        present: Mapping[str, Any] = _existing(gcs, bucket, f"{prefix.strip('/')}/{table}/")
        for partition in parts:
            name = object_name(prefix, partition)
            if present.get(name) == partition.data_sha256:
                skipped += 1
                continue
            partition.verify()
            if not dry_run:
                blob = target.blob(name)
                blob.metadata = {SHA_KEY: partition.data_sha256, "rows": str(partition.rows)}
                try:
                    blob.upload_from_filename(
                        str(partition.file), content_type="application/vnd.apache.parquet"
                    )
                except exceptions.GoogleAPIError as exc:
                    raise GCSError(
                        f"upload of gs://{bucket}/{name} failed: {first_line(exc)}"
                    ) from None
            uploaded.append(name)
    return UploadResult(uploaded, skipped)
