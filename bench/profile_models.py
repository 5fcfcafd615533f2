"""Where the SQL time of a built warehouse goes: each model's compiled SELECT re-run in DuckDB.

Takes a folder a `dbt run`/`build` left behind (its `warehouse/build.duckdb` and `target/`, as
bench_feature_build's and bench_years' `--work-dir` keep them), copies the warehouse (the
original is never written), and for each chosen model runs its compiled SQL (target/compiled:
the full-build form, as the first run compiled it) into a temporary table: the best wall and
CPU time of `--repeat` runs, and its rows. CPU time (the process's, DuckDB's threads included)
moves less than wall time on a shared machine. With `--explain`, DuckDB's JSON profile of each
model's last run prints the operators that took longest. Without dbt: no per-node overhead
(start-up, Jinja, metadata queries, COMMIT), which is the difference from dbt's node times.

Usage: python -m bench.profile_models ROOT [--models a,b] [--path] [--repeat 3] [--explain]
  (--path: the models on the path from the lake to features_5m and labels_5m)
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.bench_feature_build import path_models


def operators(profile: dict[str, Any], depth: int = 0) -> list[tuple[float, int, str, int]]:
    """(seconds, depth, operator, rows) of every operator of a DuckDB JSON profile."""
    found = []
    for child in profile.get("children", []):
        name = child.get("operator_name") or child.get("operator_type", "?")
        found.append(
            (child.get("operator_timing", 0.0), depth, name, child.get("operator_cardinality", 0))
        )
        found.extend(operators(child, depth + 1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder with warehouse/build.duckdb and target/")
    parser.add_argument("--models", default="", help="comma-separated model names")
    parser.add_argument("--path", action="store_true", help="the lake -> features/labels path")
    parser.add_argument("--repeat", type=int, default=3, help="runs per model (best kept)")
    parser.add_argument("--explain", action="store_true", help="print the slowest operators")
    args = parser.parse_args()
    target = args.root / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    chosen = {m.strip() for m in args.models.split(",") if m.strip()}
    if args.path:
        chosen |= path_models(target)
    nodes = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and (not chosen or node["name"] in chosen)
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="profile_models_") as tmp:
        # dbt names the catalog after the file: the copy keeps the name
        copy = Path(tmp) / "build.duckdb"
        shutil.copy(args.root / "warehouse" / "build.duckdb", copy)
        con = duckdb.connect(str(copy))
        con.execute("set TimeZone = 'UTC'")
        for node in nodes:
            sql = (
                target / "compiled" / node["package_name"] / node["original_file_path"]
            ).read_text()
            best_wall = best_cpu = float("inf")
            for run in range(args.repeat):
                last = run == args.repeat - 1
                if last and args.explain:
                    con.execute("pragma enable_profiling = 'json'")
                    con.execute(f"pragma profiling_output = '{Path(tmp) / 'profile.json'}'")
                wall, cpu = time.perf_counter(), time.process_time()
                con.execute(f"create or replace temp table profiled as {sql}")
                best_wall = min(best_wall, time.perf_counter() - wall)
                best_cpu = min(best_cpu, time.process_time() - cpu)
                if last and args.explain:
                    con.execute("pragma disable_profiling")
            row = con.execute("select count(*) from profiled").fetchone()
            results.append((best_cpu, best_wall, node["name"], row[0] if row else 0))
            if args.explain:
                profile = json.loads((Path(tmp) / "profile.json").read_text())
                slowest = sorted(operators(profile), reverse=True)[:5]
                print(f"{node['name']}: " + "; ".join(
                    f"{name} {seconds:.3f} s ({rows:,} rows)" for seconds, _, name, rows in slowest
                ))  # fmt: skip
        con.close()
    print(f"{'cpu s':>7} {'wall s':>7} {'rows':>11}  model")
    for cpu, wall, name, rows in sorted(results, reverse=True):
        print(f"{cpu:7.3f} {wall:7.3f} {rows:11,}  {name}")
    print(
        f"{sum(r[0] for r in results):7.3f} {sum(r[1] for r in results):7.3f} "
        f"{'':11}  {len(results)} models"
    )


if __name__ == "__main__":
    main()
