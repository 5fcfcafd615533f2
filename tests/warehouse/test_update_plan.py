"""The update plan (warehouse.plan) equals `dbt build`.

Two data folders land the same synthetic lake (every dataset) step by step, the way the loader
grows it: the current day rewritten as it fills up, a late correction of yesterday's klines,
a run with nothing new. After each step one runs the update's `dbt build` (incremental, gates
on the last two days) and the other runs the compiled plan. Every table the build writes, and
every gate's status and failure count, must be the same. Then: a failing gate fails and skips
what is downstream of it as dbt does, publish accepts what a plan run recorded in the gate
ledger, and a plan refuses to run (leaving the warehouse as it was) when it is stale.

Publishing after each plan run starts from the previous serve file (a delta publish): every
table it serves must equal a full publish of the same build, row for row; after a dbt build,
without a serve file or with a mart's columns changed, it copies whole.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from core.errors import BtcfsError
from tests.features.feature_harness import (
    REPO,
    SMALL_WINDOWS,
    FeatureWarehouse,
    Tables,
    assert_same_rows,
    cut_at,
    synthetic,
)
from tests.warehouse import lakefixtures as lf
from warehouse import plan as update_plan
from warehouse.gate_ledger import KEEP_INVOCATIONS, LEDGER_TABLE
from warehouse.publish import METADATA_TABLE, PublishResult, publish

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

DAYS = 8
FIRST = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
STEPS = {
    "mid-day": datetime(2025, 1, 6, 12, 3, tzinfo=UTC),
    "next day": datetime(2025, 1, 7, 12, 0, tzinfo=UTC),
    "late correction": datetime(2025, 1, 8, 6, 0, tzinfo=UTC),
    "nothing new": datetime(2025, 1, 8, 6, 0, tzinfo=UTC),
}
#: A minute of the day before "late correction" whose kline the exchange corrected.
CORRECTED = datetime(2025, 1, 7, 9, 41, tzinfo=UTC)
BUILD_VARS = {**SMALL_WINDOWS, "gate_window_days": update_plan.GATE_WINDOW_DAYS}
BUILD = ("build", "--exclude", "resource_type:unit_test")


def corrected(tables: Tables) -> Tables:
    """Yesterday's spot kline at CORRECTED re-landed with its close moved to its high."""
    out = dict(tables)
    for key, table in tables.items():
        if key[0] != "spot-klines":
            continue
        times = table.column("open_time").combine_chunks()
        mask = pc.equal(times, pa.scalar(CORRECTED, type=times.type)).to_numpy(zero_copy_only=False)
        if mask.any():
            high = table.column("high")[int(np.flatnonzero(mask)[0])].as_py()
            out[key] = lf._replace_rows(table, mask, {"close": high})
    return out


class Site(FeatureWarehouse):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbt_vars = BUILD_VARS

    @property
    def target(self) -> Path:
        return self.root / "target"

    def tables(self) -> list[str]:
        manifest = json.loads((self.target / "manifest.json").read_text())
        return sorted(
            node["name"]
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["config"]["materialized"] != "view"
        )

    def rows(self, names: list[str]) -> dict[str, Any]:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return {
                name: con.sql(f"select * from {name} order by all").to_arrow_table().to_pandas()
                for name in names
            }
        finally:
            con.close()

    def gates(self, target: Path) -> dict[str, tuple[str, int | None]]:
        results = json.loads((target / "run_results.json").read_text())["results"]
        return {
            r["unique_id"]: (r["status"], r.get("failures"))
            for r in results
            if r["unique_id"].startswith(("test.", "model."))
        }

    def fingerprint(self) -> str:
        return update_plan.project_fingerprint(lake_root=self.lake, dbt_version=version("dbt-core"))

    def compile_plan(self) -> None:
        plan_dir = update_plan.plan_target(self.target)
        self.dbt_vars = {**BUILD_VARS, **update_plan.PLAN_VARS}
        try:
            self.dbt("compile", "--exclude", "resource_type:unit_test", "--target-path",
                     str(plan_dir))  # fmt: skip
        finally:
            self.dbt_vars = BUILD_VARS
        update_plan.write_plan_file(plan_dir, fingerprint=self.fingerprint(), lake_root=self.lake)

    def run_plan(self) -> update_plan.PlanRun:
        plan = update_plan.load_plan(
            update_plan.plan_target(self.target), fingerprint=self.fingerprint()
        )
        return update_plan.run_plan(plan, self.database, allowed=[self.lake])

    def publish(self, *, delta: bool = True) -> PublishResult:
        serve = self.root / "warehouse" / ("serve.duckdb" if delta else "serve-full.duckdb")
        return publish(target_path=self.target, warehouse=self.database, serve=serve,
                       delta=delta)  # fmt: skip


def served(result: PublishResult) -> dict[str, Any]:
    """Every table of a published file, sorted (the metadata row without its publish time)."""
    con = duckdb.connect(str(result.path), read_only=True)
    try:
        names = [row[0] for row in con.execute("show tables").fetchall()]
        return {
            name: con.sql(
                f"select * exclude (published_at) from {name}"
                if name == METADATA_TABLE
                else f"select * from {name} order by all"
            )
            .to_arrow_table()
            .to_pandas()
            for name in names
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both folders through every step; each step's tables and gates."""
    market = synthetic(DAYS)
    with_dbt = Site(tmp_path_factory.mktemp("with-dbt"))
    with_plan = Site(tmp_path_factory.mktemp("with-plan"))
    for site in (with_dbt, with_plan):
        site.land(cut_at(market, FIRST))
        site.dbt(*BUILD)
    with_plan.compile_plan()
    tables = with_dbt.tables()
    first = {"plan": with_plan.publish(), "dbt": with_dbt.publish()}
    steps: dict[str, Any] = {}
    for name, cut in STEPS.items():
        lake = cut_at(corrected(market) if name in ("late correction", "nothing new") else market,
                      cut)  # fmt: skip
        for site in (with_dbt, with_plan):
            site.land(lake, replace=False)
        with_dbt.dbt(*BUILD)
        run = with_plan.run_plan()
        delta, full = with_plan.publish(), with_plan.publish(delta=False)
        steps[name] = {
            "dbt": with_dbt.rows(tables),
            "plan": with_plan.rows(tables),
            "dbt gates": with_dbt.gates(with_dbt.target),
            "plan gates": with_plan.gates(update_plan.plan_target(with_plan.target)),
            "run": run,
            "delta": (delta, served(delta)),
            "full": (full, served(full)),
            "after dbt build": with_dbt.publish(),
        }
    return {"dbt": with_dbt, "plan": with_plan, "tables": tables, "steps": steps,
            "market": market, "first": first}  # fmt: skip


@pytest.mark.parametrize("step", list(STEPS))
def test_plan_writes_what_dbt_build_writes(sites: dict[str, Any], step: str) -> None:
    found = sites["steps"][step]
    assert len(sites["tables"]) >= 25
    for table in sites["tables"]:
        expected, actual = found["dbt"][table], found["plan"][table]
        if table != "int_daily_series_vintages_resolved":
            assert len(expected) > 0, f"{table} is empty after {step}"
        assert_same_rows(expected, actual, what=f"{table} after {step}")


@pytest.mark.parametrize("step", list(STEPS))
def test_plan_gates_equal_dbt_gates(sites: dict[str, Any], step: str) -> None:
    found = sites["steps"][step]
    dbt_gates, plan_gates = found["dbt gates"], found["plan gates"]
    tests = {uid for uid in dbt_gates if uid.startswith("test.")}
    assert len(tests) > 100
    assert {uid for uid in plan_gates if uid.startswith("test.")} == tests
    assert {uid: plan_gates[uid] for uid in tests} == {uid: dbt_gates[uid] for uid in tests}
    models = {uid for uid in dbt_gates if uid.startswith("model.")}
    assert {plan_gates[uid][0] for uid in models} == {"success"}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_delta_publish_serves_what_a_full_publish_serves(
    sites: dict[str, Any], step: str
) -> None:
    (delta, delta_tables), (full, full_tables) = (
        sites["steps"][step]["delta"],
        sites["steps"][step]["full"],
    )
    assert (delta.mode, delta.why_full) == ("delta", None)
    assert full.mode == "full"
    assert delta.invocation_id == full.invocation_id == sites["steps"][step]["run"].invocation_id
    assert delta.tables == full.tables
    assert sorted(delta_tables) == sorted(full_tables)
    assert len(delta_tables) > len(delta.tables)  # the metadata tables too
    for name, expected in full_tables.items():
        assert_same_rows(expected, delta_tables[name], what=f"{name} after {step}")


def test_publish_copies_whole_without_a_base_or_after_a_dbt_build(sites: dict[str, Any]) -> None:
    assert {site: r.mode for site, r in sites["first"].items()} == {"plan": "full", "dbt": "full"}
    assert sites["first"]["plan"].why_full == "no served file yet"
    for step in STEPS:
        after = sites["steps"][step]["after dbt build"]
        assert after.mode == "full"
        assert after.why_full is not None and "`build` (invocation" in after.why_full


def test_publish_copies_whole_when_the_served_file_differs(
    sites: dict[str, Any], tmp_path: Path
) -> None:
    site = _copy(sites["plan"], tmp_path / "site")
    assert "another build" in (site.publish().why_full or "")  # the original's serve file
    assert site.publish().mode == "delta"
    serve = site.root / "warehouse" / "serve.duckdb"
    for change, why in [
        ("alter table bars_1h add column extra integer", "columns changed"),
        ("create table stray (a integer)", "other tables"),
        (f"update {METADATA_TABLE} set btcfs_version = 'other'", "another build or version"),
    ]:
        con = duckdb.connect(str(serve))
        con.execute(change)
        con.close()
        result = site.publish()
        assert (result.mode, why in (result.why_full or "")) == ("full", True), result.why_full
        assert site.publish().mode == "delta"


def test_the_correction_reached_the_marts(sites: dict[str, Any]) -> None:
    before = sites["steps"]["next day"]["plan"]["int_spot_bars_1m_gap_filled"]
    after = sites["steps"]["late correction"]["plan"]["int_spot_bars_1m_gap_filled"]
    pick = before["open_time"] == CORRECTED
    assert pick.sum() == 1
    assert float(after[after["open_time"] == CORRECTED]["close"].iloc[0]) == float(
        after[after["open_time"] == CORRECTED]["high"].iloc[0]
    )
    assert float(before[pick]["close"].iloc[0]) != float(before[pick]["high"].iloc[0])


def test_a_plan_run_is_published_like_a_dbt_build(sites: dict[str, Any], tmp_path: Path) -> None:
    site: Site = sites["plan"]
    run: update_plan.PlanRun = sites["steps"]["nothing new"]["run"]
    result = publish(
        target_path=site.target, warehouse=site.database, serve=tmp_path / "serve.duckdb"
    )
    assert result.invocation_id == run.invocation_id
    con = duckdb.connect(str(site.database), read_only=True)
    try:
        commands = con.execute(
            f"select distinct command from {LEDGER_TABLE} where invocation_id = ?",
            [run.invocation_id],
        ).fetchall()
    finally:
        con.close()
    assert commands == [(update_plan.LEDGER_COMMAND,)]


def test_the_ledger_forgets_what_no_check_reads(sites: dict[str, Any]) -> None:
    """Every model succeeded in the last plan run, so the invocations before it are gone from
    the plan site's ledger but the newest few (a delta publish reads them); the dbt site (no
    plan run, no pruning) keeps all five."""

    def invocations(site: Site) -> int:
        con = duckdb.connect(str(site.database), read_only=True)
        try:
            query = f"select count(distinct invocation_id) from {LEDGER_TABLE}"
            row = con.execute(query).fetchone()
        finally:
            con.close()
        assert row is not None
        return int(row[0])

    assert invocations(sites["plan"]) == KEEP_INVOCATIONS < 1 + len(STEPS)
    assert invocations(sites["dbt"]) == 1 + len(STEPS)


def _copy(site: Site, root: Path) -> Site:
    """A copy of `site` (lake, warehouse, target) under `root`. Its views still read the
    original's lake (dbt wrote their paths): for tests that change no lake."""
    for part in ("lake", "warehouse", "target"):
        shutil.copytree(site.root / part, root / part)
    copy = Site(root)
    update_plan.write_plan_file(
        update_plan.plan_target(copy.target), fingerprint=copy.fingerprint(), lake_root=copy.lake
    )
    return copy


def test_a_stale_plan_is_refused(sites: dict[str, Any], tmp_path: Path) -> None:
    site = _copy(sites["plan"], tmp_path / "site")
    plan_dir = update_plan.plan_target(site.target)
    # the project changed (one model edited)
    project = tmp_path / "project"
    for part in update_plan.PROJECT_GLOBS:
        for path in REPO.glob(part):
            (project / path.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, project / path.relative_to(REPO))
    same = update_plan.project_fingerprint(
        project, lake_root=site.lake, dbt_version=version("dbt-core")
    )
    assert same == site.fingerprint()
    edited = project / "models" / "marts" / "bars" / "bars_5m.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    changed = update_plan.project_fingerprint(
        project, lake_root=site.lake, dbt_version=version("dbt-core")
    )
    with pytest.raises(update_plan.PlanStale, match="project changed"):
        update_plan.load_plan(plan_dir, fingerprint=changed)
    # a dataset the plan compiled as absent appeared (or the other way round)
    record = json.loads((plan_dir / update_plan.PLAN_FILE).read_text())
    pattern = next(iter(record["sources"]))
    record["sources"][pattern] = not record["sources"][pattern]
    (plan_dir / update_plan.PLAN_FILE).write_text(json.dumps(record))
    with pytest.raises(
        update_plan.PlanStale, match=r"datasets changed \(\w+/\w+ (appeared|is gone)\)"
    ):
        update_plan.load_plan(plan_dir, fingerprint=site.fingerprint())


def test_a_failing_plan_leaves_the_warehouse_as_it_was(
    sites: dict[str, Any], tmp_path: Path
) -> None:
    site = _copy(sites["plan"], tmp_path / "site")
    plan = update_plan.load_plan(
        update_plan.plan_target(site.target), fingerprint=site.fingerprint()
    )
    tables = ["bars_5m", "features_5m", "int_open_interest_floored", LEDGER_TABLE]
    before = site.rows(tables)
    # a node late in the order whose SQL no longer runs: everything before it (the ledger's
    # `started` row, the windows rebuilt, the tables replaced) rolls back
    nodes = list(plan.nodes)
    at = next(i for i, n in enumerate(nodes) if n.name == "training_set_5m")
    nodes[at] = replace(nodes[at], sql="select * from no_such_relation")
    with pytest.raises(update_plan.PlanStale, match="SQL failed"):
        update_plan.run_plan(replace(plan, nodes=nodes), site.database, allowed=[site.lake])
    after = site.rows(tables)
    for name, frame in before.items():
        assert frame.equals(after[name]), name
    # a missing relation is a full build's job
    con = duckdb.connect(str(site.database))
    con.execute("drop table labels_5m")
    con.close()
    with pytest.raises(update_plan.PlanStale, match="lacks labels_5m"):
        update_plan.run_plan(plan, site.database, allowed=[site.lake])


def test_a_warehouse_another_process_writes_is_one_clear_error(
    sites: dict[str, Any], tmp_path: Path
) -> None:
    """The plan cannot open build.duckdb while dbt (here: another process) writes it: one
    line saying who holds it, not a fallback to a dbt build that would fail the same way."""
    site = _copy(sites["plan"], tmp_path / "site")
    plan = update_plan.load_plan(
        update_plan.plan_target(site.target), fingerprint=site.fingerprint()
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(60)", str(site.database)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BtcfsError, match="another process") as raised:
            update_plan.run_plan(plan, site.database, allowed=[site.lake])
        assert not isinstance(raised.value, update_plan.PlanStale)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_plan_reads_only_our_folders(sites: dict[str, Any], tmp_path: Path) -> None:
    site = _copy(sites["plan"], tmp_path / "site")
    plan = update_plan.load_plan(
        update_plan.plan_target(site.target), fingerprint=site.fingerprint()
    )
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    nodes = list(plan.nodes)
    at = next(i for i, n in enumerate(nodes) if n.name == "latest_features")
    nodes[at] = replace(nodes[at], sql=f"select * from read_csv('{outside}')")
    with pytest.raises(update_plan.PlanStale, match="SQL failed"):
        update_plan.run_plan(replace(plan, nodes=nodes), site.database, allowed=[site.lake])


def test_the_plan_compile_changes_no_sql_but_the_lookups(sites: dict[str, Any]) -> None:
    """Without the plan's variables, plan and dbt compile the same models: each plan value
    replaces exactly one literal of the dbt-compiled SQL."""
    site: Site = sites["plan"]
    plan = update_plan.load_plan(
        update_plan.plan_target(site.target), fingerprint=site.fingerprint()
    )
    windowed = [n for n in plan.nodes if n.kind == "model" and n.variables]
    assert {n.name for n in windowed} >= {"features_5m", "labels_5m", "bars_5m",
                                          "int_spot_bars_1m_gap_filled"}  # fmt: skip
    gates = [n for n in plan.nodes if n.kind == "test" and n.variables]
    assert gates and all(v.if_none == "empty" for n in gates for v in n.variables)
    assert all(v.if_none == "origin" for n in windowed for v in n.variables)
    # no window of the lake's days is compiled in: each is looked up when the plan runs
    assert not any("2025-01-0" in n.sql for n in windowed)


def test_a_failing_gate_fails_and_skips_downstream_as_dbt_does(
    sites: dict[str, Any], tmp_path: Path
) -> None:
    """Last in this module: it breaks both sites' lakes."""
    with_dbt, with_plan = sites["dbt"], sites["plan"]
    market = cut_at(corrected(sites["market"]), datetime(2025, 1, 8, 8, 0, tzinfo=UTC))
    broken = dict(market)
    for key, table in market.items():
        if key[0] == "spot-klines":
            broken[key] = lf.with_high_below_low(table, datetime(2025, 1, 8, 7, 2, tzinfo=UTC))
    for site in (with_dbt, with_plan):
        site.land(broken, replace=False)
    with_dbt.dbt(*BUILD, expect_ok=False)
    run = with_plan.run_plan()
    dbt_gates = with_dbt.gates(with_dbt.target)
    plan_gates = with_plan.gates(update_plan.plan_target(with_plan.target))
    failed = sorted(uid for uid, (status, _) in dbt_gates.items() if status == "fail")
    assert failed and any("ohlc" in uid for uid in failed)
    assert sorted(run.failed) == failed
    skipped = sorted(uid for uid, (status, _) in dbt_gates.items() if status == "skipped")
    assert skipped, "dbt skipped nothing downstream of the failing gate"
    assert sorted(uid for uid, (s, _) in plan_gates.items() if s == "skipped") == skipped
    with pytest.raises(Exception, match="gate"):
        publish(
            target_path=with_plan.target,
            warehouse=with_plan.database,
            serve=tmp_path / "serve.duckdb",
        )
