"""Paper positions: buy `amount_usd` of a symbol at the latest published close, mark them to
market at every later close, close them. Kept in a small SQLite file of their own (WAL,
one connection per call) so they outlive restarts and never touch the published warehouse."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
create table if not exists positions (
    id integer primary key autoincrement,
    symbol text not null,
    amount_usd real not null check (amount_usd > 0),
    units real not null check (units > 0),
    entry_price real not null check (entry_price > 0),
    entry_bar_at text not null,
    opened_at text not null,
    closed_at text,
    exit_price real,
    exit_bar_at text
)
"""


@dataclass(frozen=True)
class PaperPosition:
    id: int
    symbol: str
    amount_usd: float
    units: float
    entry_price: float
    entry_bar_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    exit_price: float | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _position(row: sqlite3.Row) -> PaperPosition:
    return PaperPosition(
        id=row["id"],
        symbol=row["symbol"],
        amount_usd=row["amount_usd"],
        units=row["units"],
        entry_price=row["entry_price"],
        entry_bar_at=datetime.fromisoformat(row["entry_bar_at"]),
        opened_at=datetime.fromisoformat(row["opened_at"]),
        closed_at=_time(row["closed_at"]),
        exit_price=row["exit_price"],
    )


class PaperBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = threading.Lock()
        self._initialised = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._initialised:
            with self._ready:
                if not self._initialised:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with closing(sqlite3.connect(self.path, timeout=10)) as con:
                        con.execute("pragma journal_mode = wal")
                        con.execute(_SCHEMA)
                        con.commit()
                    self._initialised = True
        with closing(sqlite3.connect(self.path, timeout=10)) as con:
            con.row_factory = sqlite3.Row
            con.execute("pragma synchronous = full")
            with con:  # one transaction: committed on success, rolled back on error
                yield con

    def open(self, symbol: str, amount_usd: float, price: float, bar_at: datetime) -> PaperPosition:
        now = datetime.now(UTC).isoformat()
        with self._connect() as con:
            cursor = con.execute(
                "insert into positions (symbol, amount_usd, units, entry_price, entry_bar_at,"
                " opened_at) values (?, ?, ?, ?, ?, ?)",
                (symbol, amount_usd, amount_usd / price, price, bar_at.isoformat(), now),
            )
            row = con.execute("select * from positions where id = ?", (cursor.lastrowid,))
            return _position(row.fetchone())

    def get(self, position_id: int) -> PaperPosition | None:
        with self._connect() as con:
            row = con.execute("select * from positions where id = ?", (position_id,)).fetchone()
        return _position(row) if row else None

    def all(self) -> list[PaperPosition]:
        with self._connect() as con:
            rows = con.execute("select * from positions order by id").fetchall()
        return [_position(row) for row in rows]

    def close(self, position_id: int, price: float, bar_at: datetime) -> PaperPosition | None:
        """Close at `price`; None when the position is unknown or already closed."""
        now = datetime.now(UTC).isoformat()
        with self._connect() as con:
            updated = con.execute(
                "update positions set closed_at = ?, exit_price = ?, exit_bar_at = ?"
                " where id = ? and closed_at is null",
                (now, price, bar_at.isoformat(), position_id),
            ).rowcount
            row = con.execute("select * from positions where id = ?", (position_id,)).fetchone()
        return _position(row) if updated and row else None
