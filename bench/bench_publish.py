"""Publish after an update plan run, full copy against delta (warehouse.publish), on a folder
`python -m bench.bench_live --work-dir DIR` set up. Each round runs the plan for what reads the
klines (as `btcfs live` does) and then one publish, alternately full and delta, into a serve
file of its own beside the folder's (never the one a running API reads); only publish is timed.

Usage: python -m bench.bench_publish --work-dir /tmp/perf-lvb [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from importlib.metadata import version
from pathlib import Path

from bench._report import report
from warehouse import plan as update_plan
from warehouse.publish import publish

KLINES = ("spot_klines", "perp_klines", "mark_klines", "premium_klines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    work: Path = args.work_dir
    os.environ["BTCFS_DATA_DIR"] = str(work)
    target, build, lake = work / "target", work / "warehouse" / "build.duckdb", work / "lake"
    fingerprint = update_plan.project_fingerprint(lake_root=lake, dbt_version=version("dbt-core"))
    plan = update_plan.load_plan(update_plan.plan_target(target), fingerprint=fingerprint)
    changed = {f"binance.{name}" for name in KLINES} | {update_plan.QUARANTINE_SOURCE}
    only = update_plan.downstream_of(plan, changed)
    serve = work / "warehouse" / "bench-publish.duckdb"
    seconds: dict[str, list[float]] = {"full": [], "delta": []}
    publish(target_path=target, warehouse=build, serve=serve, delta=False)
    for _ in range(args.rounds):
        for mode in seconds:
            update_plan.run_plan(plan, build, allowed=[lake], only=only)
            began = time.perf_counter()
            result = publish(target_path=target, warehouse=build, serve=serve,
                             delta=mode == "delta")  # fmt: skip
            seconds[mode].append(time.perf_counter() - began)
            assert result.mode == mode, result.why_full
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}; serve file {serve.stat().st_size / 1e6:.1f} MB after a delta")
    for mode, values in seconds.items():
        report(f"publish after a plan run, {mode} (median of {len(values)})",
               statistics.median(values), "s")  # fmt: skip


if __name__ == "__main__":
    main()
