"""While another process writes the warehouse (dbt build holds DuckDB's lock), every command
that opens it says so in one line, naming the process and what to do instead."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from btcfs.cli import cli

REPO = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")
HOLD = (
    "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
    "con.execute('create table if not exists t (a int)'); print('holding', flush=True); "
    "time.sleep(120)"
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, parsed_target: Path) -> Path:
    """dbt's target folder as a build leaves it: the parsed project (the session's one parse)
    and a run's results."""
    folder = tmp_path_factory.mktemp("busy_target") / "target"
    shutil.copytree(parsed_target, folder, ignore=shutil.ignore_patterns("partial_parse.msgpack"))
    (folder / "run_results.json").write_text(json.dumps({
        "metadata": {"generated_at": "2026-01-01T00:00:00Z", "invocation_id": "x"},
        "args": {"which": "build"}, "results": [],
    }))  # fmt: skip
    return folder


@pytest.fixture
def held(tmp_path: Path, target: Path) -> Iterator[tuple[Path, int]]:
    """A warehouse file another process holds open for writing, as `dbt build` does."""
    path = tmp_path / "warehouse" / "build.duckdb"
    path.parent.mkdir()
    shutil.copytree(target, tmp_path / "target")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield path, holder.pid
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


@pytest.mark.parametrize(
    "command",
    [
        ["qa", "--target-path", "{root}/target"],
        ["publish", "--target-path", "{root}/target", "--serve", "{root}/serve.duckdb"],
        ["train"],
        ["features", "show", "vol_z"],
        ["features", "get", "--events", "{root}/events.csv", "--out", "{root}/out.parquet"],
    ],
)
def test_every_command_that_opens_the_warehouse_names_who_holds_it(
    held: tuple[Path, int], command: list[str]
) -> None:
    path, pid = held
    root = path.parent.parent
    (root / "events.csv").write_text("symbol,event_time\nBTCUSDT,2025-01-02T00:00:00Z\n")
    args = [part.format(root=root) for part in command]
    result = CliRunner().invoke(cli, [*args, "--warehouse", str(path)],
                                env={"BTCFS_DATA_DIR": str(root)})  # fmt: skip
    expected = (
        f"another process (python{sys.version_info.major}.{sys.version_info.minor}, pid {pid}) "
        "is writing build.duckdb, most likely `dbt build`: wait for it to finish, or read the "
        "published copy serve.duckdb"
    )
    lines = [line for line in result.output.splitlines() if expected in line]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    if command[0] != "features":  # `features show` prints the declaration, coverage says why
        assert result.exit_code == 1 and lines[0].startswith("Error: "), result.output
