"""warehouse.plan.downstream_of and source_of: which nodes a build runs when only some lake
sources have new rows (`btcfs live`), on a small graph written here. (The plan's SQL equals
dbt build's: tests/warehouse/test_update_plan.py; live's builds: tests/pipeline/test_live.py.)"""

from __future__ import annotations

from pathlib import Path

from warehouse.plan import QUARANTINE_SOURCE, Node, Plan, downstream_of, source_of


def node(uid: str, *, parents: tuple[str, ...] = (), sources: tuple[str, ...] = ()) -> Node:
    kind = "test" if uid.startswith("test.") else "model"
    return Node(uid, uid.split(".")[-1], kind, "view" if kind == "model" else "test", "", "",
                (), parents=parents, sources=sources)  # fmt: skip


PLAN = Plan(
    Path("target/plan"),
    "fingerprint",
    {},
    [
        node("model.p.stg_spot", sources=("binance.spot_klines",)),
        node("test.p.unique_stg_spot", parents=("model.p.stg_spot",)),
        node("model.p.stg_fred", sources=("fred.fred_series",)),
        node("test.p.unique_stg_fred", parents=("model.p.stg_fred",)),
        node("model.p.stg_quarantine", sources=(QUARANTINE_SOURCE,)),
        node("model.p.bars", parents=("model.p.stg_spot",)),
        node("test.p.ohlc_bars", parents=("model.p.bars",)),
        node("model.p.daily", parents=("model.p.stg_fred",)),
        node("model.p.features", parents=("model.p.bars", "model.p.daily")),
        node("test.p.finite_features", parents=("model.p.features",)),
    ],
)


def test_new_klines_rebuild_what_reads_them_and_every_gate_of_it() -> None:
    chosen = downstream_of(PLAN, {"binance.spot_klines"})
    assert chosen == {
        "model.p.stg_spot", "test.p.unique_stg_spot", "model.p.bars", "test.p.ohlc_bars",
        "model.p.features", "test.p.finite_features",
    }  # fmt: skip


def test_a_vendor_source_rebuilds_its_own_branch() -> None:
    chosen = downstream_of(PLAN, {"fred.fred_series", QUARANTINE_SOURCE})
    assert chosen == {
        "model.p.stg_fred", "test.p.unique_stg_fred", "model.p.daily", "model.p.features",
        "test.p.finite_features", "model.p.stg_quarantine",
    }  # fmt: skip


def test_an_unknown_source_runs_everything_and_nothing_runs_nothing() -> None:
    assert downstream_of(PLAN, {"binance.spot_klines", "newvendor.table"}) is None
    assert downstream_of(PLAN, set()) == set()


def test_lake_folders_name_their_source() -> None:
    assert source_of("binance/spot_klines/symbol=BTCUSDT/interval=1m/date=2025-01-01") == (
        "binance.spot_klines"
    )
    assert source_of("fred/fred_series") == "fred.fred_series"
    assert source_of("_quarantine/vendor=binance/dataset=spot_klines") == QUARANTINE_SOURCE
