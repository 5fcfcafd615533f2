"""`btcfs update` on the demo's lake: 80 days, both symbols, every vendor (config/demo.yml),
against the replay server. Target at steady state: <= 5 s wall, start-up included.

Run 0 lands the 80 days, builds with dbt and compiles the update plan. Then the market moves
on 5 minutes per run, as a cron line every 5 minutes sees it: the replay server (one synthetic
market generated once in this process) has its clock at each run's "now", and $BTCFS_NOW tells
the loaders the same. Each later run lands the new bars, runs the plan, checks its gates and
publishes. Each run is a fresh `btcfs update --timings --json` process, as cron starts it: its
wall time includes the interpreter's start-up and imports. Reported: the first run, the median
and the worst steady-state run, the median of each step (ingest, build, qa, publish), and
start-up as what is left of the wall time.

Usage: python -m bench.bench_update [--runs 6] [--days 80] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

from bench._report import quick, report
from ingest.timeutil import datetime_to_us
from replay import ReplayServer, SyntheticMarket
from scripts.demo import vendor_env

REPO = Path(__file__).resolve().parents[1]
BTCFS = str(Path(sys.executable).with_name("btcfs"))
SEED = 7
TARGET_S = 5.0
STEP = timedelta(minutes=5)


def _env(work: Path, url: str, now: datetime) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(
        BTCFS_DATA_DIR=str(work),
        BTCFS_NOW=now.isoformat(),
        DBT_TARGET_PATH=str(work / "target"),
        DBT_LOG_PATH=str(work / "logs"),
        DBT_PROFILES_DIR=str(REPO / "profiles"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return {**env, **vendor_env(url)}  # every vendor at the replay server, with a dummy key


def update(work: Path, market: SyntheticMarket, now: datetime) -> tuple[float, dict[str, Any]]:
    """One `btcfs update` against the replay server with its clock at `now` (one market for
    every run, generated once): (wall seconds, its JSON result)."""
    with ReplayServer(market, now=now.isoformat()) as url:
        began = time.monotonic()
        done = subprocess.run(
            [BTCFS, "update", "--config", "config/demo.yml", "--base-url", url, "--timings",
             "--json"],
            cwd=REPO, env=_env(work, url, now), capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        wall = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"btcfs update failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["plan_used"] = "update plan not used" not in done.stderr
    return wall, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3 if quick() else 6)
    parser.add_argument("--days", type=int, default=20 if quick() else 80)
    parser.add_argument("--work-dir", type=Path, help="keep the data folder here")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 5) - timedelta(minutes=1)  # a minute after a close
    start = datetime.combine((now - timedelta(days=args.days)).date(), dt_time(), UTC)
    last = now + args.runs * STEP
    market = SyntheticMarket(
        SEED, datetime_to_us(start), datetime_to_us(last), symbols=("BTCUSDT", "ETHUSDT")
    )
    print(f"btcfs update on {args.days} days, every vendor, 2 symbols ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="bench_update_") as tmp:
        work = args.work_dir or Path(tmp)
        wall, _ = update(work, market, now)
        report(f"first update ({args.days} days: land, dbt build, compile)", wall, "s")
        walls: list[float] = []
        steps: dict[str, list[float]] = {}
        for run in range(1, args.runs + 1):
            wall, result = update(work, market, now + run * STEP)
            if not result["plan_used"]:
                raise RuntimeError(f"run {run} did not use the update plan")
            walls.append(wall)
            for step, seconds in result["timings"].items():
                steps.setdefault(step, []).append(seconds)
            print(f"  run {run}: {wall:.2f} s wall, {result['timings']}", flush=True)
    median = statistics.median(walls)
    report("btcfs update, steady state, median wall", median, "s", TARGET_S, "below")
    report("btcfs update, steady state, worst wall", max(walls), "s")
    for step in ("ingest", "build", "qa", "publish"):
        report(f"  of which {step} (median)", statistics.median(steps[step]), "s")
    startup = statistics.median(w - t for w, t in zip(walls, steps["total"], strict=True))
    report("  of which start-up and imports (median)", startup, "s")


if __name__ == "__main__":
    main()
