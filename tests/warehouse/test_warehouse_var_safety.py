"""dbt vars are SQL text: the macros that inline a text var refuse one that is not what it
should be, and dbt's DuckDB reads only the lake and the warehouse folder whatever SQL reaches
it. Real dbt, real DuckDB files (`dbt show --inline`: no build needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.warehouse.conftest import DbtRun, Warehouse

pytestmark = pytest.mark.dbt

#: The issue's attack, as a CLI user (or an old API) could pass it.
SQL_SYMBOL = "BTCUSDT') and error((select content from read_text('/etc/hostname'))) --"
OUTSIDE = Path("/etc/hostname")


def show(warehouse: Warehouse, sql: str, *vars_: str, expect_ok: bool | None) -> DbtRun:
    extra = ["--vars", vars_[0]] if vars_ else []
    return warehouse.dbt("show", "--inline", sql, "--output", "json", *extra, expect_ok=expect_ok)


@pytest.fixture
def warehouse(warehouse_factory: Callable[[str], Warehouse]) -> Warehouse:
    built: Warehouse = warehouse_factory("var_safety")
    built.lake.mkdir(parents=True)
    (built.lake / "inside.txt").write_text("lake file\n")
    return built


def test_a_file_outside_the_lake_and_warehouse_cannot_be_read(warehouse: Warehouse) -> None:
    secret = OUTSIDE.read_text().strip() if OUTSIDE.exists() else "no-such-file"
    refused = show(warehouse, f"select content from read_text('{OUTSIDE}')", expect_ok=False)
    assert "file system operations are disabled by configuration" in refused.output
    assert secret not in refused.output.replace(str(OUTSIDE), "")
    # ... nor listed, nor fetched over the network.
    for sql in ("select * from glob('/etc/*')", "select * from read_csv('http://127.0.0.1:9/x')"):
        assert "disabled by configuration" in show(warehouse, sql, expect_ok=False).output
    inside = show(warehouse, f"select content from read_text('{warehouse.lake}/inside.txt')",
                  expect_ok=True)  # fmt: skip
    assert "lake file" in inside.output


def test_the_lake_root_var_moves_the_allowed_folder(warehouse: Warehouse, tmp_path: Path) -> None:
    """CLI users move the lake with `--vars '{lake_root: ...}'`: that folder, not the old one."""
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "moved.txt").write_text("moved lake\n")
    lake_root = json.dumps({"lake_root": str(moved)})
    ok = show(warehouse, f"select content from read_text('{moved}/moved.txt')", lake_root,
              expect_ok=True)  # fmt: skip
    assert "moved lake" in ok.output
    old = show(warehouse, f"select content from read_text('{warehouse.lake}/inside.txt')",
               lake_root, expect_ok=False)  # fmt: skip
    assert "disabled by configuration" in old.output


@pytest.mark.parametrize(
    ("sql", "variables", "named"),
    [
        ("select {{ symbols_sql_list() }}", {"symbols": [SQL_SYMBOL]}, "var symbols"),
        ("select {{ symbols_sql_list() }}", {"symbols": ["btc'usdt"]}, "var symbols"),
        (
            "{{ vendor_symbol_pairs('coinglass') }}",
            {"vendor_symbols": {"BTCUSDT": {"coin": "BTC' union select 1, 2, 3 --"}}},
            "var vendor_symbols",
        ),
        (
            "select {{ checked_number(var('ffill_max_bars'), 'ffill_max_bars') }}",
            {"ffill_max_bars": "3) or (1"},
            "var ffill_max_bars",
        ),
    ],
)
def test_macros_refuse_a_text_var_that_is_not_a_name(
    warehouse: Warehouse, sql: str, variables: dict[str, object], named: str
) -> None:
    refused = show(warehouse, sql, json.dumps(variables), expect_ok=False)
    assert named in refused.output
    assert "does not match" in refused.output or "is not a number" in refused.output


def test_macros_still_inline_good_names(warehouse: Warehouse) -> None:
    symbols = json.dumps({"symbols": ["BTCUSDT", "1000SHIBUSDT"]})
    shown = show(warehouse, "select {{ symbols_sql_list() }}", symbols, expect_ok=True)
    assert "BTCUSDT" in shown.output and "1000SHIBUSDT" in shown.output
    pairs = show(warehouse, "{{ vendor_symbol_pairs('coinglass') }}", expect_ok=True)
    assert '"vendor_symbol": "BTC"' in pairs.output
