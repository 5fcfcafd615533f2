"""Pipeline jobs: POST /v1/jobs starts ingest, build, publish, train or all in a worker
process (admin token), GET /v1/jobs and GET /v1/jobs/{id} say how they are doing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import anyio
import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import JSONBody, PathParameter, QueryParameter, SkipValidation

from api.errors import (
    PROBLEM_JSON,
    Conflict,
    ErrorBody,
    InvalidInput,
    NotFound,
    error_responses,
    strictly,
)
from api.jobs import PIPELINES, ROOT, Job, JobConflict, JobFinished, JobRunner, log_tail
from api.routes.admin import require_admin
from api.schemas import (
    AllJobIn,
    FailedGate,
    IngestJobIn,
    IngestParams,
    JobIn,
    JobOut,
    JobsOut,
    JobStep,
    TrainJobIn,
    TrainParams,
)
from core.redact import redact
from ingest.config import is_loopback_url

#: A job request is a few hundred bytes: anything much larger is refused (413) unread.
MAX_JOB_BODY = 65_536
_Lines = Annotated[int, QueryParameter(ge=0, le=500, description="Log lines to include")]
_JobId = Annotated[int, PathParameter(ge=1, le=2**62, description="The job's id")]
T = TypeVar("T")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")

#: How handlers get the job runner (the app's one instance, not a validated copy).
JobsDep = NamedDependency[SkipValidation[JobRunner]]


def _invalid_body(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    """A job request whose body does not validate: 422 as everywhere, with every problem
    named in the detail."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    named = [
        "body: a JSON object is required"
        if item.get("key") == "data" and item.get("message") == "'data'"
        else f"{item.get('key') or 'body'}: {item.get('message')}"
        for item in problems
        if isinstance(item, dict)
    ]
    detail = "invalid request: " + ("; ".join(named) if named else str(exc.detail))
    extra: dict[str, Any] = {"problems": problems}
    if any(isinstance(item, dict) and item.get("key") == "pipeline" for item in problems):
        extra["valid"] = [name for name in PIPELINES if name != "forecast"]
    return Response(
        ErrorBody.of(422, detail, extra),
        status_code=422,
        media_type=PROBLEM_JSON,
    )


EXCEPTION_HANDLERS = {ValidationException: _invalid_body}


def job_responses(*codes: int) -> dict[int, ResponseSpec]:
    """Error responses of the job endpoints (422 describes their body's rules)."""
    specs = error_responses(*codes)
    if 422 in specs:
        specs[422] = ResponseSpec(
            data_container=ErrorBody,
            description="Malformed JSON, unknown pipeline or parameter, wrong type, missing "
            "file (the field is named in `extra`)",
            media_type=PROBLEM_JSON,
            generate_examples=False,
            examples=[
                Example(
                    summary="An unknown pipeline",
                    value=msgspec.to_builtins(
                        ErrorBody.of(
                            422,
                            "invalid request: pipeline: Invalid enum value 'deploy'",
                            {"problems": [], "valid": ["ingest", "build", "all"]},
                        )
                    ),
                )
            ],
        )
    return specs


# ------------------------------------------------------------------------ validation


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _config(where: str, value: str | None, data_dir: Path) -> str | None:
    """A YAML file inside the project or the data folder, as an absolute path."""
    if value is None:
        return None
    if _CONTROL.search(value.replace(" ", "")):
        raise InvalidInput(f"{where}: control characters are not allowed", key=where)
    path = Path(value) if Path(value).is_absolute() else ROOT / value
    path = path.resolve()
    if path.suffix not in (".yml", ".yaml"):
        raise InvalidInput(f"{where}: {value!r} is not a .yml file", key=where)
    if not _inside(path, (ROOT, data_dir.resolve())):
        raise InvalidInput(
            f"{where}: {value!r} is outside the project and the data folder", key=where
        )
    if not path.is_file():
        raise InvalidInput(f"{where}: {value!r} does not exist", key=where)
    return str(path)


def _url(where: str, value: str | None, *, allowed: bool, allow_none: bool = False) -> str | None:
    """A host the caller chose for ingest: only a loopback one (the replay server), and only
    when the server allows it (BTCFS_API_ALLOW_BASE_URL); the worker then sends it no key."""
    if value is None or (allow_none and value == "none"):
        return value
    try:
        parts = urlsplit(value)
        scheme, hostname = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unbalanced '[' in the host
        scheme, hostname = "", None
    if _CONTROL.search(value) or scheme not in ("http", "https") or not hostname:
        raise InvalidInput(
            f"{where}: {redact(value)[:100]!r} is not an http(s) URL"
            + (" (or 'none')" if allow_none else ""),
            key=where,
        )
    if not allowed:
        raise InvalidInput(
            f"{where}: this server takes no vendor host from a request "
            "(BTCFS_API_ALLOW_BASE_URL is off)"
            + (": leave it out or 'none'" if allow_none else ""),
            key=where,
        )
    if not is_loopback_url(value):
        raise InvalidInput(
            f"{where}: {redact(hostname)[:100]!r} is not a loopback host: only 127.0.0.0/8, "
            "::1 or localhost, without user info (the replay server)",
            key=where,
        )
    return value


def _ingest(params: IngestParams, where: str, data_dir: Path, allow_hosts: bool) -> IngestParams:
    return msgspec.structs.replace(
        params,
        config=_config(f"{where}.config", params.config, data_dir),
        base_url=_url(f"{where}.base_url", params.base_url, allowed=allow_hosts),
        archive=_url(f"{where}.archive", params.archive, allowed=allow_hosts, allow_none=True),
    )


def checked_train(params: TrainParams, where: str, data_dir: Path) -> TrainParams:
    return msgspec.structs.replace(
        params, config=_config(f"{where}.config", params.config, data_dir)
    )


def checked_params(data: JobIn, data_dir: Path, *, allow_base_url: bool = False) -> dict[str, Any]:
    """The job's parameters with defaults filled in and files resolved (422 when not valid);
    `allow_base_url` (BTCFS_API_ALLOW_BASE_URL) lets ingest take a loopback host."""
    params: Any = data.params
    if isinstance(data, IngestJobIn):
        params = _ingest(data.params, "params", data_dir, allow_base_url)
    elif isinstance(data, TrainJobIn):
        params = checked_train(data.params, "params", data_dir)
    elif isinstance(data, AllJobIn):
        params = msgspec.structs.replace(
            data.params,
            ingest=_ingest(data.params.ingest, "params.ingest", data_dir, allow_base_url),
            train=checked_train(data.params.train, "params.train", data_dir),
        )
    built: dict[str, Any] = msgspec.to_builtins(params)
    return built


# ------------------------------------------------------------------------ output


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def job_out(job: Job, lines: int) -> JobOut:
    end = job.finished_at
    duration = (end - job.started_at).total_seconds() if end and job.started_at else None
    return JobOut(
        id=job.id,
        pipeline=job.pipeline,
        state=job.state,
        step=job.step,
        steps=[msgspec.convert(step, JobStep, strict=False) for step in job.steps],
        params=_redacted(job.params),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=duration,
        pid=job.pid,
        exit_code=job.exit_code,
        error=redact(job.error) if job.error else None,
        failed_gate=msgspec.convert(job.failed_gate, FailedGate) if job.failed_gate else None,
        result=_redacted(job.result),
        log=log_tail(job.log_path, lines),
        cancel_requested_at=job.cancel_requested_at,
    )


def start(jobs: JobRunner, pipeline: str, params: dict[str, Any]) -> Response[JobOut]:
    """Start a job: 202 with the job and its URL, 409 naming the one already running."""
    try:
        job = jobs.start(pipeline, params)
    except JobConflict as exc:
        running = exc.running
        raise Conflict(
            f"job {running.id} ({running.pipeline}) is {running.state}: one pipeline job runs "
            "at a time",
            key="pipeline",
            running_job=running.id,
            running_pipeline=running.pipeline,
            running_state=running.state,
        ) from None
    return Response(job_out(job, 0), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


# ------------------------------------------------------------------------ handlers


@post(
    "/v1/jobs",
    operation_id="startJob",
    summary="Start a pipeline job",
    tags=["jobs"],
    guards=[require_admin],
    status_code=202,
    security=[{"bearer": []}],
    request_max_body_size=MAX_JOB_BODY,
    exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    responses=job_responses(401, 409, 413, 422),
)
async def start_job(
    request: Request[Any, Any, Any], jobs: JobsDep, data: JSONBody[JobIn]
) -> Response[JobOut]:
    """Run a pipeline in a worker process: `ingest` (btcfs ingest all), `build` (dbt build,
    then the QA gates), `publish`, `train` (train, then promote when every gate passes) or
    `all` (ingest, build, QA, train, promote, publish). Answers 202 at once with the job;
    follow it at `GET /v1/jobs/{id}`. One job runs at a time (409 names the running one).
    A failed QA or promotion gate stops the job: nothing is published or promoted."""
    data = await strictly(request, JobIn)  # type: ignore[arg-type]
    pipeline = data.__struct_config__.tag
    assert isinstance(pipeline, str)
    params = checked_params(data, jobs.data_dir, allow_base_url=jobs.allow_base_url)
    # (async with an explicit thread: Litestar 2.25 wraps a sync handler twice when another
    # method shares its path, and a Response return then is an un-awaited coroutine)
    return await anyio.to_thread.run_sync(start, jobs, pipeline, params)


@get("/v1/jobs", operation_id="listJobs", summary="List jobs", tags=["jobs"], sync_to_thread=True,
     guards=[require_admin], security=[{"bearer": []}],
     responses=job_responses(401, 422))  # fmt: skip
def list_jobs(
    jobs: JobsDep,
    limit: Annotated[
        int, QueryParameter(ge=1, le=200, description="Newest jobs to list, 1-200")
    ] = 20,
    lines: _Lines = 5,
) -> JobsOut:
    """The newest jobs first, each with its state, steps, timings, result and the last
    `lines` lines of its log. A job whose worker died is reported failed with the reason.
    Admin token: a job holds its parameters, paths, pids and log."""
    jobs.reconcile()
    found = jobs.store.recent(limit)
    active = jobs.store.active()
    return JobsOut(jobs=[job_out(job, lines) for job in found],
                   active=active.id if active else None)  # fmt: skip


@get("/v1/jobs/{job_id:int}", operation_id="getJob", summary="One job, with its log",
     tags=["jobs"], sync_to_thread=True,
     guards=[require_admin], security=[{"bearer": []}],
     responses=job_responses(401, 404, 422))  # fmt: skip
def get_job(jobs: JobsDep, job_id: _JobId, lines: _Lines = 50) -> JobOut:
    """One job (admin token): state (queued, running, succeeded, failed, cancelled), the
    step in progress, timings, the result (rows landed, gate results, model version,
    forecast), the failed gate if one stopped it, and the last `lines` lines of its log
    (secrets redacted)."""
    jobs.reconcile()
    job = jobs.store.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", key="job_id")
    return job_out(job, lines)


def cancel(jobs: JobRunner, job_id: int) -> Response[JobOut]:
    try:
        job = jobs.cancel(job_id)
    except JobFinished as exc:
        raise Conflict(
            f"job {job_id} ({exc.job.pipeline}) already {exc.job.state}: nothing to cancel",
            key="job_id",
            state=exc.job.state,
        ) from None
    if job is None:
        raise NotFound(f"no job {job_id}", key="job_id")
    return Response(job_out(job, 0), status_code=200 if job.state == "cancelled" else 202)


@delete("/v1/jobs/{job_id:int}", operation_id="cancelJob", summary="Cancel a job", tags=["jobs"],
        guards=[require_admin], status_code=200, security=[{"bearer": []}],
        responses={202: ResponseSpec(data_container=JobOut, description="Stopping: the "
                                     "worker was sent SIGTERM"),
                   **job_responses(401, 404, 409, 422)})  # fmt: skip
async def cancel_job(jobs: JobsDep, job_id: _JobId) -> Response[JobOut]:
    """Cancel a job (admin token). A queued one is cancelled at once: 200 with it
    `cancelled`. A running one: its worker gets SIGTERM, stops the step's command (SIGKILL
    after BTCFS_JOB_KILL_GRACE_S) and ends the job `cancelled`; 202 with it still
    `running` and `cancel_requested_at` set (follow it at `GET /v1/jobs/{id}`). 409 for a
    job that already ended, 404 for an unknown one."""
    # (async with an explicit thread: see start_job)
    return await anyio.to_thread.run_sync(cancel, jobs, job_id)


ROUTES = [start_job, list_jobs, get_job, cancel_job]
