"""Fixtures for the ingest tests (helpers live in binance_fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ingest import HttpClient
from ingest.binance.archive import LocalArchive
from ingest.binance.loader import BinanceLoader
from lake.store import Lake
from tests.ingest.binance_fakes import FakeBinance, fake_client


@pytest.fixture
def make_loader(tmp_path: Path) -> Iterator[Callable[..., BinanceLoader]]:
    """Factory: a BinanceLoader on tmp_path/data with the fake for spot and futures REST."""
    clients: list[HttpClient] = []

    def build(
        fake: FakeBinance | None,
        now: datetime,
        *,
        archive: Path | None = None,
    ) -> BinanceLoader:
        spot, futures = fake_client(fake, "spot"), fake_client(fake, "futures")
        clients.extend([spot, futures])
        return BinanceLoader(
            Lake(tmp_path / "data" / "lake"),
            tmp_path / "data" / "raw",
            spot=spot,
            futures=futures,
            archive=LocalArchive(archive) if archive is not None else None,
            now=now,
        )

    yield build
    for client in clients:
        client.close()
