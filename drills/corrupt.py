"""Damaged files: a lake Parquet file and the published serve.duckdb.

Parquet: bytes flipped inside one day's file, another day's file truncated. `btcfs lake
verify` names both; rerunning the ingest (with --force, or after `lake verify --repair`)
restores the lake exactly. serve.duckdb: truncated or flipped while `btcfs serve` runs and
before it starts; every answer is either the right one or an error, /health says so, and
`btcfs publish` brings the API back without a restart.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

from drills._api import live_server, published
from drills._common import BTCFS, NOW, Context, Record, cli_env, first_day, market, run
from ingest.verify import lake_fingerprint
from lake.store import PART_FILE
from replay import ReplayServer

PARQUET = "corrupt-parquet"
SERVE = "corrupt-serve"


def flip(path: Path, count: int, rng: random.Random, skip: int = 0) -> None:
    """Invert `count` bytes at random offsets past `skip` (the file keeps its size)."""
    data = bytearray(path.read_bytes())
    for offset in rng.sample(range(skip, len(data)), count):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: int | None = None) -> None:
    """Cut the file to `keep` bytes (default: half)."""
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2 if keep is None else keep)


# ------------------------------------------------------------------------------ Parquet


def _ingest(url: str, *extra: str) -> list[str]:
    return [BTCFS, "ingest", "binance", "--dataset", "spot-klines", "--interval", "1m",
            "--start", first_day(DAYS).isoformat(), "--base-url", url, "--archive", "none",
            "--no-progress", *extra]  # fmt: skip


DAYS = 4


def _read(path: Path) -> str:
    """What a DuckDB reader (dbt's staging views use read_parquet) makes of one file."""
    con = duckdb.connect()
    try:
        sql = "select count(*), sum(close), sum(volume) from read_parquet(?)"
        row = con.execute(sql, [str(path)]).fetchone()
        return f"rows {row[0]}, sum(close) {row[1]}, sum(volume) {row[2]}" if row else "no rows"
    except duckdb.Error as exc:
        return f"error: {str(exc).splitlines()[0][:300]}"
    finally:
        con.close()


def parquet_drill(ctx: Context) -> Record:
    record = Record(PARQUET, "a damaged lake Parquet file")
    rng = random.Random(ctx.seed)
    data_dir = ctx.work / "data"
    env = cli_env(data_dir)
    with ReplayServer(market(DAYS), now=NOW) as url:
        landed = run(_ingest(url), env)
        if not record.expect(landed.returncode == 0, f"{DAYS} days of spot 1m klines land"):
            record.found_(landed.stderr[-2000:])
            return record
        lake = data_dir / "lake"
        expected = lake_fingerprint(lake)
        parts = sorted(lake.rglob(PART_FILE))
        parts = [p for p in parts if "_quarantine" not in p.parts]
        flipped, cut = parts[0], parts[1]
        before = {p: _read(p) for p in (flipped, cut)}
        flip(flipped, 16, rng, skip=4)
        truncate(cut)
        record.tried_(f"16 bytes flipped in {flipped}")
        record.tried_(f"truncated to half: {cut}")
        for path in (flipped, cut):
            after = _read(path)
            silent = not after.startswith("error") and after != before[path]
            record.found_(
                f"read_parquet of {path.parent.name}: {after}"
                + (" -- a WRONG ANSWER without an error: only the sha256 check catches it"
                   if silent else "")
            )  # fmt: skip
        status = run([BTCFS, "lake", "status", "--json"], env)
        record.found_(
            "`btcfs lake status` reads MANIFESTs only and "
            + ("names a damaged file" if str(flipped) in status.stdout else "does not notice")
        )
        verify = run([BTCFS, "lake", "verify"], env)
        record.expect(
            verify.returncode == 1 and str(flipped) in verify.stderr and str(cut) in verify.stderr,
            f"`btcfs lake verify` exits {verify.returncode} naming both files: "
            + " | ".join(verify.stderr.strip().splitlines())[:400],
        )
        forced = run(_ingest(url, "--force"), env)
        check = run([BTCFS, "lake", "verify"], env)
        record.expect(
            forced.returncode == 0 and check.returncode == 0 and lake_fingerprint(lake) == expected,
            "`btcfs ingest binance … --force` rewrites both days: verify passes, the lake "
            "equals the original by manifest",
        )
        flip(flipped, 16, rng, skip=4)
        record.tried_("flipped again; then `btcfs lake verify --repair` and a plain rerun")
        repaired = run([BTCFS, "lake", "verify", "--repair"], env)
        rerun = run(_ingest(url), env)
        check = run([BTCFS, "lake", "verify"], env)
        record.expect(
            repaired.returncode == 1
            and rerun.returncode == 0
            and check.returncode == 0
            and lake_fingerprint(lake) == expected,
            "repair moves the file aside and unmarks the day; the plain rerun relands it: "
            "verify passes, the lake equals the original",
        )
    record.figures = {"days": DAYS, "partitions": len(expected)}
    return record


# ------------------------------------------------------------------------------ serve.duckdb

#: Endpoints whose answers must not change while the file is damaged (or must fail); the
#: quick mode's hand-made marts have too few columns for bars.
PATHS = ("/v1/bars?limit=50", "/v1/bars?interval=1h&limit=24", "/v1/qa")
QUICK_PATHS = ("/v1/qa", "/v1/models")
#: Asked only while the file is damaged (nothing of them is cached yet), then compared with
#: the answer after the next publish: the right one or an error, never another.
UNSEEN = ("/v1/bars?interval=15m&limit=5000", "/v1/bars?interval=4h&limit=5000",
          "/v1/features?interval=1h&limit=5000")  # fmt: skip


def _answers(client: httpx.Client, paths: tuple[str, ...]) -> dict[str, tuple[int, Any]]:
    out: dict[str, tuple[int, Any]] = {}
    for path in ("/health", *paths):
        response = client.get(path)
        out[path] = (response.status_code, response.text)
    return out


def _judge(
    record: Record,
    label: str,
    got: dict[str, tuple[int, Any]],
    good: dict[str, tuple[int, Any]],
    serve: Path,
) -> dict[str, int]:
    """Each answer is the right one or an error naming the file; never another 200."""
    statuses = {path: status for path, (status, _) in got.items()}
    for path in good:
        if path == "/health":
            continue
        status, body = got[path]
        if status == 200:
            record.expect(body == good[path][1], f"{label}: {path} -> 200, the right answer")
        else:
            record.expect(status >= 400, f"{label}: {path} -> {status} (an error, no wrong answer)")
            if status >= 500:
                record.expect(str(serve) in body, f"{label}: {path} names the file: {body[:200]}")
    health_status, health = got["/health"]
    record.found_(f"{label}: /health -> {health_status} {health[:300]}")
    return statuses


def serve_drill(ctx: Context) -> Record:
    record = Record(SERVE, "a damaged serve.duckdb")
    rng = random.Random(ctx.seed)
    pipeline = published(ctx.work / "pipeline", quick=ctx.quick)
    serve = pipeline.serve
    paths = QUICK_PATHS if ctx.quick else PATHS
    results: dict[str, Any] = {}
    with (
        live_server(pipeline) as (url, _server),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        good = _answers(client, paths)
        bad = {path: answer for path, answer in good.items() if answer[0] != 200}
        record.expect(not bad, f"the API answers before damage {bad or ''}")
        for label, damage in (
            # Cut to its header blocks: every block not in DuckDB's cache is gone.
            ("truncated while serving", lambda p: truncate(p, keep=16384)),
            ("bytes flipped while serving", lambda p: flip(p, 64, rng, skip=16384)),
        ):
            damage(serve)
            record.tried_(f"serve.duckdb {label} ({serve.stat().st_size:,} bytes now)")
            time.sleep(0.5)  # the API stats the file on each request; give it a beat
            results[label] = _judge(record, label, _answers(client, paths), good, serve)
            if label.startswith("truncated"):
                health = client.get("/health")
                record.expect(
                    health.status_code == 200
                    and health.json()["status"] == "degraded"
                    and any(str(serve) in reason for reason in health.json()["reasons"]),
                    f"/health stays up, degraded, and names {serve}",
                )
            unseen = {} if ctx.quick else _answers(client, UNSEEN)
            pipeline.publish()
            if unseen:
                right = _answers(client, UNSEEN)
                results[label].update(
                    _judge(record, f"{label}, not read before", unseen, right, serve)
                )
            record.expect(
                _answers(client, paths) == good or _same_data(_answers(client, paths), good),
                f"after `btcfs publish` the running API answers right again ({label})",
            )
    truncate(serve)
    record.tried_("`btcfs serve` started on a truncated serve.duckdb")
    with (
        live_server(pipeline) as (url, _server),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        results["started on a truncated file"] = _judge(
            record, "started on a truncated file", _answers(client, paths), good, serve
        )
        got = client.get("/health")
        record.expect(
            got.status_code == 503 and str(serve) in got.text,
            f"/health is 503 and names {serve}",
        )
        pipeline.publish()
        record.expect(
            _same_data(_answers(client, paths), good),
            "`btcfs publish` brings the same server back without a restart",
        )
    record.figures = {"statuses": results, "quick": ctx.quick}
    return record


def _same_data(got: dict[str, tuple[int, Any]], good: dict[str, tuple[int, Any]]) -> bool:
    data = [path for path in good if path != "/health"]
    return all(got[path] == good[path] for path in data) and got["/health"][0] == 200
