"""dbt-duckdb plugin for the `dev` profile: creates the warehouse file's folder, and confines
dbt's DuckDB to the lake it reads and the warehouse folder it writes.

DuckDB will not create missing parent folders, so without this a plain `dbt build` on a fresh
checkout (no `data/warehouse/` yet) fails with "Cannot open file". Named in profiles.yml as
``plugins: [{module: warehouse.dbt_plugin, config: {allowed_directories: [<lake>]}}]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from warehouse.confine import confine


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # The profile names the lake from the same var and environment the sources read it
        # from (`lake_root`, else $BTCFS_DATA_DIR/lake); the warehouse folder is the file's.
        self.allowed = [str(folder) for folder in plugin_config.get("allowed_directories") or []]

    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        path = self._database_path(creds)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)

    def configure_connection(self, conn: Any) -> None:
        """Whatever SQL a model, a macro or a var carries, this DuckDB reads and writes only
        these folders: no other file, no URL, no extension install, no ATTACH elsewhere
        (DuckDB refuses to widen either setting once external access is off)."""
        folders = list(self.allowed)
        path = self._database_path(self.creds)
        if path is not None:
            folders.append(str(Path(path).parent))
        confine(conn, folders)

    @staticmethod
    def _database_path(creds: Any) -> str | None:
        path = str(getattr(creds, "path", "") or "")
        if not path or path == ":memory:" or ":" in path.split("/", 1)[0]:
            return None  # in memory, or an md:/s3: style location: no folder of ours
        return path
