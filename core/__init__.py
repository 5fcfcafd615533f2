"""The bottom of the house: what every other package may import and nothing here imports back.

`core.settings` (the runtime data folders, read once from the environment), `core.errors` (the
root of every known failure), `core.redact` (secrets masked in every message and log line) and
`core.locks` (the one way a file lock is taken). See docs/ARCHITECTURE.md, "Layers".
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("btcfs")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
