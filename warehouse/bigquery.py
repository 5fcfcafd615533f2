"""Load a Parquet lake into BigQuery raw tables with load jobs, as production does.

Each lake dataset (and the quarantine) becomes one raw table named like its dbt source
(`raw.spot_klines`, ..., `raw.quarantine`), with the Hive partition keys (symbol, interval,
date, ...) as leading columns, then the file's columns. The BigQuery schema is explicit and
derived from the lake's Arrow schemas (`lake.schemas`): TIMESTAMP, NUMERIC for
DECIMAL(28, 8) and DECIMAL(18, 8), INT64, STRING, FLOAT64, DATE for the `date` key.

Rows travel as CSV load jobs (timestamps `YYYY-MM-DD HH:MM:SS.ffffff`, decimals as their exact
text, floats in shortest round-trip form), the one load path the crucible emulator implements
besides Parquet, and one BigQuery accepts unchanged. Each table is replaced whole
(WRITE_TRUNCATE), so a re-load is idempotent; a dataset with no partition yet becomes an empty
table with the same schema, which is what the dbt staging models expect on BigQuery.

`load_partitions` is the incremental path (`btcfs warehouse load-bq`): it loads only the lake
partitions whose content hash (the MANIFEST's `data_sha256`) differs from the one recorded in a
ledger table (`<raw dataset>._btcfs_loads`), and replaces exactly those partitions' rows with
one MERGE statement per table (`on false`: delete the partitions' old rows, insert the new
ones), so a rerun with an unchanged lake runs no load job and a changed partition never
duplicates. Rows reach a staging table first, from GCS (Parquet, Hive partition keys from the
object path: production) or from the local files as CSV (the BigQuery emulator, which reads
neither Parquet nor `gs://`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from google.cloud import bigquery

from lake.schemas import DATASETS, QUARANTINE, Dataset
from lake.store import PART_FILE, PartitionFolder, walk_partitions

RAW_DATASET = "raw"
_STRING_KEY = pa.string()
_DATE_KEY = pa.date32()


@dataclass(frozen=True)
class RawTable:
    """One raw table: its name, where its partitions sit in the lake, and its keys."""

    name: str
    dataset: Dataset
    lake_dir: str  # relative to the lake root
    keys: tuple[str, ...]  # Hive partition keys, in path order

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Partition keys that become columns (a key the file also holds keeps the file's)."""
        return tuple(k for k in self.keys if k not in self.dataset.schema.names)

    @property
    def arrow_schema(self) -> pa.Schema:
        key_fields = [
            pa.field(k, _DATE_KEY if k == "date" else _STRING_KEY) for k in self.key_columns
        ]
        return pa.schema([*key_fields, *self.dataset.schema])

    @property
    def bigquery_schema(self) -> list[bigquery.SchemaField]:
        return [
            bigquery.SchemaField(f.name, bigquery_type(f.type), mode="NULLABLE")
            for f in self.arrow_schema
        ]


def raw_tables() -> list[RawTable]:
    """Every raw table the dbt sources read (models/staging/*/_*__sources.yml)."""
    tables = [
        RawTable(
            name=ds.table,
            dataset=ds,
            lake_dir=f"{ds.vendor}/{ds.table}",
            keys=("symbol", "interval", "date") if ds.has_interval else ("symbol", "date"),
        )
        for ds in DATASETS.values()
    ]
    tables.append(
        RawTable(
            name="quarantine",
            dataset=QUARANTINE,
            lake_dir=QUARANTINE.table,
            keys=("vendor", "dataset", "symbol", "interval", "date"),
        )
    )
    return tables


def bigquery_type(arrow_type: pa.DataType) -> str:
    """The BigQuery column type of a lake column."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_decimal(arrow_type):
        if arrow_type.scale > 9 or arrow_type.precision - arrow_type.scale > 29:
            raise ValueError(f"{arrow_type} does not fit BigQuery NUMERIC")
        return "NUMERIC"
    if pa.types.is_integer(arrow_type):
        return "INT64"
    if pa.types.is_floating(arrow_type):
        return "FLOAT64"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "STRING"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_boolean(arrow_type):
        return "BOOL"
    raise ValueError(f"no BigQuery type for {arrow_type}")


def read_raw_table(lake_root: Path, table: RawTable) -> pa.Table:
    """Every finished-or-not partition file of `table`, keys from the path, in path order."""
    base = Path(lake_root) / table.lake_dir
    pattern = "/".join(f"{key}=*" for key in table.keys) + f"/{PART_FILE}"
    schema = table.arrow_schema
    parts = []
    for path in sorted(base.glob(pattern)):
        labels = dict(p.split("=", 1) for p in path.parent.relative_to(base).parts)
        data = pq.read_table(path, schema=table.dataset.schema)
        rows = data.num_rows
        keys = [
            pa.array([labels[k]] * rows, type=_STRING_KEY).cast(schema.field(k).type)
            for k in table.key_columns
        ]
        parts.append(pa.table([*keys, *data.columns], schema=schema))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)


def to_csv(table: pa.Table) -> bytes:
    """The table as CSV with a header, in the forms BigQuery's CSV loader reads exactly.

    Only values that need it are quoted (the emulator reads a quoted timestamp as a string).
    """
    columns: list[list[str | None]] = []
    for field in table.schema:
        column = table.column(field.name).combine_chunks()
        if pa.types.is_timestamp(field.type):
            micros = column.cast(pa.timestamp("us", tz="UTC"))
            column = pc.strftime(micros, format="%Y-%m-%d %H:%M:%S")
        elif pa.types.is_decimal(field.type):
            # Plain notation: Arrow prints zero as 0E-8, which a NUMERIC column rejects.
            columns.append([None if v is None else format(v, "f") for v in column.to_pylist()])
            continue
        elif pa.types.is_floating(field.type):
            # Shortest round-trip digits without an exponent (the emulator rejects 1.4e+11).
            columns.append([_float_text(v) for v in column.to_pylist()])
            continue
        else:
            column = column.cast(pa.string())
        columns.append(column.to_pylist())
    sink = io.StringIO()
    writer = csv.writer(sink, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(table.schema.names)
    writer.writerows(zip(*columns, strict=True))
    return sink.getvalue().encode()


def _float_text(value: float | None) -> str | None:
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return str(np.format_float_positional(value, unique=True, trim="-"))


def client(project: str, api_endpoint: str | None = None, **kwargs: Any) -> bigquery.Client:
    """A BigQuery client; with `api_endpoint` (an emulator) anonymous credentials are used."""
    if api_endpoint is None:
        return bigquery.Client(project=project, **kwargs)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=api_endpoint),
        **kwargs,
    )


def load_table(
    bq: bigquery.Client, table: pa.Table, destination: str, schema: list[bigquery.SchemaField]
) -> int:
    """Replace `destination` with `table` through one CSV load job; rows loaded."""
    config = bigquery.LoadJobConfig(
        schema=schema,
        source_format=bigquery.SourceFormat.CSV,
        skip_leading_rows=1,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    if table.num_rows == 0:
        # An empty load is rejected by some loaders: replace the table by an empty one instead.
        bq.delete_table(destination, not_found_ok=True)
        bq.create_table(bigquery.Table(destination, schema=schema))
        return 0
    job = bq.load_table_from_file(io.BytesIO(to_csv(table)), destination, job_config=config)
    job.result()
    return table.num_rows


def load_lake(
    bq: bigquery.Client,
    lake_root: Path,
    *,
    dataset: str = RAW_DATASET,
    location: str | None = None,
    tables: Iterable[RawTable] | None = None,
) -> Mapping[str, int]:
    """Load every raw table of the lake at `lake_root` into `dataset`; rows per table."""
    bq_dataset = bigquery.Dataset(f"{bq.project}.{dataset}")
    if location:
        bq_dataset.location = location
    bq.create_dataset(bq_dataset, exists_ok=True)
    loaded: dict[str, int] = {}
    for raw in tables if tables is not None else raw_tables():
        data = read_raw_table(lake_root, raw)
        destination = f"{bq.project}.{dataset}.{raw.name}"
        loaded[raw.name] = load_table(bq, data, destination, raw.bigquery_schema)
    return loaded


# ------------------------------------------------------------------ per-partition loading

LEDGER_TABLE = "_btcfs_loads"
STAGE_PREFIX = "_btcfs_stage_"
#: Partitions per MERGE: keeps each statement's text (one predicate per partition) far below
#: BigQuery's 1 MB query limit and each job under its 4,000-partition limit.
CHUNK_PARTITIONS = 400
LoadSource = Literal["file", "gcs"]
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_LEDGER_COLUMNS = (
    ("table_name", "STRING"),
    ("partition_path", "STRING"),
    ("data_sha256", "STRING"),
    ("row_count", "INT64"),
    ("source_uri", "STRING"),
    ("loaded_at", "TIMESTAMP"),
)


class LoadError(Exception):
    """A load that could not run (bad settings, corrupt partition, a failed job): one line."""


class CorruptPartition(LoadError):
    """A finished lake partition whose files do not match its MANIFEST."""


@dataclass(frozen=True)
class LakePartition:
    """One finished partition file of a raw table, with the hash that identifies its content."""

    table: RawTable
    path: str  # Hive path below the table's folder, e.g. symbol=BTCUSDT/interval=1m/date=…
    labels: Mapping[str, str]  # partition key -> value, in path order
    file: Path
    data_sha256: str  # MANIFEST data_sha256 (quarantine: sha256 of the file)
    file_sha256: str | None  # MANIFEST sha256 of part-0.parquet, checked before use
    rows: int | None
    # MANIFEST is_synthetic: rows from the replay server's synthetic market.
    is_synthetic: bool = False

    @property
    def day(self) -> date:
        return date.fromisoformat(self.labels["date"])

    def verify(self) -> None:
        """Refuse a file whose bytes are not the ones its MANIFEST describes, or not Parquet."""
        try:
            payload = self.file.read_bytes()
        except OSError as exc:
            raise CorruptPartition(f"corrupt partition {self.file}: {exc.strerror}") from None
        if self.file_sha256 is not None and hashlib.sha256(payload).hexdigest() != self.file_sha256:
            raise CorruptPartition(
                f"corrupt partition {self.file}: sha256 differs from its MANIFEST "
                "(re-run the ingest of that day)"
            )
        try:
            pq.read_metadata(io.BytesIO(payload))
        except (pa.ArrowException, OSError) as exc:
            raise CorruptPartition(f"corrupt partition {self.file}: not Parquet ({exc})") from None

    def read(self) -> pa.Table:
        """The rows with the partition keys as leading columns (the raw table's layout)."""
        schema = self.table.arrow_schema
        try:
            data = pq.read_table(self.file, schema=self.table.dataset.schema)
        except (pa.ArrowException, OSError) as exc:
            raise CorruptPartition(f"corrupt partition {self.file}: {exc}") from None
        rows = data.num_rows
        keys = [
            pa.array([self.labels[k]] * rows, type=_STRING_KEY).cast(schema.field(k).type)
            for k in self.table.key_columns
        ]
        return pa.table([*keys, *data.columns], schema=schema)


def lake_partitions(
    lake_root: Path, tables: Iterable[RawTable] | None = None
) -> list[LakePartition]:
    """Every finished partition of `tables` (default: all) in the lake, in path order.

    A partition without `_SUCCESS` is being written (or was interrupted) and is left out; a
    finished one without a readable MANIFEST is corrupt.
    """
    found: list[LakePartition] = []
    for table in tables if tables is not None else raw_tables():
        base = Path(lake_root) / table.lake_dir
        if table.dataset.name == QUARANTINE.name:
            # Quarantine folders hold rows only, no MANIFEST: their file's hash is their content's.
            pattern = "/".join(f"{key}=*" for key in table.keys) + f"/{PART_FILE}"
            for file in sorted(base.glob(pattern)):
                relative = file.parent.relative_to(base)
                labels = dict(part.split("=", 1) for part in relative.parts)
                _check_labels(file.parent, labels)
                digest = hashlib.sha256(file.read_bytes()).hexdigest()
                found.append(
                    LakePartition(table, relative.as_posix(), labels, file, digest, None, None)
                )
            continue
        for partition in walk_partitions(Path(lake_root), table.lake_dir):
            if tuple(partition.labels) != table.keys or not partition.has_data:
                continue
            _check_labels(partition.folder, partition.labels)
            if not partition.is_finished:
                continue
            found.append(_finished(table, base, partition))
    return found


def _finished(table: RawTable, base: Path, partition: PartitionFolder) -> LakePartition:
    folder = partition.folder
    if not partition.has_manifest:
        raise CorruptPartition(f"corrupt partition {folder}: _SUCCESS without MANIFEST")
    missing = next(
        (name for name in ("data_sha256", "sha256", "rows") if getattr(partition, name) is None),
        None,
    )
    problem = partition.manifest_error or (f"no {missing}" if missing else None)
    if problem is not None or partition.data_sha256 is None or partition.rows is None:
        raise CorruptPartition(f"corrupt partition {folder}: unreadable MANIFEST ({problem})")
    return LakePartition(
        table,
        folder.relative_to(base).as_posix(),
        partition.labels,
        folder / PART_FILE,
        partition.data_sha256,
        partition.sha256,
        partition.rows,
        partition.is_synthetic,
    )


def _check_labels(folder: Path, labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL.match(value):
            raise CorruptPartition(f"unexpected partition folder {folder}: {key}={value!r}")
    try:
        date.fromisoformat(labels["date"])
    except (KeyError, ValueError):
        raise CorruptPartition(f"unexpected partition folder {folder}: no valid date=") from None


@dataclass
class TableLoad:
    """What one run did to one raw table."""

    partitions: int = 0  # partitions replaced
    rows: int = 0  # rows written into them
    skipped: int = 0  # partitions whose data_sha256 the ledger already holds


@dataclass
class LoadReport:
    tables: dict[str, TableLoad] = dataclasses.field(default_factory=dict)

    @property
    def partitions(self) -> int:
        return sum(t.partitions for t in self.tables.values())

    @property
    def skipped(self) -> int:
        return sum(t.skipped for t in self.tables.values())

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


def _ident(*parts: str) -> str:
    """A backquoted BigQuery path; parts come from settings and this module, never rows."""
    for part in parts:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", part):
            raise LoadError(f"invalid BigQuery name {part!r}")
    return "`" + ".".join(parts) + "`"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _typed_literal(value: str, bq_type: str) -> str:
    return f"date {_literal(value)}" if bq_type == "DATE" else _literal(value)


def _table_ddl(table_ref: str, raw: RawTable) -> str:
    """CREATE TABLE IF NOT EXISTS, partitioned by its DATE `date` key, clustered by symbol."""
    columns = ", ".join(f"`{f.name}` {f.field_type}" for f in raw.bigquery_schema)
    types = {f.name: f.field_type for f in raw.bigquery_schema}
    ddl = f"create table if not exists {table_ref} ({columns})"
    if types.get("date") == "DATE":
        ddl += " partition by `date`"
    clustered = [c for c in ("symbol", "interval") if c in types]
    if clustered:
        ddl += " cluster by " + ", ".join(f"`{c}`" for c in clustered)
    return ddl


def _ledger_ref(bq: bigquery.Client, dataset: str) -> str:
    return _ident(bq.project, dataset, LEDGER_TABLE)


def read_ledger(bq: bigquery.Client, dataset: str) -> dict[tuple[str, str], str]:
    """(table, partition path) -> the data_sha256 last loaded there."""
    rows = bq.query(
        f"select table_name, partition_path, data_sha256 from {_ledger_ref(bq, dataset)}"  # noqa: S608
    ).result()
    return {(row[0], row[1]): row[2] for row in rows}


def _run(bq: bigquery.Client, sql: str) -> None:
    bq.query(sql).result()


def _partition_predicate(raw: RawTable, parts: Sequence[LakePartition], alias: str) -> str:
    types = {f.name: f.field_type for f in raw.bigquery_schema}
    days = sorted({p.labels["date"] for p in parts})
    # A constant filter on the partitioning column first: BigQuery then reads only those days.
    pruning = f"{alias}.`date` in ({', '.join(f'date {_literal(d)}' for d in days)})"
    each = " or ".join(
        "("
        + " and ".join(
            f"{alias}.`{key}` = {_typed_literal(value, types[key])}"
            for key, value in part.labels.items()
        )
        + ")"
        for part in parts
    )
    return f"{pruning} and ({each})"


def _stage_from_files(
    bq: bigquery.Client, stage: str, raw: RawTable, parts: Sequence[LakePartition]
) -> int:
    data = pa.concat_tables([part.read() for part in parts])
    bq.delete_table(stage, not_found_ok=True)
    bq.create_table(bigquery.Table(stage, schema=raw.bigquery_schema))
    if data.num_rows:
        config = bigquery.LoadJobConfig(
            schema=raw.bigquery_schema,
            source_format=bigquery.SourceFormat.CSV,
            skip_leading_rows=1,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        )
        bq.load_table_from_file(io.BytesIO(to_csv(data)), stage, job_config=config).result()
    return data.num_rows


def hive_prefix(bucket: str, prefix: str, raw: RawTable) -> str:
    """The load job's Hive source prefix with each path key's BigQuery type."""
    from warehouse import gcs

    types = {f.name: f.field_type for f in raw.bigquery_schema}
    keys = "/".join(
        "{" + f"{gcs.path_key(raw, key)}:{types.get(key, 'STRING')}" + "}" for key in raw.keys
    )
    return f"gs://{bucket}/{prefix.strip('/')}/{raw.name}/{keys}"


def gcs_load_config(bucket: str, prefix: str, raw: RawTable) -> bigquery.LoadJobConfig:
    """The staging load of Parquet objects: file columns from the Parquet schema (DECIMAL(28, 8)
    becomes NUMERIC), partition keys from the object path with their BigQuery types."""
    hive = bigquery.HivePartitioningOptions()
    hive.mode = "CUSTOM"
    hive.source_uri_prefix = hive_prefix(bucket, prefix, raw)
    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        hive_partitioning=hive,
        decimal_target_types=["NUMERIC", "BIGNUMERIC"],
    )


def _stage_from_gcs(
    bq: bigquery.Client,
    stage: str,
    raw: RawTable,
    parts: Sequence[LakePartition],
    bucket: str,
    prefix: str,
) -> int:
    from warehouse import gcs

    uris = [gcs.uri(bucket, prefix, part) for part in parts]
    job = bq.load_table_from_uri(uris, stage, job_config=gcs_load_config(bucket, prefix, raw))
    job.result()
    return int(job.output_rows or 0)


def _replace_partitions(
    bq: bigquery.Client,
    table_ref: str,
    stage_ref: str,
    raw: RawTable,
    parts: Sequence[LakePartition],
) -> None:
    """One MERGE: the partitions' old rows go, the staged rows come (atomic on BigQuery)."""
    columns = [f"`{f.name}`" for f in raw.bigquery_schema]
    _run(
        bq,
        f"merge {table_ref} as target using {stage_ref} as source on false "  # noqa: S608
        "when not matched by source and "
        f"{_partition_predicate(raw, parts, 'target')} then delete "
        f"when not matched then insert ({', '.join(columns)}) "
        f"values ({', '.join('source.' + c for c in columns)})",
    )


def _record(
    bq: bigquery.Client,
    ledger: str,
    raw: RawTable,
    parts: Sequence[LakePartition],
    uris: Sequence[str],
) -> None:
    rows = " union all ".join(
        f"select {_literal(raw.name)} as table_name, {_literal(part.path)} as partition_path, "
        f"{_literal(part.data_sha256)} as data_sha256, "
        f"{'null' if part.rows is None else int(part.rows)} as row_count, "
        f"{_literal(uri)} as source_uri, current_timestamp() as loaded_at"
        for part, uri in zip(parts, uris, strict=True)
    )
    names = [name for name, _ in _LEDGER_COLUMNS]
    updates = ", ".join(f"{name} = source.{name}" for name in names[2:])
    _run(
        bq,
        f"merge {ledger} as ledger using ({rows}) as source "  # noqa: S608
        "on ledger.table_name = source.table_name "
        "and ledger.partition_path = source.partition_path "
        f"when matched then update set {updates} "
        f"when not matched then insert ({', '.join(names)}) "
        f"values ({', '.join('source.' + n for n in names)})",
    )


def load_partitions(
    bq: bigquery.Client,
    partitions: Sequence[LakePartition],
    *,
    dataset: str = RAW_DATASET,
    location: str | None = None,
    source: LoadSource = "file",
    bucket: str | None = None,
    prefix: str = "raw",
    tables: Iterable[RawTable] | None = None,
    dry_run: bool = False,
) -> LoadReport:
    """Load the partitions the ledger lacks (or holds with another hash); replace their rows.

    Every raw table of `tables` (default: all) is created if missing (partitioned by its `date`
    key, clustered by symbol), so the dbt sources exist even for a dataset with no partition.
    """
    if source == "gcs" and not bucket:
        raise LoadError("loading from GCS needs a bucket (--bucket or BTCFS_GCS_BUCKET)")
    bq_dataset = bigquery.Dataset(f"{bq.project}.{dataset}")
    if location:
        bq_dataset.location = location
    report = LoadReport()
    ledger = _ledger_ref(bq, dataset)
    by_table: dict[str, list[LakePartition]] = {}
    for part in partitions:
        by_table.setdefault(part.table.name, []).append(part)
    if not dry_run:
        bq.create_dataset(bq_dataset, exists_ok=True)
        columns = ", ".join(f"{name} {kind}" for name, kind in _LEDGER_COLUMNS)
        _run(bq, f"create table if not exists {ledger} ({columns}) cluster by table_name")
    loaded = read_ledger(bq, dataset) if not dry_run or _exists(bq, dataset) else {}
    for raw in tables if tables is not None else raw_tables():
        result = report.tables.setdefault(raw.name, TableLoad())
        table_ref = _ident(bq.project, dataset, raw.name)
        changed = []
        for part in by_table.get(raw.name, []):
            if loaded.get((raw.name, part.path)) == part.data_sha256:
                result.skipped += 1
            else:
                changed.append(part)
        if dry_run:
            result.partitions = len(changed)
            result.rows = sum(p.rows or 0 for p in changed)
            continue
        _run(bq, _table_ddl(table_ref, raw))
        stage = f"{bq.project}.{dataset}.{STAGE_PREFIX}{raw.name}"
        stage_ref = _ident(bq.project, dataset, STAGE_PREFIX + raw.name)
        for start in range(0, len(changed), CHUNK_PARTITIONS):
            chunk = changed[start : start + CHUNK_PARTITIONS]
            for part in chunk:
                part.verify()
            if source == "gcs":
                assert bucket is not None
                from warehouse import gcs

                rows = _stage_from_gcs(bq, stage, raw, chunk, bucket, prefix)
                uris = [gcs.uri(bucket, prefix, p) for p in chunk]
            else:
                rows = _stage_from_files(bq, stage, raw, chunk)
                uris = [p.file.resolve().as_uri() for p in chunk]
            try:
                _replace_partitions(bq, table_ref, stage_ref, raw, chunk)
                _record(bq, ledger, raw, chunk, uris)
            finally:
                bq.delete_table(stage, not_found_ok=True)
            result.partitions += len(chunk)
            result.rows += rows
    return report


def _exists(bq: bigquery.Client, dataset: str) -> bool:
    from google.api_core import exceptions

    try:
        bq.get_table(f"{bq.project}.{dataset}.{LEDGER_TABLE}")
    except exceptions.NotFound:
        return False
    return True
