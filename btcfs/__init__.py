"""btcfs: a DuckDB-centric SQL feature store for BTCUSDT forecasting.

This package is the root `btcfs` command and nothing else (btcfs.cli); the libraries it
assembles sit below it (docs/ARCHITECTURE.md, "Layers").
"""

from core import __version__

__all__ = ["__version__"]
