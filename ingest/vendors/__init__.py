"""Every vendor, Binance included: the registry `btcfs ingest all|binance|vendor` runs.

Adding a vendor is one import and one entry below; the spec and the interface it implements
are documented in `ingest.vendors.base`.
"""

from __future__ import annotations

from ingest.vendors.alphavantage import SPEC as ALPHAVANTAGE
from ingest.vendors.base import (
    DatasetLine,
    DatasetLoader,
    KeyPlacement,
    RowSet,
    VendorContext,
    VendorLoader,
    VendorReport,
    VendorSpec,
    run_vendor,
)
from ingest.vendors.binance import SPEC as BINANCE
from ingest.vendors.coinapi import SPEC as COINAPI
from ingest.vendors.coinglass import SPEC as COINGLASS
from ingest.vendors.cryptoquant import SPEC as CRYPTOQUANT
from ingest.vendors.fred import SPEC as FRED


def _registry(*specs: VendorSpec) -> dict[str, VendorSpec]:
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"vendor names must be unique: {names}")
    return {spec.name: spec for spec in specs}


# One line per vendor, in the order `btcfs ingest all` runs them.
VENDORS: dict[str, VendorSpec] = _registry(
    BINANCE,
    COINGLASS,
    COINAPI,
    FRED,
    ALPHAVANTAGE,
    CRYPTOQUANT,
)

__all__ = [
    "VENDORS",
    "DatasetLine",
    "DatasetLoader",
    "KeyPlacement",
    "RowSet",
    "VendorContext",
    "VendorLoader",
    "VendorReport",
    "VendorSpec",
    "run_vendor",
]
