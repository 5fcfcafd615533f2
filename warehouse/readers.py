"""One way to read a mart, whichever engine built it: `DuckDBMarts` (dbt's local file, dev)
and `BigQueryMarts` (the dataset `dbt build --target prod` wrote) answer the same call with
the same Arrow table, so the trainer and retrieval need not know where the marts live.

Relation names and symbols are checked, never trusted: a relation must be a plain
identifier, and a symbol is bound as a parameter (DuckDB) or inlined only after matching
^[A-Za-z0-9_-]+$ (BigQuery: the emulator runs no query parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from core.errors import BtcfsError
from warehouse.connect import bigquery_client, first_line

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOL = re.compile(r"[A-Za-z0-9_-]+")
_PROJECT = re.compile(r"[A-Za-z0-9.:-]+")


class ReadError(BtcfsError):
    """A mart that cannot be read: no warehouse, a bad name, an unreachable engine."""


class MissingRelation(ReadError):
    """The warehouse is there but the relation is not (not built yet, or not at all)."""


class WarehouseBusy(ReadError):
    """Another process (dbt, mostly) holds the DuckDB file's write lock."""


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>\S+) \(PID (?P<pid>\d+)\)")


def busy_message(path: Path, exc: BaseException) -> str | None:
    """What to tell the user when `exc` is DuckDB refusing `path` for another process's lock
    (None when it is something else): who holds it and what to do instead."""
    text = str(exc)
    if "Could not set lock" not in text and "Conflicting lock" not in text:
        return None
    found = _LOCK_HOLDER.search(text)
    holder = f" ({Path(found['program']).name}, pid {found['pid']})" if found else ""
    return (
        f"another process{holder} is writing {path.name}, most likely `dbt build`: wait for it "
        "to finish, or read the published copy serve.duckdb (`btcfs serve`, `make shell`)"
    )


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse file, or a ReadError in one line (WarehouseBusy
    naming the process that holds the file while dbt writes it)."""
    if not path.exists():
        raise ReadError(f"warehouse {path} not found: run `dbt build` first")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        busy = busy_message(path, exc)
        if busy is not None:
            raise WarehouseBusy(busy) from None
        raise ReadError(f"cannot open warehouse {path}: {first_line(exc)}") from None


class MartReader(Protocol):
    """Reads the rows of one symbol from a mart, oldest first."""

    def rows(self, relation: str, symbol: str) -> pa.Table: ...


def _identifier(name: str, what: str = "table name") -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ReadError(f"invalid {what} {name!r}")
    return name


@dataclass(frozen=True)
class DuckDBMarts:
    """The marts in dbt's DuckDB file, opened read-only for each read (dbt may write later)."""

    path: Path

    def rows(self, relation: str, symbol: str) -> pa.Table:
        _identifier(relation)
        con = open_read_only(self.path)
        try:
            con.execute("set TimeZone = 'UTC'")
            sql = f"select * from {relation} where symbol = ? order by open_time"  # noqa: S608
            try:
                return con.execute(sql, [symbol]).to_arrow_table()
            except duckdb.CatalogException:
                raise MissingRelation(f"{self.path} has no table {relation}") from None
        finally:
            con.close()


@dataclass(frozen=True)
class BigQueryMarts:
    """The marts in a BigQuery dataset; `api_endpoint` (an emulator) reads anonymously."""

    project: str
    dataset: str
    api_endpoint: str | None = None

    def rows(self, relation: str, symbol: str) -> pa.Table:
        _identifier(relation)
        _identifier(self.dataset, "dataset name")
        if not _SYMBOL.fullmatch(symbol):
            raise ReadError(f"invalid symbol {symbol!r}")
        if not _PROJECT.fullmatch(self.project):
            raise ReadError(f"invalid BigQuery project {self.project!r}")
        client = bigquery_client(
            self.project, self.api_endpoint, purpose="reading from BigQuery", error=ReadError
        )
        name = f"{self.project}.{self.dataset}.{relation}"
        sql = f"select * from `{name}` where symbol = '{symbol}' order by open_time"  # noqa: S608
        from google.api_core import exceptions

        try:
            # Without the BigQuery Storage API (an emulator serves REST only) rows come by pages.
            return client.query(sql).to_arrow(create_bqstorage_client=self.api_endpoint is None)
        except exceptions.NotFound:
            raise MissingRelation(
                f"BigQuery has no table {name}: run `dbt build --target prod`"
            ) from None
        except exceptions.GoogleAPIError as exc:
            raise ReadError(f"reading {name} failed: {first_line(exc)}") from None
        except OSError as exc:  # refused connection, DNS: requests' errors are OSErrors
            raise ReadError(f"cannot reach BigQuery for {self.project}: {exc}") from None
