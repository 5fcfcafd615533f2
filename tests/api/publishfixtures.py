"""Small hand-made dbt outputs for the publish tests: a build.duckdb with every mart the API
reads (a few rows each) and a run_results.json whose gates pass or fail as asked."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb

from api.publish import OPTIONAL_MARTS, REQUIRED_MARTS


def make_build(path: Path, close: float = 100.0, *, skip: tuple[str, ...] = ()) -> None:
    """A build.duckdb whose marts hold one row at 2025-01-01 with this close."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        for name in (*REQUIRED_MARTS, *OPTIONAL_MARTS):
            if name in skip:
                continue
            interval = ", '5m' as bar_interval" if name == "latest_features" else ""
            con.execute(
                f"create table {name} as select 'BTCUSDT' as symbol{interval}, "
                "timestamptz '2025-01-01 00:00:00+00' as open_time, "
                "timestamptz '2025-01-01 00:05:00+00' as available_at, "
                f"cast({close} as decimal(28, 8)) as close"
            )
    finally:
        con.close()


def write_run_results(
    target: Path, *, failing: tuple[str, ...] = (), command: str = "build"
) -> str:
    """run_results.json of a dbt build with two passing gates and the named failing ones."""
    target.mkdir(parents=True, exist_ok=True)
    invocation = str(uuid.uuid4())
    results = [
        {"unique_id": "model.btcfs.bars_5m", "status": "success", "failures": None},
        {"unique_id": "test.btcfs.integrity__bars_5m.abc", "status": "pass", "failures": 0},
        {"unique_id": "test.btcfs.unique_key__features_5m.def", "status": "pass", "failures": 0},
    ]
    results += [
        {"unique_id": f"test.btcfs.{name}.0123", "status": "fail", "failures": 3}
        for name in failing
    ]
    payload = {
        "metadata": {
            "generated_at": "2025-01-02T03:04:05.000000Z",
            "invocation_id": invocation,
            "dbt_version": "1.11.16",
        },
        "args": {"which": command},
        "results": results,
    }
    (target / "run_results.json").write_text(json.dumps(payload))
    return invocation
