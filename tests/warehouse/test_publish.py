"""`btcfs publish`: refuses a failed build, swaps serve.duckdb atomically, records metadata."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from ml.registry import Registry
from pipeline import publish
from tests.api.publishfixtures import make_build, write_run_results
from warehouse.publish import METADATA_TABLE, MODELS_TABLE, PublishError


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BTCFS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    make_build(tmp_path / "warehouse" / "build.duckdb", close=100.0)
    return tmp_path


def close_in(path: Path) -> float:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("select close from bars_5m").fetchone()
        assert row is not None
        return float(row[0])
    finally:
        con.close()


def test_refuses_a_build_with_a_failing_gate_naming_it(data_dir: Path) -> None:
    write_run_results(data_dir / "target")
    assert CliRunner().invoke(cli, ["publish"]).exit_code == 0
    before = (data_dir / "warehouse" / "serve.duckdb").stat()
    failing = ("gap_ratio__spot_klines", "ranges__features_5m")
    write_run_results(data_dir / "target", failing=failing)
    make_build(data_dir / "warehouse" / "build.duckdb", close=200.0)
    result = CliRunner().invoke(cli, ["publish"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "refusing to publish" in lines[0]
    assert "gap_ratio__spot_klines" in lines[0] and "ranges__features_5m" in lines[0]
    after = (data_dir / "warehouse" / "serve.duckdb").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert close_in(data_dir / "warehouse" / "serve.duckdb") == 100.0


def test_refuses_without_run_results_or_after_another_command(data_dir: Path) -> None:
    with pytest.raises(PublishError, match="run `dbt build` first"):
        publish(target_path=data_dir / "target")
    # A compile records nothing in the warehouse, which has no gate ledger yet.
    write_run_results(data_dir / "target", command="compile")
    with pytest.raises(PublishError, match="has no gate ledger"):
        publish(target_path=data_dir / "target")
    # `dbt run` builds the marts and runs no gate on them.
    write_run_results(data_dir / "target", command="run")
    with pytest.raises(PublishError, match="have not run since their model was last built"):
        publish(target_path=data_dir / "target")
    assert not (data_dir / "warehouse" / "serve.duckdb").exists()


def test_refuses_a_warehouse_missing_a_mart(data_dir: Path) -> None:
    write_run_results(data_dir / "target")
    make_build(data_dir / "warehouse" / "build.duckdb", skip=("latest_features",))
    with pytest.raises(PublishError, match="lacks latest_features"):
        publish(target_path=data_dir / "target")
    assert not (data_dir / "warehouse" / "serve.duckdb").exists()
    left = [p.name for p in (data_dir / "warehouse").iterdir() if p.name != ".serve.duckdb.lock"]
    assert left == ["build.duckdb"]


def test_replacement_is_atomic_and_old_readers_keep_their_snapshot(data_dir: Path) -> None:
    serve = data_dir / "warehouse" / "serve.duckdb"
    write_run_results(data_dir / "target")
    publish(target_path=data_dir / "target")
    first = serve.stat().st_ino
    # A reader attached to the first file (as the API's connections are).
    reader = duckdb.connect(":memory:")
    reader.execute(f"attach '{serve}' as serve (read_only)")
    make_build(data_dir / "warehouse" / "build.duckdb", close=250.0)
    write_run_results(data_dir / "target")
    publish(target_path=data_dir / "target")
    assert serve.stat().st_ino != first  # a new file renamed over, not rewritten in place
    assert close_in(serve) == 250.0
    row = reader.execute("select close from serve.bars_5m").fetchone()
    assert row is not None and float(row[0]) == 100.0
    reader.close()
    # Nothing but the two files is left behind (no temporary file, no WAL); the publish lock
    # file stays, as removing it would race a publish waiting on it.
    left = sorted(p.name for p in serve.parent.iterdir() if p.name != ".serve.duckdb.lock")
    assert left == ["build.duckdb", "serve.duckdb"]


def test_metadata_records_build_invocation_and_models(data_dir: Path) -> None:
    registry = Registry(data_dir / "registry")
    metadata = {"target": "fwd_ret", "horizon": "1h", "features": ["ret_5m"],
                "gates": {"passed": True}}  # fmt: skip
    registry.register("btcusdt_5m", metadata, lambda folder: None)
    registry.register("btcusdt_5m", metadata, lambda folder: None)
    registry.promote("btcusdt_5m", "v0001")
    invocation = write_run_results(data_dir / "target")
    result = publish(target_path=data_dir / "target")
    assert result.invocation_id == invocation
    con = duckdb.connect(str(result.path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        row = con.execute(
            f"select built_at, dbt_invocation_id, dbt_command, model, model_version, model_stage, "
            f"published_at from {METADATA_TABLE}"
        ).fetchone()
        assert row is not None
        built_at, invocation_id, command, model, version, stage, published_at = row
        assert built_at.isoformat() == "2025-01-02T03:04:05+00:00"
        assert (invocation_id, command) == (invocation, "build")
        # Production is pinned, not the newer candidate.
        assert (model, version, stage) == ("btcusdt_5m", "v0001", "production")
        assert published_at == result.published_at
        models = con.execute(f"select model, version, target, horizon from {MODELS_TABLE}")
        assert models.fetchall() == [("btcusdt_5m", "v0001", "fwd_ret", "1h")]
        listed = con.sql("select table_name from information_schema.tables").fetchall()
        tables = {row[0] for row in listed}
        assert {"bars_5m", "bars_1d", "features_5m", "features_1h", "latest_features"} <= tables
    finally:
        con.close()


def test_refuses_while_another_process_writes_the_build(data_dir: Path) -> None:
    write_run_results(data_dir / "target")
    build = data_dir / "warehouse" / "build.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(build)!r})
            print("locked", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(PublishError, match=r"is writing build\.duckdb, most likely"):
            publish(target_path=data_dir / "target")
    finally:
        holder.communicate("", timeout=30)
    assert not (data_dir / "warehouse" / "serve.duckdb").exists()
    # The holder is gone: the same publish now goes through.
    publish(target_path=data_dir / "target")
    assert os.path.exists(data_dir / "warehouse" / "serve.duckdb")


@pytest.mark.parametrize("command", ["publish", "serve"])
def test_help_has_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
