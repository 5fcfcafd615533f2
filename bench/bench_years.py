"""Full `dbt build` against years of history: wall time and peak memory for 1, 2, 3, 4 and 8
synthetic years (every lake dataset), so the growth with history is visible.

One synthetic market of the longest span is landed once and kept for the next run (not timed:
8 years take 10-30 minutes of `tests.warehouse.lakefixtures` and 1.6 GB, in
$BTCFS_DATA_DIR/bench/years unless --work-dir says otherwise), and each shorter lake is its
first N years, its day partitions hard-linked, so every size sees the same data. Each size is
one fresh `dbt build` (models, data tests and unit tests, as bench_warehouse's full build) on a
new warehouse, in a new process, start-up and parse included: its wall time, its peak resident
memory (the dbt process, DuckDB included: os.wait4), and from its run results the summed node
times of models and of tests (what the two threads shared the wall between).

Targets (issue 17): 3 years within 30 s; 8 years (4.2 M minutes) within 90 s and 6 GiB.

Usage: python -m bench.bench_years [--years 1,2,3,4,8] [--work-dir DIR]
  (--quick: 1 and 2 "years" of 40 days, in a temporary folder)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench._report import quick, report
from bench.bench_warehouse import DBT, REPO
from core.settings import DataPaths
from tests.warehouse import lakefixtures as lf

START = date(2024, 1, 1)
YEARS = (1, 2, 3, 4, 8)
#: Years -> (wall seconds, peak GiB) targets.
TARGETS: dict[float, tuple[float, float | None]] = {3: (30.0, None), 8: (90.0, 6.0)}


def land_market(lake: Path, days: int) -> float:
    """Land `days` synthetic days of every dataset under `lake`; seconds taken."""
    started = time.perf_counter()
    lf.land(lake, lf.synthetic_market(START, days, seed=42))
    return time.perf_counter() - started


def link_first_days(source: Path, target: Path, days: int) -> int:
    """Hard-link the day partitions of `source` before START + `days` into `target`."""
    end = (START + timedelta(days=days)).isoformat()
    linked = 0
    for path in source.rglob("*"):
        if path.is_dir():
            continue
        relative = path.relative_to(source)
        day = next((p[5:] for p in relative.parts if p.startswith("date=")), None)
        if day is not None and day >= end:
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target / relative)
        linked += 1
    return linked


def build(root: Path) -> dict[str, Any]:
    """One `dbt build` on a fresh warehouse under `root`: wall, peak RSS, node times."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(
        BTCFS_DATA_DIR=str(root),
        DBT_TARGET_PATH=str(root / "target"),
        DBT_LOG_PATH=str(root / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    with (root / "dbt.out").open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([str(DBT), "build"], cwd=REPO, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    results_path = root / "target" / "run_results.json"
    figures: dict[str, Any] = {
        "ok": proc.returncode == 0 and results_path.exists(),
        "wall": wall,
        "peak_gib": usage.ru_maxrss / 2**20,  # KiB on Linux
        "cpu": usage.ru_utime + usage.ru_stime,
    }
    if not figures["ok"]:
        tail = "\n".join((root / "dbt.out").read_text().splitlines()[-15:])
        print(f"   dbt build FAILED (exit {proc.returncode}); its time is not a result:\n{tail}")
        return figures
    results = json.loads(results_path.read_text())["results"]
    for kind in ("model", "test", "unit_test"):
        figures[kind] = sum(r["execution_time"] for r in results if r["unique_id"].startswith(kind))
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:3]
    figures["slowest"] = ", ".join(
        f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.1f} s" for r in slowest
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", default="1,2" if quick() else ",".join(map(str, YEARS)),
                        help="comma-separated years (default 1,2,3,4,8)")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, help="keep lakes and warehouses here")
    args = parser.parse_args()
    sizes = [float(y) for y in args.years.split(",") if y.strip()]
    # quick: a "year" of 40 days, past the 31 days of feature warm-up the gates ask for
    days_per_year = 40 if quick() else 365
    print(f"years benchmarks ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f})")
    kept = DataPaths.from_env(default=REPO / "data").root / "bench" / "years"
    with tempfile.TemporaryDirectory(prefix="bench_years_") as tmp:
        work = args.work_dir or (Path(tmp) if quick() else kept)
        longest = round(max(sizes) * days_per_year)
        market = work / f"market-{longest}d"
        if not (market / ".landed").exists():
            landed = land_market(market / "lake", longest)
            (market / ".landed").touch()
            print(f"-- landed {longest} synthetic days (every dataset) in {landed:.0f} s")
        for years in sizes:
            days = round(years * days_per_year)
            root = work / f"build-{days}d"
            shutil.rmtree(root, ignore_errors=True)
            files = link_first_days(market / "lake", root / "lake", days)
            load = os.getloadavg()[0]
            figures = build(root)
            label = f"{years:g} years" if not quick() else f"{days} days"
            wall_target, memory_target = (
                (None, None) if quick() else TARGETS.get(years, (None, None))
            )
            if not figures["ok"]:
                report(f"full dbt build, synthetic {label} (FAILED)", float("nan"), "s", width=60)
                continue
            print(
                f"-- {label} ({days * 1440:,} minutes, {files:,} lake files), load {load:.2f}: "
                f"{figures['wall']:.1f} s wall, {figures['cpu']:.1f} s CPU, peak "
                f"{figures['peak_gib']:.2f} GiB; node time summed: models "
                f"{figures['model']:.1f} s, tests {figures['test']:.1f} s, unit tests "
                f"{figures['unit_test']:.1f} s\n"
                f"   slowest: {figures['slowest']}"
            )
            report(f"full dbt build, synthetic {label}: wall", figures["wall"], "s", wall_target,
                   "below" if wall_target else "report", width=60)  # fmt: skip
            report(f"full dbt build, synthetic {label}: peak memory", figures["peak_gib"], "GiB",
                   memory_target, "below" if memory_target else "report", width=60)  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
