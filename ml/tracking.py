"""MLflow experiment tracking, optional: the one module that talks to MLflow.

With MLFLOW_TRACKING_URI set, each registered version becomes an MLflow run (its config as
params, its pooled out-of-sample scores as metrics, its feature set, symbols and data
fingerprint as tags, its registry folder as artifacts) and a version of the MLflow registered
model of the same name; the `production` alias follows the btcfs production version.
Without the variable nothing here imports mlflow. The btcfs registry is the record: when
MLflow is unreachable or fails, the version stays registered and one warning says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.redact import redact
from warehouse.connect import first_line

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from ml.registry import VersionInfo

log = logging.getLogger("ml.tracking")

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
INSTALL_HINT = "pip install -e '.[mlflow]'"
#: The registered-model alias that mirrors the btcfs `production` stage.
PRODUCTION_ALIAS = "production"
#: The model-version tags naming the btcfs version it holds (how promote finds it): the version
#: name, and a digest of its metadata, which tells apart two registries' v0001 on one server.
VERSION_TAG = "btcfs_version"
DIGEST_TAG = "btcfs_metadata_sha256"
#: A version's feature set when its metadata names none: every feature the mart has.
DEFAULT_FEATURE_SET = "all"
#: Artifact folders of a run: the version's registry folder, and its HTML report.
MODEL_ARTIFACTS = "model"
REPORT_ARTIFACTS = "report"
# Bounded and quiet unless the user set these: an unreachable server costs seconds, not the
# minutes of MLflow's default retries; the run URL MLflow prints (it may carry the URI's
# credentials) and its INFO lines stay out of btcfs's output.
_MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
_MESSAGE_MAX = 300
_PARAM_VALUE_MAX = 500
_BATCH = 100  # MLflow's log_batch takes at most 100 params or tags per call


@dataclass(frozen=True)
class Tracked:
    """What `log_version` left in MLflow: nothing (`logged` False), or a run and a version."""

    logged: bool
    run_id: str | None = None
    model_version: str | None = None


NOT_LOGGED = Tracked(logged=False)


@dataclass(frozen=True)
class RunRecord:
    """A registered version as MLflow run fields (all strings, floats for metrics)."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    model_version_tags: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------- what is logged


def feature_set(metadata: Mapping[str, Any]) -> str:
    """The version's feature-set choice (spot, derivatives, all, or auto: every set complete in
    its window); `all` for versions registered before feature sets existed."""
    return str(metadata.get("feature_set") or DEFAULT_FEATURE_SET)


def symbols(metadata: Mapping[str, Any]) -> list[str]:
    """The symbols the version was trained on: `symbols` if recorded, else `symbol`."""
    recorded = metadata.get("symbols") or ([metadata["symbol"]] if metadata.get("symbol") else [])
    return [str(symbol) for symbol in recorded]


def run_record(info: VersionInfo) -> RunRecord:
    """Params, metrics and tags for a version, all read from its metadata.json."""
    meta = info.metadata
    params = {
        key: str(value)
        for key, value in flatten(meta.get("config") or {}).items()
        if value is not None and len(str(value)) <= _PARAM_VALUE_MAX
    }
    overall = (meta.get("metrics") or {}).get("overall") or {}
    metrics = {
        key: number for key, value in overall.items() if (number := _finite(value)) is not None
    }
    fingerprint = flatten(meta.get("data_fingerprint") or {}, "data_fingerprint.")
    git = meta.get("git") or {}
    tags = {
        "btcfs_model": info.model,
        "stage": info.stage,  # at registration; the alias follows later promotes
        "feature_set": feature_set(meta),
        "feature_sets": ",".join(meta.get("feature_sets") or []) or None,
        "symbols": ",".join(symbols(meta)),
        "target": meta.get("target"),
        "label": meta.get("label"),
        "gates_passed": (meta.get("gates") or {}).get("passed"),
        "mlflow.source.git.commit": git.get("revision"),
        **fingerprint,
    }
    identity = {VERSION_TAG: info.version, DIGEST_TAG: metadata_digest(info)}
    return RunRecord(
        params=params,
        metrics=metrics,
        tags={key: str(value) for key, value in {**tags, **identity}.items() if value is not None},
        model_version_tags={**identity, "feature_set": feature_set(meta)},
    )


def metadata_digest(info: VersionInfo) -> str:
    """sha256 of the version's metadata (canonical JSON): its identity across registries."""
    canonical = json.dumps(info.metadata, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def flatten(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"cv": {"n_folds": 5}} -> {"cv.n_folds": 5}."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _finite(value: Any) -> float | None:
    """The value as a finite float, else None (a score that could not be computed)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


# ------------------------------------------------------------------------ the client


def tracking_uri() -> str | None:
    """$MLFLOW_TRACKING_URI, or None: then btcfs does not touch MLflow at all."""
    return os.environ.get(TRACKING_URI_ENV) or None


@contextlib.contextmanager
def _connected(uri: str) -> Iterator[MlflowClient | None]:
    """A client for `uri` (None when mlflow is missing), with btcfs's MLflow defaults set in
    the environment only while it is used."""
    added = {name: value for name, value in _MLFLOW_DEFAULTS.items() if name not in os.environ}
    os.environ.update(added)
    # urllib3 logs a line per retry; the one warning that matters is ours, after the last.
    quiet_retries = _DropRetries()
    _URLLIB3_POOL.addFilter(quiet_retries)
    try:
        try:
            from mlflow import MlflowClient
        except ImportError:
            log.warning("%s is set, mlflow is not installed: %s", TRACKING_URI_ENV, INSTALL_HINT)
            client = None
        else:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        yield client
    finally:
        _URLLIB3_POOL.removeFilter(quiet_retries)
        for name in added:
            os.environ.pop(name, None)


_URLLIB3_POOL = logging.getLogger("urllib3.connectionpool")


class _DropRetries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying")


def _warn(what: str, exc: BaseException) -> None:
    reason = redact(first_line(exc))
    if len(reason) > _MESSAGE_MAX:
        reason = reason[: _MESSAGE_MAX - 3] + "..."
    log.warning("MLflow: %s failed (the btcfs registry is unchanged): %s", what, reason)


def log_version(info: VersionInfo, report: Path | None = None) -> Tracked:
    """Log a registered version as a run and an MLflow model version (see the module doc)."""
    uri = tracking_uri()
    if uri is None:
        return NOT_LOGGED
    with _connected(uri) as client:
        if client is None:
            return NOT_LOGGED
        try:
            return _log_version(client, info, report)
        except Exception as exc:  # tracking is best-effort: the registry has the version
            _warn(f"logging {info.model} {info.version}", exc)
            return NOT_LOGGED


def _log_version(client: MlflowClient, info: VersionInfo, report: Path | None) -> Tracked:
    from mlflow.entities import Metric, Param, RunTag

    record = run_record(info)
    experiment = client.get_experiment_by_name(info.model)
    experiment_id = (
        experiment.experiment_id if experiment else _create_experiment(client, info.model)
    )
    run = client.create_run(experiment_id, run_name=f"{info.model}-{info.version}")
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, 0) for key, value in record.metrics.items()]
        params = [Param(key, value) for key, value in record.params.items()]
        tags = [RunTag(key, value) for key, value in record.tags.items()]
        for chunk in _chunks(params):
            client.log_batch(run_id, params=chunk)
        for chunk in _chunks(tags):
            client.log_batch(run_id, tags=chunk)
        client.log_batch(run_id, metrics=metrics)
        client.log_artifacts(run_id, str(info.path), MODEL_ARTIFACTS)
        if report is not None and report.is_file():
            client.log_artifact(run_id, str(report), REPORT_ARTIFACTS)
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one worth reporting
            client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    _ensure_registered_model(client, info.model)
    version = client.create_model_version(
        info.model,
        f"runs:/{run_id}/{MODEL_ARTIFACTS}",
        run_id=run_id,
        tags=record.model_version_tags,
        description=f"btcfs {info.model} {info.version}",
    )
    return Tracked(logged=True, run_id=run_id, model_version=str(version.version))


def _chunks(items: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _BATCH):
        yield list(items[start : start + _BATCH])


def _create_experiment(client: MlflowClient, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.create_experiment(name))
    except MlflowException:  # another process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            client.create_registered_model(name, description=f"btcfs registry model {name}")
        except MlflowException as again:
            if again.error_code != "RESOURCE_ALREADY_EXISTS":  # another process created it
                raise


# ------------------------------------------------------------------------ the stages


def model_version_of(client: MlflowClient, info: VersionInfo) -> str | None:
    """The newest MLflow model version that holds this btcfs version, or None."""
    found = client.search_model_versions(
        f"name='{info.model}' and tag.{VERSION_TAG}='{info.version}' "
        f"and tag.{DIGEST_TAG}='{metadata_digest(info)}'"
    )
    numbers = [int(entry.version) for entry in found]
    return str(max(numbers)) if numbers else None


def mirror_production(info: VersionInfo) -> bool:
    """Point the `production` alias at the MLflow version of `info` (the btcfs production
    version after a promote or a rollback), logging the version first if MLflow lacks it."""
    uri = tracking_uri()
    if uri is None:
        return False
    with _connected(uri) as client:
        if client is None:
            return False
        try:
            number = model_version_of(client, info)
            if number is None:  # registered while MLFLOW_TRACKING_URI was unset, or it failed
                number = _log_version(client, info, None).model_version
            client.set_registered_model_alias(info.model, PRODUCTION_ALIAS, str(number))
        except Exception as exc:  # tracking is best-effort: the registry has the stage
            _warn(f"setting {info.model}@{PRODUCTION_ALIAS} to {info.version}", exc)
            return False
    return True
