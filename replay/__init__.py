"""Offline replay server: Binance's REST wire format and data archive, from real or synthetic data.

from replay import ReplayServer, SyntheticMarket
market = SyntheticMarket(seed=7, start_us=..., end_us=...)
with ReplayServer(market, faults="429=0.05", now="2024-03-01T00:00:00Z") as url:
    ...  # point the spot and futures base URLs (and the archive base URL) at `url`
"""

from replay.archive import DATASETS as ARCHIVE_DATASETS
from replay.archive import Archive, ArchiveFile, export
from replay.clock import Clock, parse_moment
from replay.faults import FaultInjector, FaultSpec, FaultSpecError
from replay.market import Bars, Funding, MarketData, Metrics, OpenInterest
from replay.query import MarketView
from replay.realdata import RealDataError, RealDataMarket
from replay.server import ReplayApp, ReplayServer
from replay.synthetic import SyntheticMarket

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
