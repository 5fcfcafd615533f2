"""dbt-duckdb plugin for the `dev` profile: creates the warehouse file's folder before connecting.

DuckDB will not create missing parent folders, so without this a plain `dbt build` on a fresh
checkout (no `data/warehouse/` yet) fails with "Cannot open file". Named in profiles.yml as
``plugins: [{module: btcfs.dbt_plugin}]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin


class Plugin(BasePlugin):
    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        path = str(getattr(creds, "path", "") or "")
        if path and path != ":memory:" and ":" not in path.split("/", 1)[0]:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
