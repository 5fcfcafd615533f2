"""The feature build in dbt, lake to features_5m + labels_5m, beside the figures from before the
feature-set rewrite.

1. The 105 real days of ../shared/data, a lake of spot 1m klines only: the spot set.
2. A synthetic year with every lake dataset: all three sets.

Each is one `dbt run` of the whole project on a fresh warehouse (a new process: start-up and
parse included). From its run results: the wall time, and the models on the path from the lake
to features_5m and labels_5m (their ancestors in dbt's manifest), whose execution times summed
are the "dbt model time"; then the rows of both marts. On the real days the pandas peer
(bench_features_pandas) recomputes features_5m from the same warehouse inputs, is checked equal
to the mart, and is timed (best of 3).

Before the rewrite (the issue): on the 105 real days the path took 4.0 s of dbt model time, the
whole dbt build 12.5 s wall for 47 models, a pandas script 0.36 s; a full build of a synthetic
lake took 62 s for three years. These are the targets of the report lines (faster passes), not
like for like: the old features needed perp bars, funding and open interest, so a spot-only
lake gave them no rows; the issue says `dbt build` where this runs `dbt run` (models only; the
full build with its tests is bench_warehouse's); the year's reference is a three-year figure.

Usage: python -m bench.bench_feature_build [--year-days 365] [--real-days 105] [--skip-real]
  [--skip-year]   (--quick: 40 real days, 40 synthetic days)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench import bench_features_pandas as peer
from bench._report import quick, report
from tests.warehouse import lakefixtures as lf
from warehouse.catalog import load_catalog

#: The marts whose path is timed.
PATH_MARTS = ("features_5m", "labels_5m")
REAL_START = date(2025, 5, 19)
YEAR_START = date(2024, 1, 1)
#: Today's figures (the issue, before the rewrite).
BEFORE = {"path_seconds": 4.0, "run_seconds": 12.5, "models": 47, "pandas_seconds": 0.36}
BEFORE_YEARS, BEFORE_YEARS_SECONDS = 3, 62.0


def path_models(target: Path) -> set[str]:
    """The models on the path from the lake to PATH_MARTS, from dbt's manifest."""
    manifest = json.loads((target / "manifest.json").read_text())
    project = manifest["metadata"]["project_name"]
    parents = manifest["parent_map"]
    seen: set[str] = set()
    todo = [f"model.{project}.{name}" for name in PATH_MARTS]
    while todo:
        node = todo.pop()
        if node not in seen and node.startswith("model."):
            seen.add(node)
            todo.extend(parents.get(node, []))
    return {node.split(".")[-1] for node in seen}


def build(root: Path) -> dict[str, Any]:
    """A whole-project `dbt run` on the lake under `root`: wall, models, the path's time, rows."""
    results, wall = peer.timed(lambda: peer.dbt(root, "run"))
    models = {name: r for name, r in results.items() if r["unique_id"].startswith("model.")}
    on_path = path_models(root / "target")
    path = [models[name] for name in on_path]
    database = root / "warehouse" / "build.duckdb"
    slowest = sorted(path, key=lambda r: -r["execution_time"])[:4]
    return {
        "wall": wall,
        "models": len(models),
        "path_models": len(path),
        "path_seconds": sum(r["execution_time"] for r in path),
        "path_span": peer.span_seconds(path),
        "slowest": ", ".join(
            f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.2f} s" for r in slowest
        ),
        "rows": {name: peer.count_rows(database, name) for name in PATH_MARTS},
    }


def describe(label: str, figures: dict[str, Any]) -> None:
    print(
        f"-- {label}: whole dbt run {figures['wall']:.1f} s wall, {figures['models']} models; "
        f"the {figures['path_models']} models lake -> {' + '.join(PATH_MARTS)}: "
        f"{figures['path_seconds']:.2f} s summed, {figures['path_span']:.2f} s first start to "
        f"last end (2 threads)\n   slowest: {figures['slowest']}\n   rows: "
        + ", ".join(f"{name} {rows:,}" for name, rows in figures["rows"].items())
    )


def pandas_peer(root: Path) -> float:
    """The pandas peer of features_5m on the warehouse under `root`, checked equal to the mart
    (and the mart to its NULL rules); its best time of 3 (load + compute + store)."""
    catalog = load_catalog(root / "target")
    database = root / "warehouse" / "build.duckdb"
    mart = peer.load_marts(database, ("5m",))["features_5m"]
    derivatives, _ = peer.check_null_rules(mart, catalog, "features_5m")
    params = peer.Params.from_project()
    runs = [
        peer.pandas_path(database, params, catalog, root / "pandas.duckdb", ("5m",))
        for _ in range(3)
    ]
    seconds = min(sum(timings) for _, timings in runs)
    worst_abs, worst_rel = peer.compare(
        mart, runs[0][0]["features_5m"], "features_5m", peer.RTOL, peer.ATOL
    )
    print(
        f"   pandas features_5m (load + compute + store, best of 3): {seconds:.2f} s; "
        f"{len(mart):,} rows x {mart.shape[1]} columns equal to the mart (max gaps "
        f"{worst_abs:.1e} abs, {worst_rel:.1e} rel), the derivatives set on {derivatives} rows"
    )
    return seconds


def bench_real(work: Path, days: int) -> None:
    if lf.REAL_DATA is None:
        print(f"-- real days: skipped ({lf.REAL_DATA_REASON})")
        return
    root = work / "real"
    shutil.rmtree(root, ignore_errors=True)
    spot = lf.real_spot_1m([REAL_START + timedelta(days=d) for d in range(days)])
    lf.land(root / "lake", {("spot-klines", "BTCUSDT", "1m"): spot})
    figures = build(root)
    describe(f"{days} real days, spot klines only", figures)

    pandas_seconds = pandas_peer(root)
    name = f"{days} real days, spot set"
    report(f"lake -> features_5m + labels_5m model time, {name}", figures["path_seconds"], "s",
           BEFORE["path_seconds"], "below", width=64)  # fmt: skip
    report(f"whole dbt run, {figures['models']} models (before: {BEFORE['models']}), {name}",
           figures["wall"], "s", BEFORE["run_seconds"], "below", width=64)  # fmt: skip
    report(f"features_5m rows, {name}", figures["rows"]["features_5m"], "rows", width=64)
    report(f"labels_5m rows, {name}", figures["rows"]["labels_5m"], "rows", width=64)
    report(f"features_5m in pandas, {name} (before: {BEFORE['pandas_seconds']} s)",
           pandas_seconds, "s", width=64)  # fmt: skip


def bench_year(work: Path, days: int) -> None:
    root = work / "year"
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    lf.land(root / "lake", lf.synthetic_market(YEAR_START, days, seed=42))
    landed = time.perf_counter() - started
    figures = build(root)
    describe(f"synthetic {days} days, every dataset (lake landed in {landed:.0f} s)", figures)
    name = f"synthetic {days} days, all sets"
    report(f"lake -> features_5m + labels_5m model time, {name}", figures["path_seconds"], "s",
           width=64)  # fmt: skip
    report(f"whole dbt run, {name} (before: {BEFORE_YEARS} years)", figures["wall"], "s",
           BEFORE_YEARS_SECONDS, "below", width=64)  # fmt: skip
    report(f"features_5m rows, {name}", figures["rows"]["features_5m"], "rows", width=64)
    report(f"labels_5m rows, {name}", figures["rows"]["labels_5m"], "rows", width=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year-days", type=int, default=40 if quick() else 365,
                        help="synthetic days (default 365)")  # fmt: skip
    parser.add_argument("--real-days", type=int, default=40 if quick() else 105,
                        help="real days from 2025-05-19 (at most 105)")  # fmt: skip
    parser.add_argument("--skip-real", action="store_true", help="skip the real days")
    parser.add_argument("--skip-year", action="store_true", help="skip the synthetic year")
    parser.add_argument("--work-dir", type=Path, help="keep lakes and warehouses here")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"feature build benchmarks ({os.cpu_count()} cores, load average {load:.2f})")
    with tempfile.TemporaryDirectory(prefix="bench_feature_build_") as tmp:
        work = args.work_dir or Path(tmp)
        if not args.skip_real:
            bench_real(work, args.real_days)
        if not args.skip_year:
            bench_year(work, args.year_days)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
