"""Bad input stops the build at the right gate, names dataset, day and count, builds nothing after.

Each case lands three synthetic days with one fault on the middle day and runs a plain
`dbt build` of the whole project, as a user would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from tests.warehouse import lakefixtures as lf
from tests.warehouse.conftest import DbtRun, Warehouse, make_warehouse

pytestmark = pytest.mark.dbt

START = date(2024, 6, 1)
BAD_DAY = "2024-06-02"
SPOT = ("spot-klines", "BTCUSDT", "1m")


@dataclass(frozen=True)
class Fault:
    name: str
    spoil: Callable[[pa.Table], pa.Table]
    gate: str  # the gate that must fail (and be the only one)
    model: str  # the model that gate tests: its descendants must not be built
    count: int  # failing count the gate reports for BAD_DAY


FAULTS = [
    Fault(
        "duplicated rows",
        lambda t: lf.with_duplicates(t, datetime(2024, 6, 2, 9, 30, tzinfo=UTC), count=3),
        "unique_key__stg_spot_klines",
        "stg_binance__spot_klines",
        3,
    ),
    Fault(
        "missing day",
        lambda t: lf.without_day(t, date(2024, 6, 2)),
        "gap_ratio__spot_klines",
        "int_spot_bars_1m_gap_filled",
        1440,
    ),
    Fault(
        "high below low",
        lambda t: lf.with_high_below_low(t, datetime(2024, 6, 2, 17, 5, tzinfo=UTC)),
        "ohlc_invariants__stg_spot_klines",
        "stg_binance__spot_klines",
        1,
    ),
    Fault(
        "zero volume",
        lambda t: lf.with_zero_volume(t, datetime(2024, 6, 2, 3, 0, tzinfo=UTC), minutes=20),
        "zero_volume__spot_klines",
        "int_spot_bars_1m_gap_filled",
        20,
    ),
]


@pytest.fixture(scope="module", params=FAULTS, ids=[f.name for f in FAULTS])
def spoiled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Fault, Warehouse, DbtRun]:
    fault: Fault = request.param
    warehouse = make_warehouse(tmp_path_factory, fault.name.replace(" ", "_"))
    market = lf.synthetic_market(START, 3, seed=5)
    market[SPOT] = fault.spoil(market[SPOT])
    lf.land(warehouse.lake, market)
    run = warehouse.dbt("build", expect_ok=False)
    return fault, warehouse, run


def _descendants(warehouse: Warehouse, model: str) -> set[str]:
    manifest = json.loads((warehouse.target / "manifest.json").read_text())
    children = manifest["child_map"]
    start = f"model.btcfs.{model}"
    seen: set[str] = set()
    todo = list(children.get(start, []))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(children.get(node, []))
    return seen


def test_the_right_gate_fails_and_names_dataset_day_and_count(
    spoiled: tuple[Fault, Warehouse, DbtRun],
) -> None:
    fault, _, run = spoiled
    assert run.returncode != 0
    failed_tests = {name for name, status in run.statuses("test.").items() if status == "fail"}
    assert failed_tests == {fault.gate}
    lines = [g for g in run.gate_lines() if g["level"] == "FAIL"]
    # One line per broken invariant (high < low also breaks high >= open, low <= close).
    assert lines
    assert {(g["gate"], g["dataset"], g["day"], int(g["count"])) for g in lines} == {
        (fault.gate, "spot_klines", BAD_DAY, fault.count)
    }
    assert "symbol=BTCUSDT" in run.output


def test_nothing_downstream_is_built(spoiled: tuple[Fault, Warehouse, DbtRun]) -> None:
    fault, warehouse, run = spoiled
    downstream = _descendants(warehouse, fault.model)
    models = {uid for uid in downstream if uid.startswith("model.")}
    assert "model.btcfs.bars_5m" in models
    built = {
        uid
        for uid in downstream
        if uid in run.results
        and run.results[uid]["status"] not in ("skipped",)
        and not uid.startswith(("test.", "unit_test."))
    }
    assert not built, built
    present = warehouse.relations()
    assert not {uid.split(".")[-1] for uid in models} & present


def test_btcfs_qa_exits_non_zero_and_names_the_day(
    spoiled: tuple[Fault, Warehouse, DbtRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    fault, warehouse, _ = spoiled
    monkeypatch.setenv("BTCFS_DATA_DIR", str(warehouse.root))
    result = CliRunner().invoke(cli, ["qa", "--target-path", str(warehouse.target)])
    assert result.exit_code == 1, result.output
    assert f"FAIL    {fault.gate}" in result.output
    assert f"dataset=spot_klines symbol=BTCUSDT day={BAD_DAY} count={fault.count}" in result.output
    report = json.loads((warehouse.root / "reports" / "qa" / "spot_klines.json").read_text())
    gate = next(g for g in report["gates"] if g["name"] == fault.gate)
    assert gate["status"] == "fail"
    assert gate["failing_rows"][0]["failing_count"] == fault.count
    gates = json.loads((warehouse.root / "reports" / "qa" / "gates.json").read_text())
    assert gates["failed"] is True
