"""`btcfs publish` checks the warehouse, not the last dbt command: real `dbt build`s of a small
synthetic lake on a real DuckDB file, typed as a user would (partial selections, a selection
matching nothing, a run without tests), then `btcfs publish`; and a served file with bars but
no features still serves its bars over real HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from click.testing import CliRunner, Result

from btcfs.cli import cli
from tests.api.publishfixtures import make_build, write_run_results
from tests.features.feature_harness import REPO, SMALL_WINDOWS, FeatureWarehouse, synthetic

BIN = Path(sys.executable).parent
# Real dbt builds of an 8-day lake, minutes in all: outside `make test-fast`.
pytestmark = [pytest.mark.dbt, pytest.mark.slow]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> FeatureWarehouse:
    """An 8-day synthetic lake (2-day windows: about 3 days of feature rows)."""
    built = FeatureWarehouse(tmp_path_factory.mktemp("publish_gates"), SMALL_WINDOWS)
    built.land(synthetic(8))
    built.reset_database()
    return built


def publish(warehouse: FeatureWarehouse) -> Result:
    serve = warehouse.root / "warehouse" / "serve.duckdb"
    return CliRunner().invoke(
        cli,
        ["publish", "--target-path", str(warehouse.root / "target"),
         "--warehouse", str(warehouse.database), "--serve", str(serve)],
        env={"BTCFS_DATA_DIR": str(warehouse.root)},
    )  # fmt: skip


def served(warehouse: FeatureWarehouse) -> tuple[int, int] | None:
    """The served file's inode and mtime (None before any publish)."""
    path = warehouse.root / "warehouse" / "serve.duckdb"
    if not path.exists():
        return None
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def refusal(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "refusing to publish" in lines[0], result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_a_good_full_build_publishes_with_the_gates_of_what_it_serves(
    warehouse: FeatureWarehouse,
) -> None:
    warehouse.dbt("build", "--exclude-resource-type", "unit_test")
    result = publish(warehouse)
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(warehouse.root / "warehouse" / "serve.duckdb"), read_only=True)
    try:
        gates = con.execute("select name, model, status from btcfs_gates").fetchall()
    finally:
        con.close()
    # every gate passes; the one warning is ETHUSDT, a default symbol this lake lacks
    warned = {name for name, _, status in gates if status == "warn"}
    assert warned == {"symbols_have_rows__bars_5m"}
    assert gates and {status for _, _, status in gates} == {"pass", "warn"}
    names = {(name, model) for name, model, _ in gates}
    assert ("rows_past_warmup__features_5m", "features_5m") in names
    assert ("integrity__bars_1h", "bars_1h") in names
    assert {model for _, model, _ in gates} >= {"bars_5m", "features_1h", "latest_features"}


def test_a_failed_gate_is_not_forgotten_by_a_later_partial_build(
    warehouse: FeatureWarehouse,
) -> None:
    before = served(warehouse)
    # The synthetic guard (as on target prod) fails the features' gate; dbt skips what follows.
    guarded = FeatureWarehouse(warehouse.root, {**SMALL_WINDOWS, "forbid_synthetic_inputs": True})
    guarded.dbt("build", "--exclude-resource-type", "unit_test", expect_ok=False)
    # A user rebuilds one unrelated mart by hand: its gates pass, the last run is all green.
    output = warehouse.dbt("build", "--select", "bars_1h", "--exclude-resource-type", "unit_test")
    assert "ERROR=0" in output
    line = refusal(publish(warehouse))
    assert "no_synthetic_inputs__features_5m [features_5m, fail]" in line
    # `btcfs qa` reads the same ledger: the last run passed, the warehouse did not.
    qa = CliRunner().invoke(
        cli, ["qa", "--target-path", str(warehouse.root / "target"),
              "--warehouse", str(warehouse.database)],
        env={"BTCFS_DATA_DIR": str(warehouse.root)},
    )  # fmt: skip
    assert qa.exit_code == 1, qa.output
    assert re.search(
        r"LEDGER\s+\d+ gate\(s\) failed: .*no_synthetic_inputs__features_5m", qa.output
    )
    # A build selecting nothing runs no gate and forgets nothing either.
    warehouse.dbt("build", "--select", "tag:no_such_tag")
    assert "no_synthetic_inputs__features_5m" in refusal(publish(warehouse))
    assert served(warehouse) == before


def test_marts_rebuilt_without_their_gates_are_not_published(
    warehouse: FeatureWarehouse,
) -> None:
    warehouse.dbt("build", "--exclude-resource-type", "unit_test")
    assert publish(warehouse).exit_code == 0
    before = served(warehouse)
    # `dbt run` rewrites the marts and runs no gate; a build matching nothing runs none either.
    warehouse.dbt("run", "--select", "bars_5m", "features_5m")
    warehouse.dbt("build", "--select", "tag:no_such_tag")
    line = refusal(publish(warehouse))
    assert "have not run since their model was last built" in line
    assert "bars_5m (imputed_share__bars_5m, integrity__bars_5m" in line
    assert "features_5m (" in line
    assert served(warehouse) == before
    # Their gates, run on what was built, let it through again.
    warehouse.dbt("test", "--select", "bars_5m", "features_5m")
    assert publish(warehouse).exit_code == 0


def test_an_interrupted_build_blocks_what_it_may_have_rewritten(
    warehouse: FeatureWarehouse,
) -> None:
    warehouse.dbt("build", "--exclude-resource-type", "unit_test")
    con = duckdb.connect(str(warehouse.database))
    try:  # what on-run-start leaves when dbt is killed before on-run-end
        con.execute(
            "insert into btcfs_gate_ledger (invocation_id, command, run_started_at, "
            "recorded_at, unique_id, resource_type, status) values ('killed-run', 'run', "
            "now(), now(), 'invocation', 'invocation', 'started')"
        )
    finally:
        con.close()
    line = refusal(publish(warehouse))
    assert "dbt run (invocation killed-run" in line and "did not finish" in line


# ------------------------------------------------------------------ symbols per endpoint


@pytest.fixture
def bars_only(tmp_path: Path) -> Path:
    """A served file whose bars hold BTCUSDT and whose feature marts are empty."""
    build = tmp_path / "warehouse" / "build.duckdb"
    write_run_results(tmp_path / "target")
    make_build(build)
    con = duckdb.connect(str(build))
    try:
        for mart in ("features_5m", "features_1h", "latest_features"):
            con.execute(f"delete from {mart}")
        # every column a bar answer has (the hand-made marts hold a close only)
        con.execute(
            "create or replace table bars_5m as select symbol, open_time, available_at, "
            "close as open, close as high, close as low, close, 1.0 as volume, "
            "close as quote_volume, 10 as trade_count, 0.5 as taker_buy_base_volume, "
            "0 as imputed_minutes, false as is_imputed from bars_5m"
        )
    finally:
        con.close()
    result = CliRunner().invoke(
        cli, ["publish", "--target-path", str(tmp_path / "target")],
        env={"BTCFS_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp_path


@pytest.fixture
def server(bars_only: Path) -> Iterator[str]:
    """A real `btcfs serve` of that file on a free loopback port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BTCFS_", "DBT_"))}
    env.update(BTCFS_DATA_DIR=str(bars_only), DBT_TARGET_PATH=str(bars_only / "target"))
    log = (bars_only / "serve.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "btcfs"), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (bars_only / "serve.log").read_text()
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "btcfs serve did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bars_are_served_for_a_symbol_without_features(server: str) -> None:
    bars = httpx.get(f"{server}/v1/bars", params={"symbol": "BTCUSDT", "interval": "5m"})
    assert bars.status_code == 200, bars.text
    assert bars.json()["count"] == 1
    unknown = httpx.get(f"{server}/v1/bars", params={"symbol": "ETHUSDT"})
    assert unknown.status_code == 404
    assert unknown.json()["extra"]["valid"] == ["BTCUSDT"]
    # The features endpoints answer from their own marts: nothing to serve, and they say so.
    latest = httpx.get(f"{server}/v1/features/latest", params={"symbol": "BTCUSDT"})
    assert latest.status_code == 404 and latest.json()["extra"]["valid"] == []
    rows = httpx.get(f"{server}/v1/features", params={"symbol": "BTCUSDT"})
    assert rows.status_code == 404 and rows.json()["extra"]["valid"] == []


# ------------------------------------------------------------------------- the publish lock


def test_a_publish_waits_for_another_and_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    write_run_results(tmp_path / "target")
    make_build(tmp_path / "warehouse" / "build.duckdb")
    lock = tmp_path / "warehouse" / ".serve.duckdb.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, filelock\n"
         f"lock = filelock.FileLock({str(lock)!r}); lock.acquire()\n"
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    args = ["publish", "--target-path", str(tmp_path / "target"), "--lock-timeout", "0.5"]
    env = {"BTCFS_DATA_DIR": str(tmp_path), "BTCFS_PUBLISH_LOCK_TIMEOUT_S": None}
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        result = CliRunner().invoke(cli, args, env=env)
        assert time.monotonic() - started >= 0.5
        assert result.exit_code == 1
        assert result.output.strip() == (
            f"Error: another `btcfs publish` of {tmp_path / 'warehouse' / 'serve.duckdb'} has "
            f"held {lock} for over 0.5 s: retry when it has finished (or raise --lock-timeout)"
        )
        assert not (tmp_path / "warehouse" / "serve.duckdb").exists()
    finally:
        holder.communicate("", timeout=30)
    assert CliRunner().invoke(cli, args, env=env).exit_code == 0
