"""Job records are the admin's: reading, cancelling, time limits and retention, against a
real `btcfs serve` and real worker processes. A slow step without a mock: `btcfs ingest
all` pointed at a loopback listener that never answers (the client waits out its read
timeout, 30 s, far longer than any test here waits)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from api.jobs import JobStore
from api.settings import STEP_TIMEOUTS_S, ApiSettings
from api.worker import Run, StepTimedOut
from tests.api.apipipeline import ADMIN_TOKEN, free_port
from tests.api.jobfixtures import AUTH, Api, api_server, environment, ingest_config, stop, wait_for
from tests.ml.mlpipeline import BIN

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
USERINFO = "https://deploy:hunter2-password@vendor.example/api"


@contextmanager
def silent_listener() -> Iterator[str]:
    """A loopback port that takes connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=128) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def state_db(root: Path) -> Path:
    return root / "state" / "paper.sqlite"


def get(api: Api, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"{api.url}{path}", headers=AUTH if headers is None else headers, timeout=60)


def cancel(api: Api, job_id: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.delete(
        f"{api.url}/v1/jobs/{job_id}", headers=AUTH if headers is None else headers, timeout=60
    )


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def finished_job(store: JobStore, state: str = "failed", log: str = "", **params: Any) -> int:
    job = store.create("ingest", params)
    job.log_path.write_text(log)
    store.finish(job.id, state, error=f"{state} for the test")
    return job.id


def slow_ingest(api: Api, url: str) -> dict[str, Any]:
    """Start an ingest against the silent listener; the job once its step's process runs."""
    started = api.start("ingest", {"config": str(ingest_config(api.root)), "base_url": url})
    assert started.status_code == 202, started.text
    running = api.wait(started.json()["id"], until="running")
    wait_for(psutil.Process(running["pid"]).children, "the worker's ingest process")
    return running


# --------------------------------------------------------------------------- reading


def test_job_records_need_the_admin_token(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = JobStore(state_db(root))
    job_id = finished_job(
        store, log=f"GET {USERINFO}/klines\nfailed\n", base_url=USERINFO, config="/srv/x.yml"
    )
    with api_server(root) as api:
        for path in ("/v1/jobs", f"/v1/jobs/{job_id}", "/v1/jobs/999"):
            for headers in (
                {},
                {"Authorization": "Bearer not-the-token"},
                {"Authorization": ADMIN_TOKEN},  # no scheme
                {"Authorization": f"Basic {ADMIN_TOKEN}"},
            ):
                refused = get(api, path, headers)
                assert refused.status_code == 401, (path, headers, refused.text)
                assert refused.headers["www-authenticate"] == "Bearer"
                assert "/srv/x.yml" not in refused.text and "pid" not in refused.json()
        refused = cancel(api, job_id, {})
        assert refused.status_code == 401
        # With the token: the records, userinfo redacted in the params, the error and the log.
        listed = get(api, "/v1/jobs?lines=5")
        assert listed.status_code == 200 and [j["id"] for j in listed.json()["jobs"]] == [job_id]
        shown = get(api, f"/v1/jobs/{job_id}?lines=5").json()
        assert shown["params"]["base_url"] == "https://***@vendor.example/api"
        assert shown["log"][0] == "GET https://***@vendor.example/api/klines"
        text = json.dumps([listed.json(), shown])
        assert "hunter2" not in text and "deploy:" not in text
        assert get(api, "/v1/jobs/999").status_code == 404


@contextmanager
def serve(root: Path, **changes: str) -> Iterator[str]:
    """`btcfs serve` with environment entries changed (api_server cannot unset the token)."""
    env = {**environment(root), **changes}
    port = free_port()
    with (root / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [str(BIN / "btcfs"), "serve", "--port", str(port), "--log-level", "warning"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _up(url, process), "btcfs serve listening", timeout=120)
            yield url
        finally:
            stop(process)


def _up(url: str, process: subprocess.Popen[str]) -> bool:
    assert process.poll() is None, "btcfs serve exited"
    try:
        return httpx.get(f"{url}/static/favicon.svg", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_without_an_admin_token_job_records_are_off(tmp_path: Path) -> None:
    """Like POST /v1/jobs: 401 naming the setting, whatever token the caller sends."""
    root = tmp_path / "data"
    job_id = finished_job(JobStore(state_db(root)))
    with serve(root, BTCFS_ADMIN_TOKEN="") as url:
        for method, path in (
            ("GET", "/v1/jobs"),
            ("GET", f"/v1/jobs/{job_id}"),
            ("DELETE", f"/v1/jobs/{job_id}"),
            ("POST", "/v1/jobs"),
        ):
            refused = httpx.request(method, f"{url}{path}", headers=AUTH, json={}, timeout=60)
            assert refused.status_code == 401, (method, path, refused.text)
            assert "BTCFS_ADMIN_TOKEN" in refused.json()["detail"]


# --------------------------------------------------------------------------- cancel


def test_cancelling_a_running_job_stops_its_step(tmp_path: Path) -> None:
    with silent_listener() as url, api_server(tmp_path) as api:
        running = slow_ingest(api, url)
        job_id, worker = running["id"], running["pid"]
        step = psutil.Process(worker).children()
        stopping = cancel(api, job_id)
        assert stopping.status_code == 202, stopping.text
        assert stopping.json()["state"] == "running"
        assert stopping.json()["cancel_requested_at"] is not None
        done = api.wait(job_id, timeout=60)
        assert done["state"] == "cancelled", done
        requested = f"cancelled on request (DELETE /v1/jobs/{job_id}) during step ingest"
        assert done["error"] == requested
        assert done["steps"][0]["state"] == "cancelled" and done["finished_at"] is not None
        assert done["log"][-1] == f"== job {job_id} cancelled: {done['error']}"
        wait_for(lambda: not alive(worker), "the worker gone", timeout=60)
        wait_for(lambda: not any(alive(p.pid) for p in step), "the ingest process gone")
        # Already over: 409 naming the state; an unknown job: 404.
        again = cancel(api, job_id)
        assert again.status_code == 409 and again.json()["extra"]["state"] == "cancelled"
        assert cancel(api, 999).status_code == 404
        assert cancel(api, 0).status_code == 422
        # The one-active-job slot is free again.
        listed = get(api, "/v1/jobs").json()
        assert listed["active"] is None
        nxt = slow_ingest(api, url)
        assert cancel(api, nxt["id"]).status_code == 202
        assert api.wait(nxt["id"], timeout=60)["state"] == "cancelled"


def test_a_cancelled_job_whose_worker_dies_ends_cancelled(tmp_path: Path) -> None:
    """The API asked, but the worker died before it could say so: the API records it."""
    with silent_listener() as url, api_server(tmp_path) as api:
        running = slow_ingest(api, url)
        con = sqlite3.connect(state_db(tmp_path))
        with con:  # as a DELETE leaves it, without the signal that would follow
            con.execute(
                "update jobs set cancel_requested_at = '2025-01-01T00:00:00+00:00' where id = ?",
                (running["id"],),
            )
        con.close()
        os.kill(running["pid"], signal.SIGKILL)
        done = api.wait(running["id"], timeout=60)
        assert done["state"] == "cancelled", done
        assert done["error"] == (
            f"cancelled on request; the worker (pid {running['pid']}) was killed by SIGKILL "
            "before it finished"
        )


def test_a_queued_job_without_a_worker_is_cancelled_at_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = JobStore(state_db(root))
    with api_server(root) as api:
        queued = store.create("publish", {})  # as if the API died before launching it
        done = cancel(api, queued.id)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["state"] == "cancelled" and body["pid"] is None
        assert body["error"] == "cancelled on request before it started"
        assert cancel(api, queued.id).status_code == 409
        # The slot is free: the next job starts.
        started = api.start("publish")
        assert started.status_code == 202, started.text
        assert api.wait(started.json()["id"], timeout=120)["state"] == "failed"  # nothing built


def test_a_finished_job_cannot_be_cancelled(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = JobStore(state_db(root))
    ids = {state: finished_job(store, state) for state in ("succeeded", "failed")}
    with api_server(root) as api:
        for state, job_id in ids.items():
            refused = cancel(api, job_id)
            assert refused.status_code == 409, refused.text
            assert refused.json()["detail"] == (
                f"job {job_id} (ingest) already {state}: nothing to cancel"
            )
            assert get(api, f"/v1/jobs/{job_id}").json()["state"] == state


# --------------------------------------------------------------------------- step time limit


def test_a_step_past_its_time_limit_is_stopped_and_the_job_fails(tmp_path: Path) -> None:
    limits = {"BTCFS_JOB_STEP_TIMEOUT_S": "ingest=3", "BTCFS_JOB_KILL_GRACE_S": "2"}
    with silent_listener() as url, api_server(tmp_path, **limits) as api:
        running = slow_ingest(api, url)
        step = psutil.Process(running["pid"]).children()
        done = api.wait(running["id"], timeout=60)
        assert done["state"] == "failed" and done["step"] == "ingest", done
        assert done["error"] == (
            "step ingest timed out: still running after its limit of 3 s "
            "(BTCFS_JOB_STEP_TIMEOUT_S), its command was stopped"
        )
        assert done["exit_code"] == -signal.SIGTERM  # the ingest process took the SIGTERM
        assert done["steps"][0]["state"] == "failed" and done["steps"][0]["seconds"] >= 3
        # Stopped by the limit, long before the client's own 30 s read timeout.
        assert done["duration_seconds"] < 25
        wait_for(lambda: not any(alive(p.pid) for p in step), "the ingest process gone")
        assert get(api, "/v1/jobs").json()["active"] is None


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    """The worker's own step runner on a real process that shrugs off SIGTERM."""
    store = JobStore(tmp_path / "state.sqlite")
    job = store.create("ingest", {})
    settings = ApiSettings.from_env(
        {
            "BTCFS_DATA_DIR": str(tmp_path),
            "BTCFS_JOB_STEP_TIMEOUT_S": "ingest=1",
            "BTCFS_JOB_KILL_GRACE_S": "1",
        }
    )
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ignoring SIGTERM', flush=True); time.sleep(60)"
    )
    with job.log_path.open("a") as log_file:
        run = Run(store, job, settings, log_file, dict(os.environ), steps=job.steps)
        run.begin("ingest")
        started = time.monotonic()
        with pytest.raises(StepTimedOut) as timed_out:
            run.command(sys.executable, "-c", stubborn)
    elapsed = time.monotonic() - started
    assert timed_out.value.exit_code == -signal.SIGKILL
    assert "limit of 1 s" in str(timed_out.value)
    assert 2 <= elapsed < 20  # the limit, then the grace: never the 60 s sleep
    log = job.log_path.read_text()
    assert "ignoring SIGTERM" in log and "still running 1 s after SIGTERM: SIGKILL" in log


def test_step_time_limits_are_settings() -> None:
    assert ApiSettings.from_env({}).job_step_timeouts_s == STEP_TIMEOUTS_S
    every = ApiSettings.from_env({"BTCFS_JOB_STEP_TIMEOUT_S": "90"}).job_step_timeouts_s
    assert set(every.values()) == {90.0} and set(every) == set(STEP_TIMEOUTS_S)
    some = ApiSettings.from_env({"BTCFS_JOB_STEP_TIMEOUT_S": "ingest=7200, build=60.5"})
    assert some.job_step_timeouts_s == {**STEP_TIMEOUTS_S, "ingest": 7200.0, "build": 60.5}
    for bad in ("soon", "0", "-5", "nan", "predict=5", "ingest", "ingest=5,build"):
        with pytest.raises(ValueError, match="BTCFS_JOB_STEP_TIMEOUT_S"):
            ApiSettings.from_env({"BTCFS_JOB_STEP_TIMEOUT_S": bad})


# --------------------------------------------------------------------------- retention


def test_old_finished_jobs_and_logs_are_deleted_when_a_job_starts(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = JobStore(state_db(root))
    old = [finished_job(store, log="x" * 100) for _ in range(6)]
    orphan = store.log_dir / "3000.log"  # a log whose row is gone
    orphan.write_text("left behind")
    with api_server(root, BTCFS_JOB_RETAIN_COUNT="3") as api:
        started = api.start("publish")
        assert started.status_code == 202, started.text
        new = started.json()["id"]
        listed = get(api, "/v1/jobs?limit=200").json()
        # The new (active) job and the three newest finished ones; the rest are gone.
        assert [j["id"] for j in listed["jobs"]] == [new, *old[:-4:-1]]
        assert sorted(int(p.stem) for p in store.log_dir.glob("*.log")) == [*old[-3:], new]
        for job_id in old[:3]:
            assert get(api, f"/v1/jobs/{job_id}").status_code == 404
        api.wait(new, timeout=120)


def test_retention_by_log_bytes_keeps_the_newest_and_never_an_active_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "state.sqlite")
    active = store.create("ingest", {})
    active.log_path.write_text("a" * 5_000)
    store.update(active.id, state="running")
    con = sqlite3.connect(tmp_path / "state.sqlite")
    with con:  # finished jobs newer than the running one (as an earlier API left them)
        for size in (300, 300, 300, 300, 300):
            job_id = con.execute(
                "insert into jobs (pipeline, params, state, steps, created_at, log_path)"
                " values ('build', '{}', 'failed', '[]', '2025-01-01T00:00:00+00:00', '')"
            ).lastrowid
            (store.log_dir / f"{job_id}.log").write_text("b" * size)
    con.close()
    finished = [j.id for j in store.recent(10) if j.state == "failed"]  # newest first
    # 1000 bytes: the three newest logs (900) fit, the fourth would not.
    assert store.prune(keep=200, max_bytes=1_000) == sorted(finished[3:])
    assert [j.id for j in store.recent(10)] == [*finished[:3], active.id]
    # Nothing finished fits: all of them go; the running job and its log stay.
    assert store.prune(keep=0, max_bytes=0) == sorted(finished[:3])
    assert [(j.id, j.state) for j in store.recent(10)] == [(active.id, "running")]
    assert active.log_path.read_text() == "a" * 5_000


# --------------------------------------------------------------------------- migration

#: The jobs table as the code before `cancelled` made it.
OLD_SCHEMA = """
create table jobs (
    id integer primary key autoincrement,
    lane text not null default 'pipeline',
    pipeline text not null,
    params text not null,
    state text not null check (state in ('queued', 'running', 'succeeded', 'failed')),
    step text,
    steps text not null,
    created_at text not null,
    started_at text,
    finished_at text,
    pid integer,
    pid_started_at real,
    exit_code integer,
    error text,
    failed_gate text,
    result text not null default '{}',
    log_path text not null
);
create unique index jobs_one_active_per_lane
    on jobs (lane) where state in ('queued', 'running');
"""


def test_a_state_database_from_before_cancel_is_migrated_in_place(tmp_path: Path) -> None:
    root = tmp_path / "data"
    state_db(root).parent.mkdir(parents=True)
    con = sqlite3.connect(state_db(root))
    con.executescript(OLD_SCHEMA)
    with con:
        for job_id, state in ((1, "succeeded"), (2, "failed"), (7, "failed")):
            con.execute(
                "insert into jobs (id, pipeline, params, state, steps, created_at, log_path,"
                " result) values (?, 'build', '{\"unit_tests\": false}', ?, '[]',"
                " '2025-01-01T00:00:00+00:00', ?, '{\"gates\": {\"passed\": 3}}')",
                (job_id, state, str(root / "state" / "jobs" / f"{job_id}.log")),
            )
        con.execute("delete from jobs where id = 7")  # the sequence stays at 7
        con.execute("create table positions (id integer primary key)")  # the paper's own
        con.execute("insert into positions values (42)")
    con.close()
    with api_server(root) as api:
        listed = get(api, "/v1/jobs").json()["jobs"]
        assert [(j["id"], j["state"]) for j in listed] == [(2, "failed"), (1, "succeeded")]
        assert listed[0]["params"] == {"unit_tests": False}
        assert listed[0]["result"] == {"gates": {"passed": 3}}
        started = api.start("publish")
        assert started.status_code == 202 and started.json()["id"] == 8  # no id reused
        api.wait(8, timeout=120)
    con = sqlite3.connect(state_db(root))
    try:
        with con:
            con.execute("update jobs set state = 'cancelled' where id = 1")  # now admitted
        with pytest.raises(sqlite3.IntegrityError), con:  # still one active job at most
            for _ in range(2):
                con.execute(
                    "insert into jobs (pipeline, params, state, steps, created_at, log_path)"
                    " values ('x', '{}', 'queued', '[]', '2025-01-01', '')"
                )
        assert con.execute("select id from positions").fetchall() == [(42,)]
        tables = {row[0] for row in con.execute("select name from sqlite_master")}
        assert "jobs_migrated" not in tables and "jobs_one_active_per_lane" in tables
    finally:
        con.close()
