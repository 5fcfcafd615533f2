"""Offline replay server: Binance's REST wire format and data archive, from real or synthetic data.

from ingest.replay import ReplayServer, SyntheticMarket
market = SyntheticMarket(seed=7, start_us=..., end_us=...)
with ReplayServer(market, faults="429=0.05", now="2024-03-01T00:00:00Z") as url:
    ...  # point the spot and futures base URLs (and the archive base URL) at `url`
"""

from ingest.replay.archive import DATASETS as ARCHIVE_DATASETS
from ingest.replay.archive import Archive, ArchiveFile, export
from ingest.replay.clock import Clock, parse_moment
from ingest.replay.faults import FaultInjector, FaultSpec, FaultSpecError
from ingest.replay.market import Bars, Funding, MarketData, Metrics, OpenInterest
from ingest.replay.query import MarketView
from ingest.replay.realdata import RealDataError, RealDataMarket
from ingest.replay.server import ReplayApp, ReplayServer
from ingest.replay.synthetic import SyntheticMarket

__all__ = [
    "ARCHIVE_DATASETS",
    "Archive",
    "ArchiveFile",
    "Bars",
    "Clock",
    "FaultInjector",
    "FaultSpec",
    "FaultSpecError",
    "Funding",
    "MarketData",
    "MarketView",
    "Metrics",
    "OpenInterest",
    "RealDataError",
    "RealDataMarket",
    "ReplayApp",
    "ReplayServer",
    "SyntheticMarket",
    "export",
    "parse_moment",
]
