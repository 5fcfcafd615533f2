"""Pipeline jobs: their rows in the SQLite state database, the worker processes that run
them, and the check that no job whose worker died is left "running".

A job is a row (state queued -> running -> succeeded | failed, the step in progress, per-step
timings, the result, the failed gate) and a log file under `<state>/jobs/`. The API inserts
the row and starts `python -m api.worker <id>` in a session of its own, so the run survives
the API; the worker runs the steps as CLI subprocesses and writes the row as it goes. One job
runs at a time: a partial unique index admits a single queued-or-running row, so two requests
racing for it cannot both win (the loser gets the running job in a `JobConflict`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from api.settings import ApiSettings
from ingest._redact import redact, register_secrets

#: The project folder (dbt_project.yml, config/): where workers and their steps run.
ROOT = Path(__file__).resolve().parent.parent
ACTIVE_STATES = ("queued", "running")
PIPELINES = ("ingest", "build", "publish", "train", "all", "forecast")
#: The steps each pipeline runs, in order (a step may end "skipped", e.g. promote: false).
STEPS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest",),
    "build": ("build", "qa"),
    "publish": ("publish",),
    "train": ("train", "promote"),
    "all": ("ingest", "build", "qa", "train", "promote", "publish"),
    "forecast": ("check", "train", "promote", "publish", "predict"),
}
#: A queued job whose worker has no pid after this long was never started (the API died
#: between the insert and the launch).
LAUNCH_GRACE_S = 60.0
#: How much of a log's end is read for its last lines.
_TAIL_BYTES = 256 * 1024
_MAX_LINE = 2_000
#: Environment variables whose values must never appear in a job's log.
_SECRET_NAMES = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_MIN_SECRET = 8

_SCHEMA = """
create table if not exists jobs (
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
create unique index if not exists jobs_one_active_per_lane
    on jobs (lane) where state in ('queued', 'running');
"""


def now() -> datetime:
    return datetime.now(UTC)


def register_environment_secrets(environ: Mapping[str, str]) -> None:
    """Redact every value of a credential-looking environment variable from job logs
    (values shorter than 8 characters are flags such as `true`, not credentials)."""
    register_secrets(
        value
        for name, value in environ.items()
        if any(s in name.upper() for s in _SECRET_NAMES) and len(value) >= _MIN_SECRET
    )


@dataclass(frozen=True)
class Job:
    id: int
    pipeline: str
    params: dict[str, Any]
    state: str
    step: str | None
    steps: list[dict[str, Any]]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pid: int | None
    pid_started_at: float | None
    exit_code: int | None
    error: str | None
    failed_gate: dict[str, Any] | None
    result: dict[str, Any]
    log_path: Path

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class JobConflict(Exception):
    """Another job is queued or running."""

    def __init__(self, running: Job) -> None:
        super().__init__(f"job {running.id} ({running.pipeline}) is {running.state}")
        self.running = running


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        pipeline=row["pipeline"],
        params=json.loads(row["params"]),
        state=row["state"],
        step=row["step"],
        steps=json.loads(row["steps"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        started_at=_time(row["started_at"]),
        finished_at=_time(row["finished_at"]),
        pid=row["pid"],
        pid_started_at=row["pid_started_at"],
        exit_code=row["exit_code"],
        error=row["error"],
        failed_gate=json.loads(row["failed_gate"]) if row["failed_gate"] else None,
        result=json.loads(row["result"]),
        log_path=Path(row["log_path"]),
    )


class JobStore:
    """The `jobs` table of the state database (WAL; one short transaction per call, so the
    API and a worker never hold each other up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log_dir = path.parent / "jobs"
        self._ready = threading.Lock()
        self._initialised = False

    @contextmanager
    def _connect(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        if not self._initialised:
            with self._ready:
                if not self._initialised:
                    self.log_dir.mkdir(parents=True, exist_ok=True)
                    with closing(sqlite3.connect(self.path, timeout=30)) as con:
                        con.execute("pragma journal_mode = wal")
                        con.executescript(_SCHEMA)
                        con.commit()
                    self._initialised = True
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as con:
            con.row_factory = sqlite3.Row
            con.execute("pragma synchronous = full")
            con.execute("begin immediate" if immediate else "begin")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def create(self, pipeline: str, params: dict[str, Any]) -> Job:
        """Insert a queued job; `JobConflict` when one is already queued or running."""
        steps = [{"name": name, "state": "pending"} for name in STEPS[pipeline]]
        try:
            with self._connect(immediate=True) as con:
                cursor = con.execute(
                    "insert into jobs (pipeline, params, state, steps, created_at, log_path)"
                    " values (?, ?, 'queued', ?, ?, '')",
                    (pipeline, json.dumps(params), json.dumps(steps), now().isoformat()),
                )
                job_id = cursor.lastrowid
                log_path = self.log_dir / f"{job_id}.log"
                con.execute("update jobs set log_path = ? where id = ?", (str(log_path), job_id))
                row = con.execute("select * from jobs where id = ?", (job_id,)).fetchone()
        except sqlite3.IntegrityError:
            running = self.active()
            if running is None:  # it finished in between: let the caller try again
                raise
            raise JobConflict(running) from None
        return _job(row)

    def get(self, job_id: int) -> Job | None:
        with self._connect() as con:
            row = con.execute("select * from jobs where id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def recent(self, limit: int) -> list[Job]:
        with self._connect() as con:
            rows = con.execute("select * from jobs order by id desc limit ?", (limit,)).fetchall()
        return [_job(row) for row in rows]

    def active(self) -> Job | None:
        with self._connect() as con:
            row = con.execute(
                "select * from jobs where state in ('queued', 'running') order by id limit 1"
            ).fetchone()
        return _job(row) if row else None

    def set_pid(self, job_id: int, pid: int, started: float) -> None:
        with self._connect() as con:
            con.execute(
                "update jobs set pid = ?, pid_started_at = ? where id = ? and pid is null",
                (pid, started, job_id),
            )

    def mark_running(self, job_id: int, pid: int, started: float) -> Job | None:
        """The worker takes its job: None when it is no longer queued."""
        with self._connect(immediate=True) as con:
            updated = con.execute(
                "update jobs set state = 'running', started_at = ?, pid = ?, pid_started_at = ?"
                " where id = ? and state = 'queued'",
                (now().isoformat(), pid, started, job_id),
            ).rowcount
            row = con.execute("select * from jobs where id = ?", (job_id,)).fetchone()
        return _job(row) if updated else None

    def update(self, job_id: int, **columns: Any) -> None:
        """Set columns of a running job (JSON-encoding steps, result and failed_gate)."""
        encoded = {
            name: json.dumps(value) if name in ("steps", "result", "failed_gate") else value
            for name, value in columns.items()
        }
        assignments = ", ".join(f"{name} = ?" for name in encoded)
        with self._connect() as con:
            con.execute(
                f"update jobs set {assignments} where id = ?",  # noqa: S608 (names are ours)
                (*encoded.values(), job_id),
            )

    def finish(
        self,
        job_id: int,
        state: str,
        *,
        error: str | None = None,
        exit_code: int | None = None,
        failed_gate: dict[str, Any] | None = None,
    ) -> bool:
        """Move an active job to its final state (False when it already had one)."""
        with self._connect(immediate=True) as con:
            updated = con.execute(
                "update jobs set state = ?, finished_at = ?, error = ?, exit_code = ?,"
                " failed_gate = ? where id = ? and state in ('queued', 'running')",
                (
                    state,
                    now().isoformat(),
                    error,
                    exit_code,
                    json.dumps(failed_gate) if failed_gate else None,
                    job_id,
                ),
            ).rowcount
        return bool(updated)


def log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a job's log, each redacted and cut to a sane length."""
    if lines <= 0:
        return []
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    kept = [line for line in text.split("\n") if line.strip()][-lines:]
    return [redact(line[:_MAX_LINE]) for line in kept]


def _exit_reason(pid: int, code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker (pid {pid}) was killed by {name} before it finished"
    return f"the worker (pid {pid}) exited with code {code} before it finished"


class JobRunner:
    """Starts workers and notices dead ones (on every read, and at API start-up)."""

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> JobRunner:
        """Workers get the API's environment (less the admin token) with its folders
        spelled out, so a job writes exactly where this API reads."""
        # (settings built by hand, not from an environment: the process's own)
        base = settings.worker_env or dict(os.environ)
        env = {
            **base,
            "BTCFS_DATA_DIR": str(settings.data_dir),
            "BTCFS_STATE_DB": str(settings.state_db),
            "BTCFS_SERVE_DB": str(settings.serve_db),
            "DBT_TARGET_PATH": str(settings.target_path),
        }
        env.pop("BTCFS_ADMIN_TOKEN", None)
        register_environment_secrets(base)
        register_secrets([settings.admin_token])
        return cls(JobStore(settings.state_db), env, settings.data_dir)

    def __init__(self, store: JobStore, worker_env: dict[str, str], data_dir: Path) -> None:
        self.store = store
        self.worker_env = worker_env
        self.data_dir = data_dir
        #: Workers this process started: polled for their exit code (and reaped).
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self, pipeline: str, params: dict[str, Any]) -> Job:
        """Queue a job and launch its worker; `JobConflict` when one is active."""
        self.reconcile()
        job = self.store.create(pipeline, params)
        try:
            with job.log_path.open("ab") as log:
                # No shell: an argument list, and the job id is an integer from SQLite.
                process = subprocess.Popen(
                    [sys.executable, "-m", "api.worker", str(job.id)],
                    cwd=ROOT,
                    env=self.worker_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own session: it outlives the API
                )
        except OSError as exc:
            self.store.finish(job.id, "failed", error=f"the worker could not start: {exc}")
            return self.store.get(job.id) or job
        with self._lock:
            self._children[job.id] = process
        try:
            started = psutil.Process(process.pid).create_time()
        except psutil.Error:
            started = time.time()
        self.store.set_pid(job.id, process.pid, started)
        return self.store.get(job.id) or job

    def workers(self) -> list[int]:
        """Pids of the workers this process started that are still running (the others
        are reaped)."""
        self.reconcile()
        with self._lock:
            return [process.pid for process in self._children.values()]

    def reconcile(self) -> None:
        """Reap the workers this process started, and fail the active job if its worker is
        gone (with the reason)."""
        exited: dict[int, tuple[int, int]] = {}
        with self._lock:
            for job_id, process in list(self._children.items()):
                code = process.poll()
                if code is not None:
                    exited[job_id] = (process.pid, code)
                    del self._children[job_id]
        job = self.store.active()
        if job is None:
            return
        if job.id in exited:
            pid, code = exited[job.id]
            reason: str | None = _exit_reason(pid, code)
        else:
            reason, code = self._gone(job), None
        if reason is not None:
            self.store.finish(job.id, "failed", error=reason, exit_code=code)

    def _gone(self, job: Job) -> str | None:
        with self._lock:
            if job.id in self._children:
                return None  # polled just now: still running
        if job.pid is None:
            age = (now() - job.created_at).total_seconds()
            return "the worker never started" if age > LAUNCH_GRACE_S else None
        try:
            process = psutil.Process(job.pid)
            if job.pid_started_at and abs(process.create_time() - job.pid_started_at) > 1:
                return f"the worker (pid {job.pid}) is gone (its pid was reused)"
            if process.status() == psutil.STATUS_ZOMBIE:
                return f"the worker (pid {job.pid}) exited before it finished"
        except psutil.NoSuchProcess:
            return (
                f"the worker (pid {job.pid}) is gone: it ended before it finished "
                "(exit code unknown: an earlier API process started it)"
            )
        except psutil.Error:
            return None
        return None
