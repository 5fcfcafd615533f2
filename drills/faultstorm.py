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
from ingest.verify import lake_fingerprint
from replay import ReplayServer

NAME = "faultstorm"
TITLE = "fault storm and a ban from the replay server"
FAULTS = "429=0.1,5xx=0.05,truncate=0.02,slow=0.01"
# The CLI's HTTP timeout is 30 s: a "slow" response takes longer than that.
SLOW_S = 31.0
BAN_S = 4.0


def drill(ctx: Context) -> Record:
    record = Record(NAME, TITLE)
    days = 2 if ctx.quick else 14
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
    record.expect(
        bool(stats["faults"].get("429")) and bool(stats["faults"].get("5xx") or ctx.quick),
        "429s and 5xx were injected",
    )
    rare = [kind for kind in ("truncate", "slow") if not stats["faults"].get(kind)]
    if rare:
        # At these rates a few hundred requests may draw none: a focused storm makes sure.
        focused = "truncate=0.25,slow=0.05"
        record.tried_(f"{', '.join(rare)} not drawn: the same again under --faults {focused}")
        with ReplayServer(data, now=NOW, faults=focused, slow_delay=SLOW_S, seed=ctx.seed) as url:
            again = run(ingest_all(url, config), cli_env(ctx.work / "focused"))
            focused_stats = httpx.get(f"{url}/__replay/stats").json()
        same = again.returncode == 0 and lake_fingerprint(ctx.work / "focused" / "lake") == expected
        record.expect(
            same and all(focused_stats["faults"].get(kind) for kind in rare),
            f"injected {focused_stats['faults']}: exit {again.returncode}, the lake equals the "
            "calm run's",
        )
        stats["focused"] = focused_stats["faults"]

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
        # Up to 4 requests per client are in flight together when the first 418 comes back.
        record.expect(
            ban_stats["banned_requests"] <= 12,
            f"{ban_stats['banned_requests']} requests reached the server during the ban "
            "(in flight together; a 418 is never retried)",
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
        "focused_storm": stats.get("focused"),
        "responses": stats["responses"],
        "retry_after_violations": stats["retry_after_violations"],
        "bans_during_storm": stats["bans"],
        "requests_during_ban": ban_stats["banned_requests"],
    }
    return record
