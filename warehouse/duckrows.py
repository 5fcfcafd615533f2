"""Rows from Python into a DuckDB table in one statement.

DuckDB's `executemany` runs the insert once per row (about 5 ms each on a loaded 2-core
machine), so the 150 gate rows of a publish or a plan run's ledger took most of a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

_INCOMING = "btcfs_incoming_rows"


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str] | None = None,
) -> None:
    """Insert `rows` (all the same length) into `table` (a name of our own, never user
    input), into `columns` when given, else by position."""
    if not rows:
        return
    width = len(rows[0])
    names = list(columns) if columns else [f"c{i}" for i in range(width)]
    incoming = pa.table({name: pa.array([row[i] for row in rows]) for i, name in enumerate(names)})
    into = f"{table} ({', '.join(names)})" if columns else table
    con.register(_INCOMING, incoming)
    try:
        con.execute(f"insert into {into} select * from {_INCOMING}")  # noqa: S608 - our names
    finally:
        con.unregister(_INCOMING)
