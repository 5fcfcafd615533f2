"""The feature rows `btcfs live` served, each as first published: what `btcfs live verify`
holds against a full batch rebuild of the same lake (docs/live.md, "Parity").

After every publish the loop copies the rows of `features_5m` and `features_1h` in the
published file that the log does not hold yet (by symbol and open time) into
`<data>/live/served.duckdb`, with the publish time. A row rebuilt later with other values is
not logged again: the log keeps what a caller could first have read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from core.errors import BtcfsError

SERVED_TABLES = ("features_5m", "features_1h")
KEY = ("symbol", "open_time")
PUBLISHED_AT = "btcfs_published_at"
#: Feature values equal within this (absolute, or relative to the larger magnitude). NaN
#: equals only NaN (DuckDB orders NaN above every number, so `NaN <= x` alone would hold).
TOLERANCE = 1e-9


class ServedLogError(BtcfsError):
    """The served log cannot be read or written."""


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@dataclass
class Mismatch:
    table: str
    symbol: str
    open_time: datetime | None  # None: the whole table (a column missing)
    problem: str  # "missing from the batch build" or "column x: served a, batch b"


@dataclass
class Verdict:
    """What `btcfs live verify` found, per table: rows checked and rows that differ."""

    checked: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and sum(self.checked.values()) > 0


class ServedLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise ServedLogError(f"cannot open the served log {self.path}: {exc}") from None
        try:
            con.execute("set TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def record(self, serve_db: Path, published_at: datetime) -> dict[str, datetime]:
        """Log the served rows not logged yet; the newest 5m open time served per symbol."""
        newest: dict[str, datetime] = {}
        with self._connect() as con:
            try:
                con.execute(f"attach {_literal(serve_db)} as serve (read_only)")
            except duckdb.Error as exc:
                raise ServedLogError(f"cannot read {serve_db}: {exc}") from None
            present = {
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables where table_catalog = 'serve'"
                ).fetchall()
            }
            for table in SERVED_TABLES:
                if table not in present:
                    continue
                self._append(con, table, published_at)
            if "features_5m" in present:
                for symbol, open_time in con.execute(
                    "select symbol, max(open_time) from serve.features_5m group by symbol"
                ).fetchall():
                    newest[symbol] = open_time
            con.execute("detach serve")
        return newest

    @staticmethod
    def _append(con: duckdb.DuckDBPyConnection, table: str, published_at: datetime) -> None:
        served = [
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_catalog = "
                "'serve' and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
        ]
        logged = [
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_catalog = "
                "current_database() and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
        ]
        if logged and logged != [*served, PUBLISHED_AT]:
            # the feature list changed: keep the old log under another name, start anew
            stamp = published_at.strftime("%Y%m%dT%H%M%S")
            con.execute(f'alter table "{table}" rename to "{table}_before_{stamp}"')
            logged = []
        if not logged:
            con.execute(
                f'create table "{table}" as select *, ?::timestamptz as {PUBLISHED_AT} '  # noqa: S608 - our names
                f"from serve.{table} limit 0",
                [published_at],
            )
        con.execute(
            f'insert into "{table}" select s.*, ?::timestamptz from serve.{table} s '  # noqa: S608 - our names
            f'anti join "{table}" l on s.symbol = l.symbol and s.open_time = l.open_time',
            [published_at],
        )

    def verify(self, batch_db: Path) -> Verdict:
        """Compare every logged row with the same key's row in `batch_db` (a full rebuild)."""
        verdict = Verdict()
        if not self.path.is_file():
            raise ServedLogError(
                f"no served log at {self.path}: `btcfs live` writes it after each publish"
            )
        with self._connect(read_only=True) as con:
            con.execute(f"attach {_literal(batch_db)} as batch (read_only)")
            for table in SERVED_TABLES:
                exists = con.execute(
                    "select count(*) from information_schema.tables where table_catalog = "
                    "current_database() and table_name = ?",
                    [table],
                ).fetchone()
                if not exists or not exists[0]:
                    continue
                verdict.checked[table] = _count(con, f'select count(*) from "{table}"')  # noqa: S608 - our names
                verdict.mismatches.extend(_differences(con, table))
        return verdict


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _differences(con: duckdb.DuckDBPyConnection, table: str) -> list[Mismatch]:
    columns = [
        (row[0], row[1])
        for row in con.execute(
            "select column_name, data_type from information_schema.columns where table_catalog "
            "= current_database() and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
        if row[0] not in (*KEY, PUBLISHED_AT)
    ]
    batch_columns = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns where table_catalog = 'batch' "
            "and table_name = ?",
            [table],
        ).fetchall()
    }
    found: list[Mismatch] = []
    missing = con.execute(
        f'select l.symbol, l.open_time from "{table}" l anti join batch.{table} b '  # noqa: S608 - our names
        "on l.symbol = b.symbol and l.open_time = b.open_time order by 1, 2 limit 100"
    ).fetchall()
    found.extend(Mismatch(table, s, t, "missing from the batch build") for s, t in missing)
    for name, data_type in columns:
        if name not in batch_columns:
            found.append(Mismatch(table, "*", None, f"column {name} not in the batch build"))
            continue
        quoted = '"' + name.replace('"', '""') + '"'
        if data_type in ("DOUBLE", "FLOAT", "REAL") or data_type.startswith("DECIMAL"):
            same = (
                f"(l.{quoted} is null and b.{quoted} is null) or (isnan(l.{quoted}) and "
                f"isnan(b.{quoted})) or (not isnan(l.{quoted}) and not isnan(b.{quoted}) and "
                f"abs(l.{quoted} - b.{quoted}) <= {TOLERANCE} * "
                f"greatest(1, abs(l.{quoted}), abs(b.{quoted})))"
            )
        else:
            same = f"l.{quoted} is not distinct from b.{quoted}"
        rows: list[Any] = con.execute(
            f"select l.symbol, l.open_time, l.{quoted}::varchar, b.{quoted}::varchar "  # noqa: S608 - our names
            f'from "{table}" l join batch.{table} b on l.symbol = b.symbol and '
            f"l.open_time = b.open_time where not coalesce({same}, false) order by 1, 2 limit 20"
        ).fetchall()
        found.extend(
            Mismatch(table, s, t, f"column {name}: served {a}, batch {b}") for s, t, a, b in rows
        )
    return found
