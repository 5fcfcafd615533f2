"""Recorded Binance data (the layout of ../shared/data/binance) as a replay market.

What is served, exactly as recorded and nothing invented:
- spot 1m klines from `spot/klines/1m/SYMBOL-1m-YYYY-MM-DD.csv.gz` (archive daily CSVs; µs
  timestamps from 2025, ms before, both kept, the archive day served byte for byte); other
  spot intervals are resampled from them, and missing minutes stay missing;
- perpetual klines from `futures/um/SYMBOL-perp-{1h,4h,1d}-*.csv`, at exactly those
  intervals and over REST only. Those recordings have no taker columns, so REST serves both
  taker fields as "0"; they are not turned into archive files;
- funding from `futures/um/SYMBOL-funding-*.csv` in either recorded layout (archive
  `funding_time,funding_interval_hours,funding_rate` or REST `timestamp,symbol,funding_rate`);
  no mark price was recorded, so `markPrice` is "" (as Binance prints it for rows it lacks);
- open interest from `futures/um/SYMBOL-oi-{5m,4h,1d}-*.csv`; the archive `metrics` files
  carry the 5m rows with the never-recorded ratio columns left empty.
There are no recorded mark-price or premium-index klines: those endpoints answer `[]`.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from replay.clock import US_PER_MS
from replay.fixed import parse_fixed_array
from replay.market import Bars, Funding, Kind, MarketData, Metrics, OpenInterest

SPOT_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trades", "taker_base", "taker_quote", "ignore",
)  # fmt: skip
_MICROS_THRESHOLD = 10**14
_SPOT_FILE = re.compile(r"^([A-Z0-9]+)-1m-(\d{4}-\d{2}-\d{2})\.csv\.gz$")
_PERP_FILE = re.compile(r"^([A-Z0-9]+)-perp-(1h|4h|1d)-.*\.csv$")
_FUNDING_FILE = re.compile(r"^([A-Z0-9]+)-funding-.*\.csv$")
_OI_FILE = re.compile(r"^([A-Z0-9]+)-oi-(5m|15m|30m|1h|2h|4h|6h|12h|1d)-.*\.csv$")


class RealDataError(ValueError):
    """The data folder is missing or does not have the recorded layout."""


def to_us(values: np.ndarray) -> np.ndarray:
    """Epoch ms or µs (decided per value) -> µs."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= _MICROS_THRESHOLD, values, values * US_PER_MS)


def close_to_us(values: np.ndarray) -> np.ndarray:
    """A close time in ms means the last µs of that ms (…59999 ms -> …59999999 µs)."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= _MICROS_THRESHOLD, values, values * US_PER_MS + (US_PER_MS - 1))


def _read_csv(path: Path, names: tuple[str, ...] | None = None) -> pa.Table:
    """Every column as text: numbers are parsed exactly by parse_fixed_array afterwards."""
    skip = 0
    if names is None:
        with path.open("rb") as stream:
            names = tuple(stream.readline().decode().strip().split(","))
        skip = 1
    read = pacsv.ReadOptions(column_names=list(names), skip_rows=skip)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=False
    )
    return pacsv.read_csv(path, read_options=read, convert_options=convert)


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).cast(pa.int64()).to_numpy(), dtype=np.int64)


class RealDataMarket(MarketData):
    """Market backed by recorded files; see the module docstring for what each serves."""

    archived_kinds: frozenset[Kind] = frozenset({"spot"})

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        spot_dir = self.root / "spot" / "klines" / "1m"
        futures_dir = self.root / "futures" / "um"
        if not spot_dir.is_dir() and not futures_dir.is_dir():
            raise RealDataError(
                f"{self.root} has neither spot/klines/1m/ nor futures/um/: "
                "point --data at the folder that holds Binance's recorded files"
            )
        self._spot_days: dict[str, dict[date, Path]] = {}
        self._spot: dict[str, Bars] = {}
        self._perp: dict[str, dict[str, Bars]] = {}
        self._funding: dict[str, Funding] = {}
        self._oi: dict[str, dict[str, OpenInterest]] = {}
        if spot_dir.is_dir():
            self._load_spot(spot_dir)
        if futures_dir.is_dir():
            self._load_futures(futures_dir)
        symbols = set(self._spot) | set(self._perp) | set(self._funding) | set(self._oi)
        if not symbols:
            raise RealDataError(f"no recorded Binance files found under {self.root}")
        self.symbols = tuple(sorted(symbols))

    def describe(self) -> str:
        return f"recorded data from {self.root} symbols={','.join(self.symbols)}"

    def _load_spot(self, folder: Path) -> None:
        files: dict[str, list[tuple[date, Path]]] = {}
        for path in sorted(folder.iterdir()):
            match = _SPOT_FILE.match(path.name)
            if match:
                day = date.fromisoformat(match.group(2))
                files.setdefault(match.group(1), []).append((day, path))
        for symbol, days in files.items():
            self._spot_days[symbol] = dict(days)
            tables = [_read_csv(path, SPOT_COLUMNS) for _, path in days]
            table = pa.concat_tables(tables)
            open_time = to_us(_ints(table, "open_time"))
            order = np.argsort(open_time, kind="stable")
            table = table.take(pa.array(order))

            def fixed(name: str, table: pa.Table = table) -> np.ndarray:
                return parse_fixed_array(table.column(name))

            self._spot[symbol] = Bars(
                "1m",
                open_time=open_time[order],
                close_time=close_to_us(_ints(table, "close_time")),
                open=fixed("open"),
                high=fixed("high"),
                low=fixed("low"),
                close=fixed("close"),
                volume=fixed("volume"),
                quote_volume=fixed("quote_volume"),
                trades=_ints(table, "trades"),
                taker_base=fixed("taker_base"),
                taker_quote=fixed("taker_quote"),
            )

    def _load_futures(self, folder: Path) -> None:
        funding_parts: dict[str, list[pa.Table]] = {}
        for path in sorted(folder.iterdir()):
            if match := _PERP_FILE.match(path.name):
                table = _read_csv(path)
                self._perp.setdefault(match.group(1), {})[match.group(2)] = _perp_bars(
                    match.group(2), table
                )
            elif match := _FUNDING_FILE.match(path.name):
                funding_parts.setdefault(match.group(1), []).append(_read_csv(path))
            elif match := _OI_FILE.match(path.name):
                table = _read_csv(path)
                self._oi.setdefault(match.group(1), {})[match.group(2)] = _open_interest(table)
        for symbol, tables in funding_parts.items():
            self._funding[symbol] = _funding(tables)

    def native_klines(self, kind: Kind, symbol: str) -> Mapping[str, Bars]:
        if kind == "spot" and symbol in self._spot:
            return {"1m": self._spot[symbol]}
        if kind == "perp":
            return self._perp.get(symbol, {})
        return {}

    def funding(self, symbol: str) -> Funding:
        return self._funding.get(symbol, Funding.empty())

    def open_interest(self, symbol: str) -> Mapping[str, OpenInterest]:
        return self._oi.get(symbol, {})

    def metrics(self, symbol: str) -> Metrics:
        return Metrics(self._oi.get(symbol, {}).get("5m", OpenInterest.empty()))

    def raw_spot_day(self, symbol: str, day: date) -> bytes | None:
        path = self._spot_days.get(symbol, {}).get(day)
        return gzip.decompress(path.read_bytes()) if path else None

    def spot_days(self, symbol: str) -> list[date]:
        return sorted(self._spot_days.get(symbol, {}))


def _perp_bars(interval: str, table: pa.Table) -> Bars:
    """9-column recorded perp klines; the missing taker fields are zero."""
    open_time = to_us(_ints(table, "timestamp"))
    zero = np.zeros(len(open_time), dtype=np.int64)
    return Bars(
        interval,
        open_time=open_time,
        close_time=close_to_us(_ints(table, "close_time")),
        open=parse_fixed_array(table.column("open")),
        high=parse_fixed_array(table.column("high")),
        low=parse_fixed_array(table.column("low")),
        close=parse_fixed_array(table.column("close")),
        volume=parse_fixed_array(table.column("volume")),
        quote_volume=parse_fixed_array(table.column("quote_volume")),
        trades=_ints(table, "trades"),
        taker_base=zero,
        taker_quote=zero,
        missing_taker=True,
    )


def _funding(tables: list[pa.Table]) -> Funding:
    times: list[np.ndarray] = []
    rates: list[str] = []
    hours: list[np.ndarray] = []
    for table in tables:
        names = table.column_names
        time_column = "funding_time" if "funding_time" in names else "timestamp"
        times.append(to_us(_ints(table, time_column)))
        rates.extend(table.column("funding_rate").to_pylist())
        if "funding_interval_hours" in names:
            hours.append(_ints(table, "funding_interval_hours"))
        else:
            hours.append(np.full(table.num_rows, 8, dtype=np.int64))
    time = np.concatenate(times)
    order = np.argsort(time, kind="stable")
    time = time[order]
    keep = np.r_[True, time[1:] != time[:-1]]
    texts = [rates[i] for i in order[keep].tolist()]
    zero = np.zeros(int(keep.sum()), dtype=np.int64)
    return Funding(
        time=time[keep],
        rate=parse_fixed_array(texts),
        mark_price=zero,
        has_mark_price=np.zeros(len(zero), dtype=bool),
        interval_hours=np.concatenate(hours)[order][keep],
        rate_text=tuple(texts),
    )


def _open_interest(table: pa.Table) -> OpenInterest:
    names = table.column_names
    oi = "sumOpenInterest" if "sumOpenInterest" in names else "sum_open_interest"
    value = "sumOpenInterestValue" if "sumOpenInterestValue" in names else "sum_open_interest_value"
    time = to_us(_ints(table, "timestamp"))
    order = np.argsort(time, kind="stable")
    return OpenInterest(
        time[order],
        parse_fixed_array(table.column(oi))[order],
        parse_fixed_array(table.column(value))[order],
    )
