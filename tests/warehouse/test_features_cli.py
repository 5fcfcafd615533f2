"""`btcfs features list|show`: the feature catalog from dbt's manifest, coverage from the
warehouse, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from warehouse.catalog import FEATURE_SETS, CatalogError, from_manifest, load_catalog

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of this checkout, written by `dbt parse` (what load_catalog does itself)."""
    folder = tmp_path_factory.mktemp("target")
    load_catalog(folder)
    return folder


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_list_shows_every_declared_column_and_filters_by_set(target: Path) -> None:
    code, output = run("features", "list", "--target-path", str(target), "--json")
    assert code == 0, output
    columns = json.loads(output)
    catalog = from_manifest(target / "manifest.json")
    assert [c["name"] for c in columns] == [c.name for c in catalog.columns("features_5m")]
    assert {c["feature_set"] for c in columns} == {*FEATURE_SETS, None}
    for column in columns:  # every declaration is whole
        assert column["role"] in ("key", "feature", "flag", "diagnostic")
        if column["model_input"]:
            assert column["feature_set"] and column["unit"] and column["point_in_time"]
    code, output = run("features", "list", "--target-path", str(target), "--set", "spot")
    assert code == 0 and "vol_z" in output and "oi_z" not in output
    assert output.strip().splitlines()[-1].startswith(f"{len(catalog.set_members('spot'))} columns")


def test_show_gives_the_declaration_and_the_coverage_per_symbol(
    target: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "build.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute(
        "create table features_5m as select * from (values "
        "('BTCUSDT', timestamptz '2025-01-01 00:00:00+00', null::double), "
        "('BTCUSDT', timestamptz '2025-01-01 00:05:00+00', 1.5), "
        "('ETHUSDT', timestamptz '2025-01-01 00:00:00+00', 2.0)) t(symbol, open_time, vol_z)"
    )
    con.close()
    args = (
        "features",
        "show",
        "vol_z",
        "--target-path",
        str(target),
        "--warehouse",
        str(warehouse),
    )
    code, output = run(*args)
    assert code == 0, output
    assert "set:            spot" in output and "model input:    yes" in output
    assert "BTCUSDT: 1 of 2 rows (50.0%), first 2025-01-01T00:05:00+00:00" in output
    assert "ETHUSDT: 1 of 1 rows (100.0%)" in output
    code, output = run(*args, "--json")
    payload = json.loads(output)
    assert [c["non_null_share"] for c in payload["coverage"]] == [0.5, 1.0]
    # no warehouse yet: the declaration and one line saying how to get the coverage
    code, output = run("features", "show", "vol_z", "--target-path", str(target),
                       "--warehouse", str(tmp_path / "none.duckdb"))  # fmt: skip
    assert code == 0 and "run `dbt build` for the coverage" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "vol"), "no column 'vol' in features_5m; did you mean vol_z?"),
        (("show", "x; drop table t"), "no column"),
        (("list", "--set", "macro"), "Invalid value for '--set'"),
    ],
)
def test_bad_names_are_one_clear_line(target: Path, args: tuple[str, ...], message: str) -> None:
    code, output = run("features", *args, "--target-path", str(target))
    assert code != 0 and message in output and "Traceback" not in output


def test_a_declaration_that_breaks_the_contract_is_refused(target: Path, tmp_path: Path) -> None:
    manifest = json.loads((target / "manifest.json").read_text())
    node = manifest["nodes"]["model.btcfs.features_5m"]
    node["columns"]["vol_z"]["config"]["meta"].pop("feature_set")
    node["columns"]["vol_z"]["meta"].pop("feature_set", None)
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(manifest))
    with pytest.raises(
        CatalogError, match=r"vol_z: a feature or model input needs meta\.feature_set"
    ):
        from_manifest(broken)
    with pytest.raises(CatalogError, match="no dbt manifest"):
        from_manifest(tmp_path / "missing.json")
