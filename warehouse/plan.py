"""The update plan: `btcfs update`'s incremental build without dbt's start-up on every run.

A daily `dbt build` spends most of its seconds being dbt: parsing, compiling every node (which
asks the warehouse each model's window), then a handful of statements and a thread hand-off
per node. The SQL itself is a fraction of it. So the update compiles once and runs many times:

1. **Compile** (`compile_plan`, after a `dbt build` and whenever the project changes):
   `dbt compile --vars '{btcfs_plan: true, gate_window_days: 2}'` into `<target>/plan/`. dbt
   renders every model and gate from the same files as always; only the values an incremental
   build looks up while compiling (window starts, a gate's first day) come out as DuckDB
   variables with their lookup query beside them (macros/lake/update_plan.sql).
2. **Run** (`run_plan`, every update): in one transaction on the warehouse, node after node
   in dbt's build order: set the node's variables from their queries, then what dbt-duckdb's
   materialisations run: `delete+insert` on the unique key for an incremental model, `create or
   replace` for a table, nothing for a view (the last `dbt build` made it); each gate as
   dbt's test wrapper runs it (fail_calc, warn_if, error_if, severity, stored failures). A
   failing error gate skips the models downstream of it, as in dbt. The gate ledger gets the
   rows dbt's hooks write (and forgets what no check reads again: gate_ledger.PRUNE), and
   `<target>/plan/run_results.json` what `btcfs qa` reads.

A plan is refused (`PlanStale`), and the update falls back to `dbt build` (then compiles a new
plan), when the project's files, dbt's version or the lake's set of landed datasets differ
from when it was compiled, or the warehouse lacks a relation of the plan. Any error rolls the
whole run back: the warehouse is as before. tests/warehouse/test_update_plan.py holds it
equal to `dbt build` on the same data.
"""

from __future__ import annotations

import glob
import graphlib
import hashlib
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from core.errors import BtcfsError
from lake.schemas import QUARANTINE
from warehouse.confine import confine
from warehouse.duckrows import insert_rows
from warehouse.gate_ledger import LEDGER_TABLE, PRUNE, WINDOW_COLUMN, window_message
from warehouse.readers import busy_message

#: The update's gates check the last days of each model: incremental models rebuild from the
#: newest row's bucket less `lookback_minutes` (one day), so that day and the new one.
GATE_WINDOW_DAYS = 2
#: dbt vars of the plan's compile: the plan switch and the update's gate window.
PLAN_VARS = {"btcfs_plan": True, "gate_window_days": GATE_WINDOW_DAYS}
#: The plan's folder under dbt's target path, and the file saying what it was compiled from.
PLAN_DIR = "plan"
PLAN_FILE = "btcfs_plan.json"
#: How the gate ledger names a plan run (publish shows it as the last build's command).
LEDGER_COMMAND = "build (btcfs update plan)"
#: The project files whose change makes a new plan (relative to the project root).
#: Where the lake keeps quarantined rows, and the dbt source that reads them.
QUARANTINE_FOLDER = QUARANTINE.table
QUARANTINE_SOURCE = "lake.quarantine"

PROJECT_GLOBS = (
    "dbt_project.yml",
    "profiles/*.yml",
    "models/**/*.sql",
    "models/**/*.yml",
    "models/**/*.md",
    "macros/**/*.sql",
    "data-tests/**/*.sql",
)
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Statements here are built from the plan's compiled SQL (our project's files, rendered by dbt)
#: and the manifest's names, checked against these: nothing a caller sends reaches them.
_RELATION = re.compile(r'"[A-Za-z0-9_]+"\."[A-Za-z0-9_]+"\."[A-Za-z0-9_]+"')
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARIABLE = re.compile(
    r"/\* btcfs-plan (?P<name>btcfs_plan_[0-9a-f]{32}) if-none (?P<if_none>origin|empty) "
    r":= (?P<query>.*?) \*/"
)


class PlanStale(BtcfsError):
    """The plan cannot run as compiled; the message says why (the update rebuilds with dbt)."""


@dataclass(frozen=True)
class Variable:
    """A value the compile would have looked up: its query, and what a NULL (an empty table)
    means: `origin`, a window start: the epoch, so the model is rebuilt from all history as a
    full build would; `empty`, a gate's first day: NULL, so the gate reads no row of the empty
    table, as it would read the whole of it (macros/lake/update_plan.sql)."""

    name: str
    query: str
    if_none: str


@dataclass(frozen=True)
class Node:
    """One model or gate of the plan, with its compiled SQL and what its run needs."""

    unique_id: str
    name: str
    kind: str  # 'model' | 'test'
    materialized: str  # view | table | incremental | test
    relation: str  # quoted database.schema.identifier (a test: its stored failures, or '')
    sql: str
    variables: tuple[Variable, ...]  # to set before the node runs
    unique_key: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()  # model unique_ids it reads
    sources: tuple[str, ...] = ()  # the lake sources it reads itself, as "<source>.<table>"
    severity: str = "error"
    warn_if: str = "!= 0"
    error_if: str = "!= 0"
    fail_calc: str = "count(*)"
    limit: int | None = None
    store_failures: bool = False


@dataclass(frozen=True)
class Plan:
    target: Path  # <target>/plan
    fingerprint: str
    sources: dict[str, bool]  # lake glob -> whether it had files when compiled
    nodes: list[Node]


@dataclass
class NodeResult:
    unique_id: str
    kind: str
    status: str  # success | pass | warn | fail | error | skipped
    seconds: float
    failures: int | None = None
    message: str | None = None
    parents: tuple[str, ...] = ()
    #: An incremental model's ledger note (gate_ledger.window_message): the earliest
    #: WINDOW_COLUMN it rewrote, which a delta publish copies from.
    window: str | None = None


@dataclass
class PlanRun:
    invocation_id: str
    started_at: datetime
    results: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [r.unique_id for r in self.results if r.status in ("fail", "error")]


# ------------------------------------------------------------------------------ the plan


def project_fingerprint(root: Path = PROJECT_ROOT, *, lake_root: Path, dbt_version: str) -> str:
    """A hash of what the compiled SQL depends on: the project's files (path and content),
    the plan's vars, dbt's version and the lake folder the sources read."""
    digest = hashlib.sha256()
    digest.update(json.dumps([PLAN_VARS, dbt_version, str(lake_root.resolve())]).encode())
    files = sorted({path for pattern in PROJECT_GLOBS for path in root.glob(pattern)})
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def source_globs(manifest: dict[str, Any]) -> list[str]:
    """Each lake source's partition-file glob, as lake_source_files_exist builds it."""
    found = []
    for node in manifest.get("sources", {}).values():
        meta = node.get("config", {}).get("meta") or node.get("meta") or {}
        if "lake_root" in meta and "partition_glob" in meta:
            folder = f"{meta['lake_root']}/{meta.get('lake_path', node['name'])}"
            found.append(f"{folder}/{meta['partition_glob']}")
    return sorted(found)


def has_files(pattern: str) -> bool:
    """Whether the glob matches a file (stops at the first)."""
    return next(glob.iglob(pattern, recursive=True), None) is not None  # noqa: PTH207 - a str glob


def _variables(sql: str) -> tuple[Variable, ...]:
    seen: dict[str, Variable] = {}
    for found in _VARIABLE.finditer(sql):
        seen.setdefault(found["name"], Variable(found["name"], found["query"], found["if_none"]))
    return tuple(seen.values())


def _keys(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def nodes_from_manifest(manifest: dict[str, Any]) -> list[Node]:
    """The models and data tests of a compiled manifest, in dbt build's order: a model after
    its parents and after their gates, a gate after the models it reads."""
    models: dict[str, Node] = {}
    tests: dict[str, Node] = {}
    for uid, raw in manifest["nodes"].items():
        kind = raw["resource_type"]
        if kind not in ("model", "test"):
            continue
        config = raw.get("config", {})
        sql = raw.get("compiled_code")
        if sql is None:
            raise PlanStale(f"{uid} was not compiled")
        parents = tuple(p for p in raw["depends_on"]["nodes"] if p.startswith("model."))
        sources = tuple(
            p.split(".", 2)[2] for p in raw["depends_on"]["nodes"] if p.startswith("source.")
        )
        node = Node(
            unique_id=uid,
            name=raw["name"],
            kind=kind,
            materialized=config.get("materialized") if kind == "model" else "test",
            relation=raw.get("relation_name") or "",
            sql=sql,
            variables=_variables(sql),
            unique_key=_keys(config.get("unique_key")),
            parents=parents,
            sources=sources,
            severity=str(config.get("severity") or "error").lower(),
            warn_if=str(config.get("warn_if") or "!= 0"),
            error_if=str(config.get("error_if") or "!= 0"),
            fail_calc=str(config.get("fail_calc") or "count(*)"),
            limit=config.get("limit"),
            store_failures=bool(config.get("store_failures")),
        )
        if node.relation and not _RELATION.fullmatch(node.relation):
            raise PlanStale(f"{uid}: unexpected relation name {node.relation}")
        if not all(_IDENTIFIER.fullmatch(k) for k in (node.name, *node.unique_key)):
            raise PlanStale(f"{uid}: unexpected name or unique_key")
        (models if kind == "model" else tests)[uid] = node
    unsupported = [
        n.name for n in models.values() if n.materialized not in ("view", "table", "incremental")
    ]
    if unsupported:
        raise PlanStale(f"models the plan cannot run: {', '.join(sorted(unsupported))}")
    gates_of: dict[str, list[str]] = {}
    for test in tests.values():
        for parent in test.parents:
            gates_of.setdefault(parent, []).append(test.unique_id)
    graph: dict[str, set[str]] = {}
    for model in models.values():
        graph[model.unique_id] = {
            dep for parent in model.parents for dep in (parent, *gates_of.get(parent, []))
        }
    for test in tests.values():
        graph[test.unique_id] = set(test.parents)
    order = graphlib.TopologicalSorter(graph)
    every = models | tests
    # static_order is deterministic for one graph; ties broken by insertion (manifest) order.
    return [every[uid] for uid in order.static_order() if uid in every]


def plan_target(target_path: Path) -> Path:
    return target_path / PLAN_DIR


def write_plan_file(plan_dir: Path, *, fingerprint: str, lake_root: Path) -> dict[str, bool]:
    """After `dbt compile` into `plan_dir`: note what it was compiled from."""
    manifest = json.loads((plan_dir / "manifest.json").read_text())
    sources = {pattern: has_files(pattern) for pattern in source_globs(manifest)}
    record = {
        "fingerprint": fingerprint,
        "lake_root": str(lake_root),
        "sources": sources,
        "compiled_at": datetime.now(UTC).isoformat(),
    }
    (plan_dir / PLAN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return sources


def load_plan(plan_dir: Path, *, fingerprint: str) -> Plan:
    """The compiled plan in `plan_dir`, or PlanStale saying why it cannot run now."""
    record_path = plan_dir / PLAN_FILE
    if not record_path.is_file():
        raise PlanStale("no plan compiled yet")
    try:
        record = json.loads(record_path.read_text())
        manifest = json.loads((plan_dir / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise PlanStale(f"the plan cannot be read: {exc}") from None
    if record.get("fingerprint") != fingerprint:
        raise PlanStale("the dbt project changed since the plan was compiled")
    sources: dict[str, bool] = record.get("sources", {})
    for pattern, had in sources.items():
        if has_files(pattern) != had:
            dataset = "/".join(Path(pattern.split("*", 1)[0]).parts[-2:])
            change = "is gone" if had else "appeared"
            raise PlanStale(f"the lake's datasets changed ({dataset} {change})")
    return Plan(plan_dir, fingerprint, sources, nodes_from_manifest(manifest))


# ------------------------------------------------------------------------------- running


def _unquoted(relation: str) -> tuple[str, str, str]:
    parts = [p.strip('"') for p in relation.split(".")]
    if len(parts) != 3:
        raise PlanStale(f"unexpected relation name {relation}")
    return parts[0], parts[1], parts[2]


_ELSE = " btcfs-else "


class _Lookups:
    """The plan's lookups, each run once until a model it reads is rewritten: the gates of
    one staging view ask the same question of the lake, whose answer a run does not change."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.values: dict[str, tuple[str, int | None]] = {}  # name -> (query, value)

    def set(self, node: Node) -> None:
        for variable in node.variables:
            if variable.name not in self.values:
                found = None
                # "A btcfs-else B": B when A finds nothing (plan_newest_lake_day_query)
                for query in variable.query.split(_ELSE):
                    row = self.con.execute(f"select ({query})").fetchone()
                    found = None if row is None or row[0] is None else int(row[0])
                    if found is not None:
                        break
                self.values[variable.name] = (variable.query, found)
            value = self.values[variable.name][1]
            if value is None and variable.if_none == "origin":
                value = 0
            shown = "null" if value is None else str(value)
            self.con.execute(f"set variable {variable.name} = {shown}")

    def rewritten(self, relation: str) -> None:
        """`relation` was just rebuilt: forget every answer read from it."""
        for name in [n for n, (query, _) in self.values.items() if relation in query]:
            del self.values[name]


def _run_model(con: duckdb.DuckDBPyConnection, node: Node) -> str | None:
    """Run one model; for an incremental one keyed by WINDOW_COLUMN, the ledger note of the
    earliest key it rewrote (the delete+insert touches only the staged rows' keys)."""
    if node.materialized == "view":
        return None  # the last dbt build created it from the same compiled SQL
    if node.materialized == "table":
        con.execute(f"create or replace table {node.relation} as (\n{node.sql}\n)")
        return None
    if not node.unique_key:
        raise PlanStale(f"{node.name}: an incremental model without a unique_key")
    staged = f'"btcfs_plan_{node.name}"'
    con.execute(f"create or replace temp table {staged} as (\n{node.sql}\n)")
    window = None
    if WINDOW_COLUMN in node.unique_key:
        row = con.execute(f'select min("{WINDOW_COLUMN}") from {staged}').fetchone()  # noqa: S608
        window = window_message(row[0] if row else None)
    match = " and ".join(f'{staged}."{k}" = target."{k}"' for k in node.unique_key)
    con.execute(f"delete from {node.relation} as target using {staged} where {match}")  # noqa: S608
    con.execute(f"insert into {node.relation} by name select * from {staged}")  # noqa: S608
    con.execute(f"drop table {staged}")
    return window


#: dbt's test wrapper (dbt/include/global_project/macros/materializations/tests/helpers.sql).
_GATE = (
    "select {calc} as failures, {calc} {warn} as should_warn, {calc} {error} as should_error\n"
    "from (\n{source}{limit}\n) dbt_internal_test"
)
_LEDGER_COLUMNS = (
    "invocation_id", "command", "run_started_at", "recorded_at", "unique_id", "resource_type",
    "status", "failures", "depends_on", "message",
)  # fmt: skip


def _run_gate(con: duckdb.DuckDBPyConnection, node: Node) -> tuple[str, int, str | None]:
    """dbt's test wrapper: (status, failures, message)."""
    source = node.sql
    if node.store_failures and node.relation:
        con.execute(f"create or replace table {node.relation} as (\n{node.sql}\n)")
        source = f"select * from {node.relation}"  # noqa: S608
    limit = f"\nlimit {int(node.limit)}" if node.limit is not None else ""
    row = con.execute(
        _GATE.format(calc=node.fail_calc, warn=node.warn_if, error=node.error_if,
                     source=source, limit=limit)
    ).fetchone()  # fmt: skip
    assert row is not None
    failures, should_warn, should_error = int(row[0] or 0), bool(row[1]), bool(row[2])
    if node.severity == "error" and should_error:
        status, threshold = "fail", node.error_if
    elif should_warn:
        status, threshold = "warn", node.warn_if
    else:
        return "pass", failures, None
    plural = "" if failures == 1 else "s"
    verb = "fail" if status == "fail" else "warn"
    return status, failures, f"Got {failures} result{plural}, configured to {verb} if {threshold}"


def source_of(lake_folder: str) -> str:
    """The dbt source ("<source>.<table>") a lake folder ("<vendor>/<table>/…", relative to the
    lake) belongs to: the lake's layout names sources by vendor folder and dataset table."""
    parts = lake_folder.split("/")
    if parts[0] == QUARANTINE_FOLDER:
        return QUARANTINE_SOURCE
    return ".".join(parts[:2])


def downstream_of(plan: Plan, changed: Collection[str]) -> set[str] | None:
    """The nodes a build must run when only the lake sources `changed` have new rows: the
    models that read them, directly or through other models, and every gate of those models.
    None when a changed source is not one the plan reads (run everything)."""
    known = {source for node in plan.nodes for source in node.sources}
    if not set(changed) <= known:
        return None
    chosen: set[str] = set()
    for node in plan.nodes:  # in build order: parents come first
        if set(node.sources) & set(changed) or any(p in chosen for p in node.parents):
            chosen.add(node.unique_id)
    return chosen


def run_plan(
    plan: Plan,
    warehouse: Path,
    *,
    allowed: Iterable[Path],
    invocation_id: str | None = None,
    only: Collection[str] | None = None,
) -> PlanRun:
    """Run the plan on `warehouse` in one transaction (PlanStale rolls it back); write the
    gate ledger and `<plan>/run_results.json`. `only` (downstream_of): run these nodes and
    leave the others as they are (they are neither run nor reported)."""
    run = PlanRun(invocation_id or str(uuid.uuid4()), datetime.now(UTC))
    began = time.monotonic()
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as exc:
        # another writer (dbt, most likely) holds the file: dbt build would fail on it too
        raise BtcfsError(busy_message(warehouse, exc) or str(exc).splitlines()[0]) from None
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set parquet_metadata_cache = true")
        confine(con, [*allowed, warehouse.parent])
        _check_relations(con, plan)
        con.execute("begin")
        try:
            _ledger(con, run, [("invocation", "invocation", "started", None, None, None)])
            _run_nodes(con, plan, run, only)
            rows = [
                (r.unique_id, r.unique_id.split(".")[0], r.status, r.failures,
                 ",".join(r.parents) or None, r.message or r.window)
                for r in run.results
            ]  # fmt: skip
            _ledger(con, run, [*rows, ("invocation", "invocation", "finished", None, None, None)])
            con.execute(PRUNE)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        # The commit is durable in the WAL; folding it into the file on every close would cost
        # an update a checkpoint of the tables it touched. DuckDB checkpoints by itself once
        # the WAL passes checkpoint_threshold, and readers (publish, qa) replay it.
        con.execute("pragma disable_checkpoint_on_shutdown")
    except duckdb.Error as exc:
        raise PlanStale(f"the plan's SQL failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    run.seconds = time.monotonic() - began
    _write_run_results(plan.target, run)
    return run


def _check_relations(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    present = {
        (row[0], row[1], row[2])
        for row in con.execute(
            "select table_catalog, table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    missing = [
        n.name for n in plan.nodes if n.kind == "model" and _unquoted(n.relation) not in present
    ]
    if missing:
        raise PlanStale(f"the warehouse lacks {', '.join(missing[:5])}: a full dbt build's job")


def _run_nodes(
    con: duckdb.DuckDBPyConnection, plan: Plan, run: PlanRun, only: Collection[str] | None
) -> None:
    blocked: set[str] = set()  # models downstream of a failed gate
    children: dict[str, list[str]] = {}
    for node in plan.nodes:
        for parent in node.parents:
            children.setdefault(parent, []).append(node.unique_id)
    lookups = _Lookups(con)
    for node in plan.nodes:
        if only is not None and node.unique_id not in only:
            continue
        began = time.monotonic()
        if node.unique_id in blocked:
            parents = node.parents if node.kind == "test" else ()
            run.results.append(NodeResult(node.unique_id, node.kind, "skipped", 0.0,
                                          parents=parents))  # fmt: skip
            blocked.update(children.get(node.unique_id, []))
            continue
        lookups.set(node)
        if node.kind == "model":
            window = _run_model(con, node)
            lookups.rewritten(node.relation)
            run.results.append(
                NodeResult(node.unique_id, "model", "success", time.monotonic() - began,
                           window=window)
            )  # fmt: skip
            continue
        status, failures, message = _run_gate(con, node)
        run.results.append(
            NodeResult(node.unique_id, "test", status, time.monotonic() - began, failures,
                       message, node.parents)
        )  # fmt: skip
        if status == "fail":  # as dbt: the models downstream are skipped, not the sibling gates
            for parent in node.parents:
                blocked.update(c for c in children.get(parent, []) if c.startswith("model."))


def _ledger(
    con: duckdb.DuckDBPyConnection,
    run: PlanRun,
    rows: list[tuple[str, str, str, int | None, str | None, str | None]],
) -> None:
    """The rows macros/qa/gate_ledger.sql writes, as one insert, into the ledger the dbt
    build before the plan's compile created (its on-run-start hook owns the table)."""
    now = datetime.now(UTC)
    insert_rows(
        con,
        LEDGER_TABLE,
        [
            [run.invocation_id, LEDGER_COMMAND, run.started_at, now, uid, kind, status,
             failures, depends_on, message[:300] if message else None]
            for uid, kind, status, failures, depends_on, message in rows
        ],
        _LEDGER_COLUMNS,
    )  # fmt: skip


def describe(run: PlanRun) -> str:
    """Where a plan run's time went, in one line."""
    models = [r for r in run.results if r.kind == "model" and r.status != "skipped"]
    gates = [r for r in run.results if r.kind == "test" and r.status != "skipped"]
    slowest = sorted(run.results, key=lambda r: -r.seconds)[:3]
    statuses = Counter(r.status for r in gates)
    return (
        f"update plan: {len(models)} models in {sum(r.seconds for r in models):.2f} s, "
        f"{len(gates)} gates in {sum(r.seconds for r in gates):.2f} s "
        f"({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}), "
        f"{run.seconds:.2f} s in all; slowest: "
        + ", ".join(f"{r.unique_id.split('.')[2]} {r.seconds:.2f} s" for r in slowest)
    )


def _write_run_results(plan_dir: Path, run: PlanRun) -> None:
    """What `btcfs qa --target-path <target>/plan` reads (a subset of dbt's run_results)."""
    payload = {
        "metadata": {
            "generated_at": datetime.now(UTC).isoformat(),
            "invocation_id": run.invocation_id,
            "btcfs_plan": True,
        },
        "args": {"which": "build"},
        "elapsed_time": run.seconds,
        "results": [
            {
                "unique_id": r.unique_id,
                "status": r.status,
                "failures": r.failures,
                "message": r.message,
                "execution_time": round(r.seconds, 6),
            }
            for r in run.results
        ],
    }
    temporary = plan_dir / "run_results.json.tmp"
    temporary.write_text(json.dumps(payload, indent=1) + "\n")
    temporary.replace(plan_dir / "run_results.json")
