"""Paper positions: `amount_usd` of notional, long or short, filled at a price the caller
is shown (the live quote, else the newest published close) moved against the trader by the
slippage, with the taker fee paid on each side; marked to the live price; closed. Kept in a
small SQLite file of their own (WAL, one connection per call) so they outlive restarts and
never touch the published warehouse. The table is migrated forward in place, keeping every
position: the columns a file lacks are added (the file is shared with the jobs' tables, so
no file-wide `user_version`)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.errors import Conflict

#: The first schema (long-only at the published close): new files start from it too, and
#: the columns below are added to it, so old and new files end the same.
_SCHEMA_V1 = """
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
#: Added in v2 (fees, slippage, shorts, the price's source and age), with the values a v1
#: position had: a long on spot at the published close, no costs.
_ADDED_V2 = (
    ("market", "text not null default 'spot' check (market in ('spot', 'perp'))"),
    ("side", "text not null default 'long' check (side in ('long', 'short'))"),
    ("fee_bps", "real not null default 0 check (fee_bps >= 0)"),
    ("slippage_bps", "real not null default 0 check (slippage_bps >= 0)"),
    ("entry_reference_price", "real"),
    ("entry_price_source", "text not null default 'published-close'"),
    ("entry_price_at", "text"),
    ("entry_price_age_s", "real"),
    ("entry_fee_usd", "real not null default 0"),
    ("exit_reference_price", "real"),
    ("exit_price_source", "text"),
    ("exit_price_at", "text"),
    ("exit_fee_usd", "real"),
    ("realised_pnl_usd", "real"),
    ("warnings", "text not null default '[]'"),
    ("client_order_id", "text"),
)
#: The published bar a v1 position filled at closed this long after its open time.
_V1_PRICE_BAR = timedelta(minutes=5)


@dataclass(frozen=True)
class Fill:
    """A price to fill at: the reference (quote or close), where it came from, when it was
    true on the exchange's clock and how old it was then."""

    reference_price: float
    source: str
    at: datetime
    age_s: float
    bar_at: datetime


@dataclass(frozen=True)
class Costs:
    fee_bps: float
    slippage_bps: float

    def fill_price(self, reference: float, buy: bool) -> float:
        """A buy fills above the reference, a sell below it."""
        slip = self.slippage_bps / 10_000.0
        return reference * (1.0 + slip) if buy else reference * (1.0 - slip)

    def fee(self, notional: float) -> float:
        return notional * self.fee_bps / 10_000.0


@dataclass(frozen=True)
class PaperPosition:
    id: int
    symbol: str
    market: str
    side: str
    amount_usd: float
    units: float
    entry_price: float
    entry_reference_price: float
    entry_price_source: str
    entry_price_at: datetime
    entry_price_age_s: float
    fee_bps: float
    slippage_bps: float
    entry_fee_usd: float
    opened_at: datetime
    closed_at: datetime | None
    exit_price: float | None
    exit_reference_price: float | None
    exit_price_source: str | None
    exit_price_at: datetime | None
    exit_fee_usd: float | None
    realised_pnl_usd: float | None
    warnings: tuple[str, ...]
    client_order_id: str | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "long" else -1.0

    @property
    def costs(self) -> Costs:
        return Costs(self.fee_bps, self.slippage_bps)

    def unrealised_pnl(self, mark: float) -> float:
        """P&L at `mark` (no exit costs), less the entry fee already paid."""
        return self.sign * (self.units * mark - self.amount_usd) - self.entry_fee_usd

    def pnl_if_closed(self, mark: float) -> float:
        """What closing at `mark` would realise: exit slippage and fee included."""
        exit_price = self.costs.fill_price(mark, buy=self.side == "short")
        proceeds = self.units * exit_price
        gross = self.sign * (proceeds - self.amount_usd)
        return gross - self.entry_fee_usd - self.costs.fee(proceeds)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _position(row: sqlite3.Row) -> PaperPosition:
    entry_bar_at = datetime.fromisoformat(row["entry_bar_at"])
    opened_at = datetime.fromisoformat(row["opened_at"])
    # a v1 position: the published bar's close, true when that bar closed
    entry_at = _time(row["entry_price_at"]) or entry_bar_at + _V1_PRICE_BAR
    age = row["entry_price_age_s"]
    exit_bar_at = _time(row["exit_bar_at"])
    exit_at = _time(row["exit_price_at"]) or (
        exit_bar_at + _V1_PRICE_BAR if exit_bar_at is not None else None
    )
    return PaperPosition(
        id=row["id"],
        symbol=row["symbol"],
        market=row["market"],
        side=row["side"],
        amount_usd=row["amount_usd"],
        units=row["units"],
        entry_price=row["entry_price"],
        entry_reference_price=row["entry_reference_price"] or row["entry_price"],
        entry_price_source=row["entry_price_source"],
        entry_price_at=entry_at,
        entry_price_age_s=age if age is not None else (opened_at - entry_at).total_seconds(),
        fee_bps=row["fee_bps"],
        slippage_bps=row["slippage_bps"],
        entry_fee_usd=row["entry_fee_usd"],
        opened_at=opened_at,
        closed_at=_time(row["closed_at"]),
        exit_price=row["exit_price"],
        exit_reference_price=row["exit_reference_price"] or row["exit_price"],
        exit_price_source=row["exit_price_source"]
        or ("published-close" if row["exit_price"] is not None else None),
        exit_price_at=exit_at,
        exit_fee_usd=row["exit_fee_usd"],
        realised_pnl_usd=row["realised_pnl_usd"],
        warnings=tuple(json.loads(row["warnings"] or "[]")),
        client_order_id=row["client_order_id"],
    )


@dataclass(frozen=True)
class OpenGroup:
    """Open positions of one symbol, market and side, summed."""

    units: float
    amount_usd: float
    entry_fees_usd: float


@dataclass(frozen=True)
class BookTotals:
    """Every position at once, for the totals of a paginated list: how many, what is open
    (per symbol, market and side) and the realised P&L and fees."""

    count: int
    open_count: int
    open_groups: dict[tuple[str, str, str], OpenGroup]
    realised_pnl_usd: float
    fees_usd: float

    @property
    def invested_usd(self) -> float:
        return sum(group.amount_usd for group in self.open_groups.values())

    @property
    def open_markets(self) -> list[tuple[str, str]]:
        return sorted({(symbol, market) for symbol, market, _side in self.open_groups})

    def unrealised_usd(self, marks: dict[tuple[str, str], float]) -> float:
        """Open positions at these prices, less their entry fees; a market without a price
        at cost (its entry fees only)."""
        total = 0.0
        for (symbol, market, side), group in self.open_groups.items():
            sign = 1.0 if side == "long" else -1.0
            mark = marks.get((symbol, market))
            gross = sign * (group.units * mark - group.amount_usd) if mark is not None else 0.0
            total += gross - group.entry_fees_usd
        return total


class OrderReplayed(Exception):
    """An open with a client_order_id seen before: the position it opened."""

    def __init__(self, position: PaperPosition) -> None:
        super().__init__(position.id)
        self.position = position


def replayed(
    before: PaperPosition, symbol: str, market: str, side: str, amount_usd: float
) -> Exception:
    """What an order whose client_order_id opened `before` is: the same order again
    (OrderReplayed), or another order reusing the id (Conflict)."""
    if (before.symbol, before.market, before.side, before.amount_usd) != (
        symbol, market, side, amount_usd,
    ):  # fmt: skip
        return Conflict(
            f"client_order_id {before.client_order_id!r} opened position {before.id}"
            f" ({before.side} {before.amount_usd:g} USD of {before.symbol} {before.market}),"
            " not this order",
            key="client_order_id",
        )
    return OrderReplayed(before)


class PaperBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = threading.Lock()
        self._initialised = False

    def _migrate(self, con: sqlite3.Connection) -> None:
        """v1 -> v2 in one transaction: add the missing columns (old rows get their v1
        meaning: spot, long, no costs), the realised P&L of closed v1 positions, the
        client_order_id index. Safe to run again and from two processes at once."""
        con.execute("begin immediate")
        try:
            con.execute(_SCHEMA_V1)
            have = {row[1] for row in con.execute("pragma table_info(positions)")}
            for name, declaration in _ADDED_V2:
                if name not in have:  # names and declarations are ours, above
                    con.execute(f"alter table positions add column {name} {declaration}")
            con.execute(
                "update positions set realised_pnl_usd = units * exit_price - amount_usd,"
                " exit_fee_usd = 0 where closed_at is not null and realised_pnl_usd is null"
            )
            con.execute(
                "create unique index if not exists positions_client_order_id"
                " on positions (client_order_id) where client_order_id is not null"
            )
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._initialised:
            with self._ready:
                if not self._initialised:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with closing(sqlite3.connect(self.path, timeout=10)) as con:
                        con.isolation_level = None  # explicit transactions
                        con.execute("pragma journal_mode = wal")
                        self._migrate(con)
                    self._initialised = True
        with closing(sqlite3.connect(self.path, timeout=10)) as con:
            con.row_factory = sqlite3.Row
            con.execute("pragma synchronous = full")
            with con:  # one transaction: committed on success, rolled back on error
                yield con

    def open(
        self,
        symbol: str,
        market: str,
        side: str,
        amount_usd: float,
        fill: Fill,
        costs: Costs,
        *,
        warnings: list[str] | None = None,
        client_order_id: str | None = None,
        max_open: int | None = None,
    ) -> PaperPosition:
        """Open a position; Conflict when `max_open` positions are open already, or when
        `client_order_id` named another order; OrderReplayed when it named this one."""
        now = datetime.now(UTC).isoformat()
        price = costs.fill_price(fill.reference_price, buy=side == "long")
        with self._connect() as con:
            # The write lock first, so two requests cannot both see room for one more.
            con.execute("begin immediate")
            if client_order_id is not None:
                row = con.execute(
                    "select * from positions where client_order_id = ?", (client_order_id,)
                ).fetchone()
                if row is not None:
                    raise replayed(_position(row), symbol, market, side, amount_usd)
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
                "insert into positions (symbol, market, side, amount_usd, units, entry_price,"
                " entry_reference_price, entry_price_source, entry_price_at, entry_price_age_s,"
                " entry_bar_at, fee_bps, slippage_bps, entry_fee_usd, opened_at, warnings,"
                " client_order_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    symbol, market, side, amount_usd, amount_usd / price, price,
                    fill.reference_price, fill.source, fill.at.isoformat(), fill.age_s,
                    fill.bar_at.isoformat(), costs.fee_bps, costs.slippage_bps,
                    costs.fee(amount_usd), now, json.dumps(warnings or []), client_order_id,
                ),
            )  # fmt: skip
            row = con.execute("select * from positions where id = ?", (cursor.lastrowid,))
            return _position(row.fetchone())

    def by_client_order_id(self, client_order_id: str) -> PaperPosition | None:
        with self._connect() as con:
            row = con.execute(
                "select * from positions where client_order_id = ?", (client_order_id,)
            ).fetchone()
        return _position(row) if row else None

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
                "select symbol, market, side, closed_at is null as is_open, count(*) as n,"
                " sum(amount_usd) as amount_usd, sum(units) as units,"
                " sum(entry_fee_usd) as entry_fees, sum(coalesce(exit_fee_usd, 0)) as exit_fees,"
                " sum(realised_pnl_usd) as realised"
                " from positions group by symbol, market, side, closed_at is null"
            ).fetchall()
        open_rows = [row for row in rows if row["is_open"]]
        return BookTotals(
            count=sum(row["n"] for row in rows),
            open_count=sum(row["n"] for row in open_rows),
            open_groups={
                (r["symbol"], r["market"], r["side"]): OpenGroup(
                    r["units"], r["amount_usd"], r["entry_fees"]
                )
                for r in open_rows
            },
            realised_pnl_usd=sum(row["realised"] or 0.0 for row in rows if not row["is_open"]),
            fees_usd=sum(row["entry_fees"] + row["exit_fees"] for row in rows),
        )

    def close(
        self, position_id: int, fill: Fill, *, warnings: list[str] | None = None
    ) -> PaperPosition | None:
        """Close at `fill` (slippage against the trader, the fee on the exit notional);
        None when the position is unknown or already closed."""
        now = datetime.now(UTC).isoformat()
        with self._connect() as con:
            con.execute("begin immediate")
            row = con.execute(
                "select * from positions where id = ? and closed_at is null", (position_id,)
            ).fetchone()
            if row is None:
                return None
            position = _position(row)
            price = position.costs.fill_price(fill.reference_price, buy=position.side == "short")
            proceeds = position.units * price
            exit_fee = position.costs.fee(proceeds)
            realised = (
                position.sign * (proceeds - position.amount_usd) - position.entry_fee_usd - exit_fee
            )
            con.execute(
                "update positions set closed_at = ?, exit_price = ?, exit_bar_at = ?,"
                " exit_reference_price = ?, exit_price_source = ?, exit_price_at = ?,"
                " exit_fee_usd = ?, realised_pnl_usd = ?, warnings = ?"
                " where id = ? and closed_at is null",
                (
                    now, price, fill.bar_at.isoformat(), fill.reference_price, fill.source,
                    fill.at.isoformat(), exit_fee, realised,
                    json.dumps([*position.warnings, *(warnings or [])]), position_id,
                ),
            )  # fmt: skip
            row = con.execute("select * from positions where id = ?", (position_id,)).fetchone()
        return _position(row)
