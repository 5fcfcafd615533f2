"""Binance partitions say whether their rows came from the replay server's synthetic market.

The replay server labels every response `X-Btcfs-Replay: synthetic|recorded`; an exported
synthetic archive carries a marker file. The MANIFEST's `is_synthetic` is what keeps such
partitions out of production (`btcfs warehouse load-bq` refuses them).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa

from ingest import REPLAY_HEADER, ClientConfig, HttpClient, RetryPolicy
from ingest.binance.archive import SYNTHETIC_MARKER, LocalArchive
from ingest.binance.loader import BinanceLoader, LoadRequest
from ingest.timeutil import datetime_to_us, day_start_us
from lake.schemas import DATASETS
from lake.store import MANIFEST_FILE, Lake, PartitionKey
from replay import ReplayServer, SyntheticMarket
from replay.archive import Archive, export
from replay.query import MarketView

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
FIRST_DAY = date(2026, 3, 2)
# A port nothing listens on: the archive-only runs below must never reach REST.
DEAD_URL = "http://127.0.0.1:9"


def _market() -> SyntheticMarket:
    return SyntheticMarket(
        seed=5,
        start_us=day_start_us(FIRST_DAY - timedelta(days=2)),
        end_us=datetime_to_us(NOW),
        symbols=("BTCUSDT",),
    )


def _manifests(lake_root: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(lake_root.rglob(MANIFEST_FILE))]


def _load(lake_root: Path, url: str, archive: LocalArchive | None, req: LoadRequest) -> None:
    config = ClientConfig(timeout=2.0, retry=RetryPolicy(backoff_base=0.01, backoff_max=0.02))
    spot = HttpClient(url, vendor="spot", config=config)
    futures = HttpClient(url, vendor="futures", config=config)
    try:
        loader = BinanceLoader(
            Lake(lake_root), lake_root.parent / "raw", spot=spot, futures=futures,
            archive=archive, now=NOW,
        )  # fmt: skip
        loader.load(req)
    finally:
        spot.close()
        futures.close()


def test_rest_from_the_synthetic_replay_is_marked_synthetic(tmp_path):
    req = LoadRequest("spot-klines", "BTCUSDT", "1m", NOW.date() - timedelta(days=1), NOW.date())
    with ReplayServer(_market(), now=NOW) as url:
        _load(tmp_path / "lake", url, None, req)
    manifests = _manifests(tmp_path / "lake")
    assert len(manifests) == 2
    assert all(m["is_synthetic"] is True for m in manifests)


def test_an_exported_synthetic_archive_is_marked_and_an_unmarked_folder_is_not(tmp_path):
    market = _market()
    archive = Archive(MarketView(market))
    files = list(archive.files("spot-klines", "BTCUSDT", datetime_to_us(NOW), ("1m",), ("daily",)))
    export(archive, tmp_path / "arch", files, datetime_to_us(NOW), workers=1)
    assert (tmp_path / "arch" / SYNTHETIC_MARKER).is_file()
    # Days well before "now": the archive alone serves them, REST is never asked.
    req = LoadRequest("spot-klines", "BTCUSDT", "1m", FIRST_DAY, FIRST_DAY + timedelta(days=1))

    _load(tmp_path / "marked", DEAD_URL, LocalArchive(tmp_path / "arch"), req)
    marked = _manifests(tmp_path / "marked")
    assert [m["source"] for m in marked] == ["archive", "archive"]
    assert all(m["is_synthetic"] is True for m in marked)

    (tmp_path / "arch" / SYNTHETIC_MARKER).unlink()
    _load(tmp_path / "unmarked", DEAD_URL, LocalArchive(tmp_path / "arch"), req)
    unmarked = _manifests(tmp_path / "unmarked")
    assert all(m["is_synthetic"] is False for m in unmarked)
    # Same rows either way: only the provenance differs.
    assert [m["data_sha256"] for m in marked] == [m["data_sha256"] for m in unmarked]


def test_the_client_counts_only_responses_labelled_synthetic():
    labels = iter(["recorded", "synthetic", "", "SYNTHETIC "])

    def handler(request: httpx.Request) -> httpx.Response:
        label = next(labels)
        return httpx.Response(200, json=[], headers={REPLAY_HEADER: label} if label else {})

    client = HttpClient("http://replay.test", vendor="t", transport=httpx.MockTransport(handler))
    try:
        for _ in range(4):
            client.get("/api/v3/klines")
    finally:
        client.close()
    assert client.stats.synthetic_responses == 2


def test_a_partition_changing_only_its_synthetic_flag_is_rewritten(tmp_path):
    dataset = DATASETS["funding"]
    key = PartitionKey(dataset, "BTCUSDT", None, date(2026, 3, 2))
    table = pa.table(
        {
            "funding_time": [datetime(2026, 3, 2, 8, tzinfo=UTC)],
            "funding_rate": ["0.0001"],
            "mark_price": [None],
            "funding_interval_hours": [8],
            "source": ["rest"],
            "ingested_at": [NOW],
        }
    ).cast(dataset.schema)
    lake = Lake(tmp_path)
    first = lake.write_partition(key, table, source="rest", ingested_at=NOW, expected_rows=None,
                                 is_synthetic=True)  # fmt: skip
    again = lake.write_partition(key, table, source="rest", ingested_at=NOW, expected_rows=None,
                                 is_synthetic=True)  # fmt: skip
    real = lake.write_partition(key, table, source="rest", ingested_at=NOW, expected_rows=None)
    assert (first.written, again.written, real.written) == (True, False, True)
    manifest = lake.read_manifest(key)
    assert manifest is not None and manifest.is_synthetic is False
