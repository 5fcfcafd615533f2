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

from api.errors import Conflict

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


@dataclass(frozen=True)
class BookTotals:
    """Every position at once, for the totals of a paginated list: how many, what is open
    (units and invested USD per symbol) and the realised P&L of the closed ones."""

    count: int
    open_count: int
    open_by_symbol: dict[str, tuple[float, float]]
    realised_pnl_usd: float

    @property
    def invested_usd(self) -> float:
        return sum(amount for _units, amount in self.open_by_symbol.values())

    def value_usd(self, marks: dict[str, float]) -> float:
        """Open positions at these prices; a symbol without one at cost."""
        return sum(
            units * marks[symbol] if symbol in marks else amount
            for symbol, (units, amount) in self.open_by_symbol.items()
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

    def open(
        self,
        symbol: str,
        amount_usd: float,
        price: float,
        bar_at: datetime,
        *,
        max_open: int | None = None,
    ) -> PaperPosition:
        """Open a position; Conflict when `max_open` positions are open already."""
        now = datetime.now(UTC).isoformat()
        with self._connect() as con:
            # The write lock first, so two requests cannot both see room for one more.
            con.execute("begin immediate")
            if max_open is not None:
                (open_now,) = con.execute(
                    "select count(*) from positions where closed_at is null"
                ).fetchone()
                if open_now >= max_open:
                    raise Conflict(
                        f"{open_now} paper positions are open, the most allowed "
                        f"(BTCFS_API_MAX_OPEN_POSITIONS={max_open}): close one first",
                        key="amount_usd",
                    )
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

    def page(self, limit: int, offset: int = 0) -> list[PaperPosition]:
        """Positions in id order, `limit` of them from `offset`."""
        with self._connect() as con:
            rows = con.execute(
                "select * from positions order by id limit ? offset ?", (limit, offset)
            ).fetchall()
        return [_position(row) for row in rows]

    def totals(self) -> BookTotals:
        with self._connect() as con:
            rows = con.execute(
                "select symbol, closed_at is null as is_open, count(*) as n,"
                " sum(amount_usd) as amount_usd, sum(units) as units,"
                " sum(units * exit_price - amount_usd) as realised"
                " from positions group by symbol, closed_at is null"
            ).fetchall()
        open_rows = [row for row in rows if row["is_open"]]
        return BookTotals(
            count=sum(row["n"] for row in rows),
            open_count=sum(row["n"] for row in open_rows),
            open_by_symbol={r["symbol"]: (r["units"], r["amount_usd"]) for r in open_rows},
            realised_pnl_usd=sum(row["realised"] or 0.0 for row in rows if not row["is_open"]),
        )

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
