"""Run every benchmark and print one table: `make bench` (python -m bench.run_all).

Each bench/bench_*.py runs in its own process (`python -m bench.<script>` from the repo root; a
crash is reported, not fatal) and prints its own lines as it goes; its figures (bench/_report.py)
are collected into one table — figure, value, target, pass/short — written with the machine it
ran on (CPU, cores, RAM, OS, Python, load average before and after, git revision) to
`$BTCFS_DATA_DIR/reports/bench/bench-<UTC time>.json` and `latest.json`.

    python -m bench.run_all                    # everything (about 40 minutes on 2 cores, half
                                               # of it bench_years: 8 years landed and built)
    python -m bench.run_all --only ingest,api  # some scripts
    python -m bench.run_all --quick            # small sizes: checks the machinery, not targets
    python -m bench.run_all --docs             # also put the table in docs/benchmarks.md
    python -m bench.run_all --from-json data/reports/bench/latest.json --docs

`--readme` is the old name of `--docs` (the table lived in README.md) and still works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._report import FIGURES_ENV, QUICK_ENV, Figure
from core.settings import DataPaths

REPO = Path(__file__).resolve().parents[1]
#: Script name -> module in bench/ (run as `-m bench.<module>`), in the order they run (the API
#: one last: it may reuse `make demo`'s published warehouse).
SCRIPTS = {
    "ingest": "bench_ingest",
    "warehouse": "bench_warehouse",
    "update": "bench_update",
    "live": "bench_live",
    "features": "bench_features_pandas",
    "feature-build": "bench_feature_build",
    "years": "bench_years",
    "train": "bench_train",
    "retrieval": "bench_retrieval",
    "api": "bench_api",
}
#: The page whose bench block --docs rewrites, and the markers around that block.
DOCS_PAGE = REPO / "docs" / "benchmarks.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        meminfo = Path("/proc/meminfo").read_text()
        found = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
        ram_gib = round(int(found.group(1)) / 2**20, 1) if found else None
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "host": platform.node(),
    }


def git_revision() -> str:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    return revision + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_script(name: str, quick: bool, timeout: float) -> tuple[list[Figure], dict[str, Any]]:
    """Run one script, echoing its output; its figures and how it went."""
    with tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".jsonl") as sink:
        env = dict(os.environ, **{FIGURES_ENV: sink.name, QUICK_ENV: "1" if quick else "0"})
        started = time.perf_counter()
        print(f"\n== {SCRIPTS[name]}.py", flush=True)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", f"bench.{SCRIPTS[name]}"],
                cwd=REPO, env=env, timeout=timeout, check=False,
            )  # fmt: skip
            exit_code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            exit_code = f"timed out after {timeout:.0f} s"
        lines = Path(sink.name).read_text().splitlines()
    keys = ("name", "value", "unit", "target", "direction")
    figures = [Figure(*(json.loads(line)[k] for k in keys)) for line in lines]
    outcome = {"exit": exit_code, "seconds": round(time.perf_counter() - started, 1)}
    return figures, outcome


def format_value(value: float) -> str:
    if value != value:  # NaN: the measurement failed
        return "failed"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.1f}"


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table rows: script, figure, value, target, verdict."""
    rows = ["| script | figure | value | target | result |", "|---|---|---:|---|---|"]
    for name, result in results.items():
        if not result["figures"]:
            rows.append(f"| {name} | (no figures: exit {result['exit']}) | | | crashed |")
        for figure in result["figures"]:
            rows.append(
                f"| {name} | {figure['name']} | {format_value(figure['value'])} {figure['unit']} "
                f"| {figure['target_text']} | {figure['verdict']} |"
            )
        if result["figures"] and result["exit"] != 0:
            rows.append(f"| {name} | (the script then failed: exit {result['exit']}) | | | |")
    return rows


def machine_line(report: dict[str, Any]) -> str:
    m = report["machine"]
    load = report["load_average"]
    return (
        f"{report['finished_at'][:16].replace('T', ' ')} UTC, git {report['git']}"
        f"{' (quick mode)' if report['quick'] else ''}: {m['cpu']}, {m['cores']} cores, "
        f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}; load average "
        f"{load['before'][0]:.2f} before, {load['after'][0]:.2f} after (1 min; the machine is "
        "shared, so figures are indicative)"
    ) + "".join(
        f"; {name} rerun at {rerun['finished_at'][11:16]} UTC (load "
        f"{rerun['load_average']['before'][0]:.2f}, git {rerun['git']})"
        for name, rerun in report.get("reruns", {}).items()
    )


def update_readme(rows: list[str], line: str, readme: Path = DOCS_PAGE) -> bool:
    """Replace the bench block of `readme` (docs/benchmarks.md; the name is from when the
    table lived in README.md); False when the page has no block."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = "\n".join([README_START, "", f"Last run: {line}.", "", *rows, "", README_END])
    readme.write_text(head + block + tail)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(SCRIPTS)}")
    parser.add_argument("--quick", action="store_true", help="small, fast runs (smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="reports folder")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per script")
    parser.add_argument(
        "--docs", "--readme", dest="docs", action="store_true",
        help="write the table into docs/benchmarks.md (--readme: the old name)",
    )  # fmt: skip
    parser.add_argument(
        "--from-json", type=Path, default=None, help="print a saved run's table; run nothing"
    )
    parser.add_argument(
        "--merge-into", type=Path, default=None,
        help="a saved run whose entries for the scripts run now are replaced (noted as reruns)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        rows, line = table(saved["scripts"]), machine_line(saved)
        print("\n".join(rows) + f"\n\n{line}")
        if args.docs:
            done = update_readme(rows, line)
            print(f"{DOCS_PAGE.name} updated" if done else f"{DOCS_PAGE.name} has no bench block")
        return 0
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCRIPTS)
    unknown = [n for n in chosen if n not in SCRIPTS]
    if unknown:
        parser.error(f"unknown script {', '.join(unknown)}; known: {', '.join(SCRIPTS)}")
    out = args.out or DataPaths.from_env(default=REPO / "data").reports / "bench"

    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    for name in chosen:
        figures, outcome = run_script(name, args.quick, args.timeout)
        results[name] = {**outcome, "figures": [f.to_dict() for f in figures]}
    finished_at = datetime.now(UTC)
    report = {
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "quick": args.quick,
        "git": git_revision(),
        "machine": machine(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "scripts": results,
    }
    if args.merge_into is not None:
        saved = json.loads(args.merge_into.read_text())
        saved["scripts"].update(results)
        for name in chosen:
            saved.setdefault("reruns", {})[name] = {
                "finished_at": report["finished_at"],
                "git": report["git"],
                "load_average": report["load_average"],
            }
        report = saved
    rows = table(report["scripts"])
    line = machine_line(report)
    print("\n" + "\n".join(rows) + f"\n\n{line}")
    out.mkdir(parents=True, exist_ok=True)
    stamp = finished_at.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2) + "\n"
    (out / f"bench-{stamp}.json").write_text(text)
    (out / "latest.json").write_text(text)
    print(f"written: {out / f'bench-{stamp}.json'} and latest.json")
    if args.docs:
        done = update_readme(rows, line)
        print(
            f"{DOCS_PAGE.name} updated" if done else f"{DOCS_PAGE.name} has no {README_START} block"
        )
    crashed = [n for n, r in results.items() if r["exit"] != 0]
    if crashed:
        print(f"scripts that failed: {', '.join(crashed)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
