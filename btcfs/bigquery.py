"""Load a Parquet lake into BigQuery raw tables with load jobs, as production does.

Each lake dataset (and the quarantine) becomes one raw table named like its dbt source
(`raw.spot_klines`, ..., `raw.quarantine`), with the Hive partition keys (symbol, interval,
date, ...) as leading columns, then the file's columns. The BigQuery schema is explicit and
derived from the lake's Arrow schemas (`ingest.schemas`): TIMESTAMP, NUMERIC for
DECIMAL(28, 8) and DECIMAL(18, 8), INT64, STRING, FLOAT64, DATE for the `date` key.

Rows travel as CSV load jobs (timestamps `YYYY-MM-DD HH:MM:SS.ffffff`, decimals as their exact
text, floats in shortest round-trip form), the one load path the crucible emulator implements
besides Parquet, and one BigQuery accepts unchanged. Each table is replaced whole
(WRITE_TRUNCATE), so a re-load is idempotent; a dataset with no partition yet becomes an empty
table with the same schema, which is what the dbt staging models expect on BigQuery.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from google.cloud import bigquery

from ingest.lake import PART_FILE
from ingest.schemas import DATASETS, QUARANTINE, Dataset

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
        else:
            column = column.cast(pa.string())
        columns.append(column.to_pylist())
    sink = io.StringIO()
    writer = csv.writer(sink, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(table.schema.names)
    writer.writerows(zip(*columns, strict=True))
    return sink.getvalue().encode()


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
