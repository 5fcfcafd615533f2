"""Warehouse benchmarks: full `dbt build`s and a one-day incremental update, wall-clock.

1. Full build over the 105 real days in ../shared/data (spot 1m klines + real funding).
2. Full build over one year of synthetic 1m bars (all six lake datasets).   target < 60 s
3. One-day incremental update of (2): land the next day, build again. target < 10 s, dbt
   start-up included. Measured as a plain `dbt build` and as the daily update
   `dbt build --exclude-resource-type unit_test --vars '{gate_window_days: 2}'` (gates re-check
   the two rebuilt days; unit tests test code, not data, and run in CI).

Every figure is a fresh `dbt` process, as a user runs it (start-up and parse included).
Landing the fixture lakes is not timed. `--select core` builds only the warehouse core
(staging, bars, funding / open interest); `all` (default) builds the whole project.

Usage: python -m bench.bench_warehouse [--days 365] [--select all|core] [--skip-real]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench._report import quick, report
from tests.warehouse import lakefixtures as lf

REPO = Path(__file__).resolve().parents[1]

DBT = Path(sys.executable).with_name("dbt")
SELECT = {"core": ["--select", "tag:lake tag:bars tag:derivatives"], "all": []}
TARGET_S = {"year": 60.0, "incremental": 10.0}


def dbt_build(root: Path, select: list[str]) -> tuple[float, dict[str, int], float]:
    """Run `dbt build`; return wall seconds, node statuses and dbt's own DAG seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(
        BTCFS_DATA_DIR=str(root),
        DBT_TARGET_PATH=str(root / "target"),
        DBT_LOG_PATH=str(root / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    results_path = root / "target" / "run_results.json"
    results_path.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [str(DBT), "build", *select], cwd=REPO, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not results_path.exists():
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        print(f"   dbt build FAILED (exit {proc.returncode}); its time is not a result:\n{tail}")
        return wall, {"FAILED": 1}, 0.0
    results = json.loads(results_path.read_text())
    statuses: dict[str, int] = {}
    for result in results["results"]:
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    return wall, statuses, float(results.get("elapsed_time", 0.0))


def _verdict(wall: float, target: float, statuses: dict[str, int]) -> str:
    if "FAILED" in statuses:
        return "build failed"
    return "ok" if wall < target else "OVER TARGET"


def _fmt(statuses: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))


def _rows(root: Path, relation: str) -> int:
    import duckdb

    con = duckdb.connect(str(root / "warehouse" / "build.duckdb"), read_only=True)
    try:
        row = con.execute(f"select count(*) from {relation}").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def bench_real(work: Path, select: list[str]) -> None:
    if lf.REAL_DATA is None:
        print(f"-- real 105 days: skipped ({lf.REAL_DATA_REASON})")
        return
    root = work / "real"
    days = [date(2025, 5, 19) + timedelta(days=d) for d in range(105)]
    started = time.perf_counter()
    lf.land(
        root / "lake",
        {
            ("spot-klines", "BTCUSDT", "1m"): lf.real_spot_1m(days),
            ("funding", "BTCUSDT", None): lf.real_funding(),
        },
    )
    landed = time.perf_counter() - started
    wall, statuses, dag = dbt_build(root, select)
    report("full dbt build, 105 real days", wall if "FAILED" not in statuses else float("nan"), "s")
    print(f"-- real 105 days (151,200 1m bars + funding), lake landed in {landed:.1f} s")
    print(f"   full dbt build: {wall:.1f} s wall ({dag:.1f} s in dbt's DAG): {_fmt(statuses)}")
    print(f"   bars_5m rows: {_rows(root, 'bars_5m'):,}")


def bench_year(work: Path, select: list[str], days: int) -> None:
    root = work / "year"
    start = date(2024, 1, 1)
    market = lf.synthetic_market(start, days + 3, seed=42)
    started = time.perf_counter()
    first_extra = start + timedelta(days=days)
    lf.land(
        root / "lake", lf.cut_at(market, lf.datetime(*first_extra.timetuple()[:3], tzinfo=lf.UTC))
    )
    landed = time.perf_counter() - started
    wall, statuses, dag = dbt_build(root, select)
    verdict = _verdict(wall, TARGET_S["year"], statuses)
    failed = "FAILED" in statuses
    report(f"full dbt build, synthetic {days} days" + (" (FAILED)" if failed else ""),
           float("nan") if failed else wall, "s", TARGET_S["year"], "below")  # fmt: skip
    print(
        f"-- synthetic {days} days ({days * 1440:,} 1m bars, six datasets), landed {landed:.1f} s"
    )
    print(
        f"   full dbt build: {wall:.1f} s wall ({dag:.1f} s in dbt's DAG)  target < 60 s: {verdict}"
    )
    print(f"     {_fmt(statuses)}")
    # The daily update: gates over the 2 rebuilt days, unit tests (code, not data) left to CI.
    daily = ["--exclude-resource-type", "unit_test", "--vars", "{gate_window_days: 2}"]
    runs = [
        ("one-day incremental `dbt build` (all gates over all history, unit tests)", [],
         "one-day incremental dbt build"),
        ("daily update, first run with its flags (dbt reparses)", daily,
         "daily update (first run, reparse)"),
        ("daily update, steady state", daily, "daily update (steady state)"),
    ]  # fmt: skip
    for offset, (label, extra, figure) in enumerate(runs):
        lf.land(root / "lake", market, days=[first_extra + timedelta(days=offset)])
        wall, statuses, dag = dbt_build(root, [*select, *extra])
        verdict = _verdict(wall, TARGET_S["incremental"], statuses)
        failed = "FAILED" in statuses
        report(figure + (" (FAILED)" if failed else ""), float("nan") if failed else wall, "s",
               TARGET_S["incremental"], "below")  # fmt: skip
        print(f"   {label}: {wall:.1f} s wall ({dag:.1f} s in dbt's DAG)  < 10 s: {verdict}")
        print(f"     {_fmt(statuses)}")
    print(f"   bars_5m rows: {_rows(root, 'bars_5m'):,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10 if quick() else 365,
                        help="synthetic days (default 365)")  # fmt: skip
    parser.add_argument("--select", choices=sorted(SELECT), default="all")
    parser.add_argument("--skip-real", action="store_true", help="skip the 105 real days")
    parser.add_argument("--work-dir", type=Path, help="keep lakes and warehouses here")
    args = parser.parse_args()
    args.skip_real = args.skip_real or quick()
    select = SELECT[args.select]
    print(f"warehouse benchmarks ({args.select} models, {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="bench_warehouse_") as tmp:
        work = args.work_dir or Path(tmp)
        if not args.skip_real:
            bench_real(work, select)
        bench_year(work, select, args.days)


if __name__ == "__main__":
    main()
