"""The data.binance.vision archive: its paths, CSV layouts, zips and .CHECKSUM files.

Paths (under the server root, or under an export folder) mirror the real bucket:
`data/spot/{daily,monthly}/klines/SYMBOL/INTERVAL/SYMBOL-INTERVAL-DATE.zip`,
`data/futures/um/{daily,monthly}/{klines,markPriceKlines,premiumIndexKlines}/...` likewise,
`data/futures/um/monthly/fundingRate/SYMBOL/SYMBOL-fundingRate-YYYY-MM.zip` and
`data/futures/um/daily/metrics/SYMBOL/SYMBOL-metrics-YYYY-MM-DD.zip`, each with a sibling
`.zip.CHECKSUM` holding `"<sha256>  <zip name>\\n"`. A daily file exists once its day is over
and has data; a monthly one once its month is over and every day of it has data. Zips are
deterministic (fixed entry timestamps), so checksums are stable across runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from replay.clock import US_PER_DAY, US_PER_MS, day_start_us, us_to_datetime
from replay.fixed import format_fixed_array
from replay.market import FORMATS, Bars, Kind
from replay.query import MarketView

#: A file at the root of an exported archive whose files come from a synthetic market;
#: the archive loader refuses to mix such an archive with real data.
SYNTHETIC_MARKER = "BTCFS_SYNTHETIC"
ARCHIVE_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
FUTURES_KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,"
    "count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,"
    "count_long_short_ratio,sum_taker_long_short_vol_ratio"
)
# Binance's spot archive switched its timestamps to microseconds from this day on.
SPOT_MICROS_FROM = date(2025, 1, 1)

# dataset name (CLI) -> (market prefix, folder name, kline kind or None)
DATASETS: dict[str, tuple[str, str, Kind | None]] = {
    "spot-klines": ("spot", "klines", "spot"),
    "futures-klines": ("futures/um", "klines", "perp"),
    "mark-price-klines": ("futures/um", "markPriceKlines", "mark"),
    "premium-index-klines": ("futures/um", "premiumIndexKlines", "premium"),
    "funding-rate": ("futures/um", "fundingRate", None),
    "metrics": ("futures/um", "metrics", None),
}
_BY_FOLDER = {(prefix, folder): name for name, (prefix, folder, _) in DATASETS.items()}
_GRANULARITIES = {"funding-rate": ("monthly",), "metrics": ("daily",)}

_SYMBOL = r"[A-Z0-9]{2,20}"
_DATE = r"\d{4}-\d{2}(?:-\d{2})?"
_KLINE_PATH = re.compile(
    rf"^data/(spot|futures/um)/(daily|monthly)/(klines|markPriceKlines|premiumIndexKlines)/"
    rf"({_SYMBOL})/([0-9]{{1,2}}[mhd])/({_SYMBOL})-([0-9]{{1,2}}[mhd])-({_DATE})\.zip(\.CHECKSUM)?$"
)
_OTHER_PATH = re.compile(
    rf"^data/futures/um/(daily|monthly)/(fundingRate|metrics)/({_SYMBOL})/"
    rf"({_SYMBOL})-(fundingRate|metrics)-({_DATE})\.zip(\.CHECKSUM)?$"
)


@dataclass(frozen=True)
class ArchiveFile:
    """One zip of the archive (its CHECKSUM sits next to it)."""

    dataset: str
    symbol: str
    granularity: str  # daily | monthly
    period: date  # the day, or the first day of the month
    interval: str | None = None

    @property
    def stem(self) -> str:
        when = (
            self.period.isoformat() if self.granularity == "daily" else self.period.isoformat()[:7]
        )
        middle = self.interval if self.interval else DATASETS[self.dataset][1]
        return f"{self.symbol}-{middle}-{when}"

    @property
    def zip_name(self) -> str:
        return f"{self.stem}.zip"

    @property
    def path(self) -> str:
        """Path relative to the archive root, e.g. data/spot/daily/klines/BTCUSDT/1m/…zip."""
        prefix, folder, _ = DATASETS[self.dataset]
        parts = ["data", prefix, self.granularity, folder, self.symbol]
        if self.interval:
            parts.append(self.interval)
        return "/".join([*parts, self.zip_name])

    @property
    def start_us(self) -> int:
        return day_start_us(self.period)

    @property
    def stop_us(self) -> int:
        if self.granularity == "daily":
            return self.start_us + US_PER_DAY
        year, month = self.period.year, self.period.month
        following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return day_start_us(following)


def parse_path(path: str) -> tuple[ArchiveFile, bool] | None:
    """URL path -> (file, is_checksum), or None if it is not an archive file name we serve."""
    path = path.lstrip("/")
    if match := _KLINE_PATH.match(path):
        prefix, granularity, folder, symbol, interval, symbol2, interval2, when, checksum = (
            match.groups()
        )
        if symbol != symbol2 or interval != interval2 or interval not in ARCHIVE_INTERVALS:
            return None
        dataset = _BY_FOLDER.get((prefix, folder))
    elif match := _OTHER_PATH.match(path):
        granularity, folder, symbol, symbol2, folder2, when, checksum = match.groups()
        if symbol != symbol2 or folder != folder2:
            return None
        dataset, interval = _BY_FOLDER.get(("futures/um", folder)), None
    else:
        return None
    if dataset is None or granularity not in _GRANULARITIES.get(dataset, ("daily", "monthly")):
        return None
    period = _parse_period(when, granularity)
    if period is None:
        return None
    return ArchiveFile(dataset, symbol, granularity, period, interval), checksum is not None


def _parse_period(text: str, granularity: str) -> date | None:
    try:
        if granularity == "daily" and len(text) == 10:
            return date.fromisoformat(text)
        if granularity == "monthly" and len(text) == 7:
            return date.fromisoformat(f"{text}-01")
    except ValueError:
        return None
    return None


def make_zip(member: str, data: bytes) -> bytes:
    """A one-file zip whose bytes depend only on the name and content."""
    info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, data, compresslevel=1)  # 4x faster than 6, 15 % larger
    return buffer.getvalue()


def checksum_text(zip_bytes: bytes, zip_name: str) -> bytes:
    return f"{hashlib.sha256(zip_bytes).hexdigest()}  {zip_name}\n".encode()


class Archive:
    """Builds archive files from a market on demand and keeps recent zips in memory."""

    def __init__(self, view: MarketView, cache_bytes: int = 512 * 1024 * 1024) -> None:
        self.view = view
        self.market = view.market
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._days: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    def get(self, path: str, now_us: int) -> tuple[bytes, str] | None:
        """Bytes and content type of an archive path, or None (a 404)."""
        parsed = parse_path(path)
        if parsed is None:
            return None
        file, is_checksum = parsed
        data = self.zip_bytes(file, now_us)
        if data is None:
            return None
        if is_checksum:
            return checksum_text(data, file.zip_name), "text/plain"
        return data, "application/zip"

    def zip_bytes(self, file: ArchiveFile, now_us: int, *, cache: bool = True) -> bytes | None:
        """The zip of an existing file (None if it does not exist at now_us)."""
        with self._lock:
            cached = self._cache.get(file.path)
            if cached is not None:
                self._cache.move_to_end(file.path)
                return cached
        if not self.exists(file, now_us):
            return None
        csv = self.csv_bytes(file, now_us)
        data = make_zip(f"{file.stem}.csv", csv)
        if not cache:
            return data
        with self._lock:
            if file.path not in self._cache:
                self._cache[file.path] = data
                self._cached += len(data)
            while self._cached > self.cache_bytes and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._cached -= len(evicted)
        return data

    # -- which files exist -------------------------------------------------------------

    def data_days(self, dataset: str, symbol: str) -> np.ndarray:
        """Sorted UTC day numbers (days since the epoch) on which the dataset has rows."""
        key = (dataset, symbol)
        with self._lock:
            cached = self._days.get(key)
        if cached is not None:
            return cached
        kind = DATASETS[dataset][2]
        if kind is not None:
            base = self.view.kline_base(kind, symbol, "1m")
            times = base.open_time if base is not None else np.zeros(0, dtype=np.int64)
        elif dataset == "funding-rate":
            times = self.market.funding(symbol).time
        else:
            times = self.market.metrics(symbol).open_interest.time
        days = np.unique(times // US_PER_DAY)
        with self._lock:
            self._days[key] = days
        return days

    def exists(self, file: ArchiveFile, now_us: int) -> bool:
        if file.symbol not in self.market.symbols or file.stop_us > now_us:
            return False
        kind = DATASETS[file.dataset][2]
        if kind is not None:
            if kind not in self.market.archived_kinds or file.interval is None:
                return False
            if self.view.kline_base(kind, file.symbol, file.interval) is None:
                return False
        days = self.data_days(file.dataset, file.symbol)
        first, stop = file.start_us // US_PER_DAY, file.stop_us // US_PER_DAY
        lo, hi = np.searchsorted(days, [first, stop])
        return bool(hi - lo == stop - first) if file.granularity == "monthly" else bool(hi > lo)

    def files(
        self,
        dataset: str,
        symbol: str,
        now_us: int,
        intervals: tuple[str, ...] = ("1m",),
        granularities: tuple[str, ...] = ("daily", "monthly"),
    ) -> Iterator[ArchiveFile]:
        """Every file of a dataset that exists at now_us (for exporting)."""
        if symbol not in self.market.symbols:
            return
        kline = DATASETS[dataset][2] is not None
        allowed = _GRANULARITIES.get(dataset, ("daily", "monthly"))
        days = [us_to_datetime(int(d) * US_PER_DAY).date() for d in self.data_days(dataset, symbol)]
        months = sorted({d.replace(day=1) for d in days})
        for interval in intervals if kline else (None,):
            for granularity in granularities:
                if granularity not in allowed:
                    continue
                for period in days if granularity == "daily" else months:
                    file = ArchiveFile(dataset, symbol, granularity, period, interval)
                    if self.exists(file, now_us):
                        yield file

    # -- file contents -----------------------------------------------------------------

    def csv_bytes(self, file: ArchiveFile, now_us: int) -> bytes:
        kind = DATASETS[file.dataset][2]
        if kind is not None:
            assert file.interval is not None
            return self._kline_csv(file, kind, file.interval, now_us)
        if file.dataset == "funding-rate":
            return self._funding_csv(file)
        return self._metrics_csv(file)

    def _kline_csv(self, file: ArchiveFile, kind: Kind, interval: str, now_us: int) -> bytes:
        if kind == "spot" and interval == "1m":
            raw = self._raw_spot(file)
            if raw is not None:
                return raw
        bars = self.view.klines_between(
            kind, file.symbol, interval, file.start_us, file.stop_us, now_us
        )
        micros = kind == "spot" and file.period >= SPOT_MICROS_FROM
        body = kline_csv(bars, kind, time_divisor=1 if micros else US_PER_MS)
        if kind == "spot":
            return body
        return (FUTURES_KLINE_HEADER + "\n").encode() + body

    def _raw_spot(self, file: ArchiveFile) -> bytes | None:
        """Recorded daily files byte for byte; a month is its days concatenated."""
        if file.granularity == "daily":
            return self.market.raw_spot_day(file.symbol, file.period)
        parts = []
        day = file.start_us
        while day < file.stop_us:
            raw = self.market.raw_spot_day(file.symbol, us_to_datetime(day).date())
            if raw is None:
                return None
            parts.append(raw)
            day += US_PER_DAY
        return b"".join(parts)

    def _funding_csv(self, file: ArchiveFile) -> bytes:
        funding = self.market.funding(file.symbol)
        lo, hi = np.searchsorted(funding.time, [file.start_us, file.stop_us])
        if funding.rate_text is not None:
            rates = list(funding.rate_text[lo:hi])
        else:
            rates = format_fixed_array(funding.rate[lo:hi], 8).to_pylist()
        lines = [FUNDING_HEADER]
        for time_us, hours, rate in zip(
            (funding.time[lo:hi] // US_PER_MS).tolist(),
            funding.interval_hours[lo:hi].tolist(),
            rates,
            strict=True,
        ):
            lines.append(f"{time_us},{hours},{rate}")
        return ("\n".join(lines) + "\n").encode()

    def _metrics_csv(self, file: ArchiveFile) -> bytes:
        metrics = self.market.metrics(file.symbol)
        oi = metrics.open_interest
        lo, hi = (int(i) for i in np.searchsorted(oi.time, [file.start_us, file.stop_us]))
        count = hi - lo
        stamps = np.datetime_as_string(oi.time[lo:hi].astype("datetime64[us]"), unit="s")
        columns: dict[str, pa.Array] = {
            "create_time": pa.array(np.char.replace(stamps, "T", " ").tolist(), pa.string()),
            "symbol": pa.array([file.symbol] * count, pa.string()),
            "sum_open_interest": format_fixed_array(oi.sum_open_interest[lo:hi], 8),
            "sum_open_interest_value": format_fixed_array(oi.sum_open_interest_value[lo:hi], 8),
        }
        for name in (
            "count_toptrader_long_short_ratio",
            "sum_toptrader_long_short_ratio",
            "count_long_short_ratio",
            "sum_taker_long_short_vol_ratio",
        ):
            values = getattr(metrics, name)
            columns[name] = (
                format_fixed_array(values[lo:hi], 8)
                if values is not None
                else pa.array([""] * count, pa.string())
            )
        return (METRICS_HEADER + "\n").encode() + _write_csv(columns)


def kline_csv(bars: Bars, kind: Kind, *, time_divisor: int) -> bytes:
    """Headerless kline CSV rows in the archive's 12-column layout."""
    fmt = FORMATS[kind]
    count = len(bars)
    zeros = pa.array(["0"] * count, pa.string())

    def fixed(values: np.ndarray, decimals: int | None) -> pa.Array:
        if decimals is None:
            return zeros
        return format_fixed_array(np.asarray(values, dtype=np.int64), decimals)

    taker_volume = None if bars.missing_taker else fmt.volume_decimals
    taker_quote = None if bars.missing_taker else fmt.quote_decimals
    columns = {
        "open_time": pa.array(bars.open_time // time_divisor).cast(pa.string()),
        "open": fixed(bars.open, fmt.price_decimals),
        "high": fixed(bars.high, fmt.price_decimals),
        "low": fixed(bars.low, fmt.price_decimals),
        "close": fixed(bars.close, fmt.price_decimals),
        "volume": fixed(bars.volume, fmt.volume_decimals),
        "close_time": pa.array(bars.close_time // time_divisor).cast(pa.string()),
        "quote_volume": fixed(bars.quote_volume, fmt.quote_decimals),
        "count": pa.array(np.asarray(bars.trades, dtype=np.int64)).cast(pa.string()),
        "taker_buy_volume": fixed(bars.taker_base, taker_volume),
        "taker_buy_quote_volume": fixed(bars.taker_quote, taker_quote),
        "ignore": zeros,
    }
    return _write_csv(columns)


def _write_csv(columns: dict[str, pa.Array]) -> bytes:
    if not len(next(iter(columns.values()))):
        return b""
    sink = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(pa.table(columns), sink, options)
    return sink.getvalue()


def export(
    archive: Archive, out: Path, files: list[ArchiveFile], now_us: int, *, workers: int = 0
) -> tuple[int, int]:
    """Write files (and their CHECKSUMs) under `out`, mirroring the URL paths: (count, bytes).

    Files are built on a thread pool: zlib and the Arrow kernels release the GIL.
    """

    def write(file: ArchiveFile) -> int:
        data = archive.zip_bytes(file, now_us, cache=False)
        if data is None:
            return -1
        target = out / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        checksum = target.with_name(f"{file.zip_name}.CHECKSUM")
        checksum.write_bytes(checksum_text(data, file.zip_name))
        return len(data)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        sizes = [size for size in pool.map(write, files) if size >= 0]
    if archive.market.replay_kind == "synthetic":
        # A loader reading this folder marks what it lands as synthetic (see LocalArchive).
        out.mkdir(parents=True, exist_ok=True)
        marker = out / SYNTHETIC_MARKER
        marker.write_text("generated by the btcfs replay server's synthetic market\n")
    return len(sizes), sum(sizes)
