"""btcfs: a DuckDB-centric SQL feature store for BTCUSDT forecasting."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("btcfs")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
