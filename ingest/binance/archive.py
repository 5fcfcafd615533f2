"""Binance's public-data archive (data.binance.vision layout) from a base URL or a local folder.

Every file is verified against its published `.CHECKSUM` (sha256) before it is parsed, and
kept as received under the raw folder.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from ingest.binance.endpoints import ARCHIVE_KINDS
from ingest.binance.parse import Parsed, klines_from_csv_bytes, parse_funding, parse_open_interest
from ingest.errors import ChecksumMismatch, ConfigError, MalformedResponse, NotFound
from ingest.timeutil import Interval

# A file at the root of an exported archive whose files come from a synthetic market.
SYNTHETIC_MARKER = "BTCFS_SYNTHETIC"


class ArchiveSource(Protocol):
    """Where archive files come from: `fetch` returns bytes or raises NotFound."""

    location: str

    def fetch(self, relative_path: str) -> bytes: ...


class LocalArchive:
    """A folder with the archive's layout (e.g. made by `btcfs replay export-archive`)."""

    def __init__(self, root: Path):
        if not root.is_dir():
            raise ConfigError(f"archive folder {root} does not exist")
        self.root = root.resolve()
        self.location = str(self.root)
        # `btcfs replay export-archive --synthetic` leaves this marker beside the files.
        self.is_synthetic = (self.root / SYNTHETIC_MARKER).is_file()

    def fetch(self, relative_path: str) -> bytes:
        path = (self.root / relative_path).resolve()
        if not path.is_relative_to(self.root):
            raise ConfigError(f"archive path escapes the archive folder: {relative_path}")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"not in the archive: {path}", status=404, url=str(path)) from None


class HttpArchive:
    """The archive behind a base URL (data.binance.vision or the replay server)."""

    def __init__(self, client: object):
        from ingest._client import HttpClient

        assert isinstance(client, HttpClient)
        self.client = client
        self.location = str(client.base_url)

    def fetch(self, relative_path: str) -> bytes:
        return self.client.get("/" + relative_path).body


def daily_path(dataset: str, symbol: str, interval: Interval | str | None, day: date) -> str:
    """The archive's path of a day's file (`interval` as Binance spells it in the path)."""
    return _path(dataset, symbol, interval, "daily", day.isoformat())


def monthly_path(dataset: str, symbol: str, interval: Interval | str | None, month: date) -> str:
    return _path(dataset, symbol, interval, "monthly", month.strftime("%Y-%m"))


def _path(
    dataset: str, symbol: str, interval: Interval | str | None, period: str, stamp: str
) -> str:
    market, kind = ARCHIVE_KINDS[dataset]
    if kind in ("fundingRate", "metrics"):
        return f"data/{market}/{period}/{kind}/{symbol}/{symbol}-{kind}-{stamp}.zip"
    return f"data/{market}/{period}/{kind}/{symbol}/{interval}/{symbol}-{interval}-{stamp}.zip"


def fetch_verified(source: ArchiveSource, relative_path: str) -> bytes:
    """The zip's bytes, after its sha256 matched the published `.CHECKSUM`."""
    payload = source.fetch(relative_path)
    checksum_text = source.fetch(relative_path + ".CHECKSUM").decode("ascii", errors="replace")
    expected = checksum_text.split()[0].lower() if checksum_text.split() else ""
    actual = hashlib.sha256(payload).hexdigest()
    if expected != actual:
        raise ChecksumMismatch(
            f"{source.location}/{relative_path}: sha256 {actual} does not match the published "
            f"CHECKSUM {expected or '(empty)'}; the file was not used"
        )
    return payload


def unzip_single_csv(payload: bytes, name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = [m for m in archive.namelist() if m.endswith(".csv")]
            if len(members) != 1:
                raise MalformedResponse(f"{name}: expected one CSV in the zip, found {members}")
            return archive.read(members[0])
    except zipfile.BadZipFile as exc:
        raise MalformedResponse(f"{name}: not a zip file ({exc})") from exc


def _has_header(csv_bytes: bytes) -> bool:
    """Spot kline files have no header; futures files have one since ~2022: sniff."""
    # Header names start with a letter (open_time, calc_time, create_time); a data row with a
    # digit. Anything else is neither and must not be skipped as a header.
    first = csv_bytes.lstrip()[:1]
    return first.isalpha()


def _csv_records(csv_bytes: bytes) -> tuple[list[str], list[list[str]]]:
    lines = csv_bytes.decode("utf-8", errors="replace").splitlines()
    lines = [line for line in lines if line.strip()]
    if not lines:
        return [], []
    header = [h.strip() for h in lines[0].split(",")] if _has_header(csv_bytes) else []
    body = lines[1:] if header else lines
    return header, [line.split(",") for line in body]


def parse_archive_csv(
    dataset: str,
    csv_bytes: bytes,
    *,
    symbol: str,
    interval: Interval | None,
    ingested_at: datetime,
) -> Parsed:
    """An archive CSV of any supported dataset -> lake rows + quarantine (`interval`: the
    bar length of klines, the period of open interest; 5m when not given)."""
    if dataset.endswith("klines"):
        assert interval is not None
        return klines_from_csv_bytes(
            csv_bytes,
            dataset=dataset.replace("-", "_"),
            interval_us=interval.us,
            source="archive",
            ingested_at=ingested_at,
            has_header=_has_header(csv_bytes),
        )
    header, records = _csv_records(csv_bytes)
    if dataset == "funding":
        # calc_time,funding_interval_hours,last_funding_rate (names have varied: go by position
        # when the header is unknown).
        index = {name: i for i, name in enumerate(header)}
        t = index.get("calc_time", 0)
        hours = index.get("funding_interval_hours", 1)
        rate = index.get("last_funding_rate", index.get("funding_rate", 2))
        rows: list[dict[str, object]] = [
            {
                "symbol": symbol,
                "fundingTime": _field(r, t),
                "fundingRate": _field(r, rate),
                "fundingIntervalHours": _field(r, hours),
            }
            for r in records
        ]
        return parse_funding(rows, symbol=symbol, source="archive", ingested_at=ingested_at)
    if dataset == "open-interest":
        index = {name: i for i, name in enumerate(header)}
        required = ("create_time", "sum_open_interest", "sum_open_interest_value")
        if not all(name in index for name in required):
            raise MalformedResponse(f"metrics file header {header} lacks {required}")
        ratios = (
            "count_toptrader_long_short_ratio",
            "sum_toptrader_long_short_ratio",
            "count_long_short_ratio",
            "sum_taker_long_short_vol_ratio",
        )
        rows = []
        for r in records:
            row: dict[str, object] = {
                "symbol": _field(r, index.get("symbol", -1)) or symbol,
                "timestamp": _metrics_time_ms(_field(r, index["create_time"])),
                "sumOpenInterest": _field(r, index["sum_open_interest"]),
                "sumOpenInterestValue": _field(r, index["sum_open_interest_value"]),
            }
            for name in ratios:
                value = _field(r, index[name]) if name in index else None
                row[name] = value if value not in ("", None) else None
            rows.append(row)
        return parse_open_interest(
            rows,
            symbol=symbol,
            period_us=(interval or Interval.parse("5m")).us,
            source="archive",
            ingested_at=ingested_at,
        )
    raise ConfigError(f"no archive parser for dataset {dataset}")


def _field(record: list[str], index: int) -> str | None:
    return record[index].strip() if 0 <= index < len(record) else None


def _metrics_time_ms(value: str | None) -> object:
    """`create_time` is 'YYYY-MM-DD HH:MM:SS' in UTC; keep unparsable text for the quarantine."""
    if value is None:
        return None
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return value
    return int(moment.timestamp() * 1000)
