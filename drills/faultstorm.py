"""A fault storm from the replay server (429 with Retry-After, 5xx, truncated bodies,
responses slower than the client's timeout) and an IP ban: `btcfs ingest all` lands the same
lake as in calm weather, never comes back before a Retry-After, and stops on a ban."""

from __future__ import annotations

import time

import httpx

from drills._common import (
    DATASETS,
    NOW,
    Context,
    Record,
    Stopwatch,
    cli_env,
    ingest_all,
    ingest_config,
    market,
    run,
)
from ingest.replay import ReplayServer
from ingest.verify import lake_fingerprint

NAME = "faultstorm"
TITLE = "fault storm and a ban from the replay server"
FAULTS = "429=0.1,5xx=0.05,truncate=0.02,slow=0.01"
# The CLI's HTTP timeout is 30 s: a "slow" response takes longer than that.
SLOW_S = 31.0
BAN_S = 4.0


def drill(ctx: Context) -> Record:
    record = Record(NAME, TITLE)
    days = 2 if ctx.quick else 7
    config = ingest_config(ctx.work / "ingest.yml", days, DATASETS)
    data = market(days)
    command_note = f"`btcfs ingest all` ({len(DATASETS)} datasets x {days} days, archive + REST)"

    with ReplayServer(data, now=NOW) as url:
        watch = Stopwatch()
        calm = run(ingest_all(url, config), cli_env(ctx.work / "calm"))
        calm_s = watch.seconds()
        calm_requests = httpx.get(f"{url}/__replay/stats").json()["requests"]
    if not record.expect(calm.returncode == 0, f"{command_note} in calm weather succeeds"):
        record.found_(calm.stderr[-2000:])
        return record
    expected = lake_fingerprint(ctx.work / "calm" / "lake")
    record.tried_(f"{command_note} without faults: {len(expected)} partitions, "
                  f"{calm_requests} requests, {calm_s:.1f} s")  # fmt: skip

    server = ReplayServer(data, now=NOW, faults=FAULTS, slow_delay=SLOW_S, seed=ctx.seed)
    with server as url:
        record.tried_(f"the same under --faults {FAULTS} (slow = {SLOW_S:.0f} s, past the 30 s "
                      f"client timeout), seed {ctx.seed}")  # fmt: skip
        watch = Stopwatch()
        storm = run(ingest_all(url, config), cli_env(ctx.work / "storm"))
        storm_s = watch.seconds()
        stats = httpx.get(f"{url}/__replay/stats").json()
    record.found_(
        f"{stats['requests']} requests in {storm_s:.1f} s; injected {stats['faults']}; "
        f"responses {stats['responses']}"
    )
    same = storm.returncode == 0 and lake_fingerprint(ctx.work / "storm" / "lake") == expected
    record.expect(same, f"exit {storm.returncode}; the lake equals the calm run's by manifest")
    record.expect(
        stats["retry_after_violations"] == 0 and stats["bans"] == 0,
        f"Retry-After broken {stats['retry_after_violations']} times, bans {stats['bans']}",
    )
    kinds = ("429",) if ctx.quick else ("429", "5xx", "truncate")
    missing = [kind for kind in kinds if not stats["faults"].get(kind)]
    record.expect(not missing, f"every fault kind was exercised (not: {missing or 'none'})")
    if not stats["faults"].get("slow"):
        record.found_("no request drew a slow response at this size (1 % of requests)")

    record.tried_(f"an IP banned for {BAN_S:.0f} s (HTTP 418 with Retry-After), then a rerun")
    with ReplayServer(data, now=NOW, banned_for=BAN_S) as url:
        banned = run(ingest_all(url, config), cli_env(ctx.work / "banned"))
        ban_stats = httpx.get(f"{url}/__replay/stats").json()
        said = " | ".join(line for line in banned.stderr.splitlines() if line.strip())
        record.expect(
            banned.returncode == 1 and "banned" in said.lower() and "until" in said.lower()
            and "Traceback" not in said,
            f"the banned run stops (exit {banned.returncode}), saying: {said[:300]!r}",
        )  # fmt: skip
        record.expect(
            ban_stats["banned_requests"] <= 3,
            f"{ban_stats['banned_requests']} requests were sent during the ban (no retries)",
        )
        time.sleep(BAN_S + 0.5)
        after = run(ingest_all(url, config), cli_env(ctx.work / "banned"))
        record.expect(
            after.returncode == 0 and lake_fingerprint(ctx.work / "banned" / "lake") == expected,
            f"after the ban the rerun exits {after.returncode} and equals the calm lake",
        )
    record.figures = {
        "days": days,
        "partitions": len(expected),
        "calm_s": round(calm_s, 1),
        "storm_s": round(storm_s, 1),
        "calm_requests": calm_requests,
        "storm_requests": stats["requests"],
        "injected": stats["faults"],
        "responses": stats["responses"],
        "retry_after_violations": stats["retry_after_violations"],
        "bans_during_storm": stats["bans"],
        "requests_during_ban": ban_stats["banned_requests"],
    }
    return record
