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

import contextlib
import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import msgspec
import psutil

from api.jobs import (
    ROOT,
    STEPS,
    Job,
    JobStore,
    is_credential_name,
    now,
    register_environment_secrets,
)
from api.schemas import (
    AllParams,
    BuildParams,
    ForecastIn,
    IngestParams,
    PublishParams,
    TrainParams,
)
from api.settings import ApiSettings
from core.redact import redact

BIN = Path(sys.executable).parent
_PR_SET_PDEATHSIG = 1
_MAX_GATES_SHOWN = 5
#: How often the watchdog looks at a running command's deadline and the job's cancel flag.
_WATCH_S = 0.2


class StepFailed(Exception):
    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class GateFailed(StepFailed):
    """A QA gate (dbt test), a promotion gate (model) or publish refused the build."""

    def __init__(self, kind: str, names: list[str], message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.gate = {"kind": kind, "names": names, "message": message}


class StepTimedOut(StepFailed):
    """A step's command ran past the step's time limit and was stopped."""


class Cancelled(Exception):
    pass


def _die_with_parent() -> None:
    """In each step's process before exec: SIGKILL it when the worker dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _exe(name: str) -> str:
    beside = BIN / name
    return str(beside) if beside.exists() else shutil.which(name) or name


def _option(name: str, value: str | Path | None) -> list[str]:
    # `--name=value` in one word: a value starting with '-' stays a value.
    return [] if value is None else [f"{name}={value}"]


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

    def command(self, *argv: str) -> tuple[int, list[str]]:
        """Run one CLI command, its output streamed to the log; (exit code, last lines).
        `Cancelled` when the job was cancelled, `StepTimedOut` past the step's limit."""
        if self.cancelled:
            raise Cancelled(self.cancelled)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise StepTimedOut(self._timeout_message())
        self.log("$ " + shlex.join(argv))
        tail: list[str] = []
        self.child = child = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=self.env,
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


def _manifests(lake: Path) -> dict[str, tuple[str, int, int]]:
    """Every lake partition's readable MANIFEST: path -> (sha256, rows, quarantined rows)."""
    from lake.store import walk_partitions

    return {
        str(found.folder.relative_to(lake)): (
            str(found.sha256),
            found.rows or 0,
            found.quarantined_rows,
        )
        for found in walk_partitions(lake)
        if found.has_manifest and found.manifest_error is None
    }


#: What each vendor key becomes in an ingest step pointed at a host the request named (the
#: replay server takes any key); not a secret, so it is never worth redacting.
PLACEHOLDER_KEY = "btcfs-replay-placeholder"


def _keyless(env: dict[str, str]) -> dict[str, str]:
    """The environment less every credential: vendor keys set become the placeholder (so a
    vendor still runs against the replay server), any other credential-like name goes."""
    from ingest.vendors import VENDORS

    vendor_keys = {spec.env_key for spec in VENDORS.values()}
    kept = {name: value for name, value in env.items() if not is_credential_name(name)}
    kept.update({name: PLACEHOLDER_KEY for name in vendor_keys if env.get(name, "").strip()})
    return kept


def ingest(run: Run, params: IngestParams) -> None:
    from ingest.config import is_loopback_url

    lake = run.settings.data_dir / "lake"
    chosen = [url for url in (params.base_url, params.archive) if url and url != "none"]
    for url in chosen:
        # The API refused these already; a job row written some other way stops here.
        if not (run.settings.allow_base_url and is_loopback_url(url)):
            raise StepFailed(
                f"refusing to ingest from {redact(url)[:100]!r}: a job may name only a "
                "loopback host, and only with BTCFS_API_ALLOW_BASE_URL on"
            )
    before = _manifests(lake)
    env = run.env
    if params.base_url is not None:
        run.env = _keyless(env)
    try:
        code, tail = run.command(
            _exe("btcfs"), "ingest", "all",
            *_option("--config", params.config),
            *_option("--base-url", params.base_url),
            *_option("--archive", params.archive),
        )  # fmt: skip
    finally:
        run.env = env
    after = _manifests(lake)
    changed = [part for part, manifest in after.items() if before.get(part) != manifest]
    datasets: dict[str, dict[str, int]] = {}
    for part in changed:
        name = "/".join(part.split("/")[:2])  # <vendor>/<dataset>
        entry = datasets.setdefault(name, {"partitions": 0, "rows": 0, "quarantined": 0})
        entry["partitions"] += 1
        entry["rows"] += after[part][1]
        entry["quarantined"] += after[part][2]
    run.result["ingest"] = {
        "partitions_written": len(changed),
        "rows_landed": sum(after[part][1] for part in changed),
        "rows_quarantined": sum(after[part][2] for part in changed),
        "datasets": datasets,
        "lake_rows": sum(manifest[1] for manifest in after.values()),
    }
    if code != 0:
        raise StepFailed(f"btcfs ingest all exited with code {code}: {_last(tail)}", exit_code=code)


def _gates(run: Run) -> tuple[dict[str, Any], list[str]]:
    """The last dbt build's gate results (for the job's result) and its failing gates."""
    from warehouse.publish import failed_gates
    from warehouse.runs import QAError, read_run_results

    try:
        summary = read_run_results(run.settings.target_path)
    except QAError as exc:
        return {"error": str(exc)}, []
    failing = failed_gates(summary)
    return {
        "invocation_id": summary.invocation_id,
        "command": summary.command,
        "counts": summary.statuses,
        "failed": failing,
        "warned": [gate.name for gate in summary.gates if gate.status == "warn"],
        "passed": sum(1 for gate in summary.gates if gate.status == "pass"),
    }, failing


def _gate_message(kind: str, names: list[str]) -> str:
    from warehouse.gate_ledger import shown

    return f"{kind} gate failed: {shown(names, _MAX_GATES_SHOWN)}"


def build(run: Run, params: BuildParams) -> None:
    (run.settings.data_dir / "warehouse").mkdir(parents=True, exist_ok=True)
    code, tail = run.command(
        _exe("dbt"), "build",
        *_option("--vars", params.vars.dbt_vars()),
        *([] if params.unit_tests else ["--exclude-resource-type=unit_test"]),
        *(["--full-refresh"] if params.full_refresh else []),
    )  # fmt: skip
    run.result["gates"], failing = _gates(run)
    if failing:
        raise GateFailed("qa", failing, _gate_message("QA", failing), exit_code=code)
    if code != 0:
        raise StepFailed(f"dbt build exited with code {code}: {_last(tail)}", exit_code=code)


def qa(run: Run) -> None:
    code, tail = run.command(
        _exe("btcfs"), "qa", *_option("--target-path", run.settings.target_path)
    )
    run.result["gates"], failing = _gates(run)
    if failing:
        raise GateFailed("qa", failing, _gate_message("QA", failing), exit_code=code)
    if code != 0:
        raise StepFailed(f"btcfs qa exited with code {code}: {_last(tail)}", exit_code=code)


def check(run: Run) -> None:
    """Before retraining for a forecast: the build to publish afterwards passed its gates."""
    run.result["gates"], failing = _gates(run)
    if "error" in run.result["gates"]:
        raise StepFailed(run.result["gates"]["error"])
    if failing:
        raise GateFailed("qa", failing, _gate_message("QA", failing))


def _versions(root: Path) -> set[tuple[str, str]]:
    from ml.registry import Registry

    registry = Registry(root)
    return {(name, info.version) for name in registry.models() for info in registry.versions(name)}


def train(run: Run, params: TrainParams) -> None:
    from ml.registry import Registry

    root = run.settings.registry_root
    before = _versions(root)
    code, tail = run.command(
        _exe("btcfs"), "train",
        *_option("--config", params.config),
        *_option("--target", params.target),
        *_option("--horizon", params.horizon),
        *_option("--model", params.model),
    )  # fmt: skip
    if code != 0:
        raise StepFailed(f"btcfs train exited with code {code}: {_last(tail)}", exit_code=code)
    new = sorted(_versions(root) - before)
    if len(new) != 1:
        raise StepFailed(f"btcfs train registered {len(new)} versions, expected one")
    name, version = new[0]
    registry = Registry(root)
    info = registry.get(name, version)
    gates = info.metadata.get("gates", {})
    run.result["model"] = {
        "model": name,
        "version": version,
        "stage": info.stage,
        "target": info.metadata.get("target"),
        "horizon": info.metadata.get("horizon"),
        "gates_passed": not gates.get("failures"),
        "gate_failures": list(gates.get("failures", [])),
        "production_before": registry.production(name),
    }


def promote(run: Run, params: TrainParams) -> bool:
    """Promote the version just trained; False (skipped) when `promote` is off."""
    if not params.promote:
        return False
    model = run.result["model"]
    if model["gate_failures"] or model["stage"] != "candidate":
        names = model["gate_failures"] or [f"stage {model['stage']}"]
        message = f"promotion gate failed for {model['model']} {model['version']}: " + "; ".join(
            names[:_MAX_GATES_SHOWN]
        )
        raise GateFailed("promotion", names, message)
    code, tail = run.command(
        _exe("btcfs"), "models", "promote", "--", model["model"], model["version"]
    )
    if code != 0:
        raise StepFailed(f"btcfs models promote exited with code {code}: {_last(tail)}",
                         exit_code=code)  # fmt: skip
    model["stage"] = "production"
    return True


def publish(run: Run) -> None:
    code, tail = run.command(
        _exe("btcfs"), "publish",
        *_option("--target-path", run.settings.target_path),
        *_option("--serve", run.settings.serve_db),
        *_option("--model", run.settings.primary_model),
    )  # fmt: skip
    if code != 0:
        refused = next((line for line in reversed(tail) if "refusing to publish" in line), None)
        _, failing = _gates(run)
        if refused is not None and (failing or "gate" in refused):
            raise GateFailed("publish", failing, refused.removeprefix("Error: "), exit_code=code)
        raise StepFailed(f"btcfs publish exited with code {code}: {_last(tail)}", exit_code=code)
    run.result["published"] = _published(run.settings.serve_db)


def _published(serve: Path) -> dict[str, Any]:
    import duckdb

    from warehouse.publish import METADATA_TABLE

    con = duckdb.connect(str(serve), read_only=True)
    try:
        cursor = con.execute(f"select * from {METADATA_TABLE}")  # noqa: S608 (a constant)
        columns = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    finally:
        con.close()
    values = dict(zip(columns, row, strict=True)) if row else {}
    return {key: _plain(value) for key, value in values.items()}


def _plain(value: Any) -> Any:
    """A metadata cell as JSON: JSON text (table counts, statuses) decoded, times as text."""
    if isinstance(value, str) and value.startswith(("{", "[")):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


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


def _last(tail: list[str]) -> str:
    return next((line for line in reversed(tail) if line.strip()), "no output")[-500:]


# ------------------------------------------------------------------------------ plans


def plan(job: Job, run: Run) -> list[tuple[str, Callable[[], bool | None]]]:
    """The job's steps as (name, action) pairs; an action returning False was skipped."""
    params = job.params
    if job.pipeline == "forecast":
        request = msgspec.convert(params, ForecastIn)
        trainer = request.train or TrainParams()
        return [
            ("check", lambda: check(run)),
            ("train", lambda: train(run, trainer)),
            ("promote", lambda: promote(run, trainer)),
            ("publish", lambda: publish(run)),
            ("predict", lambda: predict(run, request)),
        ]
    if job.pipeline == "all":
        every = msgspec.convert(params, AllParams)
        return [
            ("ingest", lambda: ingest(run, every.ingest)),
            ("build", lambda: build(run, every.build)),
            ("qa", lambda: qa(run)),
            ("train", lambda: train(run, every.train)),
            ("promote", lambda: promote(run, every.train)),
            ("publish", lambda: publish(run)),
        ]
    if job.pipeline == "ingest":
        ingest_params = msgspec.convert(params, IngestParams)
        return [("ingest", lambda: ingest(run, ingest_params))]
    if job.pipeline == "build":
        build_params = msgspec.convert(params, BuildParams)
        return [("build", lambda: build(run, build_params)), ("qa", lambda: qa(run))]
    if job.pipeline == "train":
        train_params = msgspec.convert(params, TrainParams)
        return [
            ("train", lambda: train(run, train_params)),
            ("promote", lambda: promote(run, train_params)),
        ]
    if job.pipeline == "publish":
        msgspec.convert(params, PublishParams)
        return [("publish", lambda: publish(run))]
    raise StepFailed(f"unknown pipeline {job.pipeline!r}")


def execute(run: Run) -> None:
    """Run the steps in order; the first failure stops the job (later steps stay pending)."""
    steps = plan(run.job, run)
    assert [name for name, _ in steps] == list(STEPS[run.job.pipeline])
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
