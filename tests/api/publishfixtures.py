"""Small hand-made dbt outputs for the publish tests: a build.duckdb with every mart the API
reads (a few rows each), and the record of a dbt invocation as dbt itself leaves it: the gate
ledger rows its hooks write into build.duckdb (macros/qa/gate_ledger.sql), a manifest.json
naming each mart's tests, and a run_results.json whose gates pass or fail as asked."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from warehouse.gate_ledger import LEDGER_TABLE
from warehouse.publish import OPTIONAL_MARTS, REQUIRED_MARTS

#: The model upstream of bars_5m that gates not named after a mart are attached to.
UPSTREAM = "int_spot_bars_1m_gap_filled"
FIRST_RUN_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
_LEDGER_DDL = f"""create table if not exists {LEDGER_TABLE} (
    invocation_id varchar, command varchar, run_started_at timestamptz,
    recorded_at timestamptz, unique_id varchar, resource_type varchar, status varchar,
    failures bigint, depends_on varchar, message varchar)"""


def make_build(path: Path, close: float = 100.0, *, skip: tuple[str, ...] = ()) -> None:
    """A build.duckdb whose marts hold one row at 2025-01-01 with this close (the gate ledger
    of the file it replaces is kept: dbt rewrites tables, not its warehouse)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ledger = _ledger_rows(path)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        for name in (*REQUIRED_MARTS, *OPTIONAL_MARTS):
            if name in skip:
                continue
            interval = ", '5m' as bar_interval" if name == "latest_features" else ""
            con.execute(
                f"create table {name} as select 'BTCUSDT' as symbol{interval}, "
                "timestamptz '2025-01-01 00:00:00+00' as open_time, "
                "timestamptz '2025-01-01 00:05:00+00' as available_at, "
                f"cast({close} as decimal(28, 8)) as close"
            )
        if ledger is not None:
            con.execute(_LEDGER_DDL)
            _append(con, ledger)
    finally:
        con.close()


def _ledger_rows(path: Path) -> list[tuple[Any, ...]] | None:
    if not path.exists():
        return None
    con = duckdb.connect(str(path))
    try:
        listed = con.execute("select table_name from information_schema.tables").fetchall()
        tables = {row[0] for row in listed}
        if LEDGER_TABLE not in tables:
            return None
        return con.execute(f"select * from {LEDGER_TABLE}").fetchall()
    finally:
        con.close()


def _append(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        con.executemany(f"insert into {LEDGER_TABLE} values ({', '.join('?' * 10)})", rows)


def _mart_of(test: str) -> str:
    suffix = test.rsplit("__", 1)[-1]
    return suffix if suffix in (*REQUIRED_MARTS, *OPTIONAL_MARTS) else UPSTREAM


def write_run_results(
    target: Path,
    *,
    failing: tuple[str, ...] = (),
    command: str = "build",
    build: Path | None = None,
) -> str:
    """One dbt invocation: `build` (every mart built, a passing gate on each, plus the named
    failing gates: `<gate>__<mart>` on that mart, others on the model upstream of bars_5m),
    `run` (marts built, no test) or another command (nothing recorded in the ledger). Writes
    its ledger rows into `build` (default: <target>/../warehouse/build.duckdb), manifest.json
    and run_results.json; returns its invocation id."""
    target.mkdir(parents=True, exist_ok=True)
    build = build or target.parent / "warehouse" / "build.duckdb"
    build.parent.mkdir(parents=True, exist_ok=True)
    invocation = str(uuid.uuid4())
    marts = (*REQUIRED_MARTS, *OPTIONAL_MARTS)
    passing = tuple(f"unique_key__{mart}" for mart in marts)
    tests = {name: _mart_of(name) for name in (*passing, *failing)}
    nodes: dict[str, Any] = {
        f"model.btcfs.{UPSTREAM}": _node(UPSTREAM, "model", []),
        **{
            f"model.btcfs.{mart}": _node(mart, "model", [f"model.btcfs.{UPSTREAM}"])
            for mart in marts
        },
        **{
            f"test.btcfs.{name}.0123": _node(name, "test", [f"model.btcfs.{model}"])
            for name, model in tests.items()
        },
    }
    manifest = {
        "metadata": {"adapter_type": "duckdb", "dbt_version": "1.11.16"},
        "nodes": nodes,
        "unit_tests": {},
    }
    (target / "manifest.json").write_text(json.dumps(manifest))
    results: list[dict[str, Any]] = []
    if command in ("build", "run"):
        results += [
            {"unique_id": f"model.btcfs.{m}", "status": "success", "failures": None}
            for m in (UPSTREAM, *marts)
        ]
    if command == "build":
        results += [
            {"unique_id": f"test.btcfs.{name}.0123", "status": "pass", "failures": 0}
            for name in passing
        ]
        results += [
            {"unique_id": f"test.btcfs.{name}.0123", "status": "fail", "failures": 3}
            for name in failing
        ]
    payload = {
        "metadata": {
            "generated_at": "2025-01-02T03:04:05.000000Z",
            "invocation_id": invocation,
            "dbt_version": "1.11.16",
        },
        "args": {"which": command},
        "results": results,
    }
    (target / "run_results.json").write_text(json.dumps(payload))
    if command in ("build", "run"):
        _record(build, invocation, command, results, nodes)
    return invocation


def _node(name: str, kind: str, parents: list[str]) -> dict[str, Any]:
    return {"name": name, "resource_type": kind, "depends_on": {"nodes": parents}}


def _record(
    build: Path,
    invocation: str,
    command: str,
    results: list[dict[str, Any]],
    nodes: dict[str, Any],
) -> None:
    """The rows the ledger hooks write: started, one per result, finished."""
    con = duckdb.connect(str(build))
    try:
        con.execute(_LEDGER_DDL)
        newest = con.execute(f"select max(run_started_at) from {LEDGER_TABLE}").fetchone()
        # Invocations follow each other: each starts a second after the newest recorded one.
        last = newest[0] if newest else None
        started = FIRST_RUN_AT if last is None else last + timedelta(seconds=1)
        rows: list[tuple[Any, ...]] = [
            (invocation, command, started, started, "invocation", "invocation", "started",
             None, None, None)
        ]  # fmt: skip
        for result in results:
            uid = result["unique_id"]
            kind = uid.split(".", 1)[0]
            parents = ",".join(nodes[uid]["depends_on"]["nodes"]) if kind == "test" else None
            rows.append(
                (invocation, command, started, started, uid, kind, result["status"],
                 result["failures"], parents, None)
            )  # fmt: skip
        rows.append(
            (invocation, command, started, started, "invocation", "invocation", "finished",
             None, None, None)
        )  # fmt: skip
        _append(con, rows)
    finally:
        con.close()
