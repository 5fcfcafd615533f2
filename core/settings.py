"""Where btcfs keeps its runtime data, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def dbt_target_path(env: Mapping[str, str] | None = None) -> Path:
    """dbt's target folder: $DBT_TARGET_PATH (unset or empty: `target`), resolved against
    the working directory, as dbt itself reads it."""
    env = os.environ if env is None else env
    return Path(env.get("DBT_TARGET_PATH") or "target").resolve()


@dataclass(frozen=True)
class DataPaths:
    """The runtime data folders (see ARCHITECTURE.md, "Runtime data")."""

    root: Path

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, default: str | Path = "data"
    ) -> DataPaths:
        """$BTCFS_DATA_DIR (unset or empty: `default`) from `env` (default: the process's),
        resolved against the working directory."""
        env = os.environ if env is None else env
        return cls(Path(env.get("BTCFS_DATA_DIR") or default).resolve())

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def build_db(self) -> Path:
        """The DuckDB file dbt builds (target dev)."""
        return self.warehouse / "build.duckdb"

    @property
    def serve_db(self) -> Path:
        """The read-only copy `btcfs publish` swaps in and the API serves."""
        return self.warehouse / "serve.duckdb"

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def live_state(self) -> Path:
        """What `btcfs live` last saw (pipeline/live_state.py): quotes, heartbeat, staleness."""
        return self.root / "live" / "state.json"
