"""A landed lake opens with other engines' defaults: pyarrow datasets, polars, DuckDB (Hive).

Each engine skips the `_`-named metadata (`_MANIFEST.json`, `_SUCCESS`) and must count, per
dataset folder, exactly the rows the manifests say were landed. Spark-style readers skip the
same names (`_`/`.` prefixes), so what pyarrow opens, they open.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from lake.store import LEGACY_MANIFEST_FILE, MANIFEST_FILE, walk_partitions
from tests.warehouse import lakefixtures

START = date(2025, 1, 1)


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engines") / "lake"
    lakefixtures.land(root, lakefixtures.synthetic_market(START, 2, vendors=False))
    return root


def manifest_rows(lake_root: Path) -> Counter[Path]:
    """Dataset folder -> rows its finished partitions' manifests count."""
    counts: Counter[Path] = Counter()
    for found in walk_partitions(lake_root):
        assert found.is_finished and found.is_readable and found.rows is not None
        assert found.manifest_file == MANIFEST_FILE and not found.has_legacy_manifest
        counts[lake_root / str(found.vendor) / str(found.table)] += found.rows
    return counts


def test_the_lake_holds_every_binance_dataset_under_the_new_name(lake_root: Path) -> None:
    counts = manifest_rows(lake_root)
    assert len(counts) == 6 and all(counts.values())
    assert list(lake_root.rglob(MANIFEST_FILE)) and not list(lake_root.rglob(LEGACY_MANIFEST_FILE))


def test_pyarrow_dataset_with_hive_partitioning(lake_root: Path) -> None:
    for folder, rows in manifest_rows(lake_root).items():
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        assert dataset.count_rows() == rows, folder
        assert "symbol" in dataset.schema.names and "date" in dataset.schema.names


def test_polars_scan_parquet_over_a_folder(lake_root: Path) -> None:
    """Polars reads every non-empty file of a folder unless told the Hadoop hidden prefixes
    (pola-rs/polars#21762); a `*.parquet` glob needs nothing."""
    for folder, rows in manifest_rows(lake_root).items():
        frame = pl.scan_parquet(folder, hive_partitioning=True, hidden_file_prefix=["_", "."])
        assert frame.select(pl.len()).collect().item() == rows, folder
        assert "symbol" in frame.collect_schema().names()
        globbed = pl.scan_parquet(f"{folder}/**/*.parquet", hive_partitioning=True)
        assert globbed.select(pl.len()).collect().item() == rows, folder


def test_duckdb_read_parquet_with_hive_partitioning(lake_root: Path) -> None:
    with duckdb.connect() as con:
        for folder, rows in manifest_rows(lake_root).items():
            [(count, symbols)] = con.execute(
                "select count(*), count(distinct symbol) from "
                "read_parquet(?, hive_partitioning = true)",
                [f"{folder}/**/*.parquet"],
            ).fetchall()
            assert (count, symbols) == (rows, 1), folder


def test_an_old_name_is_what_engines_fail_on(tmp_path: Path, lake_root: Path) -> None:
    """Why the name changed: pyarrow reads `MANIFEST.json` as a Parquet file."""
    folder = next(iter(manifest_rows(lake_root)))
    partition = next(folder.rglob(MANIFEST_FILE))
    partition.rename(partition.with_name(LEGACY_MANIFEST_FILE))
    try:
        with pytest.raises(Exception, match=r"MANIFEST\.json"):
            ds.dataset(folder, format="parquet", partitioning="hive").count_rows()
    finally:
        partition.with_name(LEGACY_MANIFEST_FILE).rename(partition)
