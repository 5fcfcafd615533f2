"""The feature list comes from the marts' declaration (dbt's manifest); prepare() enforces the
training contract."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import dataset
from ml.config import TrainConfig
from ml.errors import DatasetError
from tests.ml.mlframes import isolate, training_frame


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, parsed_target: Path) -> None:
    isolate(monkeypatch, tmp_path / "data", parsed=parsed_target)


def test_features_are_the_declared_model_inputs() -> None:
    """The inputs are what features_5m's declaration says (meta.model_input), read from dbt's
    manifest: nothing hand-kept, no keys, labels, flags of completeness or diagnostics."""
    documented = dataset.documented_columns("features_5m")
    labels = dataset.documented_columns("labels_5m")
    features = dataset.feature_columns(documented)
    assert features
    assert not set(features) & {"symbol", "open_time", "available_at", "close"}
    assert not set(features) & set(labels)
    assert not set(features) & {"is_derivatives_complete", "has_synthetic_input"}
    assert {"taker_imbalance", "ret_1h", "vol_z", "oi_z", "liq60_z"} <= set(features)
    contract = dataset.catalog()
    assert features == [c.name for c in contract.columns("features_5m") if c.model_input]
    spot = dataset.feature_columns(documented, ("spot",))
    assert "vol_z" in spot and "oi_z" not in spot and "liq60_z" not in spot
    assert set(spot) < set(features)


def test_doc_references_are_resolved() -> None:
    documented = dataset.documented_columns("features_5m")
    assert "{{" not in "".join(documented.values())
    assert "not a model input" in documented["close"]


def test_only_columns_the_table_has(tmp_path: Path) -> None:
    assert dataset.feature_columns(["symbol", "open_time", "ret_5m", "whatever"]) == ["ret_5m"]
    with pytest.raises(DatasetError, match="none of the columns"):
        dataset.feature_columns(["symbol", "open_time"])
    with pytest.raises(DatasetError, match="not documented"):
        dataset.documented_columns("no_such_model")


def test_prepare_casts_drops_and_bounds_labels() -> None:
    frame = training_frame(800)
    data = dataset.prepare(frame, TrainConfig(horizon="1h"))
    assert data.dropped == {"liq60_z": "always NULL in the training rows"}
    assert "liq60_z" not in data.features
    assert data.x.dtypes.map(lambda d: d == np.float64).all()  # booleans became floats
    assert (data.label_end - data.label_start == np.timedelta64(3600, "s")).all()
    assert data.label_span.total_seconds() == 3600
    # persistence: the last hour's log return, 0 where the mart holds no close an hour back
    close = frame["close"].to_numpy()
    assert data.frame["persistence"].iloc[12] == pytest.approx(np.log(close[12] / close[0]))
    assert (data.frame["persistence"].iloc[:12] == 0).all()


def test_prepare_uses_t1_for_barrier_labels() -> None:
    frame = training_frame(500)
    data = dataset.prepare(frame, TrainConfig(target="tb_label"))
    assert (data.label_end == frame["t1"].to_numpy(dtype="datetime64[us]")).all()
    assert set(np.unique(data.y)) <= {-1, 0, 1}


def test_rows_without_the_label_are_left_out() -> None:
    frame = training_frame(600)
    frame.loc[frame.index[-30:], "fwd_ret_1d"] = np.nan
    data = dataset.prepare(frame, TrainConfig(horizon="1d"))
    assert len(data.frame) == 570


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda f: pd.concat([f, f.iloc[[3]]]), "duplicate"),
        (lambda f: f.assign(t1=f["available_at"]), "strictly after"),
        (lambda f: f.assign(available_at=f["open_time"]), "available_at must be after"),
        (lambda f: f.assign(vol_z=np.where(f.index == 5, np.nan, f["vol_z"])), "NULL values"),
        (lambda f: f.assign(vol_z=np.where(f.index == 5, np.inf, f["vol_z"])), "non-finite"),
        (lambda f: f.drop(columns=["close"]), "lacks column"),
        (lambda f: f.assign(symbol=np.where(f.index == 0, "ETHUSDT", "BTCUSDT")), "one symbol"),
    ],
)
def test_contract_violations_are_refused(spoil: object, message: str) -> None:
    frame = spoil(training_frame(400))  # type: ignore[operator]
    with pytest.raises(DatasetError, match=message):
        dataset.prepare(frame, TrainConfig(target="tb_label"))


def test_read_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "build.duckdb"
    with pytest.raises(DatasetError, match="run `dbt build`"):
        dataset.read_duckdb(path, "training_set_5m", "BTCUSDT")
    frame = training_frame(400)
    con = duckdb.connect(str(path))
    con.register("frame", frame)
    con.execute("create table training_set_5m as select * from frame")
    con.execute("create table other as select 1 as x")
    con.close()
    table = dataset.read_duckdb(path, "training_set_5m", "BTCUSDT")
    assert table.num_rows == 400
    assert dataset.read_duckdb(path, "training_set_5m", "ETHUSDT").num_rows == 0
    with pytest.raises(DatasetError, match="no table missing_mart"):
        dataset.read_duckdb(path, "missing_mart", "BTCUSDT")
    with pytest.raises(DatasetError, match="invalid table name"):
        dataset.read_duckdb(path, "x; drop table other", "BTCUSDT")
    assert dataset.read_duckdb_funding(path, "BTCUSDT") is None  # no funding relation here
    data = dataset.load(TrainConfig(), path)
    assert len(data.frame) == 400


def test_empty_mart_explains_the_warm_up(tmp_path: Path) -> None:
    path = tmp_path / "build.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", training_frame(300))
    con.execute("create table training_set_5m as select * from frame where false")
    con.close()
    with pytest.raises(DatasetError, match="warm-up"):
        dataset.load(TrainConfig(), path)


def test_a_symbol_the_warehouse_lacks_is_named_not_blamed_on_the_warm_up(tmp_path: Path) -> None:
    path = tmp_path / "build.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", training_frame(300))
    con.execute("create table training_set_5m as select * from frame")
    con.execute("create table bars_5m as select symbol, open_time, close from frame")
    con.close()
    with pytest.raises(DatasetError, match="the warehouse has no bars of ETHUSDT"):
        dataset.load(TrainConfig(symbol="ETHUSDT"), path)
    assert len(dataset.load(TrainConfig(), path).frame) > 0


def test_prod_target_needs_a_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BTCFS_BQ_PROJECT", raising=False)
    monkeypatch.delenv("BTCFS_BQ_DATASET", raising=False)
    config = TrainConfig().with_overrides()
    import dataclasses

    prod = dataclasses.replace(
        config, warehouse=dataclasses.replace(config.warehouse, target="prod")
    )
    with pytest.raises(DatasetError, match="bigquery_project"):
        dataset.read_training_table(prod)


def test_feature_rows_become_a_frame_in_model_order() -> None:
    rows = [{"b": 1, "a": True, "extra": "x"}, {"b": None, "a": 0.5}]
    frame = dataset.feature_row_frame(rows, ["a", "b"])
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1.0, 0.5] and np.isnan(frame["b"].iloc[1])
    with pytest.raises(DatasetError, match="lacks: b"):
        dataset.feature_row_frame([{"a": 1}], ["a", "b"])
