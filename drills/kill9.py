"""kill -9 at random moments of a real `btcfs ingest all`, each followed by a rerun: the lake
equals an uninterrupted run's by MANIFEST every time, with no temporary file left over."""

from __future__ import annotations

import random
import subprocess
import time

from drills._common import (
    DATASETS,
    NOW,
    REPO,
    Context,
    Record,
    Stopwatch,
    cli_env,
    finished_partitions,
    ingest_all,
    ingest_config,
    market,
    run,
)
from ingest.verify import lake_fingerprint, verify_lake
from replay import ReplayServer

NAME = "kill9"
TITLE = "kill -9 at random points of an ingest, then rerun"


def drill(ctx: Context) -> Record:
    record = Record(NAME, TITLE)
    days = 2 if ctx.quick else 7
    points = 3 if ctx.quick else 20
    rng = random.Random(ctx.seed)
    config = ingest_config(ctx.work / "ingest.yml", days, DATASETS)
    with ReplayServer(market(days), now=NOW) as url:
        clean = ctx.work / "clean"
        watch = Stopwatch()
        proc = run(ingest_all(url, config), cli_env(clean))
        clean_s = watch.seconds()
        if not record.expect(proc.returncode == 0, "the uninterrupted ingest succeeds"):
            record.found_(proc.stderr[-2000:])
            return record
        expected = lake_fingerprint(clean / "lake")
        record.tried_(
            f"an uninterrupted `btcfs ingest all` of {len(DATASETS)} datasets x {days} days "
            f"from the replay server: {len(expected)} partitions in {clean_s:.1f} s"
        )
        record.tried_(
            f"{points} runs killed with SIGKILL at random points (after a random number of "
            "finished partitions, plus 0-50 ms), each followed by a rerun"
        )
        outcomes = []
        for attempt in range(points):
            data_dir = ctx.work / f"killed-{attempt}"
            # A random point in the run's progress: once `after` partitions are finished,
            # a random few ms later (inside the next fetch, parse or write).
            after = rng.randrange(len(expected))
            delay = rng.uniform(0, 0.05)
            process = subprocess.Popen(
                ingest_all(url, config), cwd=REPO, env=cli_env(data_dir),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            watch = Stopwatch()
            while process.poll() is None and finished_partitions(data_dir) < after:
                time.sleep(0.002)
            time.sleep(delay)
            moment = watch.seconds()
            lake = data_dir / "lake"
            done = finished_partitions(data_dir)
            temporary = len(list(lake.rglob(".*.tmp"))) if lake.exists() else 0
            process.kill()
            process.wait()
            killed = process.returncode == -9
            rerun = run(ingest_all(url, config), cli_env(data_dir))
            same = rerun.returncode == 0 and lake_fingerprint(lake) == expected
            leftovers = list(lake.rglob(".*.tmp"))
            intact = verify_lake(lake)
            outcome = {
                "kill_at_s": round(moment, 3),
                "after_partitions": after,
                "killed": killed,
                "finished_partitions_at_kill": done,
                "temporary_files_at_kill": temporary,
                "rerun_exit": rerun.returncode,
                "equal_by_manifest": same,
                "temporary_files_after": len(leftovers),
                "damaged_after": len(intact.problems),
            }
            outcomes.append(outcome)
            state = f"{done}/{len(expected)} partitions finished" if killed else "had already ended"
            record.expect(
                same and not leftovers and intact.ok,
                f"kill {attempt + 1:>2} at {moment:5.2f} s ({state}, {temporary} temp files): "
                f"rerun exit {rerun.returncode}, lake equal by manifest: {same}, "
                f"temp files left: {len(leftovers)}, damaged files: {len(intact.problems)}",
            )
    mid_write = sum(o["killed"] and 0 < o["finished_partitions_at_kill"] < len(expected)
                    for o in outcomes)  # fmt: skip
    record.figures = {
        "days": days,
        "partitions": len(expected),
        "clean_run_s": round(clean_s, 2),
        "kills": points,
        "kills_mid_ingest": mid_write,
        "reruns_equal": sum(o["equal_by_manifest"] for o in outcomes),
        "outcomes": outcomes,
    }
    record.expect(mid_write > 0, f"{mid_write} of {points} kills landed between partitions")
    return record
