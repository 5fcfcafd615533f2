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
"""

from __future__ import annotations

import json
import os
import re
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
from warehouse.gate_ledger import (
    LEDGER_COLUMNS,
    LEDGER_TABLE,
    GateCheck,
    Graph,
    LedgerError,
    LedgerRow,
    read_graph,
    rows_from_tuples,
)
from warehouse.gate_ledger import check as check_ledger

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


def check_gates(check: GateCheck) -> None:
    """Refuse unless the ledger vouches for every copied model (naming the gates that fail)."""
    if check.problems:
        raise PublishError("refusing to publish: " + "; ".join(check.problems))


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_CREATE_COPY = "create table main.{name} as select * from build.main.{name} order by {order}"
_COUNT = "select count(*) from main.{name}"
_INSERT = "insert into {name} values ({marks})"


def _sql(template: str, **identifiers: str) -> str:
    """A statement from one of this module's templates and table or column names of its own
    (never user input: checked against a plain identifier pattern all the same)."""
    for value in identifiers.values():
        if value and not all(_IDENTIFIER.match(part.strip()) for part in value.split(",")):
            raise ValueError(f"not a plain identifier list: {value!r}")
    return template.format(**identifiers)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[list[Any]]) -> None:
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(_INSERT.format(name=_sql("{name}", name=table), marks=marks), rows)


def _quoted(path: Path) -> str:
    # ATTACH takes no bound parameters: a literal with quotes doubled.
    return "'" + str(path).replace("'", "''") + "'"


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_marts(
    con: duckdb.DuckDBPyConnection, build: Path, graph: Graph
) -> tuple[dict[str, int], GateCheck]:
    try:
        con.execute(f"attach {_quoted(build)} as build (read_only)")
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise PublishError(
                f"cannot read {build}: another process holds it (is dbt still running?)"
            ) from exc
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
    check = _checked(rows_from_tuples(records), graph, copied)
    tables: dict[str, int] = {}
    for name in copied:
        columns = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_catalog = 'build' and table_schema = 'main' and table_name = ?",
                [name],
            ).fetchall()
        }
        # Sorted by key so time-range reads touch few row groups (DuckDB zone maps).
        order = ", ".join(c for c in ("symbol", "bar_interval", "open_time") if c in columns)
        con.execute(_sql(_CREATE_COPY, name=name, order=order or "all"))
        count = con.execute(_sql(_COUNT, name=name)).fetchone()
        tables[name] = int(count[0]) if count else 0
    con.execute("detach build")
    return tables, check


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
) -> PublishResult:
    """Check the gate ledger, copy the marts to a new file, record `models` as the pinned
    versions, swap it in atomically, all under a lock file next to `serve` (waiting at most
    `lock_timeout` s). `pipeline.publish` is the step that pins the registry's models first.

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
    try:
        tables, check = _publish_locked(
            serve, build, bigquery, graph, list(models), primary_model, published_at, features
        )
    finally:
        lock.release()
    built_at = check.built_at.isoformat() if check.built_at else None
    return PublishResult(serve, published_at, built_at, check.invocation_id, tables, list(models))


def _publish_locked(
    serve: Path,
    build: Path,
    bigquery: BigQuerySource | None,
    graph: Graph,
    models: list[PinnedModel],
    primary_model: str,
    published_at: datetime,
    features: list[list[Any]],
) -> tuple[dict[str, int], GateCheck]:
    temporary = serve.with_name(f".{serve.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        con = duckdb.connect(str(temporary))
        try:
            con.execute("set TimeZone = 'UTC'")
            if bigquery is not None:
                tables, check = _copy_bigquery_marts(con, bigquery, graph)
            else:
                tables, check = _copy_marts(con, build, graph)
            origin = bigquery.uri if bigquery is not None else build
            _write_metadata(con, check, graph, models, tables, published_at, origin, primary_model)
            # the declaration of the features served, from the same manifest (GET /v1/catalog)
            con.execute(
                f"create table {CATALOG_TABLE} ("
                "model varchar, position integer, name varchar, feature_set varchar, "
                "role varchar, unit varchar, inputs varchar, point_in_time varchar, "
                "nulls varchar, warm_up varchar, model_input boolean, description varchar)"
            )
            _insert(con, CATALOG_TABLE, features)
            con.execute("checkpoint")
        finally:
            con.close()
        temporary.chmod(0o644)
        _fsync(temporary)
        temporary.replace(serve)  # os.replace: atomic on one filesystem
        _fsync(serve.parent, directory=True)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    return tables, check
