"""The publish step: pin each registry model's serving version, then publish the marts."""

from __future__ import annotations

from pathlib import Path

from ml.registry import pin_models
from warehouse.publish import (
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_MODEL,
    BigQuerySource,
    PublishResult,
)
from warehouse.publish import publish as publish_marts


def publish(
    *,
    target_path: Path,
    warehouse: Path | None = None,
    serve: Path | None = None,
    registry_root: Path | None = None,
    primary_model: str = DEFAULT_MODEL,
    bigquery: BigQuerySource | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
) -> PublishResult:
    """`warehouse.publish.publish` with the registry's serving versions pinned (production,
    else the newest candidate, else the newest) from `registry_root` (default: the data dir's)."""
    return publish_marts(
        target_path=target_path,
        warehouse=warehouse,
        serve=serve,
        models=pin_models(registry_root),
        primary_model=primary_model,
        bigquery=bigquery,
        lock_timeout=lock_timeout,
    )
