"""The trainer and the API read the marts dbt built on BigQuery (the session's emulator build).

* `ml.dataset.read_bigquery` (api endpoint from $BTCFS_BQ_API_ENDPOINT, anonymous) reads
  `training_set_5m` row for row like `read_duckdb` reads the DuckDB build, and `prepare` gives
  the trainer the same inputs and labels from either.
* `btcfs publish --from bigquery` copies the BigQuery marts into a new serve.duckdb (the gate
  ledger dbt keeps in that dataset checked, a DuckDB build's manifest refused) and the API
  serves them.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.settings import ApiSettings
from btcfs.cli import cli
from ml import dataset
from ml.config import TrainConfig
from ml.errors import DatasetError
from tests.bigquery.bqsupport import DATASET, PROJECT, EmulatorBuild, free_port
from tests.bigquery.martcompare import bigquery_rows, compare

pytestmark = [
    pytest.mark.dbt,
    pytest.mark.bigquery,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*BigQuery Storage.*:UserWarning"),
]


def _rows(table: Any) -> tuple[list[str], list[dict[str, Any]]]:
    return list(table.column_names), table.to_pylist()


def test_trainer_reads_the_bigquery_training_set(
    emulator_build: EmulatorBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BTCFS_BQ_API_ENDPOINT", emulator_build.endpoint)
    from_bigquery = dataset.read_bigquery(PROJECT, DATASET, "training_set_5m", "BTCUSDT")
    from_duckdb = dataset.read_duckdb(emulator_build.duckdb_path, "training_set_5m", "BTCUSDT")
    assert from_duckdb.num_rows > 0
    assert from_bigquery.column("open_time").to_pylist() == sorted(
        from_duckdb.column("open_time").to_pylist()
    )
    keys = ("symbol", "open_time")
    problems = compare("training_set_5m", keys, _rows(from_duckdb), _rows(from_bigquery))
    assert not problems, "\n".join(problems)

    # The configured path (warehouse.target prod) and what the trainer makes of it.
    config = TrainConfig()
    prod = dataclasses.replace(
        config,
        warehouse=dataclasses.replace(
            config.warehouse, target="prod", bigquery_project=PROJECT, bigquery_dataset=DATASET
        ),
    )
    table = dataset.read_training_table(prod)
    assert table.num_rows == from_duckdb.num_rows
    on_bigquery = dataset.prepare(table, prod)
    on_duckdb = dataset.prepare(from_duckdb, config)
    assert on_bigquery.features == on_duckdb.features and len(on_bigquery.frame) > 0
    pd.testing.assert_frame_equal(on_bigquery.x, on_duckdb.x, rtol=1e-9, check_dtype=False)
    assert list(on_bigquery.y) == pytest.approx(list(on_duckdb.y), rel=1e-9)

    # The perp backtest's funding comes from the same target.
    funding_bq = dataset.read_funding(prod)
    funding_duckdb = dataset.read_funding(config, emulator_build.duckdb_path)
    assert funding_bq is not None and funding_duckdb is not None and len(funding_bq) > 0
    pd.testing.assert_series_equal(funding_bq, funding_duckdb, rtol=1e-9, check_dtype=False)


def test_trainer_bigquery_errors_are_one_line(
    emulator_build: EmulatorBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BTCFS_BQ_API_ENDPOINT", emulator_build.endpoint)
    with pytest.raises(DatasetError, match="has no table"):
        dataset.read_bigquery(PROJECT, DATASET, "no_such_mart", "BTCUSDT")
    with pytest.raises(DatasetError, match="invalid symbol"):
        dataset.read_bigquery(PROJECT, DATASET, "training_set_5m", "BTC' or '1'='1")
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("BTCFS_BQ_API_ENDPOINT", closed)
    with pytest.raises(DatasetError, match=f"cannot reach the BigQuery endpoint {closed}"):
        dataset.read_bigquery(PROJECT, DATASET, "training_set_5m", "BTCUSDT")


def _publish(data_dir: Path, target: Path, serve: Path, endpoint: str, *extra: str) -> Any:
    env = {"BTCFS_DATA_DIR": str(data_dir), "BTCFS_BQ_PROJECT": None, "BTCFS_BQ_DATASET": None,
           "BTCFS_BQ_API_ENDPOINT": None, "DBT_TARGET_PATH": None}  # fmt: skip
    return CliRunner().invoke(
        cli,
        ["publish", "--from", "bigquery", "--target-path", str(target), "--serve", str(serve),
         "--bq-project", PROJECT, "--bq-dataset", DATASET, "--bq-endpoint", endpoint, *extra],
        env=env,
    )  # fmt: skip


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_publish_from_bigquery_then_the_api_serves_it(
    emulator_build: EmulatorBuild, tmp_path: Path
) -> None:
    serve = tmp_path / "warehouse" / "serve.duckdb"
    result = _publish(tmp_path, emulator_build.bq_target_path, serve, emulator_build.endpoint)
    assert result.exit_code == 0, result.output
    assert f"published {serve}" in result.output

    client = emulator_build.client()
    con = duckdb.connect(str(serve), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        source, invocation = con.execute(
            "select source, dbt_invocation_id from btcfs_publish"
        ).fetchone() or (None, None)
        problems: list[str] = []
        for mart, keys in (("bars_5m", ("symbol", "open_time")),
                           ("latest_features", ("symbol", "bar_interval"))):  # fmt: skip
            relation = con.sql(f"select * from {mart}")
            columns = list(relation.columns)
            local = [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]
            remote = bigquery_rows(client, PROJECT, DATASET, mart)
            problems += compare(mart, keys, remote, (columns, local))
        assert not problems, "\n".join(problems)
    finally:
        con.close()
    run_results = json.loads((emulator_build.bq_target_path / "run_results.json").read_text())
    assert source == f"bigquery://{PROJECT}/{DATASET}"
    assert invocation == run_results["metadata"]["invocation_id"]

    settings = ApiSettings.from_env(
        {
            "BTCFS_DATA_DIR": str(tmp_path),
            "BTCFS_SERVE_DB": str(serve),
            "BTCFS_STATE_DB": str(tmp_path / "state" / "paper.sqlite"),
            "DBT_TARGET_PATH": str(emulator_build.bq_target_path),
            "BTCFS_API_ALLOWED_HOSTS": "testserver.local",  # TestClient's Host
        }
    )
    newest = list(
        client.query(
            f"select open_time, close from `{PROJECT}.{DATASET}.bars_5m` "
            "order by open_time desc limit 3"
        ).result()
    )[::-1]
    with TestClient(create_app(settings)) as api:
        health = api.get("/health").json()
        assert health["dbt_invocation_id"] == invocation
        bars = api.get("/v1/bars", params={"interval": "5m", "limit": 3}).json()["bars"]
        assert [(_parse(b["open_time"]), b["close"]) for b in bars] == [
            (row[0], float(row[1])) for row in newest
        ]
        latest = api.get("/v1/features/latest", params={"interval": "5m"}).json()
        (expected,) = client.query(
            f"select open_time, ret_5m from `{PROJECT}.{DATASET}.latest_features` "
            "where bar_interval = '5m'"
        ).result()
        assert _parse(latest["open_time"]) == expected[0]
        assert latest["values"]["ret_5m"] == pytest.approx(expected[1], rel=1e-12)


def _ledger_invocation(client: Any, test: str, status: str) -> None:
    """What a finished `dbt test` of one gate leaves in the ledger (macros/qa/gate_ledger.sql)."""
    invocation = f"test-{uuid.uuid4()}"
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = [("invocation", "invocation", "started"), (test, "test", status),
            ("invocation", "invocation", "finished")]  # fmt: skip
    values = ", ".join(
        f"('{invocation}', 'test', timestamp('{at}', 'UTC'), timestamp('{at}', 'UTC'), "
        f"'{uid}', '{kind}', '{state}')"
        for uid, kind, state in rows
    )
    client.query(
        f"insert into `{PROJECT}.{DATASET}.btcfs_gate_ledger` (invocation_id, command, "
        f"run_started_at, recorded_at, unique_id, resource_type, status) values {values}"
    ).result()


def test_publish_from_bigquery_refuses_what_it_cannot_vouch_for(
    emulator_build: EmulatorBuild, tmp_path: Path
) -> None:
    serve = tmp_path / "warehouse" / "serve.duckdb"
    endpoint = emulator_build.endpoint

    # Run results of the DuckDB build say nothing about the BigQuery marts.
    duck = _publish(tmp_path, emulator_build.dev_target_path, serve, endpoint)
    assert duck.exit_code == 1 and "ran on duckdb, not bigquery" in duck.output

    # A gate of a served mart failed after the build (a later `dbt test`), as the gate ledger
    # in the BigQuery dataset says; a later passing run restores it for the other tests.
    manifest = json.loads((emulator_build.bq_target_path / "manifest.json").read_text())
    gate = next(uid for uid, node in manifest["nodes"].items()
                if node.get("name") == "integrity__bars_5m")  # fmt: skip
    _ledger_invocation(emulator_build.client(), gate, "fail")
    try:
        refused = _publish(tmp_path, emulator_build.bq_target_path, serve, endpoint)
    finally:
        _ledger_invocation(emulator_build.client(), gate, "pass")
    assert refused.exit_code == 1
    assert "1 gate(s) failed: integrity__bars_5m [bars_5m, fail]" in refused.output

    closed = f"http://127.0.0.1:{free_port()}"
    down = _publish(tmp_path, emulator_build.bq_target_path, serve, closed)
    assert down.exit_code == 1 and f"cannot reach the BigQuery endpoint {closed}" in down.output
    missing = _publish(
        tmp_path, emulator_build.bq_target_path, serve, endpoint, "--bq-dataset", "nowhere"
    )
    assert missing.exit_code == 1 and "no dataset local-project.nowhere" in missing.output
    assert not serve.exists()  # nothing was published by any of them
    for result in (duck, refused, down, missing):
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
