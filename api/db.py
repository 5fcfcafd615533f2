"""Read-only access to serve.duckdb that follows each `btcfs publish`.

The API never opens build.duckdb. Each request gets its own DuckDB connection (a cursor) on
the current *generation*: an in-memory DuckDB instance with serve.duckdb attached read-only.
Every request first stats the file; when its inode, size or mtime changed (publish renamed a
new file over it), a new generation attaches the new file and takes over, and the old one is
closed once its last request has finished: no request sees a half-swapped file or fails.

Attaching (rather than `duckdb.connect(path)`) matters: DuckDB caches database instances by
path inside a process, so a second connect to the same path would return the *old* file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from api.errors import Unavailable
from warehouse.publish import GATES_TABLE, METADATA_TABLE, MODELS_TABLE

log = logging.getLogger("api.db")

#: The catalog the file is attached as: every query names `serve.<table>`.
CATALOG = "serve"
_FileKey = tuple[int, int, int, int]  # device, inode, size, mtime (ns)


@dataclass(frozen=True)
class PinnedModelRow:
    model: str
    version: str
    stage: str
    target: str
    horizon: str | None
    features: tuple[str, ...]
    #: The symbols it was trained on; () in a file published before they were recorded (the
    #: predictor then reads them from the model's metadata).
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublishInfo:
    """What `btcfs publish` recorded in the file (all None for a file without metadata)."""

    published_at: datetime | None = None
    built_at: datetime | None = None
    dbt_invocation_id: str | None = None
    model: str | None = None
    model_version: str | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    models: tuple[PinnedModelRow, ...] = ()


@dataclass
class Generation:
    """One attached serve.duckdb file; requests hold it while they run."""

    number: int
    key: _FileKey
    con: duckdb.DuckDBPyConnection
    info: PublishInfo
    symbols: tuple[str, ...]
    tables: frozenset[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0
    retired: bool = False
    #: Per-generation memo of derived values (latest predictions, ...): valid as long as
    #: the file is, so nothing has to be invalidated by hand.
    memo: dict[Any, Any] = field(default_factory=dict)

    def close_if_idle(self) -> None:
        if self.retired and self.users == 0:
            self.con.close()


def _file_key(path: Path) -> _FileKey | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[Any]:
    return con.execute(sql, params or []).fetchall()


def _read_info(con: duckdb.DuckDBPyConnection, tables: frozenset[str]) -> PublishInfo:
    if METADATA_TABLE not in tables:
        return PublishInfo()
    row = con.execute(
        "select published_at, built_at, dbt_invocation_id, model, model_version, statuses "
        "from serve.btcfs_publish limit 1"
    ).fetchone()
    if row is None:
        return PublishInfo()
    models: list[PinnedModelRow] = []
    if MODELS_TABLE in tables:
        columns = {row[0] for row in _rows(con, "describe serve.btcfs_models")}
        symbols = "symbols" if "symbols" in columns else "'[]'"
        for name, version, stage, target, horizon, features, trained_on in _rows(
            con,
            "select model, version, stage, target, horizon, features, "  # noqa: S608
            f"{symbols} from serve.btcfs_models order by model",
        ):
            models.append(
                PinnedModelRow(
                    name, version, stage, target, horizon,
                    tuple(json.loads(features)), tuple(json.loads(trained_on)),
                )
            )  # fmt: skip
    return PublishInfo(
        published_at=row[0],
        built_at=row[1],
        dbt_invocation_id=row[2],
        model=row[3],
        model_version=row[4],
        statuses=json.loads(row[5] or "{}"),
        models=tuple(models),
    )


class ServeDatabase:
    """The published warehouse, re-attached whenever the file is replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._current: Generation | None = None
        self._count = 0
        self._unreadable: _FileKey | None = None

    # ------------------------------------------------------------------ generations

    def _open(self, key: _FileKey) -> Generation:
        con = duckdb.connect(":memory:")
        try:
            # Times come back in UTC on every cursor (a connect-time TimeZone config would
            # need the icu extension autoloaded; SET GLOBAL does not).
            con.execute("set global TimeZone = 'UTC'")
            literal = "'" + str(self.path).replace("'", "''") + "'"
            con.execute(f"attach {literal} as {CATALOG} (read_only)")
            tables = frozenset(
                row[0]
                for row in _rows(
                    con,
                    "select table_name from information_schema.tables where table_catalog = ?",
                    [CATALOG],
                )
            )
            symbols: tuple[str, ...] = ()
            if "latest_features" in tables:
                symbols = tuple(
                    row[0]
                    for row in _rows(
                        con,
                        "select distinct symbol from serve.latest_features order by 1",
                    )
                )
            info = _read_info(con, tables)
        except BaseException:
            con.close()
            raise
        self._count += 1
        return Generation(self._count, key, con, info, symbols, tables)

    def refresh(self, *, force: bool = False) -> bool:
        """Attach the file anew if it was replaced (or `force`); True when a new generation
        took over. A file that cannot be opened leaves the current generation in place."""
        key = _file_key(self.path)
        current = self._current
        if key is None or (not force and current is not None and current.key == key):
            return False
        if not force and key == self._unreadable:
            return False  # already tried and logged: wait for the next publish
        with self._lock:
            current = self._current
            if not force and current is not None and current.key == key:
                return False  # another request attached it meanwhile
            try:
                fresh = self._open(key)  # stat first: a later swap is noticed next time
            except duckdb.Error as exc:
                log.warning("cannot attach %s (keeping the previous file): %s", self.path, exc)
                self._unreadable = key
                return False
            self._current = fresh
        if current is not None:
            with current.lock:
                current.retired = True
                current.close_if_idle()
        log.info("attached %s (generation %d)", self.path, fresh.number)
        return True

    def generation(self) -> Generation:
        """The current generation (after a refresh); Unavailable when nothing is published."""
        self.refresh()
        current = self._current
        if current is None and self._unreadable is not None:
            raise Unavailable(
                f"the published warehouse {self.path} cannot be read (damaged or cut short): "
                "run `btcfs publish`"
            )
        if current is None:
            raise Unavailable(
                f"no published warehouse at {self.path}: run `dbt build && btcfs publish`"
            )
        return current

    def disk_problem(self) -> str | None:
        """Why the file on disk is not the one being served, when it cannot be attached.

        A publish always brings a new file; a file that changed in place and cannot be opened
        (a disk fault, a truncation) leaves the previous generation serving from memory.
        """
        key = _file_key(self.path)
        if self._current is None or key == self._current.key:
            return None
        if key is None:
            return f"{self.path} is gone from disk; serving the last attached copy"
        if key == self._unreadable:
            return (
                f"{self.path} changed on disk and cannot be attached (damaged or cut short); "
                "serving the last attached copy: run `btcfs publish`"
            )
        return None

    def current_number(self) -> int | None:
        current = self._current
        return current.number if current is not None else None

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """A per-request connection on the current generation, released afterwards."""
        while True:
            generation = self.generation()
            with generation.lock:
                if generation.retired:
                    continue  # swapped between the two lines above: take the new one
                generation.users += 1
                cursor = generation.con.cursor()
            break
        try:
            yield Reader(cursor, generation)
        finally:
            cursor.close()
            with generation.lock:
                generation.users -= 1
                generation.close_if_idle()

    def close(self) -> None:
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            with current.lock:
                current.retired = True
                current.close_if_idle()

    def file_exists(self) -> bool:
        return self.path.exists()


@dataclass
class Reader:
    """One request's connection: parameterised queries against the `serve` catalog."""

    cursor: duckdb.DuckDBPyConnection
    generation: Generation

    def has(self, table: str) -> bool:
        return table in self.generation.tables

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; `sql` names tables as `serve.<table>`; values go in `params` only."""
        result = self.cursor.execute(sql, params or [])
        columns = [d[0] for d in result.description or []]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]

    def gates(self) -> list[dict[str, Any]]:
        if GATES_TABLE not in self.generation.tables:
            return []
        return self.rows(
            "select name, kind, status, failures, model, message from serve.btcfs_gates"
        )
