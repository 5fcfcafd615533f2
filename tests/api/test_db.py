"""api.db: per-request readers follow a replaced serve.duckdb; an old generation stays
readable until its last reader is done, then closes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from api.db import ServeDatabase
from api.errors import Unavailable
from pipeline import publish
from tests.api.publishfixtures import make_build, write_run_results


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BTCFS_DATA_DIR", str(tmp_path))
    write_run_results(tmp_path / "target")
    return tmp_path


def publish_close(data_dir: Path, close: float) -> None:
    make_build(data_dir / "warehouse" / "build.duckdb", close=close)
    publish(target_path=data_dir / "target")


def close_of(db: ServeDatabase) -> float:
    with db.reader() as reader:
        return float(reader.rows("select close from serve.bars_5m")[0]["close"])


def test_readers_follow_a_publish_and_old_generations_close(data_dir: Path) -> None:
    db = ServeDatabase(data_dir / "warehouse" / "serve.duckdb")
    with pytest.raises(Unavailable, match="btcfs publish"):
        close_of(db)
    publish_close(data_dir, 100.0)
    assert close_of(db) == 100.0
    with db.reader() as held:  # a request still running on the first file
        publish_close(data_dir, 200.0)
        assert close_of(db) == 200.0
        assert held.generation.retired and held.generation.users == 1
        assert float(held.rows("select close from serve.bars_5m")[0]["close"]) == 100.0
    with pytest.raises(duckdb.ConnectionException):
        held.generation.con.execute("select 1")  # closed once its last reader left
    assert db.current_number() == 2
    assert db.generation().info.dbt_invocation_id is not None
    db.close()


def test_an_unreadable_replacement_keeps_the_current_file(data_dir: Path) -> None:
    db = ServeDatabase(data_dir / "warehouse" / "serve.duckdb")
    publish_close(data_dir, 100.0)
    assert close_of(db) == 100.0
    broken = data_dir / "warehouse" / "broken"
    broken.write_bytes(b"not a duckdb file" * 100)
    broken.replace(data_dir / "warehouse" / "serve.duckdb")
    assert close_of(db) == 100.0  # still the attached generation, logged, no failed request
    publish_close(data_dir, 300.0)
    assert close_of(db) == 300.0
    db.close()


def test_a_file_damaged_in_place_is_reported_and_the_attached_copy_keeps_serving(
    data_dir: Path,
) -> None:
    db = ServeDatabase(data_dir / "warehouse" / "serve.duckdb")
    publish_close(data_dir, 100.0)
    assert close_of(db) == 100.0 and db.disk_problem() is None
    served = data_dir / "warehouse" / "serve.duckdb"
    with served.open("r+b") as handle:  # a disk fault: same file, cut short
        handle.truncate(16 * 1024)
    assert close_of(db) == 100.0  # the attach fails, the previous generation answers
    problem = db.disk_problem()
    assert problem is not None and str(served) in problem and "btcfs publish" in problem
    publish_close(data_dir, 200.0)
    assert close_of(db) == 200.0 and db.disk_problem() is None
    served.unlink()
    gone = db.disk_problem()
    assert gone is not None and "gone from disk" in gone
    db.close()
