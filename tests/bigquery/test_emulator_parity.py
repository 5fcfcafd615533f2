"""CI gate: the same dbt project on BigQuery (crucible emulator) and DuckDB, mart for mart.

One synthetic lake (tests/warehouse/lakefixtures.py) is landed once, then
* loaded into the emulator's `raw` dataset through CSV load jobs (btcfs.bigquery, the production
  path) and built with `dbt build --target bq_emulator`;
* built with `dbt build --target dev` on DuckDB (in parallel with the load and the BigQuery build).
Every mart must then hold the same keys and values (floats within 1e-9 relative, NULL == NULL).

Small windows (`features_window_seconds` of 2 days, as tests/features uses) keep an 8-day lake
enough for rows in every mart, and the test around 2 minutes on two cores.

Known emulator difference (not compared; warn-level tests only): crucible's UNIX_SECONDS rounds
sub-second timestamps to the nearest second where BigQuery truncates, so the warn-level
`close_time_consistent__stg_*_klines` tests report every kline there (close_time = open + 59.999 s).
No mart reads a sub-second value through UNIX_SECONDS, so the marts are unaffected.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from btcfs import bigquery as btcfs_bq

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "warehouse"))

import lakefixtures  # noqa: E402

BIN = Path(sys.executable).parent
DBT = BIN / "dbt"
CRUCIBLE = BIN / "crucible"
PROJECT = "local-project"
DATASET = "btcfs"
DBT_VARS = json.dumps({"features_window_seconds": 2 * 86_400})
LAKE_DAYS = 8
RTOL = 1e-9
ATOL = 1e-12  # values that should be 0 may differ by float summation order

# Every mart, with its key. None is excluded: all build and compare on the emulator.
MART_KEYS: dict[str, tuple[str, ...]] = {
    **{
        name: ("symbol", "open_time")
        for name in (
            "bars_5m",
            "bars_15m",
            "bars_1h",
            "bars_4h",
            "bars_1d",
            "perp_bars_5m",
            "perp_bars_1h",
            "features_5m",
            "features_1h",
            "labels_5m",
            "training_set_5m",
        )
    },
    "latest_features": ("symbol", "bar_interval"),
}

pytestmark = [pytest.mark.dbt, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_answers(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"crucible exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"crucible did not answer at {url} within {timeout} s")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A crucible BigQuery emulator on a free loopback port; its endpoint URL."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("crucible") / "crucible.log").open("wb")
    proc = subprocess.Popen(
        [str(CRUCIBLE), "serve", "--dialect", "bigquery", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answers(f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets", proc)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _dbt(root: Path, target: str, port: int | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "BTCFS_"))}
    env.update(
        BTCFS_DATA_DIR=str(root),
        DBT_TARGET_PATH=str(root / f"target_{target}"),
        DBT_LOG_PATH=str(root / f"logs_{target}"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    if port is not None:
        env["BTCFS_BQ_EMULATOR_PORT"] = str(port)
    return subprocess.Popen(
        [str(DBT), "build", "--target", target, "--vars", DBT_VARS],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], what: str) -> str:
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"{what} failed:\n{output[-8000:]}"
    return output


def _duckdb_rows(database: Path, mart: str) -> tuple[list[str], list[dict[str, Any]]]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        relation = con.sql(f"select * from {mart}")
        columns = list(relation.columns)
        return columns, [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]
    finally:
        con.close()


def _bigquery_rows(client: Any, mart: str) -> tuple[list[str], list[dict[str, Any]]]:
    result = client.query(f"select * from `{PROJECT}.{DATASET}.{mart}`").result()
    columns = [field.name for field in result.schema]
    return columns, [dict(row.items()) for row in result]


def _same(expected: Any, actual: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    numbers = (int, float, Decimal)
    if isinstance(expected, numbers) and isinstance(actual, numbers):
        if isinstance(expected, bool) or isinstance(actual, bool):
            return expected == actual
        left, right = float(expected), float(actual)
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return math.isclose(left, right, rel_tol=RTOL, abs_tol=ATOL)
    if isinstance(expected, datetime) and isinstance(actual, datetime):
        return expected == actual  # both tz-aware UTC
    if isinstance(expected, date) and isinstance(actual, date):
        return expected == actual
    return bool(expected == actual)


def _compare(
    mart: str,
    keys: tuple[str, ...],
    expected: tuple[list[str], list[dict[str, Any]]],
    actual: tuple[list[str], list[dict[str, Any]]],
) -> list[str]:
    """Differences between the DuckDB rows (expected) and the BigQuery rows (actual)."""
    (exp_columns, exp_rows), (act_columns, act_rows) = expected, actual
    if exp_columns != act_columns:
        return [f"{mart}: columns differ: duckdb {exp_columns} vs bigquery {act_columns}"]
    by_key_exp = {tuple(row[k] for k in keys): row for row in exp_rows}
    by_key_act = {tuple(row[k] for k in keys): row for row in act_rows}
    problems = []
    if len(by_key_exp) != len(exp_rows) or len(by_key_act) != len(act_rows):
        problems.append(f"{mart}: duplicate keys ({len(exp_rows)} / {len(act_rows)} rows)")
    only_exp = sorted(set(by_key_exp) - set(by_key_act))
    only_act = sorted(set(by_key_act) - set(by_key_exp))
    if only_exp or only_act:
        problems.append(
            f"{mart}: keys only on duckdb {len(only_exp)} (first {only_exp[:3]}), "
            f"only on bigquery {len(only_act)} (first {only_act[:3]})"
        )
    for column in exp_columns:
        bad = [
            key for key, row in by_key_exp.items()
            if key in by_key_act and not _same(row[column], by_key_act[key][column])
        ]  # fmt: skip
        if bad:
            first = bad[0]
            problems.append(
                f"{mart}.{column}: {len(bad)} rows differ, first at {first}: duckdb "
                f"{by_key_exp[first][column]!r}, bigquery {by_key_act[first][column]!r}"
            )
    return problems


# google-cloud-bigquery may warn that the BigQuery Storage client is absent when it fetches
# results (it then uses the REST API, which is what the emulator serves): not a failure here.
@pytest.mark.filterwarnings("ignore:.*BigQuery Storage.*:UserWarning")
def test_marts_match_duckdb(emulator: str, tmp_path: Path) -> None:
    started = time.monotonic()
    port = int(emulator.rsplit(":", 1)[1])
    tables = lakefixtures.synthetic_market(date(2025, 1, 1), LAKE_DAYS)
    lakefixtures.land(tmp_path / "lake", tables)

    duck = _dbt(tmp_path, "dev")  # DuckDB builds while the emulator loads and builds
    try:
        client = btcfs_bq.client(PROJECT, emulator)
        loaded = btcfs_bq.load_lake(client, tmp_path / "lake")
        assert loaded["spot_klines"] == LAKE_DAYS * 1440, loaded
        assert loaded["quarantine"] == 0, loaded
        # Idempotent: loading the same lake again replaces each table, no duplicate rows.
        funding = [raw for raw in btcfs_bq.raw_tables() if raw.name == "funding"]
        again = btcfs_bq.load_lake(client, tmp_path / "lake", tables=funding)
        assert again == {"funding": loaded["funding"]}
        count = list(client.query(f"select count(*) from `{PROJECT}.raw.funding`").result())
        assert count[0][0] == loaded["funding"]

        _finish(_dbt(tmp_path, "bq_emulator", port), "dbt build --target bq_emulator")
    finally:
        _finish(duck, "dbt build --target dev")

    database = tmp_path / "warehouse" / "build.duckdb"
    problems: list[str] = []
    for mart, keys in MART_KEYS.items():
        expected = _duckdb_rows(database, mart)
        assert expected[1], f"{mart} is empty on DuckDB: the comparison would prove nothing"
        problems += _compare(mart, keys, expected, _bigquery_rows(client, mart))
    assert not problems, "\n".join(problems)
    assert time.monotonic() - started < 300
