"""`btcfs publish`: copy the built marts into a new DuckDB file and swap it in as serve.duckdb.

dbt writes build.duckdb and DuckDB lets one process write a file or many read it, never both
(ARCHITECTURE.md, invariant 6). So the API reads its own file: publish opens build.duckdb
read-only, checks the gate ledger dbt keeps in it (warehouse.gate_ledger: every gate of every
copied model passed after the build that last wrote that model), copies the marts and
`latest_features` into a fresh file with a metadata table (when it was built, dbt's invocation
id, the pinned model versions, the gates of what is copied), fsyncs it and `os.replace`s it
over serve.duckdb, all under a lock file so two publishes never interleave. A reader holding
the old file keeps reading the old inode until it reattaches.

`--from bigquery` publishes the marts a `dbt build --target prod` (or bq_emulator) wrote to
BigQuery instead: the same check on the ledger in that dataset (refused when the manifest comes
from another adapter), each mart read with one query into the same kind of local file, the
same atomic swap. The API keeps serving a local read-only copy either way.

A delta publish (the default from DuckDB) starts from a copy of the serve file instead of an
empty one when it can vouch for it: it was published from the same build.duckdb by this
version, holds the same marts with the same columns, and every invocation the ledger shows
since the one it was published from is an update plan run that noted, per incremental mart,
the earliest `open_time` it rewrote (gate_ledger.windows_since). Each mart then has its rows
from that moment on deleted and copied again from the build; the table marts (latest_features)
and the metadata are replaced whole. Anything else (a dbt build since, no serve file, a schema
change) is a full copy. tests/warehouse/test_update_plan.py holds a delta equal to a full copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from filelock import FileLock, Timeout

from core import __version__
from core.errors import BtcfsError
from core.settings import DataPaths
from warehouse.catalog import CATALOG_TABLE, CatalogError, catalog_rows, from_manifest
from warehouse.connect import bigquery_client, first_line
from warehouse.duckrows import insert_rows
from warehouse.gate_ledger import (
    LEDGER_COLUMNS,
    LEDGER_TABLE,
    WINDOW_COLUMN,
    GateCheck,
    Graph,
    LedgerError,
    LedgerRow,
    read_graph,
    rows_from_tuples,
    windows_since,
)
from warehouse.gate_ledger import check as check_ledger
from warehouse.plan import LEDGER_COMMAND
from warehouse.readers import busy_message

#: Marts the API reads: publish refuses a warehouse that lacks one.
REQUIRED_MARTS = (
    "bars_5m",
    "bars_15m",
    "bars_1h",
    "bars_4h",
    "bars_1d",
    "features_5m",
    "features_1h",
    "latest_features",
)
#: Marts copied when the build has them (training_set_5m stays behind: it is the trainer's
#: input, features_5m joined to labels_5m, and would double the file for nothing served).
OPTIONAL_MARTS = ("perp_bars_5m", "perp_bars_1h", "labels_5m")
METADATA_TABLE = "btcfs_publish"
MODELS_TABLE = "btcfs_models"
GATES_TABLE = "btcfs_gates"
DEFAULT_MODEL = "btcusdt_5m"
#: How long a publish waits for another one of the same serve file to finish.
DEFAULT_LOCK_TIMEOUT_S = 300.0


class PublishError(BtcfsError):
    """A publish that was refused or could not finish; serve.duckdb is left as it was."""


@dataclass(frozen=True)
class PinnedModel:
    """A registry version that the published file pins for serving."""

    model: str
    version: str
    stage: str  # production | candidate | rejected
    target: str
    horizon: str | None
    features: list[str]
    created_at: str
    #: What it was trained on: the API serves a symbol only with a model trained on it.
    symbols: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PublishResult:
    path: Path
    published_at: datetime
    built_at: str | None
    invocation_id: str | None
    tables: dict[str, int]
    models: list[PinnedModel] = field(default_factory=list)
    #: How the file was made: "delta" (from the previous serve file) or "full", and why full.
    mode: str = "full"
    why_full: str | None = None


def check_gates(check: GateCheck) -> None:
    """Refuse unless the ledger vouches for every copied model (naming the gates that fail)."""
    if check.problems:
        raise PublishError("refusing to publish: " + "; ".join(check.problems))


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_CREATE_COPY = "create table main.{name} as select * from build.main.{name} order by {order}"
_COUNT = "select count(*) from main.{name}"


def _sql(template: str, **identifiers: str) -> str:
    """A statement from one of this module's templates and table or column names of its own
    (never user input: checked against a plain identifier pattern all the same)."""
    for value in identifiers.values():
        if value and not all(_IDENTIFIER.match(part.strip()) for part in value.split(",")):
            raise ValueError(f"not a plain identifier list: {value!r}")
    return template.format(**identifiers)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[list[Any]]) -> None:
    insert_rows(con, _sql("{name}", name=table), rows)


def _quoted(path: Path) -> str:
    # ATTACH takes no bound parameters: a literal with quotes doubled.
    return "'" + str(path).replace("'", "''") + "'"


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _attach_build(con: duckdb.DuckDBPyConnection, build: Path, graph: Graph) -> _Build:
    """Attach build.duckdb read-only and check its ledger for the marts to copy."""
    try:
        con.execute(f"attach {_quoted(build)} as build (read_only)")
    except duckdb.Error as exc:
        busy = busy_message(build, exc)
        if busy is not None:
            raise PublishError(f"cannot publish: {busy}") from exc
        raise PublishError(f"cannot open {build} read-only: {exc}") from exc
    present = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = 'build' and table_schema = 'main'"
        ).fetchall()
    }
    missing = [name for name in REQUIRED_MARTS if name not in present]
    if missing:
        raise PublishError(f"{build} lacks {', '.join(missing)}: run a full `dbt build` first")
    if LEDGER_TABLE not in present:
        raise PublishError(_NO_LEDGER.format(where=build))
    copied = [*REQUIRED_MARTS, *(m for m in OPTIONAL_MARTS if m in present)]
    records = con.execute(_LEDGER.format(source="build.main." + LEDGER_TABLE)).fetchall()
    rows = rows_from_tuples(records)
    check = _checked(rows, graph, copied)
    return _Build(copied, rows, check, _columns(con, "build", copied))


@dataclass(frozen=True)
class _Build:
    copied: list[str]
    ledger: list[LedgerRow]
    check: GateCheck
    columns: dict[str, list[tuple[str, str]]]  # mart -> (column, type) in order


_COLUMNS = (
    "select table_name, column_name, data_type from information_schema.columns "
    "where table_catalog = ? and table_schema = 'main' order by table_name, ordinal_position"
)


def _columns(
    con: duckdb.DuckDBPyConnection, catalog: str, names: list[str]
) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in con.execute(_COLUMNS, [catalog]).fetchall():
        if table in names:
            found.setdefault(table, []).append((column, kind))
    return found


def _order(columns: list[tuple[str, str]]) -> str:
    # Sorted by key so time-range reads touch few row groups (DuckDB zone maps).
    names = {name for name, _ in columns}
    return ", ".join(c for c in ("symbol", "bar_interval", "open_time") if c in names) or "all"


def _copy_marts(con: duckdb.DuckDBPyConnection, build: _Build) -> dict[str, int]:
    tables: dict[str, int] = {}
    for name in build.copied:
        con.execute(_sql(_CREATE_COPY, name=name, order=_order(build.columns[name])))
        count = con.execute(_sql(_COUNT, name=name)).fetchone()
        tables[name] = int(count[0]) if count else 0
    return tables


#: The tables a published file holds besides the marts (rewritten whole by every publish).
_METADATA_TABLES = (METADATA_TABLE, MODELS_TABLE, GATES_TABLE, CATALOG_TABLE)
_DELETE_FROM = "delete from main.{name} where {column} >= ?"
_INSERT_FROM = (
    "insert into main.{name} select * from build.main.{name} where {column} >= ? order by {order}"
)
_REPLACE = "create or replace table main.{name} as select * from build.main.{name} order by {order}"


def _delta_refused(
    con: duckdb.DuckDBPyConnection, build: _Build, graph: Graph, source: Path
) -> tuple[str | None, dict[str, Any]]:
    """Why the file `con` holds (a copy of the serve file) cannot be the base, or None and
    each incremental mart's earliest rewritten `open_time` since it (None: unchanged)."""
    catalog_row = con.execute("select current_database()").fetchone()
    catalog = str(catalog_row[0]) if catalog_row else ""
    present = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = ? and table_schema = 'main'",
            [catalog],
        ).fetchall()
    }
    if present != {*build.copied, *_METADATA_TABLES}:
        return "the served file holds other tables", {}
    row = con.execute(
        f"select source, btcfs_version, dbt_invocation_id from main.{METADATA_TABLE}"  # noqa: S608
    ).fetchall()
    if len(row) != 1:
        return "the served file's metadata is not one row", {}
    base_source, base_version, base_invocation = row[0]
    if base_source != str(source) or base_version != __version__ or not base_invocation:
        return "the served file comes from another build or version", {}
    if _columns(con, catalog, build.copied) != build.columns:
        return "a mart's columns changed", {}
    incremental = [m for m in build.copied if graph.materialized.get(m) == "incremental"]
    if any(WINDOW_COLUMN not in dict(build.columns[m]) for m in incremental):
        return f"a mart has no {WINDOW_COLUMN}", {}
    found = windows_since(
        build.ledger, str(base_invocation), [graph.models[m] for m in incremental], LEDGER_COMMAND
    )
    if isinstance(found, str):
        return found, {}
    return None, {m: found[graph.models[m]] for m in incremental}


def _apply_delta(
    con: duckdb.DuckDBPyConnection, build: _Build, windows: dict[str, Any]
) -> dict[str, int]:
    """Bring the base's marts to the build's: each incremental mart from its window on, the
    others whole; then drop the metadata tables (written again by the caller)."""
    tables: dict[str, int] = {}
    for name in build.copied:
        order = _order(build.columns[name])
        if name not in windows:
            con.execute(_sql(_REPLACE, name=name, order=order))
        elif windows[name] is not None:
            start = windows[name]
            con.execute(_sql(_DELETE_FROM, name=name, column=WINDOW_COLUMN), [start])
            con.execute(_sql(_INSERT_FROM, name=name, column=WINDOW_COLUMN, order=order), [start])
        count = con.execute(_sql(_COUNT, name=name)).fetchone()
        tables[name] = int(count[0]) if count else 0
    for name in _METADATA_TABLES:
        con.execute(_sql("drop table main.{name}", name=name))
    return tables


_LEDGER = "select " + LEDGER_COLUMNS + " from {source}"  # noqa: S608 - our names only
_INVOCATIONS = "select max(run_started_at) from {source} where resource_type = 'invocation'"
_NO_LEDGER = (
    "refusing to publish: {where} has no gate ledger (" + LEDGER_TABLE + "): run `dbt build` "
    "(dbt_project.yml's on-run-start/on-run-end hooks keep it)"
)


def _checked(rows: list[LedgerRow], graph: Graph, copied: list[str]) -> GateCheck:
    check = check_ledger(rows, graph, copied)
    check_gates(check)
    return check


@dataclass(frozen=True)
class BigQuerySource:
    """Where the marts are on BigQuery; `api_endpoint` (an emulator) means anonymous access."""

    project: str
    dataset: str = "btcfs"
    api_endpoint: str | None = None

    @property
    def uri(self) -> str:
        return f"bigquery://{self.project}/{self.dataset}"


def check_adapter(target_path: Path, graph: Graph, adapter: str) -> None:
    """Refuse a manifest of another engine's project (its tests need not be these marts')."""
    built_on = graph.adapter
    if built_on and built_on != adapter:
        raise PublishError(
            f"refusing to publish: the last dbt build in {target_path} ran on {built_on}, not "
            f"{adapter}; pass that build's --target-path"
        )


def _copy_bigquery_marts(
    con: duckdb.DuckDBPyConnection, source: BigQuerySource, graph: Graph
) -> tuple[dict[str, int], GateCheck]:
    for part in (source.project, source.dataset):
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", part):
            raise PublishError(f"invalid BigQuery name {part!r}")
    client = bigquery_client(
        source.project, source.api_endpoint, purpose="publishing from BigQuery", error=PublishError
    )
    from google.api_core import exceptions

    try:
        present = {table.table_id for table in client.list_tables(source.dataset)}
    except exceptions.NotFound:
        raise PublishError(f"BigQuery has no dataset {source.project}.{source.dataset}") from None
    except Exception as exc:  # credentials, transport: one line, no traceback
        raise PublishError(f"cannot list {source.uri}: {first_line(exc)}") from None
    missing = [name for name in REQUIRED_MARTS if name not in present]
    if missing:
        raise PublishError(
            f"{source.uri} lacks {', '.join(missing)}: run a full `dbt build` on BigQuery first"
        )
    if LEDGER_TABLE not in present:
        raise PublishError(_NO_LEDGER.format(where=source.uri))
    ledger = f"`{source.project}.{source.dataset}.{LEDGER_TABLE}`"
    try:
        records = [tuple(row.values()) for row in client.query(_LEDGER.format(source=ledger))]
    except exceptions.GoogleAPIError as exc:
        raise PublishError(f"reading {ledger} failed: {first_line(exc)}") from None
    copied = [*REQUIRED_MARTS, *(m for m in OPTIONAL_MARTS if m in present)]
    rows = rows_from_tuples(records)
    check = _checked(rows, graph, copied)
    tables: dict[str, int] = {}
    for name in copied:
        relation = f"`{source.project}.{source.dataset}.{name}`"
        try:
            arrow = client.query(f"select * from {relation}").to_arrow(  # noqa: S608
                create_bqstorage_client=source.api_endpoint is None
            )
        except exceptions.GoogleAPIError as exc:
            raise PublishError(f"reading {relation} failed: {first_line(exc)}") from None
        order = ", ".join(
            c for c in ("symbol", "bar_interval", "open_time") if c in arrow.schema.names
        )
        con.register("incoming_mart", arrow)
        try:
            # Sorted by key so time-range reads touch few row groups (DuckDB zone maps).
            con.execute(
                _sql("create table main.{name} as select * from incoming_mart order by {order}",
                     name=name, order=order or "all")
            )  # fmt: skip
        finally:
            con.unregister("incoming_mart")
        tables[name] = arrow.num_rows
    # BigQuery takes no lock: a dbt invocation that started while the marts were read may
    # have rewritten some of them after the ledger was checked.
    try:
        started = client.query(_INVOCATIONS.format(source=ledger)).result()
        newest = max((row[0] for row in started), default=None)
    except exceptions.GoogleAPIError as exc:
        raise PublishError(f"reading {ledger} failed: {first_line(exc)}") from None
    checked = max((r.run_started_at for r in rows if r.resource_type == "invocation"), default=None)
    if newest != checked:
        raise PublishError(
            f"refusing to publish: a dbt invocation started on {source.uri} while its marts "
            "were read: retry when it has finished"
        )
    return tables, check


def _write_metadata(
    con: duckdb.DuckDBPyConnection,
    check: GateCheck,
    graph: Graph,
    models: list[PinnedModel],
    tables: dict[str, int],
    published_at: datetime,
    build: Path | str,
    primary_model: str,
) -> None:
    primary = next((m for m in models if m.model == primary_model), None)
    con.execute(
        f"""create table {METADATA_TABLE} (
            published_at timestamptz, built_at timestamptz, dbt_invocation_id varchar,
            dbt_command varchar, dbt_version varchar, model varchar, model_version varchar,
            model_stage varchar, source varchar, tables varchar, statuses varchar,
            btcfs_version varchar)"""
    )
    _insert(
        con,
        METADATA_TABLE,
        [[
            published_at,
            check.built_at,
            check.invocation_id,
            check.command,
            graph.dbt_version,
            primary.model if primary else None,
            primary.version if primary else None,
            primary.stage if primary else None,
            str(build),
            json.dumps(tables, sort_keys=True),
            json.dumps(check.statuses, sort_keys=True),
            __version__,
        ]],
    )  # fmt: skip
    con.execute(
        f"""create table {MODELS_TABLE} (
            model varchar, version varchar, stage varchar, target varchar, horizon varchar,
            features varchar, created_at varchar, symbols varchar)"""
    )
    _insert(
        con,
        MODELS_TABLE,
        [[m.model, m.version, m.stage, m.target, m.horizon, json.dumps(m.features), m.created_at,
          json.dumps(m.symbols)]
         for m in models],
    )  # fmt: skip
    con.execute(
        f"""create table {GATES_TABLE} (
            name varchar, kind varchar, status varchar, failures bigint, model varchar,
            message varchar)"""
    )
    rows: list[list[Any]] = [
        [gate.name, gate.kind, gate.status, gate.failures, gate.model, gate.message]
        for gate in check.gates
    ]
    _insert(con, GATES_TABLE, rows)


def publish(
    *,
    target_path: Path,
    warehouse: Path | None = None,
    serve: Path | None = None,
    models: Sequence[PinnedModel] = (),
    primary_model: str = DEFAULT_MODEL,
    bigquery: BigQuerySource | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    delta: bool = True,
) -> PublishResult:
    """Check the gate ledger, copy the marts to a new file, record `models` as the pinned
    versions, swap it in atomically, all under a lock file next to `serve` (waiting at most
    `lock_timeout` s). `pipeline.publish` is the step that pins the registry's models first.
    With `delta` (and DuckDB), start from the serve file when it can be vouched for (the
    module's docstring); `delta=False` always copies whole.

    With `bigquery`, the marts come from that dataset (and `warehouse` is not read).
    """
    paths = DataPaths.from_env()
    build = (warehouse or paths.build_db).resolve()
    serve = (serve or paths.serve_db).resolve()
    try:
        graph = read_graph(target_path)
    except LedgerError as exc:
        raise PublishError(f"refusing to publish: {exc}") from None
    check_adapter(target_path, graph, "bigquery" if bigquery is not None else "duckdb")
    try:
        features = catalog_rows(from_manifest(target_path / "manifest.json"))
    except CatalogError as exc:
        raise PublishError(f"refusing to publish: {exc}") from None
    if bigquery is None and not build.is_file():
        raise PublishError(f"{build} not found: run `dbt build` first")
    serve.parent.mkdir(parents=True, exist_ok=True)
    # Check, copy and swap under one lock: two publishes of one file never interleave, so the
    # file served is always the one the later publish checked.
    lock = FileLock(serve.with_name(f".{serve.name}.lock"))
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout:
        raise PublishError(
            f"another `btcfs publish` of {serve} has held {lock.lock_file} for over "
            f"{lock_timeout:g} s: retry when it has finished (or raise --lock-timeout)"
        ) from None
    published_at = datetime.now(UTC)
    job = _Job(serve, build, bigquery, graph, list(models), primary_model, published_at, features)
    try:
        made = _publish_locked(job, delta=delta and bigquery is None)
    finally:
        lock.release()
    check = made.check
    built_at = check.built_at.isoformat() if check.built_at else None
    return PublishResult(
        serve, published_at, built_at, check.invocation_id, made.tables, list(models),
        mode="full" if made.why_full else "delta", why_full=made.why_full,
    )  # fmt: skip


@dataclass(frozen=True)
class _Job:
    serve: Path
    build: Path
    bigquery: BigQuerySource | None
    graph: Graph
    models: list[PinnedModel]
    primary_model: str
    published_at: datetime
    features: list[list[Any]]


@dataclass(frozen=True)
class _Made:
    tables: dict[str, int]
    check: GateCheck
    why_full: str | None


def _publish_locked(job: _Job, *, delta: bool) -> _Made:
    serve = job.serve
    temporary = serve.with_name(f".{serve.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        made: _Made | str = "a full publish was asked for"
        if delta:
            made = "no served file yet"
            if serve.is_file():
                shutil.copyfile(serve, temporary)
                try:
                    made = _write_file(temporary, job, base=True)
                except duckdb.Error as exc:  # a damaged served file: the full copy replaces it
                    first = str(exc).splitlines()[0][:200]
                    made = f"the served file cannot be read as the base ({first})"
            if isinstance(made, str):
                temporary.unlink(missing_ok=True)
                temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
        if isinstance(made, str):
            full = _write_file(temporary, job, base=False)
            assert isinstance(full, _Made)
            made = _Made(full.tables, full.check, why_full=made)
        temporary.chmod(0o644)
        _fsync(temporary)
        temporary.replace(serve)  # os.replace: atomic on one filesystem
        _fsync(serve.parent, directory=True)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    return made


def _write_file(temporary: Path, job: _Job, *, base: bool) -> _Made | str:
    """Fill `temporary`: from empty, or (`base`) from the copy of the serve file it holds;
    why not when that copy cannot be the base."""
    con = duckdb.connect(str(temporary))
    try:
        con.execute("set TimeZone = 'UTC'")
        if job.bigquery is not None:
            tables, check = _copy_bigquery_marts(con, job.bigquery, job.graph)
        else:
            build = _attach_build(con, job.build, job.graph)
            check = build.check
            if base:
                refused, windows = _delta_refused(con, build, job.graph, job.build)
                if refused is not None:
                    return refused
                tables = _apply_delta(con, build, windows)
            else:
                tables = _copy_marts(con, build)
            con.execute("detach build")
        origin = job.bigquery.uri if job.bigquery is not None else job.build
        _write_metadata(
            con, check, job.graph, job.models, tables, job.published_at, origin, job.primary_model
        )
        # the declaration of the features served, from the same manifest (GET /v1/catalog)
        con.execute(
            f"create table {CATALOG_TABLE} ("
            "model varchar, position integer, name varchar, feature_set varchar, "
            "role varchar, unit varchar, inputs varchar, point_in_time varchar, "
            "nulls varchar, warm_up varchar, model_input boolean, description varchar)"
        )
        _insert(con, CATALOG_TABLE, job.features)
        con.execute("checkpoint")
    finally:
        con.close()
    return _Made(tables, check, None)
