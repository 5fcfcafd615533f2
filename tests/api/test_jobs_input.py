"""The job endpoints' answers to bad input, through Litestar's TestClient on an empty data
folder (nothing is built: every request here is refused before a worker could start, except
the one publish that fails for want of a build), and the job store's own guarantees."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.jobs import JobConflict, JobStore, log_tail
from api.settings import ApiSettings
from tests.api.apipipeline import ADMIN_TOKEN, IN_PROCESS_HOSTS

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "s3cret-vendor-key-42"


def settings(root: Path, **extra: str) -> ApiSettings:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BTCFS_", "DBT_"))}
    env.update(
        BTCFS_DATA_DIR=str(root),
        DBT_TARGET_PATH=str(root / "target"),
        BTCFS_ADMIN_TOKEN=ADMIN_TOKEN,
        BTCFS_API_ALLOWED_HOSTS=IN_PROCESS_HOSTS,
        COINGLASS_API_KEY=SECRET,
    )
    env.update(extra)
    return ApiSettings.from_env(env)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings(tmp_path))) as test_client:
        yield test_client


def post(client: TestClient[Any], body: Any, headers: dict[str, str] | None = None) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/v1/jobs",
        content=content,
        headers={"content-type": "application/json", **(AUTH if headers is None else headers)},
    )


def test_the_token_is_required(client: TestClient[Any]) -> None:
    assert post(client, {"pipeline": "publish"}, headers={}).status_code == 401
    wrong = post(client, {"pipeline": "publish"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    basic = post(client, {"pipeline": "publish"}, headers={"Authorization": ADMIN_TOKEN})
    assert basic.status_code == 401
    # The token is checked before the body is even read.
    assert post(client, b"{not json", headers={}).status_code == 401
    assert client.get("/v1/jobs", headers=AUTH).json() == {"jobs": [], "active": None}


def test_without_a_configured_token_jobs_are_off(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path, BTCFS_ADMIN_TOKEN=""))) as off:
        refused = post(off, {"pipeline": "publish"})
        assert refused.status_code == 401 and "BTCFS_ADMIN_TOKEN" in refused.json()["detail"]


def _is_json(body: Any) -> bool:
    """JSON, or no body at all (a missing body is a missing field, 422)."""
    if not isinstance(body, bytes) or not body:
        return True
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{not json", "JSON is malformed"),
        (b"", "body"),
        (b"[]", "data"),
        ({"params": {}}, "pipeline"),
        ({"pipeline": "deploy"}, "pipeline: Invalid value 'deploy'"),
        ({"pipeline": "all; rm -rf /"}, "pipeline"),
        ({"pipeline": "ingest", "params": {"confg": "x.yml"}}, "unknown field `confg`"),
        ({"pipeline": "ingest", "extra": 1}, "unknown field `extra`"),
        ({"pipeline": "train", "params": {"promote": "yes"}}, "params.promote: Expected `bool`"),
        ({"pipeline": "train", "params": {"horizon": "2h"}}, "params.horizon"),
        ({"pipeline": "train", "params": {"model": "--force"}}, "params.model"),
        ({"pipeline": "train", "params": {"model": "m$(reboot)"}}, "params.model"),
        ({"pipeline": "build", "params": {"vars": {"x; rm -rf /": 1}}}, "params.vars"),
        ({"pipeline": "build", "params": {"vars": {"a": {"nested": 1}}}}, "params.vars"),
        ({"pipeline": "build", "params": {"unit_tests": 0}}, "params.unit_tests"),
        ({"pipeline": "publish", "params": {"serve": "/tmp/x"}}, "unknown field `serve`"),
        ({"pipeline": "all", "params": {"train": {"iterations": 5}}}, "params.train"),
        ({"pipeline": "ingest", "params": {"config": "/etc/passwd.yml"}}, "outside the project"),
        ({"pipeline": "ingest", "params": {"config": "config/missing.yml"}}, "does not exist"),
        ({"pipeline": "ingest", "params": {"config": "README.md"}}, "not a .yml file"),
        ({"pipeline": "ingest", "params": {"base_url": "file:///etc"}}, "not an http(s) URL"),
        ({"pipeline": "ingest", "params": {"base_url": "http://x y"}}, "not an http(s) URL"),
        ({"pipeline": "ingest", "params": {"archive": "ftp://h"}}, "params.archive"),
        ({"pipeline": "all", "params": {"ingest": {"config": "../x.yml"}}}, "params.ingest.config"),
    ],
)
def test_bad_requests_are_422_naming_the_problem(
    client: TestClient[Any], body: Any, named: str
) -> None:
    answer = post(client, body)
    # a body that is not JSON at all is malformed syntax (400); a JSON body that does not
    # validate is a 422, as every validation error of the API
    assert answer.status_code == (422 if _is_json(body) else 400), answer.text
    assert named in answer.json()["detail"], answer.json()
    assert client.get("/v1/jobs", headers=AUTH).json()["jobs"] == []  # nothing was started


def test_an_unknown_pipeline_lists_the_valid_ones(client: TestClient[Any]) -> None:
    extra = post(client, {"pipeline": "deploy"}).json()["extra"]
    assert extra["valid"] == ["ingest", "build", "publish", "train", "all", "update"]


def test_a_huge_body_is_refused_unread(client: TestClient[Any]) -> None:
    huge = json.dumps({"pipeline": "ingest", "params": {"config": "x" * 200_000}}).encode()
    assert post(client, huge).status_code == 413
    forecast = client.post(
        "/v1/forecast", content=huge, headers={"content-type": "application/json"}
    )
    assert forecast.status_code == 413


def test_unknown_jobs_are_404(client: TestClient[Any]) -> None:
    missing = client.get("/v1/jobs/12345", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["extra"] == {"key": "job_id"}
    assert client.get("/v1/jobs/0", headers=AUTH).status_code == 422
    assert client.get("/v1/jobs/abc", headers=AUTH).status_code == 404
    assert client.get("/v1/jobs?limit=0", headers=AUTH).status_code == 422
    assert client.get("/v1/jobs?lines=100000", headers=AUTH).status_code == 422


def test_forecast_bodies_are_checked(client: TestClient[Any]) -> None:
    def forecast(body: Any, headers: dict[str, str] | None = None) -> Any:
        return client.post("/v1/forecast", json=body, headers=headers or {})

    assert forecast({"steps": 0}).status_code == 422
    assert forecast({"steps": 12, "horizon": "2h"}).status_code == 422
    assert forecast({"retrain": "true"}).status_code == 422
    assert forecast({"retrain": True, "train": {"target": "tb_label", "x": 1}}).status_code == 422
    assert forecast({"retrain": True}).status_code == 401
    # A retrain trains the forecast's own symbol: another one in `train` is refused, by name.
    mixed = forecast(
        {"symbol": "ETHUSDT", "retrain": True, "train": {"symbol": "BTCUSDT"}}, headers=AUTH
    )
    assert mixed.status_code == 422 and mixed.json()["extra"]["key"] == "train.symbol", mixed.text
    hostile = forecast({"symbol": "BTC;rm -rf", "retrain": True}, headers=AUTH)
    assert hostile.status_code == 422 and hostile.json()["extra"]["key"] == "symbol", hostile.text
    # Nothing is published in this folder: the immediate answer says so.
    assert forecast({"steps": 3}).status_code == 503


def test_a_publish_with_nothing_built_fails_with_the_reason(client: TestClient[Any]) -> None:
    """A real worker: it starts, runs `btcfs publish`, which refuses; the job says why."""
    started = post(client, {"pipeline": "publish"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] in ("queued", "running") and job["pid"] is not None
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert job["state"] == "failed" and job["step"] == "publish"
    assert "btcfs publish exited with code 1" in job["error"] and job["exit_code"] == 1
    assert "manifest.json not found" in job["error"] and job["failed_gate"] is None
    assert job["log"][0].startswith(f"== job {job['id']} (publish) started by worker pid")
    assert any(line.startswith("$ ") and "btcfs publish" in line for line in job["log"])
    # The API reaps its finished worker (no zombie, nothing left running at teardown).
    runner = client.app.state.jobs
    while runner.workers():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_one_active_job_is_enforced_by_the_database(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "state.sqlite")
    first = store.create("ingest", {})
    with pytest.raises(JobConflict) as conflict:
        store.create("build", {})
    assert conflict.value.running.id == first.id
    # Even behind the store's back, SQLite refuses a second active row.
    con = sqlite3.connect(tmp_path / "state.sqlite")
    with pytest.raises(sqlite3.IntegrityError):
        con.execute(
            "insert into jobs (pipeline, params, state, steps, created_at, log_path)"
            " values ('x', '{}', 'running', '[]', '2025-01-01', '')"
        )
    con.close()
    assert store.finish(first.id, "succeeded") and not store.finish(first.id, "failed")
    assert store.create("build", {}).id == first.id + 1


def test_log_lines_are_redacted(tmp_path: Path) -> None:
    client_settings = settings(tmp_path)
    with TestClient(create_app(client_settings)) as client:
        store = JobStore(client_settings.state_db)
        job = store.create("ingest", {"base_url": "http://h/?apikey=abc123"})
        job.log_path.write_text(
            f"GET http://h/api?symbol=X&apikey=abc123\nkey is {SECRET}\n"
            f"token {ADMIN_TOKEN}\n" + "x" * 10_000 + "\nlast\n"
        )
        store.finish(job.id, "failed", error=f"boom with {SECRET}")
        shown = client.get(f"/v1/jobs/{job.id}?lines=5", headers=AUTH).json()
    text = json.dumps(shown)
    assert SECRET not in text and "abc123" not in text
    assert shown["log"][-1] == "last" and len(shown["log"][-2]) == 2_000
    assert "apikey=***" in shown["log"][0] and "***" in shown["error"]
    assert log_tail(tmp_path / "missing.log", 5) == []
