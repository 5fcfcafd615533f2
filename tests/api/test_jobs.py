"""Pipeline jobs end to end: a real `btcfs serve` starts real worker processes that run the
real CLI (replay server -> btcfs ingest -> dbt build -> btcfs qa -> btcfs train -> promote
-> btcfs publish) in the test's own data folder. Also: a failed QA gate and a failed
promotion gate publish and promote nothing, two racing requests (one 202, one 409), a
worker killed with SIGKILL, and an API restarted while its job runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.api.apipipeline import TRAIN_CONFIG, open_files
from tests.api.jobfixtures import (
    AUTH,
    SECRET,
    Api,
    Market,
    all_params,
    api_server,
    ingest_config,
    replay,
    sha256,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.dbt]

FINAL = ("succeeded", "failed")


@pytest.fixture(scope="module")
def market_url() -> Iterator[str]:
    with replay(Market()) as url:
        yield url


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, market_url: str
) -> Iterator[tuple[Api, dict[str, Any]]]:
    """One `all` job through the API on a fresh data folder; the API stays up."""
    root = tmp_path_factory.mktemp("jobs_all")
    with api_server(root) as api:
        started = api.start("all", all_params(root, market_url))
        assert started.status_code == 202, started.text
        assert started.headers["location"] == f"/v1/jobs/{started.json()['id']}"
        # While dbt writes build.duckdb, the API (polled all along) never opens it.
        build = str(root / "warehouse" / "build.duckdb")
        held: set[str] = set()
        while (job := api.job(started.json()["id"], lines=0))["state"] not in FINAL:
            held |= {path for path in open_files(api.process.pid) if path.startswith(build)}
            time.sleep(0.2)
        assert not held, held
        yield api, api.job(job["id"])


def production(root: Path, model: str = "btcusdt_5m") -> str | None:
    stages = json.loads((root / "registry" / model / "stages.json").read_text())
    return stages.get("production")


# --------------------------------------------------------------------------- all


def test_the_all_pipeline_runs_through_the_api(published: tuple[Api, dict[str, Any]]) -> None:
    api, job = published
    assert job["state"] == "succeeded", job
    assert [(s["name"], s["state"]) for s in job["steps"]] == [
        ("ingest", "succeeded"), ("build", "succeeded"), ("qa", "succeeded"),
        ("train", "succeeded"), ("promote", "succeeded"), ("publish", "succeeded"),
    ]  # fmt: skip
    assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in job["steps"])
    assert job["error"] is None and job["failed_gate"] is None
    result = job["result"]
    # Rows landed: every partition of the four datasets is new in this folder.
    landed = result["ingest"]
    assert landed["rows_landed"] > 12 * 1440 and landed["partitions_written"] >= 4 * 12
    assert {"binance/spot_klines", "binance/perp_klines"} <= set(landed["datasets"])
    # Gates: all passed, and they are the build that got published.
    assert result["gates"]["failed"] == [] and result["gates"]["passed"] > 20
    assert result["published"]["dbt_invocation_id"] == result["gates"]["invocation_id"]
    # The model: trained, passed its gates, promoted, pinned by the publish.
    model = result["model"]
    assert model["stage"] == "production" and model["gates_passed"]
    assert production(api.root) == model["version"]
    assert result["published"]["model_version"] == model["version"]

    # The API serves what the job published (it reattaches by itself).
    def serving() -> dict[str, Any] | None:
        health: dict[str, Any] = httpx.get(f"{api.url}/health", timeout=30).json()
        return health if health["dbt_invocation_id"] == result["gates"]["invocation_id"] else None

    health = wait_for(serving, "the API serving the published build")
    assert health["model_version"] == model["version"]
    # The log: each step's command, no secret.
    log = api.job(job["id"], lines=500)["log"]
    assert log[-1] == f"== job {job['id']} succeeded"
    assert any(line.startswith("$ ") and "dbt build" in line for line in log)
    listed = httpx.get(f"{api.url}/v1/jobs?lines=0", headers=AUTH, timeout=30).json()
    assert listed["active"] is None and listed["jobs"][0]["id"] == job["id"]
    log_file = api.root / "state" / "jobs" / f"{job['id']}.log"
    assert SECRET not in log_file.read_text() and SECRET not in json.dumps(listed)


def test_forecast_answers_at_once_or_retrains_as_a_job(
    published: tuple[Api, dict[str, Any]],
) -> None:
    api, job = published
    assert job["state"] == "succeeded"
    served = httpx.get(f"{api.url}/v1/forecast?steps=6", timeout=30).json()
    direct = httpx.post(f"{api.url}/v1/forecast", json={"steps": 6}, timeout=30)
    assert direct.status_code == 200 and direct.json() == served
    assert httpx.post(f"{api.url}/v1/forecast", json={"retrain": True}).status_code == 401
    before = production(api.root)
    started = httpx.post(
        f"{api.url}/v1/forecast",
        json={"horizon": "5m", "steps": 6, "retrain": True,
              "train": {"config": str(TRAIN_CONFIG)}},
        headers=AUTH, timeout=60,
    )  # fmt: skip
    assert started.status_code == 202, started.text
    done = api.wait(started.json()["id"])
    assert done["state"] == "succeeded", done
    assert [s["name"] for s in done["steps"]] == ["check", "train", "promote", "publish", "predict"]
    version = done["result"]["model"]["version"]
    assert version != before and production(api.root) == version
    forecast = done["result"]["forecast"]
    assert forecast["model_version"] == version and len(forecast["path"]) == 6
    # The job published the new model: GET answers with it too.
    wait_for(
        lambda: (
            httpx.get(f"{api.url}/v1/forecast?steps=6", timeout=30).json()["model_version"]
            == version
        ),
        "the API serving the retrained model",
    )


def test_a_failed_promotion_gate_promotes_and_publishes_nothing(
    published: tuple[Api, dict[str, Any]],
) -> None:
    api, _ = published
    strict = api.root / "strict_train.yml"
    strict.write_text(TRAIN_CONFIG.read_text() + "gates: {regression: {rank_ic_min: 0.99}}\n")
    before, serve = production(api.root), api.root / "warehouse" / "serve.duckdb"
    digest = sha256(serve)
    started = api.start("train", {"config": str(strict)})
    assert started.status_code == 202, started.text
    job = api.wait(started.json()["id"])
    assert job["state"] == "failed" and job["step"] == "promote"
    gate = job["failed_gate"]
    assert gate["kind"] == "promotion" and any("rank_ic" in name for name in gate["names"])
    assert "promotion gate failed" in job["error"]
    assert job["result"]["model"]["stage"] == "rejected"
    assert production(api.root) == before and sha256(serve) == digest


# --------------------------------------------------------------------------- QA gate


def test_a_failed_qa_gate_publishes_nothing(
    published: tuple[Api, dict[str, Any]], tmp_path: Path
) -> None:
    """A lake with three hours missing from one day: the gap gate fails the build, the job
    stops there, and the served file and the production model are left as they were."""
    source, _ = published
    root = tmp_path / "gapped"
    (root / "warehouse").mkdir(parents=True)
    shutil.copy2(source.root / "warehouse" / "serve.duckdb", root / "warehouse" / "serve.duckdb")
    shutil.copytree(source.root / "registry", root / "registry")
    serve = root / "warehouse" / "serve.duckdb"
    digest, before = sha256(serve), production(root)
    with replay(Market(gap=True)) as url, api_server(root) as api:
        health = httpx.get(f"{api.url}/health", timeout=30).json()
        started = api.start("all", all_params(root, url))
        assert started.status_code == 202, started.text
        job = api.wait(started.json()["id"])
        assert job["state"] == "failed" and job["step"] == "build", job
        gate = job["failed_gate"]
        assert gate["kind"] == "qa" and any("gap" in name for name in gate["names"]), gate
        assert job["error"].startswith("QA gate failed")
        assert [s["state"] for s in job["steps"]] == [
            "succeeded", "failed", "pending", "pending", "pending", "pending"
        ]  # fmt: skip
        assert sha256(serve) == digest and production(root) == before
        after = httpx.get(f"{api.url}/health", timeout=30).json()
        assert after["published_at"] == health["published_at"]
        assert after["dbt_invocation_id"] == health["dbt_invocation_id"]
        qa = httpx.get(f"{api.url}/v1/qa", timeout=30).json()
        assert qa["last_build"]["failed"] and not qa["published"]["failed"]


# --------------------------------------------------------------------------- races, deaths


def test_two_concurrent_requests_one_runs_one_is_refused(tmp_path: Path) -> None:
    market = Market()
    with replay(market) as url, api_server(tmp_path) as api:
        market.hold()  # the first job's ingest waits on the market: it is surely running
        params = {"config": str(ingest_config(tmp_path)), "base_url": url}
        answers: list[httpx.Response] = []
        barrier = threading.Barrier(2)

        def post() -> None:
            barrier.wait()
            answers.append(api.start("ingest", params))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
        accepted = next(a for a in answers if a.status_code == 202).json()
        refused = next(a for a in answers if a.status_code == 409).json()
        assert refused["extra"]["running_job"] == accepted["id"]
        assert f"job {accepted['id']} (ingest)" in refused["detail"]
        # A third, once it runs, is refused too; after it ends the next one is accepted.
        api.wait(accepted["id"], until="running")
        assert api.start("build").status_code == 409
        market.release()
        assert api.wait(accepted["id"])["state"] == "succeeded"
        again = api.start("ingest", params)
        assert again.status_code == 202
        assert api.wait(again.json()["id"])["state"] == "succeeded"


def test_a_killed_worker_fails_its_job_with_the_reason(tmp_path: Path) -> None:
    market = Market()
    with replay(market) as url, api_server(tmp_path) as api:
        market.hold()
        started = api.start("ingest", {"config": str(ingest_config(tmp_path)), "base_url": url})
        assert started.status_code == 202
        job_id = started.json()["id"]
        running = api.wait(job_id, until="running")
        worker = psutil.Process(running["pid"])
        step = wait_for(worker.children, "the worker's ingest process")
        os.kill(running["pid"], signal.SIGKILL)
        failed = wait_for(
            lambda: (job := api.job(job_id))["state"] == "failed" and job, "the job failed"
        )
        assert "killed by SIGKILL" in failed["error"] and failed["exit_code"] == -9
        assert failed["steps"][0]["state"] == "running"  # it died in the middle of it
        # The step died with its worker (nothing left writing the lake).
        wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                                 for p in step), "the ingest process gone")  # fmt: skip
        market.release()
        # The lock went with the dead job.
        again = api.start("ingest", {"config": str(ingest_config(tmp_path)), "base_url": url})
        assert again.status_code == 202, again.text
        assert api.wait(again.json()["id"])["state"] == "succeeded"


def test_a_job_outlives_an_api_restart(tmp_path: Path) -> None:
    market = Market()
    params = {"config": str(ingest_config(tmp_path)), "base_url": ""}
    with replay(market) as url:
        params["base_url"] = url
        market.hold()
        with api_server(tmp_path) as first:
            started = first.start("ingest", params)
            assert started.status_code == 202
            job_id = started.json()["id"]
            pid = first.wait(job_id, until="running")["pid"]
            first_process = first.process
        assert first_process.poll() is not None  # the API is gone ...
        assert psutil.pid_exists(pid)  # ... its worker is not
        with api_server(tmp_path) as second:
            assert second.job(job_id)["state"] == "running"
            market.release()
            done = second.wait(job_id)
            assert done["state"] == "succeeded" and done["result"]["ingest"]["rows_landed"] > 0
            # A worker that dies while no API is up is failed by the next API at start-up.
            market.hold()
            started = second.start("ingest", params)
            assert started.status_code == 202
            next_id = started.json()["id"]
            next_pid = second.wait(next_id, until="running")["pid"]
        os.kill(next_pid, signal.SIGKILL)
        wait_for(lambda: not _alive(next_pid), "the killed worker gone")
        with api_server(tmp_path) as third:
            # Read the row itself (no request has been made): start-up already failed it.
            row = _row(tmp_path, next_id)
            assert row["state"] == "failed", row
            assert f"pid {next_pid}" in row["error"], row
            assert third.job(next_id)["state"] == "failed"
        market.release()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _row(root: Path, job_id: int) -> dict[str, Any]:
    con = sqlite3.connect(root / "state" / "paper.sqlite")
    try:
        con.row_factory = sqlite3.Row
        return dict(con.execute("select * from jobs where id = ?", (job_id,)).fetchone())
    finally:
        con.close()


def test_a_worker_sent_sigterm_stops_its_step_and_says_so(tmp_path: Path) -> None:
    market = Market()
    with replay(market) as url, api_server(tmp_path) as api:
        market.hold()
        started = api.start("ingest", {"config": str(ingest_config(tmp_path)), "base_url": url})
        running = api.wait(started.json()["id"], until="running")
        step = wait_for(psutil.Process(running["pid"]).children, "the worker's ingest process")
        os.kill(running["pid"], signal.SIGTERM)
        done = api.wait(running["id"])
        assert done["state"] == "failed" and done["step"] == "ingest"
        assert done["error"] == "cancelled: the worker received SIGTERM"
        assert done["steps"][0]["state"] == "failed"
        assert done["log"][-1] == f"== job {running['id']} failed: {done['error']}"
        wait_for(lambda: not any(_alive(p.pid) for p in step), "the ingest process gone")
