"""`python -m api.worker <job id>`: run one pipeline job, outside the API process.

The API starts it in a session of its own and goes back to serving. It takes its job row
(queued -> running), runs each step as the same CLI a person would type (`btcfs ingest all`,
`dbt build`, `btcfs qa`, `btcfs train`, `btcfs models promote`, `btcfs publish`) from an
argument list, never a shell string, streams their output (secrets redacted) to the job's
log, and writes the step in progress, per-step timings and the result to the row. A failed
QA, promotion or publish gate stops the job before anything is published or promoted and
is recorded as `failed_gate`. Steps die with the worker (PR_SET_PDEATHSIG), so a killed
worker leaves no dbt holding build.duckdb. A step past its time limit, or a job cancelled
through the API, has its command stopped (SIGTERM, then SIGKILL after a grace).
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import msgspec
import psutil

from api.jobs import (
    ROOT,
    Job,
    JobStore,
    is_credential_name,
    now,
    register_environment_secrets,
)
from api.schemas import ForecastIn
from api.settings import ApiSettings
from core.redact import redact
from pipeline.params import PARAMS, IngestParams, TrainParams
from pipeline.run import Action, Context, GateFailed, StepFailed
from pipeline.run import plan as pipeline_plan
from pipeline.steps import PIPELINES, Commands, Step

#: Each step's command line, with btcfs and dbt from beside this interpreter.
COMMANDS = Commands()
_PR_SET_PDEATHSIG = 1
#: How often the watchdog looks at a running command's deadline and the job's cancel flag.
_WATCH_S = 0.2


class StepTimedOut(StepFailed):
    """A step's command ran past the step's time limit and was stopped."""


class Cancelled(Exception):
    pass


def _die_with_parent() -> None:
    """In each step's process before exec: SIGKILL it when the worker dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Run:
    """One job being run: where it logs, its environment, its steps and result so far."""

    store: JobStore
    job: Job
    settings: ApiSettings
    log_file: IO[str]
    env: dict[str, str]
    steps: list[dict[str, Any]]
    result: dict[str, Any] = field(default_factory=dict)
    child: subprocess.Popen[str] | None = None
    cancelled: str | None = None
    #: The step in progress, its time limit and when it runs out (time.monotonic()).
    step: str | None = None
    limit_s: float | None = None
    deadline: float | None = None
    timed_out: str | None = None
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def log(self, line: str) -> None:
        with self._log_lock:  # the watchdog writes too
            self.log_file.write(redact(line.rstrip("\n")) + "\n")
            self.log_file.flush()

    def save(self, **columns: Any) -> None:
        self.store.update(self.job.id, steps=self.steps, result=self.result, **columns)

    def cancel_requested(self) -> bool:
        """Whether the API asked for this job to stop (DELETE /v1/jobs/{id}), as opposed to
        a SIGTERM from elsewhere (a shutdown), which fails the job."""
        job = self.store.get(self.job.id)
        return job is not None and job.cancel_requested_at is not None

    def begin(self, step: str) -> None:
        """Start the clock of a step (BTCFS_JOB_STEP_TIMEOUT_S)."""
        self.step, self.timed_out = step, None
        self.limit_s = self.settings.job_step_timeouts_s.get(step)
        self.deadline = None if self.limit_s is None else time.monotonic() + self.limit_s

    def _timeout_message(self) -> str:
        return (
            f"step {self.step} timed out: still running after its limit of {self.limit_s:g} s "
            "(BTCFS_JOB_STEP_TIMEOUT_S), its command was stopped"
        )

    def _watch(self, child: subprocess.Popen[str], name: str, done: threading.Event) -> None:
        """Stop the command once the step runs out of time or the job is cancelled:
        SIGTERM, then SIGKILL when it is still there after the grace."""
        stopped_at: float | None = None
        while not done.wait(_WATCH_S):
            moment = time.monotonic()
            if stopped_at is None:
                expired = self.deadline is not None and moment >= self.deadline
                if expired and not self.cancelled:
                    self.timed_out = self._timeout_message()
                if expired or self.cancelled:
                    self.log(f"== stopping {name} (pid {child.pid}): "
                             f"{self.timed_out or self.cancelled}")  # fmt: skip
                    child.terminate()
                    stopped_at = moment
            elif moment - stopped_at >= self.settings.job_kill_grace_s:
                grace = self.settings.job_kill_grace_s
                self.log(f"== pid {child.pid} still running {grace:g} s after SIGTERM: SIGKILL")
                child.kill()
                return

    def command(self, *argv: str, env: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
        """Run one CLI command, its output streamed to the log; (exit code, last lines).
        `env` replaces the job's environment for this command. `Cancelled` when the job
        was cancelled, `StepTimedOut` past the step's limit."""
        if self.cancelled:
            raise Cancelled(self.cancelled)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise StepTimedOut(self._timeout_message())
        self.log("$ " + shlex.join(argv))
        tail: list[str] = []
        self.child = child = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=self.env if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            # safe: no other thread runs at fork (the last command's watchdog was joined)
            preexec_fn=_die_with_parent,
        )
        stream = child.stdout
        assert stream is not None
        done = threading.Event()
        name = Path(argv[0]).name
        watchdog = threading.Thread(target=self._watch, args=(child, name, done), daemon=True)
        watchdog.start()
        try:
            for line in stream:
                self.log(line)
                tail = [*tail[-19:], redact(line.rstrip())]
            code = child.wait()
        finally:
            done.set()
            watchdog.join()
            stream.close()
            self.child = None
        if self.cancelled:
            raise Cancelled(self.cancelled)
        if self.timed_out:
            raise StepTimedOut(self.timed_out, exit_code=code)
        return code, tail


# ------------------------------------------------------------------------------ steps

#: What each vendor key becomes in an ingest step pointed at a host the request named (the
#: replay server takes any key); not a secret, so it is never worth redacting.
PLACEHOLDER_KEY = "btcfs-replay-placeholder"


def _keyless(env: dict[str, str]) -> dict[str, str]:
    """The environment less every credential: vendor keys set become the placeholder (so a
    vendor still runs against the replay server), any other credential-like name goes."""
    from ingest.vendors import VENDORS

    vendor_keys = {spec.env_key for spec in VENDORS.values() if spec.env_key is not None}
    kept = {name: value for name, value in env.items() if not is_credential_name(name)}
    kept.update({name: PLACEHOLDER_KEY for name in vendor_keys if env.get(name, "").strip()})
    return kept


def _ingest_env(run: Run, params: IngestParams) -> dict[str, str] | None:
    """The API's rule for the hosts an ingest job may name, checked again as the step
    starts; with a base URL the command runs without the real vendor keys."""
    from ingest.config import is_loopback_url

    chosen = [url for url in (params.base_url, params.archive) if url and url != "none"]
    for url in chosen:
        # The API refused these already; a job row written some other way stops here.
        if not (run.settings.allow_base_url and is_loopback_url(url)):
            raise StepFailed(
                f"refusing to ingest from {redact(url)[:100]!r}: a job may name only a "
                "loopback host, and only with BTCFS_API_ALLOW_BASE_URL on"
            )
    return _keyless(run.env) if params.base_url is not None else None


def predict(run: Run, request: ForecastIn) -> None:
    """The forecast from the freshly published file, through the API's own predictor."""
    from api.db import ServeDatabase
    from api.predictor import Predictor
    from api.services import check_symbol

    db = ServeDatabase(run.settings.serve_db)
    try:
        db.refresh(force=True)
        predictor = Predictor(run.settings.registry_root, run.settings.primary_model)
        with db.reader() as reader:
            check_symbol(reader, request.symbol)
            forecast = predictor.forecast(reader, request.symbol, request.horizon, request.steps)
    finally:
        db.close()
    run.result["forecast"] = msgspec.to_builtins(forecast)


# ------------------------------------------------------------------------------ plans


def context(settings: ApiSettings) -> Context:
    """Where the steps of a job read and write: the API's own folders."""
    return Context(
        data_dir=settings.data_dir,
        target_path=settings.target_path,
        registry_root=settings.registry_root,
        serve_db=settings.serve_db,
        primary_model=settings.primary_model,
        commands=COMMANDS,
    )


def plan(job: Job, run: Run) -> list[tuple[Step, Action]]:
    """The job's steps as (step, action) pairs (pipeline.run.plan, plus `predict`)."""
    params: Any
    extra: dict[Step, Action] = {}
    if job.pipeline == "forecast":
        request = msgspec.convert(job.params, ForecastIn)
        params = request.train or TrainParams()
        extra[Step.PREDICT] = lambda: predict(run, request)
    elif job.pipeline in PARAMS:
        params = msgspec.convert(job.params, PARAMS[job.pipeline])
    else:
        raise StepFailed(f"unknown pipeline {job.pipeline!r}")
    return pipeline_plan(
        job.pipeline,
        params,
        run,
        context(run.settings),
        run.result,
        ingest_env=lambda chosen: _ingest_env(run, chosen),
        extra=extra,
    )


def execute(run: Run) -> None:
    """Run the steps in order; the first failure stops the job (later steps stay pending)."""
    steps = plan(run.job, run)
    assert [name for name, _ in steps] == list(PIPELINES[run.job.pipeline])
    for index, (name, action) in enumerate(steps):
        entry = run.steps[index]
        started = now()
        entry.update(state="running", started_at=started.isoformat())
        run.save(step=name)
        run.log(f"== step {name}")
        run.begin(name)
        try:
            if run.cancelled:  # signalled between two steps
                raise Cancelled(run.cancelled)
            outcome = action()
        except BaseException as exc:
            cancelled = isinstance(exc, Cancelled) and run.cancel_requested()
            entry.update(
                state="cancelled" if cancelled else "failed",
                finished_at=now().isoformat(),
                seconds=round((now() - started).total_seconds(), 3),
                exit_code=getattr(exc, "exit_code", None),
            )
            run.save()
            raise
        entry.update(
            state="skipped" if outcome is False else "succeeded",
            finished_at=now().isoformat(),
            seconds=round((now() - started).total_seconds(), 3),
        )
        run.save()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m api.worker <job id>", file=sys.stderr)
        return 2
    job_id = int(args[0])
    settings = ApiSettings.from_env()
    store = JobStore(settings.state_db)
    register_environment_secrets(os.environ)
    job = store.mark_running(job_id, os.getpid(), psutil.Process().create_time())
    if job is None:
        print(f"job {job_id} is not queued: nothing to do", file=sys.stderr)
        return 1
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "DBT_USE_COLORS": "false"}
    with job.log_path.open("a", encoding="utf-8") as log_file:
        run = Run(store, job, settings, log_file, env, steps=job.steps)

        def stop(signum: int, _: FrameType | None) -> None:
            run.cancelled = f"cancelled: the worker received {signal.Signals(signum).name}"
            if run.child is not None:
                run.child.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        run.log(f"== job {job.id} ({job.pipeline}) started by worker pid {os.getpid()}")
        try:
            execute(run)
        except GateFailed as exc:
            run.log(f"== job {job.id} failed: {exc}")
            store.finish(job.id, "failed", error=str(exc), exit_code=exc.exit_code,
                         failed_gate=exc.gate)  # fmt: skip
            return 1
        except Cancelled as exc:
            if not run.cancel_requested():
                run.log(f"== job {job.id} failed: {exc}")
                store.finish(job.id, "failed", error=redact(exc))
                return 1
            message = f"cancelled on request (DELETE /v1/jobs/{job.id}) during step {run.step}"
            run.log(f"== job {job.id} cancelled: {message}")
            store.finish(job.id, "cancelled", error=message)
            return 1
        except StepFailed as exc:
            run.log(f"== job {job.id} failed: {exc}")
            store.finish(job.id, "failed", error=redact(exc), exit_code=exc.exit_code)
            return 1
        except Exception as exc:
            run.log(traceback.format_exc())
            store.finish(job.id, "failed", error=redact(f"{type(exc).__name__}: {exc}"))
            return 1
        run.log(f"== job {job.id} succeeded")
        store.finish(job.id, "succeeded")
        return 0


if __name__ == "__main__":
    sys.exit(main())
