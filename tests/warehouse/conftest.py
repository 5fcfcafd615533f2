"""Fixtures for the warehouse tests: real `dbt build` runs against DuckDB files in tmp folders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.warehouse import lakefixtures

REPO = lakefixtures.REPO
DBT = Path(sys.executable).with_name("dbt")
# Our models (staging, bars, funding / open interest); the features helper's models sit downstream.
CORE = ["--select", "tag:lake tag:bars tag:derivatives"]
_GATE_LINE = re.compile(
    r"GATE (?P<level>FAIL|WARN) (?P<gate>\S+): dataset=(?P<dataset>\S+) symbol=(?P<symbol>\S+) "
    r"day=(?P<day>\S+) count=(?P<count>\d+) \((?P<detail>.*)\)$"
)


@dataclass
class DbtRun:
    args: list[str]
    returncode: int
    output: str
    results: dict[str, dict[str, Any]]  # unique_id -> run result

    def status(self, name: str) -> str:
        """Status of the node whose name (last part of its unique id, hash stripped) is `name`."""
        matches = [r["status"] for uid, r in self.results.items() if _node_name(uid) == name]
        if not matches:
            raise KeyError(f"{name} not in this run: {sorted(map(_node_name, self.results))}")
        return matches[0]

    def statuses(self, prefix: str = "") -> dict[str, str]:
        return {
            _node_name(uid): r["status"]
            for uid, r in self.results.items()
            if uid.startswith(prefix)
        }

    def gate_lines(self) -> list[dict[str, str]]:
        """The on-run-end report: one dict per `GATE FAIL|WARN ...` line."""
        lines = []
        for line in self.output.splitlines():
            match = _GATE_LINE.search(line.strip())
            if match:
                lines.append(match.groupdict())
        return lines


def _node_name(unique_id: str) -> str:
    parts = unique_id.split(".")
    if parts[0] == "test" and len(parts) >= 4:
        return parts[2]
    return parts[-1]


@dataclass
class Warehouse:
    """A lake + a DuckDB warehouse + a dbt target folder, all under one tmp folder."""

    root: Path
    runs: list[DbtRun] = field(default_factory=list)

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def target(self) -> Path:
        return self.root / "target"

    @property
    def database(self) -> Path:
        return self.root / "warehouse" / "build.duckdb"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
        env.update(
            BTCFS_DATA_DIR=str(self.root),
            DBT_TARGET_PATH=str(self.target),
            DBT_LOG_PATH=str(self.root / "logs"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        # No DBT_PROFILES_DIR: plain `dbt` must find the repo-root profiles.yml by itself.
        return env

    def dbt(self, *args: str, expect_ok: bool | None = True) -> DbtRun:
        command = [str(DBT), *args]
        proc = subprocess.run(
            command, cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=900
        )
        output = proc.stdout + proc.stderr
        results: dict[str, dict[str, Any]] = {}
        results_path = self.target / "run_results.json"
        if results_path.exists():
            payload = json.loads(results_path.read_text())
            results = {r["unique_id"]: r for r in payload.get("results", [])}
        run = DbtRun(list(args), proc.returncode, output, results)
        self.runs.append(run)
        if expect_ok is True and proc.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed:\n{output[-6000:]}")
        if expect_ok is False and proc.returncode == 0:
            raise AssertionError(f"dbt {' '.join(args)} unexpectedly passed:\n{output[-3000:]}")
        return run

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def relations(self) -> set[str]:
        return {row[0] for row in self.query("select table_name from information_schema.tables")}


def make_warehouse(tmp_path_factory: pytest.TempPathFactory, name: str) -> Warehouse:
    return Warehouse(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def real_data() -> Path:
    if lakefixtures.REAL_DATA is None:
        pytest.skip(lakefixtures.REAL_DATA_REASON)
    return lakefixtures.REAL_DATA


@pytest.fixture
def warehouse_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield lambda name: make_warehouse(tmp_path_factory, name)
