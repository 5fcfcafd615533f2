"""`btcfs qa`: the QA gates of the last dbt run, and a quality summary per lake dataset.

Gate results come from dbt's ``run_results.json`` (and ``manifest.json`` for where each gate
stored its failing rows); the per-dataset summary (coverage, gaps, imputed share, NULLs,
duplicates, quarantined rows) is computed from the warehouse, opened read-only.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import duckdb

from core.errors import BtcfsError
from core.settings import DataPaths
from warehouse.connect import first_line, reachable, require_bigquery
from warehouse.readers import ReadError, open_read_only

PROBLEM_STATUSES = ("fail", "error")
_STATUS_ORDER = {"error": 0, "fail": 1, "warn": 2, "skipped": 3, "pass": 4, "success": 4}
MAX_ROWS_SHOWN = 10


class QAError(BtcfsError):
    """A known failure of `btcfs qa` (no run results, unreadable warehouse)."""


@dataclass
class GateResult:
    name: str
    kind: str  # 'data test' | 'unit test'
    status: str  # pass | warn | fail | error | skipped
    failures: int | None
    model: str | None
    message: str | None
    relation: str | None = None  # where the gate stored its failing rows, if it did
    sql: str | None = None  # the gate's compiled query (returns the failing rows)
    failing_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunSummary:
    generated_at: str | None
    command: str | None
    statuses: dict[str, int]
    gates: list[GateResult]
    invocation_id: str | None = None
    dbt_version: str | None = None

    @property
    def failed_gates(self) -> list[str]:
        """Names of the gates that failed at error severity (or errored)."""
        return [gate.name for gate in self.gates if gate.status in PROBLEM_STATUSES]

    @property
    def failed(self) -> bool:
        return any(gate.status in PROBLEM_STATUSES for gate in self.gates) or any(
            self.statuses.get(status, 0) for status in PROBLEM_STATUSES
        )


# ----------------------------------------------------------------------------- run results


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise QAError(f"{path} not found: run `dbt build` first (or pass --target-path)") from exc
    except ValueError as exc:
        raise QAError(f"{path} is not valid JSON: {exc}") from exc
    return data


def read_run_results(target: Path) -> RunSummary:
    """Every test of the last dbt invocation, with its status and failure count."""
    results = _load_json(target / "run_results.json")
    manifest_path = target / "manifest.json"
    nodes: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = _load_json(manifest_path)
        nodes = manifest.get("nodes", {}) | manifest.get("unit_tests", {})
    statuses: Counter[str] = Counter()
    gates: list[GateResult] = []
    for result in results.get("results", []):
        unique_id: str = result["unique_id"]
        status = str(result.get("status", "unknown"))
        statuses[status] += 1
        resource = unique_id.split(".", 1)[0]
        if resource not in ("test", "unit_test"):
            continue
        node = nodes.get(unique_id, {})
        parents = node.get("depends_on", {}).get("nodes", [])
        model = next((p.split(".")[-1] for p in parents if p.startswith("model.")), None)
        if resource == "unit_test":
            model = node.get("model") or unique_id.split(".")[2]
        gates.append(
            GateResult(
                name=node.get("name") or unique_id.split(".")[-2 if resource == "test" else -1],
                kind="unit test" if resource == "unit_test" else "data test",
                status=status,
                failures=result.get("failures"),
                model=model,
                message=result.get("message"),
                relation=node.get("relation_name")
                if node.get("config", {}).get("store_failures")
                else None,
                sql=node.get("compiled_code") or None,
            )
        )
    gates.sort(key=lambda gate: (_STATUS_ORDER.get(gate.status, 5), gate.name))
    metadata = results.get("metadata", {})
    args = results.get("args", {})
    return RunSummary(
        generated_at=metadata.get("generated_at"),
        command=args.get("which"),
        statuses=dict(statuses),
        gates=gates,
        invocation_id=metadata.get("invocation_id"),
        dbt_version=metadata.get("dbt_version"),
    )


def attach_failing_rows(summary: RunSummary, con: duckdb.DuckDBPyConnection | None) -> None:
    """Read the stored failing rows (dataset, symbol, day, count, detail) of warned/failed gates."""
    if con is None:
        return
    for gate in summary.gates:
        if gate.status not in ("fail", "warn") or not (gate.relation or gate.sql):
            continue
        source = gate.relation or f"({gate.sql}) as gate_rows"
        try:
            cursor = con.execute(_sql(_FAILING_ROWS, source=source, n=str(MAX_ROWS_SHOWN + 1)))
        except duckdb.Error:
            continue
        columns = [d[0] for d in cursor.description]
        gate.failing_rows = [
            {k: _jsonable(v) for k, v in zip(columns, row, strict=True)}
            for row in cursor.fetchall()
        ]


_FAILING_ROWS = "select * from {source} order by all limit {n}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


# --------------------------------------------------------------------------- dataset summary

# (dataset, staging model, time column, key columns, 1m spine or None, as-of model and flag)
_DATASETS: tuple[dict[str, Any], ...] = (
    {
        "dataset": "spot_klines",
        "staging": "stg_binance__spot_klines",
        "time": "open_time",
        "key": ("symbol", "kline_interval", "open_time"),
        "spine": "int_spot_bars_1m_gap_filled",
        "bars_5m": "bars_5m",
    },
    {
        "dataset": "perp_klines",
        "staging": "stg_binance__perp_klines",
        "time": "open_time",
        "key": ("symbol", "kline_interval", "open_time"),
        "spine": "int_perp_bars_1m_gap_filled",
        "bars_5m": "perp_bars_5m",
    },
    {
        "dataset": "mark_klines",
        "staging": "stg_binance__mark_klines",
        "time": "open_time",
        "key": ("symbol", "kline_interval", "open_time"),
    },
    {
        "dataset": "premium_klines",
        "staging": "stg_binance__premium_klines",
        "time": "open_time",
        "key": ("symbol", "kline_interval", "open_time"),
    },
    {
        "dataset": "funding",
        "staging": "stg_binance__funding_rates",
        "time": "reported_funding_at",
        "key": ("symbol", "reported_funding_at"),
        "as_of": ("int_funding_as_of_bars_5m", "is_funding_forward_filled", "funding_rate"),
    },
    {
        "dataset": "open_interest",
        "staging": "stg_binance__open_interest",
        "time": "measured_at",
        "key": ("symbol", "measurement_interval", "measured_at"),
        "gaps": ("int_open_interest_floored", "missing_periods_before"),
        "as_of": ("int_open_interest_as_of_bars_5m", "is_oi_forward_filled", "sum_open_interest"),
    },
)


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_name from information_schema.tables").fetchall()
    return {row[0] for row in rows}


def _sql(template: str, **parts: str) -> str:
    """A query from a template of this module and identifiers from `_DATASETS` (no user input)."""
    return template.format(**parts)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description]
    return [
        {k: _jsonable(v) for k, v in zip(columns, row, strict=True)} for row in cursor.fetchall()
    ]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    return _rows(con, sql)[0]


_SIZE = """
    select count(*) as row_count, count(distinct symbol) as symbols, min({time}) as first_at,
        max({time}) as last_at, count(distinct cast({time} as date)) as days
    from {relation}"""
_NULLS = "select {counts} from {relation}"
_DUPLICATES = """
    select coalesce(sum(key_rows - 1), 0) as duplicate_rows
    from (select count(*) as key_rows from {relation} group by {key} having count(*) > 1)"""
_QUARANTINED = """
    select count(*) as quarantined_rows from stg_lake__quarantined_rows
    where dataset = '{dataset}'"""
_SPINE = """
    select count(*) as expected_minutes,
        coalesce(sum(case when is_imputed then 1 else 0 end), 0) as missing_minutes,
        coalesce(sum(case when not is_imputed and volume = 0 then 1 else 0 end), 0)
            as zero_volume_minutes
    from {relation}"""
_WORST_DAYS = """
    select cast(open_time as date) as day, count(*) as minutes,
        sum(case when is_imputed then 1 else 0 end) as missing_minutes,
        sum(case when not is_imputed and volume = 0 then 1 else 0 end) as zero_volume_minutes
    from {relation}
    group by 1
    having sum(case when is_imputed or volume = 0 then 1 else 0 end) > 0
    order by 3 desc, 4 desc, 1
    limit 10"""
_IMPUTED_BARS = "select avg(case when is_imputed then 1.0 else 0.0 end) as share from {relation}"
_GAPS = """
    select count(*) as measurements, coalesce(sum({missing}), 0) as missing_periods
    from {relation}"""
_FORWARD_FILLED = """
    select avg(case when {flag} and {value} is not null then 1.0 else 0.0 end) as share
    from {relation}
    where {value} is not null or {flag}"""


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def dataset_summary(
    con: duckdb.DuckDBPyConnection, spec: dict[str, Any], present: set[str]
) -> dict[str, Any]:
    """Coverage, NULLs, duplicates, gaps, imputed share and quarantined rows of one dataset."""
    name, staging, time = spec["dataset"], spec["staging"], spec["time"]
    summary: dict[str, Any] = {"dataset": name}
    if staging not in present:
        summary["note"] = f"{staging} is not in the warehouse (run dbt build)"
        return summary
    columns = [
        row[0] for row in con.execute(_sql("describe {relation}", relation=staging)).fetchall()
    ]
    counts = ", ".join(f"count(*) - count({c}) as {c}" for c in columns)
    summary.update(_one(con, _sql(_SIZE, time=time, relation=staging)))
    nulls = _one(con, _sql(_NULLS, counts=counts, relation=staging))
    summary["null_counts"] = {k: v for k, v in nulls.items() if v}
    key = ", ".join(spec["key"])
    summary.update(_one(con, _sql(_DUPLICATES, relation=staging, key=key)))
    if "stg_lake__quarantined_rows" in present:
        summary.update(_one(con, _sql(_QUARANTINED, dataset=name)))
    spine = spec.get("spine")
    if spine and spine in present:
        stats = _one(con, _sql(_SPINE, relation=spine))
        summary.update(stats)
        missing, expected = stats["missing_minutes"], stats["expected_minutes"]
        summary["coverage"] = _ratio(expected - missing, expected)
        summary["gap_ratio"] = _ratio(missing, expected)
        summary["worst_days"] = _rows(con, _sql(_WORST_DAYS, relation=spine))
    bars = spec.get("bars_5m")
    if bars and bars in present:
        share = _one(con, _sql(_IMPUTED_BARS, relation=bars))["share"]
        summary["imputed_share_5m"] = round(share, 6) if share is not None else None
    gaps = spec.get("gaps")
    if gaps and gaps[0] in present:
        stats = _one(con, _sql(_GAPS, relation=gaps[0], missing=gaps[1]))
        summary.update(stats)
        total = stats["measurements"] + stats["missing_periods"]
        summary["coverage"] = _ratio(stats["measurements"], total)
        summary["gap_ratio"] = _ratio(stats["missing_periods"], total)
    as_of = spec.get("as_of")
    if as_of and as_of[0] in present:
        sql = _sql(_FORWARD_FILLED, relation=as_of[0], flag=as_of[1], value=as_of[2])
        share = _one(con, sql)["share"]
        summary["imputed_share_5m"] = round(share, 6) if share is not None else None
    return summary


def ledger_problems(target: Path, con: duckdb.DuckDBPyConnection) -> list[str] | None:
    """What the gate ledger dbt keeps in the warehouse says of every mart built so far: a gate
    that failed since a mart's last build is still failing, whatever dbt ran after it (the
    rules `btcfs publish` applies). None without a ledger or a manifest."""
    from warehouse import gate_ledger  # it imports this module

    if gate_ledger.LEDGER_TABLE not in _relations(con):
        return None
    try:
        graph = gate_ledger.read_graph(target)
    except gate_ledger.LedgerError:
        return None
    query = f"select {gate_ledger.LEDGER_COLUMNS} from {gate_ledger.LEDGER_TABLE}"  # noqa: S608
    rows = gate_ledger.rows_from_tuples(con.execute(query).fetchall())
    built = set(gate_ledger.built_models(rows, graph))
    marts = [name for name in graph.marts if name in built]
    return gate_ledger.check(rows, graph, marts).problems


def write_reports(reports: Path, summary: RunSummary, datasets: list[dict[str, Any]]) -> list[Path]:
    folder = reports / "qa"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    stamp = datetime.now(UTC).isoformat()
    for item in datasets:
        item = dict(item)
        item["gates"] = [
            {
                "name": g.name,
                "status": g.status,
                "failures": g.failures,
                "failing_rows": g.failing_rows,
            }
            for g in summary.gates
            if any(row.get("dataset") == item["dataset"] for row in g.failing_rows)
            or g.name.endswith(item["dataset"])
        ]
        item["reported_at"] = stamp
        path = folder / f"{item['dataset']}.json"
        path.write_text(json.dumps(item, indent=2, sort_keys=True) + "\n")
        written.append(path)
    gates_path = folder / "gates.json"
    gates_path.write_text(
        json.dumps(
            {
                "reported_at": stamp,
                "run_generated_at": summary.generated_at,
                "command": summary.command,
                "statuses": summary.statuses,
                "failed": summary.failed,
                "gates": [asdict(g) for g in summary.gates],
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    written.append(gates_path)
    return written


# ------------------------------------------------------------------------------------ CLI

_COLOURS = {"pass": "green", "success": "green", "warn": "yellow", "fail": "red", "error": "red"}


def _print(summary: RunSummary, verbose: bool) -> None:
    counts = Counter(g.status for g in summary.gates)
    click.echo(
        f"dbt {summary.command or 'run'} at {summary.generated_at}: "
        + ", ".join(
            f"{n} {s}" for s, n in sorted(counts.items(), key=lambda i: _STATUS_ORDER.get(i[0], 5))
        )
        + f" ({len(summary.gates)} tests)"
    )
    other = {s: n for s, n in summary.statuses.items() if s in ("error", "skipped")}
    if other:
        click.echo("  nodes: " + ", ".join(f"{n} {s}" for s, n in other.items()))
    for gate in summary.gates:
        if gate.status in ("pass", "success") and not verbose:
            continue
        label = click.style(f"{gate.status.upper():7}", fg=_COLOURS.get(gate.status))
        failures = "" if gate.failures in (None, 0) else f"  failures={gate.failures}"
        click.echo(f"{label} {gate.name} [{gate.model or '-'}]{failures}")
        for row in gate.failing_rows[:MAX_ROWS_SHOWN]:
            click.echo(
                f"          dataset={row.get('dataset')} symbol={row.get('symbol')}"
                f" day={row.get('day')} count={row.get('failing_count')}: {row.get('detail')}"
            )
        if len(gate.failing_rows) > MAX_ROWS_SHOWN:
            click.echo("          ... more rows")
        if gate.status == "error" and gate.message:
            click.echo(f"          {gate.message.splitlines()[0]}")
    passed = counts.get("pass", 0) + counts.get("success", 0)
    if passed and not verbose:
        click.echo(
            f"{click.style('PASS   ', fg='green')} {passed} more tests (--verbose lists them)"
        )


def _as_json(
    summary: RunSummary, problems: list[str] | None, target: Path, written: list[Path]
) -> dict[str, Any]:
    freshness = None
    if (target / "sources.json").exists():
        payload = _load_json(target / "sources.json")
        freshness = {
            "generated_at": payload.get("metadata", {}).get("generated_at"),
            "results": [
                {"source": r["unique_id"].split(".", 2)[-1], "status": r.get("status"),
                 "max_loaded_at": r.get("max_loaded_at")}
                for r in payload.get("results", [])
            ],
        }  # fmt: skip
    gates = [
        {key: value for key, value in asdict(gate).items() if key not in ("relation", "sql")}
        for gate in summary.gates
    ]
    return {
        "invocation_id": summary.invocation_id,
        "generated_at": summary.generated_at,
        "command": summary.command,
        "statuses": summary.statuses,
        "failed": summary.failed or bool(problems),
        "gates": gates,
        "ledger": problems,
        "freshness": freshness,
        "reports": str(written[0].parent),
    }


def _print_freshness(target: Path) -> None:
    """The last `dbt source freshness`, when one was run into this target folder."""
    path = target / "sources.json"
    if not path.exists():
        return
    results = _load_json(path).get("results", [])
    statuses = Counter(str(r.get("status")) for r in results)
    stale = [
        f"{r['unique_id'].split('.', 2)[-1]} ({r.get('status')})"
        for r in results
        if r.get("status") not in ("pass", "success")
    ]
    line = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    click.echo(
        f"source freshness ({_load_json(path).get('metadata', {}).get('generated_at')}): {line}"
    )
    for item in stale:
        click.echo(f"          {item}")


@click.command("qa")
@click.option(
    "--target-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("DBT_TARGET_PATH", "target"),
    show_default="$DBT_TARGET_PATH or target",
    help="dbt's target folder holding run_results.json and manifest.json.",
)
@click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="DuckDB file dbt built (default: $BTCFS_DATA_DIR/warehouse/build.duckdb).",
)
@click.option("--verbose", "-v", is_flag=True, help="List passing tests too.")
@click.option(
    "--summaries/--no-summaries",
    default=True,
    show_default=True,
    help="Write the per-dataset summaries (they read every dataset's whole history; "
    "`btcfs update` leaves them out).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object instead of the lines: {invocation_id, generated_at, command, "
    "statuses, failed, gates: [{name, kind, status, failures, model, message, failing_rows}], "
    "ledger: [problems] or null, freshness: {generated_at, results} or null, reports}.",
)
def qa_command(
    target_path: Path, warehouse: Path | None, verbose: bool, summaries: bool, as_json: bool
) -> None:
    """Print the QA gates of the last dbt build and write a summary per dataset.

    Reads dbt's run_results.json (pass/warn/fail per test, failure counts, and the failing
    rows each gate stored: dataset, day, count), then writes coverage, gaps, imputed share,
    NULLs, duplicates and quarantined rows per lake dataset to
    $BTCFS_DATA_DIR/reports/qa/<dataset>.json (and gates.json). Then checks the gate ledger
    in the warehouse (LEDGER lines): a gate of a built mart that failed since the mart's last
    build, or has not run since, still counts after a later partial build. Exits 1 when a gate
    failed in the last run or the ledger has a problem.

    Example: dbt build; btcfs qa --verbose
    """
    paths = DataPaths.from_env()
    summary = read_run_results(target_path)
    db_path = warehouse or paths.build_db
    datasets: list[dict[str, Any]] = []
    problems: list[str] | None = None
    if db_path.exists():
        try:
            con = open_read_only(db_path)
        except ReadError as exc:
            raise QAError(str(exc)) from None
        try:
            attach_failing_rows(summary, con)
            problems = ledger_problems(target_path, con)
            present = _relations(con)
            if summaries:
                datasets = [dataset_summary(con, spec, present) for spec in _DATASETS]
        finally:
            con.close()
    else:
        click.echo(f"(no warehouse at {db_path}: dataset summaries skipped)", err=True)
    if as_json:
        written = write_reports(paths.reports, summary, datasets)
        click.echo(json.dumps(_as_json(summary, problems, target_path, written), default=str))
        if summary.failed or problems:
            raise SystemExit(1)
        return
    _print(summary, verbose)
    if problems:
        label = click.style("LEDGER ", fg="red")
        for problem in problems:
            click.echo(f"{label} {problem}")
    elif problems is not None:
        click.echo(f"{click.style('LEDGER ', fg='green')} every built mart's gates passed "
                   "after its last build")  # fmt: skip
    _print_freshness(target_path)
    written = write_reports(paths.reports, summary, datasets)
    click.echo(f"reports: {written[0].parent}/ ({len(written)} files)")
    if summary.failed or problems:
        raise SystemExit(1)


# ----------------------------------------------------------------------- warehouse load-bq


@click.group("warehouse")
def warehouse_group() -> None:
    """Move the lake into a warehouse other than the local DuckDB file (BigQuery).

    Example: btcfs warehouse load-bq --bucket my-lake --project my-project
    """


@warehouse_group.command("load-bq")
@click.option(
    "--lake",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Lake root [default: $BTCFS_DATA_DIR/lake].",
)
@click.option("--project", envvar="BTCFS_BQ_PROJECT", help="BigQuery project [$BTCFS_BQ_PROJECT].")
@click.option(
    "--raw-dataset",
    envvar="BTCFS_BQ_RAW_DATASET",
    default="raw",
    show_default=True,
    help="Dataset of the raw tables the dbt sources read [$BTCFS_BQ_RAW_DATASET].",
)
@click.option(
    "--location",
    envvar="BTCFS_BQ_LOCATION",
    default="US",
    show_default=True,
    help="Location of a dataset this creates [$BTCFS_BQ_LOCATION].",
)
@click.option("--bucket", envvar="BTCFS_GCS_BUCKET", help="GCS bucket [$BTCFS_GCS_BUCKET].")
@click.option(
    "--prefix",
    envvar="BTCFS_GCS_PREFIX",
    default="raw",
    show_default=True,
    help="Object prefix in the bucket [$BTCFS_GCS_PREFIX].",
)
@click.option(
    "--load-from",
    type=click.Choice(["gcs", "file"]),
    envvar="BTCFS_BQ_LOAD_FROM",
    default=None,
    help="Load jobs read the uploaded Parquet objects (gcs) or the local files sent as CSV "
    "(file: the BigQuery emulator) [default: gcs with a bucket, else file; $BTCFS_BQ_LOAD_FROM].",
)
@click.option(
    "--bq-endpoint",
    envvar="BTCFS_BQ_API_ENDPOINT",
    help="BigQuery API endpoint of an emulator; anonymous credentials [$BTCFS_BQ_API_ENDPOINT].",
)
@click.option(
    "--gcs-endpoint",
    envvar="BTCFS_GCS_API_ENDPOINT",
    help="GCS API endpoint of an emulator; anonymous credentials [$BTCFS_GCS_API_ENDPOINT].",
)
@click.option("--table", "table_names", multiple=True, help="Only this raw table (repeatable).")
@click.option("--dry-run", is_flag=True, help="Say what would be uploaded and loaded; change none.")
@click.option(
    "--allow-synthetic",
    is_flag=True,
    help="Load partitions landed from the replay server's synthetic market (emulators only).",
)
def load_bq_command(
    lake: Path | None,
    project: str | None,
    raw_dataset: str,
    location: str,
    bucket: str | None,
    prefix: str,
    load_from: str | None,
    bq_endpoint: str | None,
    gcs_endpoint: str | None,
    table_names: tuple[str, ...],
    dry_run: bool,
    allow_synthetic: bool,
) -> None:
    """Upload changed lake partitions to GCS and load them into BigQuery raw tables.

    Each finished partition goes to gs://BUCKET/PREFIX/<table>/symbol=…/[interval=…/]date=…/
    part-0.parquet unless the object already carries the same data_sha256 (the MANIFEST's),
    then the partitions whose data_sha256 the ledger table RAW_DATASET._btcfs_loads lacks are
    loaded: one load job into a staging table and one MERGE per raw table that replaces exactly
    those partitions' rows. A rerun on an unchanged lake uploads and loads nothing.
    Partitions whose MANIFEST says they came from the replay server's synthetic market are
    refused (nothing is uploaded or loaded) unless --allow-synthetic is given.

    \b
    Example: BTCFS_GCS_BUCKET=my-lake BTCFS_BQ_PROJECT=my-project btcfs warehouse load-bq
    """
    require_bigquery("btcfs warehouse load-bq")
    from google.api_core import exceptions as google_errors
    from google.auth import exceptions as auth_errors

    from warehouse import bigquery as bq_load
    from warehouse import gcs

    if not project:
        raise click.ClickException("no BigQuery project: set BTCFS_BQ_PROJECT or --project")
    source = load_from or ("gcs" if bucket else "file")
    if source == "gcs" and not bucket:
        raise click.ClickException(
            "--load-from gcs needs a bucket: set BTCFS_GCS_BUCKET or --bucket"
        )
    known = {raw.name: raw for raw in bq_load.raw_tables()}
    unknown = [name for name in table_names if name not in known]
    if unknown:
        raise click.ClickException(
            f"unknown raw table {', '.join(unknown)} (one of {', '.join(known)})"
        )
    tables = [known[name] for name in table_names] if table_names else list(known.values())
    lake_root = lake or DataPaths.from_env().lake
    if not lake_root.is_dir():
        raise click.ClickException(f"no lake at {lake_root}: run `btcfs ingest` first")
    if bq_endpoint:
        reachable(bq_endpoint, "BigQuery")
    if bucket and gcs_endpoint:
        reachable(gcs_endpoint, "GCS")
    try:
        partitions = bq_load.lake_partitions(lake_root, tables)
        synthetic = [p for p in partitions if p.is_synthetic]
        if synthetic and not allow_synthetic:
            raise click.ClickException(
                f"{len(synthetic)} lake partition(s) hold synthetic replay data "
                f"(e.g. {synthetic[0].file.parent}): production must never see them; "
                "re-land them from the vendors, or pass --allow-synthetic for an emulator"
            )
        if bucket:
            storage = gcs.client(project, gcs_endpoint)
            uploaded = gcs.upload_partitions(
                storage, bucket, partitions, prefix=prefix, dry_run=dry_run
            )
            verb = "would upload" if dry_run else "uploaded"
            click.echo(
                f"gs://{bucket}/{prefix}: {verb} {len(uploaded.uploaded)} partition(s), "
                f"{uploaded.skipped} unchanged"
            )
        client = bq_load.client(project, bq_endpoint, location=location)
        report = bq_load.load_partitions(
            client,
            partitions,
            dataset=raw_dataset,
            location=location,
            source="gcs" if source == "gcs" else "file",
            bucket=bucket,
            prefix=prefix,
            tables=tables,
            dry_run=dry_run,
        )
    except (bq_load.LoadError, gcs.GCSError) as exc:
        raise click.ClickException(str(exc)) from None
    except auth_errors.DefaultCredentialsError as exc:
        raise click.ClickException(f"no Google credentials: {first_line(exc)}") from None
    except google_errors.GoogleAPIError as exc:
        raise click.ClickException(f"BigQuery/GCS request failed: {first_line(exc)}") from None
    verb = "would load" if dry_run else "loaded"
    for name, done in report.tables.items():
        if done.partitions:
            click.echo(f"  {name}: {verb} {done.partitions} partition(s), {done.rows} rows")
    click.echo(
        f"{project}.{raw_dataset}: {verb} {report.partitions} partition(s) ({report.rows} rows) "
        f"from {source}, {report.skipped} unchanged"
    )
