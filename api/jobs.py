"""Pipeline jobs: their rows in the SQLite state database, the worker processes that run
them, and the check that no job whose worker died is left "running".

A job is a row (state queued -> running -> succeeded | failed | cancelled, the step in
progress, per-step timings, the result, the failed gate) and a log file under `<state>/jobs/`;
finished ones past the retention bounds are deleted when a job starts. The API inserts
the row and starts `python -m api.worker <id>` in a session of its own, so the run survives
the API; the worker runs the steps as CLI subprocesses and writes the row as it goes. One job
runs at a time: a partial unique index admits a single queued-or-running row, so two requests
racing for it cannot both win (the loser gets the running job in a `JobConflict`).
"""

from __future__ import annotations

import contextlib
import json
import logging
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
from core.redact import redact, register_secrets
from pipeline.steps import PIPELINES as STEPS

logger = logging.getLogger("api.jobs")

#: The project folder (dbt_project.yml, config/): where workers and their steps run.
ROOT = Path(__file__).resolve().parent.parent
ACTIVE_STATES = ("queued", "running")
#: The pipelines a job may run: each runs the steps pipeline.steps.PIPELINES lists.
PIPELINES = tuple(STEPS)
#: A queued job whose worker has no pid after this long was never started (the API died
#: between the insert and the launch).
LAUNCH_GRACE_S = 60.0
#: How much of a log's end is read for its last lines.
_TAIL_BYTES = 256 * 1024
_MAX_LINE = 2_000
#: Environment variables whose values must never appear in a job's log.
_SECRET_NAMES = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_MIN_SECRET = 8

_TABLE = """
create table if not exists {name} (
    id integer primary key autoincrement,
    lane text not null default 'pipeline',
    pipeline text not null,
    params text not null,
    state text not null check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
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
    result text not null default '{{}}',
    log_path text not null,
    cancel_requested_at text
);
"""
_INDEX = """
create unique index if not exists jobs_one_active_per_lane
    on jobs (lane) where state in ('queued', 'running');
"""
_SCHEMA = _TABLE.format(name="jobs") + _INDEX


def now() -> datetime:
    return datetime.now(UTC)


def is_credential_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential."""
    return any(part in name.upper() for part in _SECRET_NAMES)


def register_environment_secrets(environ: Mapping[str, str]) -> None:
    """Redact every value of a credential-looking environment variable from job logs
    (values shorter than 8 characters are flags such as `true`, not credentials)."""
    register_secrets(
        value
        for name, value in environ.items()
        if is_credential_name(name) and len(value) >= _MIN_SECRET
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
    cancel_requested_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class JobFinished(Exception):
    """The job already ended: there is nothing to cancel."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} ({job.pipeline}) already {job.state}")
        self.job = job


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
        cancel_requested_at=_time(row["cancel_requested_at"]),
    )


def _migrate(con: sqlite3.Connection) -> None:
    """Rebuild a `jobs` table made before `cancelled` existed (SQLite cannot alter a CHECK
    constraint): same rows and ids, and the id sequence carries on where it was, so a
    deleted job's id (and its log's name) is never handed out again."""
    con.execute("begin immediate")
    try:
        found = con.execute(
            "select sql from sqlite_master where type = 'table' and name = 'jobs'"
        ).fetchone()
        if found is None or "'cancelled'" in found[0]:
            con.execute("commit")
            return
        old = [row[1] for row in con.execute("pragma table_info(jobs)")]
        con.execute(_TABLE.format(name="jobs_migrated"))
        new = {row[1] for row in con.execute("pragma table_info(jobs_migrated)")}
        columns = ", ".join(name for name in old if name in new)
        sequence = con.execute("select seq from sqlite_sequence where name = 'jobs'").fetchone()
        con.execute(f"insert into jobs_migrated ({columns}) select {columns} from jobs")  # noqa: S608 (names from the schema)
        con.execute("drop table jobs")
        con.execute("alter table jobs_migrated rename to jobs")
        if sequence is not None:
            con.execute(
                "update sqlite_sequence set seq = max(seq, ?) where name = 'jobs'", (sequence[0],)
            )
        con.execute(_INDEX)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


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
                    with closing(
                        sqlite3.connect(self.path, timeout=30, isolation_level=None)
                    ) as con:
                        con.execute("pragma journal_mode = wal")
                        _migrate(con)
                        con.executescript(_SCHEMA)
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

    def request_cancel(self, job_id: int) -> Job | None:
        """Cancel a job in one transaction: a queued one ends `cancelled` here (its worker, if
        it was launched, then finds it not queued and exits); a running one is marked, for
        its worker to end it `cancelled` once signalled. None for an unknown id; a finished
        job is returned as it was."""
        at = now().isoformat()
        with self._connect(immediate=True) as con:
            con.execute(
                "update jobs set state = 'cancelled', finished_at = ?, cancel_requested_at = ?,"
                " error = 'cancelled on request before it started'"
                " where id = ? and state = 'queued'",
                (at, at, job_id),
            )
            con.execute(
                "update jobs set cancel_requested_at = coalesce(cancel_requested_at, ?)"
                " where id = ? and state = 'running'",
                (at, job_id),
            )
            row = con.execute("select * from jobs where id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def prune(self, keep: int, max_bytes: int) -> list[int]:
        """Delete the finished jobs older than the newest `keep` whose logs fit in `max_bytes`
        together (rows and logs; an active job is never touched), and logs left without a
        row. The ids deleted."""
        with self._connect(immediate=True) as con:
            finished = con.execute(
                "select id from jobs where state not in ('queued', 'running') order by id desc"
            ).fetchall()
            kept, used, cutoff = 0, 0, None
            for (job_id,) in finished:
                size = self._log_size(job_id)
                if kept >= keep or used + size > max_bytes:
                    cutoff = job_id
                    break
                kept, used = kept + 1, used + size
            doomed: list[int] = []
            if cutoff is not None:
                doomed = [
                    row[0]
                    for row in con.execute(
                        "delete from jobs where id <= ? and state not in ('queued', 'running')"
                        " returning id",
                        (cutoff,),
                    ).fetchall()
                ]
            remaining = {row[0] for row in con.execute("select id from jobs")}
        # A log is named for its job's id (never reused: autoincrement), so one whose row is
        # gone belongs to no job; the row is inserted before its log is opened.
        for path in self.log_dir.glob("*.log"):
            if path.stem.isdigit() and int(path.stem) not in remaining:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return sorted(doomed)

    def _log_size(self, job_id: int) -> int:
        try:
            return (self.log_dir / f"{job_id}.log").stat().st_size
        except OSError:
            return 0


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


def _terminate(job: Job) -> bool:
    """SIGTERM to the job's worker, if it is still that process (False when it is gone)."""
    if job.pid is None:
        return False
    try:
        process = psutil.Process(job.pid)
        if job.pid_started_at and abs(process.create_time() - job.pid_started_at) > 1:
            return False  # the pid now belongs to another process
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return False
    return True


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
            "BTCFS_API_ALLOW_BASE_URL": "1" if settings.allow_base_url else "0",
            "BTCFS_JOB_STEP_TIMEOUT_S": ",".join(
                f"{step}={seconds!r}" for step, seconds in settings.job_step_timeouts_s.items()
            ),
            "BTCFS_JOB_KILL_GRACE_S": repr(settings.job_kill_grace_s),
        }
        env.pop("BTCFS_ADMIN_TOKEN", None)
        register_environment_secrets(base)
        register_secrets([settings.admin_token])
        return cls(JobStore(settings.state_db), env, settings.data_dir,
                   allow_base_url=settings.allow_base_url,
                   retain=(settings.job_retain_count, settings.job_retain_bytes))  # fmt: skip

    def __init__(
        self,
        store: JobStore,
        worker_env: dict[str, str],
        data_dir: Path,
        *,
        allow_base_url: bool = False,
        retain: tuple[int, int] = (200, 200 * 1024 * 1024),
    ) -> None:
        self.store = store
        self.worker_env = worker_env
        self.data_dir = data_dir
        #: Whether ingest jobs may name a (loopback) vendor host: BTCFS_API_ALLOW_BASE_URL.
        self.allow_base_url = allow_base_url
        #: Finished jobs kept when a job starts: at most this many, their logs at most this
        #: many bytes (BTCFS_JOB_RETAIN_COUNT, BTCFS_JOB_RETAIN_BYTES).
        self.retain = retain
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
        try:
            deleted = self.store.prune(*self.retain)
        except (OSError, sqlite3.Error) as exc:  # housekeeping: the job is started regardless
            logger.warning("pruning finished jobs failed: %s", exc)
        else:
            if deleted:
                logger.info("deleted %d finished jobs past retention (ids %s..%s)",
                            len(deleted), deleted[0], deleted[-1])  # fmt: skip
        return self.store.get(job.id) or job

    def cancel(self, job_id: int) -> Job | None:
        """Cancel a job: a queued one at once (returned `cancelled`), a running one by
        SIGTERM to its worker, which stops its step and ends the job `cancelled` (returned
        still `running`, with `cancel_requested_at`). None for an unknown id, `JobFinished`
        for a job that already ended."""
        self.reconcile()
        job = self.store.get(job_id)
        if job is None:
            return None
        if not job.is_active:
            raise JobFinished(job)
        job = self.store.request_cancel(job_id)
        if job is not None and job.state in ("succeeded", "failed"):
            raise JobFinished(job)  # it ended on its own in between
        if job is None or job.state == "cancelled":
            return job
        if not _terminate(job):
            self.store.finish(
                job.id,
                "cancelled",
                error=f"cancelled on request: the worker (pid {job.pid}) was already gone",
            )
            return self.store.get(job.id)
        return job

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
        if reason is not None and job.cancel_requested_at is not None:
            self.store.finish(job.id, "cancelled", error=f"cancelled on request; {reason}",
                              exit_code=code)  # fmt: skip
        elif reason is not None:
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
