"""The portable-SQL check, the root profiles.yml a plain `dbt build` needs, `btcfs qa --help`."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from tests.warehouse.conftest import CORE, DBT, REPO

_SPEC = importlib.util.spec_from_file_location(
    "check_portable_sql", REPO / "scripts" / "check_portable_sql.py"
)
assert _SPEC and _SPEC.loader
check = importlib.util.module_from_spec(_SPEC)
sys.modules["check_portable_sql"] = check
_SPEC.loader.exec_module(check)


def test_repository_sql_is_portable(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["check", str(REPO)]) == 0
    assert "portable" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("select log(x) from t", "LOG("),
        ("select LOG (2, x) from t", "LOG("),
        ("select x::double from t", "'::'"),
        ("select * from a asof left join b on a.t >= b.t", "ASOF"),
        ("select time_bucket(interval 5 minute, ts) from t", "DuckDB-only function"),
        ("select epoch(ts) from t", "DuckDB-only function"),
    ],
)
def test_duckdb_only_syntax_is_found(tmp_path: Path, sql: str, found: str) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.sql").write_text(f"-- a model\n{sql}\n")
    problems = list(check.problems(tmp_path / "models" / "m.sql"))
    assert len(problems) == 1
    assert "m.sql:2:" in problems[0]
    assert found in problems[0]


def test_comments_strings_jinja_and_cross_db_macros_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "macros" / "cross_db").mkdir(parents=True)
    (tmp_path / "models" / "m.sql").write_text(
        "{# log(x) and ASOF #}\n-- x::int\nselect ln(x), 'a::b', {{ log('hi') }} from t\n"
        "/* asof */\n"
    )
    (tmp_path / "macros" / "cross_db" / "e.sql").write_text("epoch(ts)::bigint")
    assert check.main(["check", str(tmp_path)]) == 0


def test_plain_dbt_finds_the_profile_from_the_repo_root() -> None:
    root_profile = REPO / "profiles.yml"
    assert root_profile.is_symlink()
    assert root_profile.resolve() == (REPO / "profiles" / "profiles.yml").resolve()


def test_qa_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["qa", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output


@pytest.mark.dbt
def test_core_models_compile_to_bigquery_sql_offline(tmp_path: Path) -> None:
    """The bigquery__ branches: compile with a credential-free profile, parse with sqlglot."""
    sqlglot = pytest.importorskip("sqlglot")
    pytest.importorskip("dbt.adapters.bigquery")
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "btcfs:\n  target: bq\n  outputs:\n    bq:\n      type: bigquery\n"
        "      method: oauth-secrets\n      token: offline\n      project: local-project\n"
        "      dataset: btcfs\n      threads: 1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(BTCFS_DATA_DIR=str(tmp_path), DBT_TARGET_PATH=str(tmp_path / "target"))
    env["DBT_LOG_PATH"] = str(tmp_path / "logs")
    proc = subprocess.run(
        [str(DBT), "compile", "--profiles-dir", str(profiles), "--no-introspect",
         "--no-populate-cache", "--vars", "{disable_incremental: true}", *CORE],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    compiled = sorted((tmp_path / "target" / "compiled" / "btcfs").rglob("*.sql"))
    assert len(compiled) > 50
    for path in compiled:
        sql = path.read_text()
        sqlglot.parse(sql, read="bigquery")
        assert "::" not in sql and "time_bucket(" not in sql, path.name
