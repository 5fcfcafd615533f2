"""Confining a DuckDB connection to our folders: whatever SQL it runs (a model, a macro, a
var's text) reads and writes only these folders, no other file, no URL, no extension install,
no ATTACH elsewhere. The dbt plugin (warehouse.dbt_plugin) and the update plan apply it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def spellings(folder: str | Path) -> set[str]:
    """A folder as DuckDB may see it in a query (absolute, and with links resolved), with the
    trailing separator that keeps `/data/lake` from also allowing `/data/lake-old`."""
    absolute = os.path.normpath(Path(folder).absolute())
    return {absolute.rstrip("/") + "/", str(Path(absolute).resolve()).rstrip("/") + "/"}


def confine(conn: Any, folders: Iterable[str | Path]) -> None:
    """Allow `folders` alone, then turn external access off (DuckDB refuses to widen either
    setting once it is off). `conn` is a DuckDB connection (or dbt-duckdb's wrapper)."""
    allowed = sorted({spelling for folder in folders for spelling in spellings(folder)})
    conn.execute(f"set allowed_directories = [{', '.join(map(_sql_text, allowed))}]")
    conn.execute("set enable_external_access = false")
