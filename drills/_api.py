"""A published warehouse and a live `btcfs serve` for the API drills, built the way the API
tests build theirs (tests/api/apipipeline.py: replay -> ingest -> dbt -> train -> publish),
or, in quick mode, from the publish tests' hand-made marts (tests/api/publishfixtures.py)."""

from __future__ import annotations

from pathlib import Path

from tests.api.apipipeline import (
    BuiltWarehouse,
    Pipeline,
    build_published,
    live_server,
    open_files,
)
from tests.api.publishfixtures import make_build, write_run_results

__all__ = ["Pipeline", "live_server", "open_files", "published"]

_BUILT: dict[str, Pipeline] = {}


def published(root: Path, *, quick: bool) -> Pipeline:
    """A published warehouse: the real pipeline once per process, or hand-made marts."""
    if quick:
        pipeline = Pipeline(BuiltWarehouse(root))
        make_build(pipeline.warehouse.database, close=100.0)
        write_run_results(pipeline.warehouse.target)
        pipeline.publish()
        return pipeline
    if "real" not in _BUILT:
        print("  (building a published warehouse: replay -> ingest -> dbt -> train -> publish)",
              flush=True)  # fmt: skip
        _BUILT["real"] = build_published(root)
    return _BUILT["real"]
