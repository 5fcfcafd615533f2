"""MLflow tracking against a real `mlflow server` on loopback (SQLite backend, local artifacts).

A registered version is read back with MlflowClient and compared with its metadata.json;
promote and rollback move the `production` alias; without MLFLOW_TRACKING_URI mlflow is never
imported, and with an unreachable server the btcfs registry works as before, quickly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from lake.store import MANIFEST_FILE
from ml import registry, tracking
from ml.training import TrainOutcome, train_and_register
from tests.ml.mlframes import fast_config, isolate, training_frame, write_mart

pytest.importorskip(
    "mlflow", reason="mlflow is not installed (the `mlflow` extra: pip install -e '.[mlflow]')"
)
from mlflow import MlflowClient  # after the skip: the module needs mlflow

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODEL = "btcusdt_5m"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real tracking server (REST API, model registry, proxied artifacts) for this module."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    # No job runner: its worker pool is for GenAI jobs and would only load the 2 cores.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log_file = (root / "server.log").open("w")
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{(root / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not up:\n{(root / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        with_group(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=15)
        with_group(server.pid, signal.SIGKILL)  # whatever of the group is left
        server.wait(timeout=15)
        log_file.close()


def with_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path / "data")  # MLFLOW_TRACKING_URI unset unless a test sets it


@pytest.fixture
def client(mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    return MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


def flat(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The test's own flattening of nested metadata: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, Mapping):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(data_dir: Path) -> None:
    """A lake partition's MANIFEST and dbt's run_results.json, so the fingerprint is real."""
    part = data_dir / "lake" / "binance" / "spot_klines" / "symbol=BTCUSDT" / "date=2025-01-01"
    part.mkdir(parents=True)
    (part / MANIFEST_FILE).write_text(json.dumps({"data_sha256": "ab" * 32, "rows": 1}))
    target = data_dir / "target"
    target.mkdir(parents=True)
    (target / "run_results.json").write_text(
        json.dumps(
            {
                "metadata": {"invocation_id": "inv-42", "generated_at": "2025-01-02T00:00:00Z"},
                "args": {"which": "build"},
                "results": [{"status": "pass"}],
            }
        )
    )


def train(tmp_path: Path) -> TrainOutcome:
    data_dir = tmp_path / "data"
    provenance(data_dir)
    write_mart(data_dir / "warehouse" / "build.duckdb", training_frame(1800, effect=0.6, seed=4))
    return train_and_register(fast_config(horizon="5m", model=MODEL))


def add(store: registry.Registry, passed: bool = True) -> registry.VersionInfo:
    """A cheap version (tracking reads metadata and files, never the model itself). Every
    test has its own registry, so MLflow holds several `v0001`s of MODEL: as it would after
    a registry was rebuilt, or with two registries logging to one server."""

    def write(folder: Path) -> None:
        (folder / registry.MODEL_FILE).write_bytes(b"a catboost model")

    metadata = {
        "gates": {"passed": passed, "failures": []},
        "symbol": "BTCUSDT",
        "registry": str(store.root),  # no two tests' versions have the same metadata
    }
    return store.register(MODEL, metadata, write)


# ------------------------------------------------------------------------------ logging


def test_a_registered_version_is_logged_with_its_metadata_and_files(
    client: MlflowClient, tmp_path: Path
) -> None:
    outcome = train(tmp_path)
    info, logged = outcome.info, outcome.mlflow
    meta = info.metadata
    assert logged.logged and logged.run_id and logged.model_version

    run = client.get_run(logged.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == f"{MODEL}-{info.version}"
    assert client.get_experiment(run.info.experiment_id).name == MODEL
    config = flat(meta["config"])
    assert run.data.params == {k: str(v) for k, v in config.items() if v is not None}
    assert run.data.params["regressor.iterations"] == "40" and run.data.params["seed"] == "42"
    overall = meta["metrics"]["overall"]
    assert run.data.metrics == {k: v for k, v in overall.items() if v is not None}
    assert "rank_ic" in run.data.metrics

    tags = run.data.tags
    assert tags["btcfs_model"] == MODEL and tags["btcfs_version"] == info.version
    assert tags["stage"] == meta["stage"] == info.stage
    assert tags["feature_set"] == meta["feature_set"] == "auto"  # every set complete (default)
    assert tags["feature_sets"] == ",".join(meta["feature_sets"]) and "spot" in tags["feature_sets"]
    assert tags["symbols"] == meta["symbol"] == "BTCUSDT"
    assert tags["target"] == "fwd_ret" and tags["label"] == "fwd_ret_5m"
    fingerprint = flat(meta["data_fingerprint"], "data_fingerprint.")
    assert {k: v for k, v in tags.items() if k.startswith("data_fingerprint.")} == {
        k: str(v) for k, v in fingerprint.items() if v is not None
    }
    lake = registry.lake_fingerprint(tmp_path / "data" / "lake")
    assert tags["data_fingerprint.lake.sha256"] == lake["sha256"]
    assert tags["data_fingerprint.dbt.invocation_id"] == "inv-42"
    if meta["git"]["revision"]:
        assert tags["mlflow.source.git.commit"] == meta["git"]["revision"]

    # The registry folder as it is on disk: model files, metadata, predictions; and the report.
    logged_files = {a.path for a in client.list_artifacts(logged.run_id, "model")}
    on_disk = {f"model/{p.name}" for p in info.path.iterdir()}
    assert logged_files == on_disk
    assert {"model/model.cbm", "model/quantiles.cbm", "model/metadata.json"} <= logged_files
    assert [a.path for a in client.list_artifacts(logged.run_id, "report")] == [
        f"report/{outcome.report_path.name}"  # type: ignore[union-attr]
    ]
    downloaded = Path(
        client.download_artifacts(logged.run_id, "model", str(tmp_path / "downloaded"))
    )
    for name in (registry.MODEL_FILE, registry.QUANTILE_FILE, registry.METADATA_FILE):
        assert sha256(downloaded / name) == sha256(info.path / name)

    version = client.get_model_version(MODEL, logged.model_version)
    assert version.run_id == logged.run_id and version.source == f"runs:/{logged.run_id}/model"
    digest = hashlib.sha256(
        json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert version.tags == {
        "btcfs_version": info.version,
        "btcfs_metadata_sha256": digest,
        "feature_set": meta["feature_set"],
    }
    assert tags["btcfs_metadata_sha256"] == digest
    assert tracking.model_version_of(client, info) == logged.model_version


def test_promote_and_rollback_move_the_production_alias(client: MlflowClient) -> None:
    store = registry.Registry()
    first, second = add(store), add(store)
    numbers = {}
    for info in (first, second):
        tracked = tracking.log_version(info)
        assert tracked.logged
        numbers[info.version] = tracked.model_version

    def production() -> str:
        return str(client.get_model_version_by_alias(MODEL, "production").version)

    runner = CliRunner()
    result = runner.invoke(cli, ["models", "promote", MODEL, first.version])
    assert result.exit_code == 0, result.output
    assert production() == numbers[first.version]
    result = runner.invoke(cli, ["models", "promote", MODEL, second.version])
    assert result.exit_code == 0, result.output
    assert production() == numbers[second.version]
    result = runner.invoke(cli, ["models", "rollback", MODEL])
    assert result.exit_code == 0 and f"rolled back to {first.version}" in result.output
    assert production() == numbers[first.version]
    aliases = client.get_registered_model(MODEL).aliases
    assert aliases == {"production": numbers[first.version]}


def test_promoting_a_version_mlflow_never_saw_logs_it_first(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    store = registry.Registry()
    info = add(store)  # registered with tracking off
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    assert tracking.model_version_of(client, info) is None
    store.promote(MODEL, info.version)
    number = tracking.model_version_of(client, info)
    assert number is not None
    assert client.get_model_version_by_alias(MODEL, "production").version == number
    run = client.get_run(client.get_model_version(MODEL, number).run_id)
    assert run.data.tags["stage"] == "production" and run.data.tags["symbols"] == "BTCUSDT"


# ------------------------------------------------------------------------ off and broken

WITHOUT_URI = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ml import registry, tracking

    store = registry.Registry(Path("registry"))
    for _ in range(2):
        store.register("m", {"gates": {"passed": True}}, lambda folder: None)
    logged = tracking.log_version(store.get("m", "v0001"))
    store.promote("m", "v0001")
    store.promote("m", "v0002")
    store.rollback("m")
    print(logged.logged, "mlflow" in sys.modules, store.production("m"))
    """
)


def test_without_a_tracking_uri_mlflow_is_not_even_imported(
    mlflow_uri: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_URI], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False", "v0001"]
    assert proc.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry"]  # no ./mlruns, no mlflow.db
    # And the server saw nothing: no experiment but MLflow's own Default.
    names = [e.name for e in MlflowClient(mlflow_uri).search_experiments()]
    assert "m" not in names


def test_an_unreachable_server_costs_seconds_and_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:s3cret-pw@127.0.0.1:{free_port()}")
    store = registry.Registry()
    caplog.set_level(logging.WARNING, logger="ml.tracking")
    started = time.monotonic()
    info = add(store)
    tracked = tracking.log_version(info)
    logging_took = time.monotonic() - started
    assert tracked == tracking.NOT_LOGGED and not tracked.logged
    assert logging_took < 10
    warnings = [r for r in caplog.records if r.name == "ml.tracking"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    message = warnings[0].getMessage()
    assert f"logging {MODEL} {info.version} failed" in message
    assert "registry is unchanged" in message and "\n" not in message
    assert "s3cret-pw" not in caplog.text

    caplog.clear()
    started = time.monotonic()
    assert store.promote(MODEL, info.version).stage == "production"
    assert time.monotonic() - started < 10
    assert store.production(MODEL) == info.version
    assert [r.name for r in caplog.records] == ["ml.tracking"]
    assert "s3cret-pw" not in caplog.text
    # btcfs's MLflow defaults (bounded retries) were set only while it talked to MLflow.
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_a_tracking_uri_without_mlflow_installed_is_one_warning(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["mlflow"] = None  # what an environment without the extra looks like
        from pathlib import Path
        from ml import registry, tracking
        store = registry.Registry(Path("registry"))
        info = store.register("m", {}, lambda f: None)
        print(tracking.log_version(info).logged)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    assert "MLFLOW_TRACKING_URI is set, mlflow is not installed" in proc.stderr
    assert "pip install -e '.[mlflow]'" in proc.stderr
