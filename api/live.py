"""What the API knows of `btcfs live` (pipeline/live_state.py, read per request: it is tiny)
and the one price a paper fill or mark uses: the open bar's quote of the right market when it
is the fresher, else the newest published 5m close, each labelled with its source and its age
on the exchange's clock (a 10x replay runs ahead of the wall: never compare it with the wall
clock). The API never calls an exchange."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from api.db import Reader
from api.services import latest_bar
from api.settings import ApiSettings
from pipeline.live_state import LiveState, Market, read_state

MARKETS: tuple[Market, ...] = ("spot", "perp")
PriceSource = Literal["open-bar", "published-close"]
#: How a price is labelled wherever it is shown.
LABELS: dict[str, str] = {
    "open-bar": "the still-open 1m bar's latest close (live, never landed)",
    "published-close": "the newest published 5m bar's close (not a live price)",
}
#: The published mart each market's closes come from.
PUBLISHED_BARS: dict[str, str] = {"spot": "bars_5m", "perp": "perp_bars_5m"}


@dataclass(frozen=True)
class Clock:
    """The time a request is answered at: the wall clock, and the exchange's clock as the
    live state extrapolates it when a live loop has run here (else the wall clock)."""

    wall: datetime
    state: LiveState | None

    @classmethod
    def read(cls, settings: ApiSettings) -> Clock:
        state = read_state(settings.live_state) if settings.live_state is not None else None
        return cls(datetime.now(UTC), state)

    @property
    def now(self) -> datetime:
        return self.state.exchange_now_at(self.wall) if self.state is not None else self.wall

    @property
    def name(self) -> str:
        return "exchange" if self.state is not None else "wall"

    def problem(self) -> str | None:
        """Why the live loop is behind or stopped (None: it is keeping up, or there is none)."""
        return self.state.problem(self.wall) if self.state is not None else None

    def age(self, at: datetime) -> float:
        """Seconds from `at` (an exchange time) to now on this clock."""
        return max(0.0, (self.now - at).total_seconds())


@dataclass(frozen=True)
class Price:
    """One symbol's price on one market now, where it came from and how old it is."""

    symbol: str
    market: str
    price: float
    source: PriceSource
    at: datetime  # the exchange time it was true: the quote's read, the bar's close
    open_time: datetime  # the bar it belongs to (open 1m bar, or published 5m bar)
    age_seconds: float  # on the clock's time (exchange when live)
    max_age_seconds: float
    clock: str

    @property
    def label(self) -> str:
        return LABELS[self.source]

    @property
    def is_stale(self) -> bool:
        return self.age_seconds > self.max_age_seconds

    def staleness(self) -> str:
        """Why this price is stale, in one sentence."""
        return (
            f"the {self.symbol} {self.market} price is {self.age_seconds:.0f} s old on the "
            f"{self.clock} clock ({self.label}, at {self.at.isoformat()}), older than "
            f"{self.max_age_seconds:g} s"
        )


def published_close(reader: Reader, symbol: str, market: str) -> dict[str, Any] | None:
    """The newest published 5m bar of `symbol` on `market` (memoised per generation)."""
    if market == "spot":
        return latest_bar(reader, symbol)
    table = PUBLISHED_BARS[market]
    key = ("latest_bar", symbol, market)
    memo = reader.generation.memo
    if key not in memo:
        sql = (
            "select open_time, available_at, cast(close as double) as close"  # noqa: S608
            f" from serve.{table} where symbol = ? order by open_time desc limit 1"
        )  # the table is one of ours (PUBLISHED_BARS), the symbol a bound parameter
        rows = reader.rows(sql, [symbol]) if reader.has(table) else []
        memo[key] = rows[0] if rows else None
    bar: dict[str, Any] | None = memo[key]
    return bar


def current_price(
    settings: ApiSettings, clock: Clock, reader: Reader | None, symbol: str, market: str
) -> Price | None:
    """The fresher of the open bar's quote (from the live state) and the newest published
    close of `symbol` on `market`; None when there is neither."""
    candidates: list[Price] = []
    state = clock.state
    quote = state.quote(symbol, market) if state is not None and market in MARKETS else None  # type: ignore[arg-type]
    if quote is not None:
        candidates.append(
            Price(symbol, market, quote.price, "open-bar", quote.at, quote.open_time,
                  clock.age(quote.at), settings.paper_max_quote_age_s, clock.name)
        )  # fmt: skip
    bar = published_close(reader, symbol, market) if reader is not None else None
    if bar is not None:
        candidates.append(
            Price(symbol, market, float(bar["close"]), "published-close", bar["available_at"],
                  bar["open_time"], clock.age(bar["available_at"]),
                  settings.paper_max_close_age_s, clock.name)
        )  # fmt: skip
    if not candidates:
        return None
    # the newer price wins; on a tie the live quote (it is the open bar's, never landed)
    return max(candidates, key=lambda p: (p.at, p.source == "open-bar"))
