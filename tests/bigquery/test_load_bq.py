"""`btcfs warehouse load-bq` against a real GCS emulator and the crucible BigQuery emulator.

What the emulators prove: uploads, object metadata and the skip-when-unchanged rule (GCS
emulator); the ledger, the raw tables' DDL (partitioned, clustered), the per-partition MERGE
replacement and the CSV load path (crucible). What they cannot: crucible runs no load job
from `gs://` URIs (nor Parquet), so the production `--load-from gcs` path is checked up to the
URIs and Hive prefix it would send (every URI names an object the GCS emulator holds) and its
failure on the emulator must leave the ledger and the tables as they were.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from btcfs.cli import cli
from lake.schemas import DATASETS
from lake.store import MANIFEST_FILE, Lake, PartitionKey
from tests.bigquery.bqsupport import PROJECT, create_bucket, free_port, lakefixtures
from warehouse import bigquery as btcfs_bq
from warehouse import gcs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.bigquery,
    pytest.mark.filterwarnings("ignore:.*BigQuery Storage.*:UserWarning"),
]

START = date(2025, 3, 1)
DAYS = 2
INGESTED_AT = datetime(2025, 3, 10, tzinfo=UTC)
_ENV_UNSET = dict.fromkeys(
    (
        "BTCFS_BQ_PROJECT",
        "BTCFS_BQ_RAW_DATASET",
        "BTCFS_BQ_LOCATION",
        "BTCFS_GCS_BUCKET",
        "BTCFS_GCS_PREFIX",
        "BTCFS_BQ_LOAD_FROM",
        "BTCFS_BQ_API_ENDPOINT",
        "BTCFS_GCS_API_ENDPOINT",
    )
)


def _value(field: pa.Field, row: int) -> Any:
    """A plain value of the field's type (floats big enough to print with an exponent)."""
    kind = field.type
    if pa.types.is_timestamp(kind):
        return datetime(START.year, START.month, START.day, row, tzinfo=UTC)
    if pa.types.is_date(kind):
        return START + timedelta(days=row)
    if pa.types.is_decimal(kind):
        return Decimal("12345.6789") + row
    if pa.types.is_boolean(kind):
        return row % 2 == 0
    if pa.types.is_integer(kind):
        return row + 1
    if pa.types.is_floating(kind):
        return 1.4391282669042828e11 * (row + 1)
    return f"v{row}"


def _generic_rows(name: str, rows: int = 3) -> pa.Table:
    schema = DATASETS[name].schema
    return pa.table({f.name: [_value(f, r) for r in range(rows)] for f in schema}, schema=schema)


def _land_lake(root: Path) -> Path:
    """Spot klines and funding for two days, one FRED partition (DATE, FLOAT64 columns), one
    CryptoQuant-style daily partition, and a quarantined row: every kind of raw table."""
    lake = root / "lake"
    tables = lakefixtures.synthetic_market(START, DAYS)
    lakefixtures.land(lake, {k: v for k, v in tables.items() if k[0] in ("spot-klines", "funding")})
    writer = Lake(lake)
    for name, symbol in (("fred-series", "DGS10"), ("cq-daily", "BTC")):
        key = PartitionKey(DATASETS[name], symbol, None, START)
        writer.write_partition(
            key, _generic_rows(name), source="rest", ingested_at=INGESTED_AT, expected_rows=None
        )
    funding = DATASETS["funding"]
    key = PartitionKey(funding, "BTCUSDT", None, START)
    quarantined = pa.table(
        {
            "dataset": ["funding"],
            "event_time": [datetime(2025, 3, 1, 8, tzinfo=UTC)],
            "reason": ["duplicate with different values"],
            "raw": ['{"fundingRate": "x"}'],
            "source": ["archive"],
            "ingested_at": [INGESTED_AT],
        }
    )
    writer.write_partition(
        key,
        writer.read_partition(key),
        source="archive",
        ingested_at=INGESTED_AT,
        expected_rows=None,
        quarantine=quarantined,
    )
    return lake


def _load_bq(*args: str, **env: str | None) -> Result:
    return CliRunner().invoke(cli, ["warehouse", "load-bq", *args], env={**_ENV_UNSET, **env})


def _options(lake: Path, crucible: str, dataset: str, *extra: str) -> list[str]:
    return ["--lake", str(lake), "--project", PROJECT, "--raw-dataset", dataset,
            "--bq-endpoint", crucible, *extra]  # fmt: skip


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def _scalar(client: Any, sql: str) -> Any:
    return next(iter(client.query(sql).result()))[0]


def _counts(client: Any, dataset: str) -> dict[str, int]:
    tables = ("spot_klines", "funding", "fred_series", "cq_daily", "quarantine")
    return {t: _scalar(client, f"select count(*) from `{PROJECT}.{dataset}.{t}`") for t in tables}


def _ledger(client: Any, dataset: str) -> dict[tuple[str, str], tuple[str, datetime]]:
    rows = client.query(
        f"select table_name, partition_path, data_sha256, loaded_at "
        f"from `{PROJECT}.{dataset}._btcfs_loads`"
    ).result()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def test_load_bq_uploads_and_loads_each_changed_partition_once(
    crucible: str, gcs_emulator: str, tmp_path: Path
) -> None:
    lake = _land_lake(tmp_path)
    dataset, bucket = "raw_idempotence", "idempotence"
    create_bucket(gcs_emulator, bucket)
    client = btcfs_bq.client(PROJECT, crucible)
    partitions = btcfs_bq.lake_partitions(lake)
    # spot klines x2, funding x2, fred, cq, and the funding day's quarantine
    assert len(partitions) == 7
    lake_rows = {
        "spot_klines": DAYS * 1440,
        "funding": sum(p.rows or 0 for p in partitions if p.table.name == "funding"),
        "fred_series": 3,
        "cq_daily": 3,
        "quarantine": 1,
    }
    options = _options(lake, crucible, dataset, "--bucket", bucket, "--gcs-endpoint",
                       gcs_emulator, "--load-from", "file")  # fmt: skip

    first = _load_bq(*options)
    assert first.exit_code == 0, first.output
    assert f"gs://{bucket}/raw: uploaded 7 partition(s), 0 unchanged" in first.output
    assert f"{PROJECT}.{dataset}: loaded 7 partition(s)" in first.output
    assert _counts(client, dataset) == lake_rows
    # Types survived: DATE, FLOAT64 (no exponent in the CSV the emulator reads), NUMERIC.
    fred = list(client.query(f"select * from `{PROJECT}.{dataset}.fred_series`").result())
    assert fred[0]["observation_date"] == START and fred[0]["value"] == 1.4391282669042828e11
    quarantine = list(client.query(f"select * from `{PROJECT}.{dataset}.quarantine`").result())
    assert (quarantine[0]["vendor"], quarantine[0]["dataset"]) == ("binance", "funding")

    # Objects mirror the lake, carry the MANIFEST's data_sha256, and the load job's URIs and
    # Hive prefix (the production path) name exactly those objects.
    storage = gcs.client(PROJECT, gcs_emulator)
    objects = {b.name: b.metadata for b in storage.list_blobs(bucket)}
    for part in partitions:
        name = gcs.object_name("raw", part)
        assert objects[name]["data_sha256"] == part.data_sha256, name
        uri = gcs.uri(bucket, "raw", part)
        assert uri == f"gs://{bucket}/{name}"
        prefix = btcfs_bq.hive_prefix(bucket, "raw", part.table)
        template = prefix.split("/{", 1)[0]
        assert uri.startswith(template + "/")
        keys = [seg.split("=", 1)[0] for seg in uri[len(template) + 1 :].split("/")[:-1]]
        assert keys == [
            seg.strip("{}").split(":")[0] for seg in prefix[len(template) + 1 :].split("/")
        ]
    # What a load job would read is the lake's bytes, and the keys it derives are the lake's.
    for part in partitions:
        blob = storage.bucket(bucket).blob(gcs.object_name("raw", part))
        assert hashlib.sha256(blob.download_as_bytes()).hexdigest() == (
            part.file_sha256 or part.data_sha256
        )
    spot = next(p for p in partitions if p.table.name == "spot_klines")
    job = btcfs_bq.gcs_load_config(bucket, "raw", spot.table).to_api_repr()["load"]
    assert job["sourceFormat"] == "PARQUET" and job["writeDisposition"] == "WRITE_TRUNCATE"
    assert job["hivePartitioningOptions"] == {
        "mode": "CUSTOM",
        "sourceUriPrefix": f"gs://{bucket}/raw/spot_klines/"
        "{symbol:STRING}/{interval:STRING}/{date:DATE}",
    }
    assert "raw/spot_klines/symbol=BTCUSDT/interval=1m/date=2025-03-01/part-0.parquet" in objects
    assert any("/lake_dataset=funding/" in name for name in objects)
    ledger = _ledger(client, dataset)

    second = _load_bq(*options)
    assert second.exit_code == 0, second.output
    assert "uploaded 0 partition(s), 7 unchanged" in second.output
    assert "loaded 0 partition(s) (0 rows) from file, 7 unchanged" in second.output
    assert _ledger(client, dataset) == ledger  # nothing was rewritten
    assert _counts(client, dataset) == lake_rows

    # One funding day changes: the production path (gcs) uploads it, then the emulator refuses
    # the gs:// load job; the table and the ledger must be untouched by that failure.
    day2 = PartitionKey(DATASETS["funding"], "BTCUSDT", None, START + timedelta(days=1))
    writer = Lake(lake)
    shorter = writer.read_partition(day2).slice(0, 1)
    writer.write_partition(
        day2, shorter, source="archive", ingested_at=INGESTED_AT, expected_rows=None
    )
    from_gcs = _load_bq(*options[:-2], "--load-from", "gcs")
    assert "load job" in _one_line_error(from_gcs)  # crucible: no jobs.insert of a load job
    assert "uploaded 1 partition(s), 6 unchanged" in from_gcs.output
    assert _ledger(client, dataset) == ledger
    assert _counts(client, dataset) == lake_rows

    third = _load_bq(*options)
    assert third.exit_code == 0, third.output
    assert "uploaded 0 partition(s), 7 unchanged" in third.output
    assert "funding: loaded 1 partition(s), 1 rows" in third.output
    expected = dict(lake_rows, funding=lake_rows["funding"] - 3 + 1)  # 3 rows a day, now 1
    assert _counts(client, dataset) == expected
    per_day = dict(
        client.query(
            f"select date, count(*) from `{PROJECT}.{dataset}.funding` group by date"
        ).result()
    )
    assert per_day == {START: 3, START + timedelta(days=1): 1}
    after = _ledger(client, dataset)
    changed = ("funding", "symbol=BTCUSDT/date=2025-03-02")
    assert after[changed][0] != ledger[changed][0]
    assert {k: v for k, v in after.items() if k != changed} == {
        k: v for k, v in ledger.items() if k != changed
    }


def test_raw_tables_exist_for_datasets_without_partitions(crucible: str, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    result = _load_bq(*_options(lake, crucible, "raw_empty"))
    assert result.exit_code == 0, result.output
    assert "loaded 0 partition(s) (0 rows) from file, 0 unchanged" in result.output
    client = btcfs_bq.client(PROJECT, crucible)
    names = {t.table_id for t in client.list_tables(f"{PROJECT}.raw_empty")}
    assert {raw.name for raw in btcfs_bq.raw_tables()} | {"_btcfs_loads"} == names
    schema = {
        f.name: f.field_type for f in client.get_table(f"{PROJECT}.raw_empty.fred_series").schema
    }
    assert schema["observation_date"] == "DATE" and schema["value"] == "FLOAT"


def test_unfinished_partitions_are_left_out(tmp_path: Path) -> None:
    lake = _land_lake(tmp_path)
    spot = lake / "binance" / "spot_klines" / "symbol=BTCUSDT" / "interval=1m" / "date=2025-03-02"
    (spot / "_SUCCESS").unlink()
    names = [p.path for p in btcfs_bq.lake_partitions(lake) if p.table.name == "spot_klines"]
    assert names == ["symbol=BTCUSDT/interval=1m/date=2025-03-01"]


def test_bad_settings_and_bad_partitions_are_one_line_errors(
    crucible: str, gcs_emulator: str, tmp_path: Path
) -> None:
    lake = _land_lake(tmp_path)
    assert "no BigQuery project" in _one_line_error(_load_bq("--lake", str(lake)))
    needs_bucket = _load_bq(*_options(lake, crucible, "raw_errors", "--load-from", "gcs"))
    assert "needs a bucket" in _one_line_error(needs_bucket)
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = _load_bq(*_options(lake, closed, "raw_errors"))
    assert f"cannot reach the BigQuery endpoint {closed}" in _one_line_error(unreachable)
    gcs_down = _load_bq(*_options(lake, crucible, "raw_errors", "--bucket", "b",
                                  "--gcs-endpoint", closed))  # fmt: skip
    assert "cannot reach the GCS endpoint" in _one_line_error(gcs_down)
    no_bucket = _load_bq(
        *_options(lake, crucible, "raw_errors", "--bucket", "no-such-bucket"),
        *("--gcs-endpoint", gcs_emulator, "--load-from", "file"),
    )
    assert "gs://no-such-bucket does not exist" in _one_line_error(no_bucket)
    unknown = _load_bq(*_options(lake, crucible, "raw_errors", "--table", "nope"))
    assert "unknown raw table nope" in _one_line_error(unknown)
    missing_lake = _load_bq(*_options(tmp_path / "nowhere", crucible, "raw_errors"))
    assert "no lake at" in _one_line_error(missing_lake)

    # A flipped byte: the file no longer matches its MANIFEST's sha256.
    part = lake / "binance" / "funding" / "symbol=BTCUSDT" / "date=2025-03-02" / "part-0.parquet"
    payload = bytearray(part.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    part.write_bytes(bytes(payload))
    corrupt = _load_bq(*_options(lake, crucible, "raw_corrupt", "--table", "funding"))
    line = _one_line_error(corrupt)
    assert "corrupt partition" in line and "sha256 differs from its MANIFEST" in line
    # A finished partition that lost its MANIFEST.
    (part.parent / MANIFEST_FILE).unlink()
    no_manifest = _load_bq(*_options(lake, crucible, "raw_corrupt", "--table", "funding"))
    assert "_SUCCESS without MANIFEST" in _one_line_error(no_manifest)
    client = btcfs_bq.client(PROJECT, crucible)
    assert _scalar(client, f"select count(*) from `{PROJECT}.raw_corrupt._btcfs_loads`") == 0


def test_dry_run_changes_nothing(crucible: str, tmp_path: Path) -> None:
    lake = _land_lake(tmp_path)
    result = _load_bq(*_options(lake, crucible, "raw_dry", "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "would load 7 partition(s)" in result.output
    client = btcfs_bq.client(PROJECT, crucible)
    assert "raw_dry" not in {d.dataset_id for d in client.list_datasets()}


def test_synthetic_partitions_are_refused_unless_allowed(crucible: str, tmp_path: Path) -> None:
    lake = _land_lake(tmp_path)
    writer = Lake(lake)
    key = PartitionKey(DATASETS["funding"], "BTCUSDT", None, START)
    writer.write_partition(key, writer.read_partition(key), source="rest",
                           ingested_at=INGESTED_AT, expected_rows=None,
                           is_synthetic=True)  # fmt: skip
    refused = _load_bq(*_options(lake, crucible, "raw_synthetic"))
    line = _one_line_error(refused)
    assert "1 lake partition(s) hold synthetic replay data" in line
    assert str(writer.partition_dir(key)) in line
    client = btcfs_bq.client(PROJECT, crucible)
    assert "raw_synthetic" not in {d.dataset_id for d in client.list_datasets()}

    allowed = _load_bq(*_options(lake, crucible, "raw_synthetic", "--allow-synthetic"))
    assert allowed.exit_code == 0, allowed.output
    assert _counts(client, "raw_synthetic")["funding"] > 0


def test_whole_table_load_is_idempotent(crucible: str, tmp_path: Path) -> None:
    """warehouse.bigquery.load_lake (whole tables, WRITE_TRUNCATE) still replaces, never appends."""
    lake = _land_lake(tmp_path)
    client = btcfs_bq.client(PROJECT, crucible)
    funding = [raw for raw in btcfs_bq.raw_tables() if raw.name == "funding"]
    first = btcfs_bq.load_lake(client, lake, dataset="raw_whole", tables=funding)
    again = btcfs_bq.load_lake(client, lake, dataset="raw_whole", tables=funding)
    assert first == again == {"funding": 6}
    assert _scalar(client, f"select count(*) from `{PROJECT}.raw_whole.funding`") == 6


def test_load_bq_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["warehouse", "load-bq", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
    assert "BTCFS_GCS_BUCKET" in result.output and "BTCFS_BQ_API_ENDPOINT" in result.output
    group = CliRunner().invoke(cli, ["warehouse", "--help"])
    assert group.exit_code == 0 and "load-bq" in group.output
