"""Run the reliability drills: `python -m drills.run [DRILL ...] [--quick]` (`make drills`).

Each drill prints what it tried and what it found; each writes
`$BTCFS_DATA_DIR/reports/drills/<drill>-<UTC time>.json`, and the run a summary
(`summary-<time>.json` and `latest.json`). Exit status 1 when any drill failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from core.settings import DataPaths
from drills._common import REPO, Context, Record, Stopwatch, save, timestamp

#: Drill name -> module; the order `make drills` runs them in (cheap ones first).
DRILLS = {
    "diskfull": "drills.diskfull",
    "corrupt-parquet": "drills.corrupt",
    "kill9": "drills.kill9",
    "faultstorm": "drills.faultstorm",
    "fuzz-parsers": "drills.fuzz",
    "secrets": "drills.secretscan",
    "security": "drills.security",
    "corrupt-serve": "drills.corrupt",
    "fuzz-api": "drills.fuzz",
    "api-load": "drills.apiload",
    "live-kill9": "drills.live",
    "live-outage": "drills.live",
    "live-memory": "drills.live",
}
#: Drills whose module holds more than one: the function each name calls.
FUNCTIONS = {
    "corrupt-parquet": "parquet_drill",
    "corrupt-serve": "serve_drill",
    "fuzz-parsers": "parsers_drill",
    "fuzz-api": "api_drill",
    "live-kill9": "kill9_drill",
    "live-outage": "outage_drill",
    "live-memory": "memory_drill",
}


def drill_function(name: str) -> Callable[[Context], Record]:
    module = importlib.import_module(DRILLS[name])
    function: Callable[[Context], Record] = getattr(module, FUNCTIONS.get(name, "drill"))
    return function


def reports_dir() -> Path:
    return DataPaths.from_env(default=REPO / "data").reports / "drills"


def run_one(name: str, work: Path, *, quick: bool, seed: int) -> Record:
    work.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    try:
        record = drill_function(name)(Context(work, quick=quick, seed=seed))
    except Exception as exc:  # a drill that crashes is a failed drill, reported, not fatal
        record = Record(name, "crashed")
        record.expect(False, f"the drill itself crashed: {str(exc)[-1500:]!r}")
        record.found.append(traceback.format_exc()[-4000:])
    record.seconds = round(watch.seconds(), 1)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("drills", nargs="*", help=f"some of: {', '.join(DRILLS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--seed", type=int, default=20, help="random kill points, fuzz seeds")
    parser.add_argument("--out", type=Path, default=None, help="reports folder")
    parser.add_argument("--keep", type=Path, default=None, help="keep work files in this folder")
    args = parser.parse_args(argv)
    names = [n for chosen in args.drills for n in chosen.replace(",", " ").split()] or list(DRILLS)
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        parser.error(f"unknown drill {', '.join(unknown)}; known: {', '.join(DRILLS)}")
    out = args.out or reports_dir()
    stamp = timestamp()
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="btcfs-drills-") as scratch:
        work = args.keep or Path(scratch)
        for name in names:
            print(f"\n== drill {name}", flush=True)
            record = run_one(name, work / name, quick=args.quick, seed=args.seed)
            records.append(record)
            path = save(record, out, stamp)
            verdict = "PASS" if record.passed else f"FAIL ({len(record.failures)})"
            print(f"== {name}: {verdict} in {record.seconds:.0f} s -> {path}", flush=True)
    summary = {
        "at": stamp,
        "quick": args.quick,
        "machine": f"{platform.node()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
        "drills": {
            r.name: {
                "passed": r.passed,
                "seconds": r.seconds,
                "title": r.title,
                "failures": r.failures,
            }
            for r in records
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2) + "\n"
    (out / f"summary-{stamp}.json").write_text(text)
    (out / "latest.json").write_text(text)
    print("\ndrill            result  seconds")
    for record in records:
        print(f"{record.name:<16} {'pass' if record.passed else 'FAIL':<7} {record.seconds:>7.0f}")
    return 0 if all(r.passed for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
