"""Read the training mart (DuckDB locally, BigQuery in prod) into a checked, model-ready frame.

The feature list is never kept here: the model inputs are the features_5m columns whose
declaration says `model_input: true` (`meta` in the mart's YAML, read from dbt's manifest by
`warehouse.catalog`), of the chosen feature sets. Columns of the `vendors` set (NULL when a
vendor was not landed) may be NaN; CatBoost takes NaN as missing. The other sets must be
complete on every row used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from core.settings import DataPaths
from ml.config import BAR, FEATURE_SET_CHOICES, HORIZON_BARS, TrainConfig
from ml.errors import DatasetError
from warehouse.catalog import Catalog, CatalogError, load_catalog
from warehouse.readers import BigQueryMarts, DuckDBMarts, MartReader, MissingRelation, ReadError

FEATURES_MODEL = "features_5m"
LABELS_MODEL = "labels_5m"
#: Keys and bookkeeping: identify a row, never describe the market.
KEY_COLUMNS = ("symbol", "open_time", "available_at")
FUNDING_RELATION = "int_funding_as_of_bars_5m"


# ------------------------------------------------------------------------ the feature list


def catalog() -> Catalog:
    """The feature contract from dbt's manifest (`warehouse.catalog`), as a DatasetError when
    it cannot be read."""
    try:
        return load_catalog()
    except CatalogError as exc:
        raise DatasetError(str(exc)) from None


def documented_columns(model: str) -> dict[str, str]:
    """Columns of a feature mart (or the labels) as dbt's manifest declares them, in order,
    with their descriptions."""
    contract = catalog()
    if model == LABELS_MODEL:
        return dict.fromkeys(contract.labels, "")
    if model not in contract.models:
        raise DatasetError(f"model {model} is not documented as a feature mart")
    return {column.name: column.description for column in contract.columns(model)}


def optional_feature_columns() -> set[str]:
    """features_5m's columns of the `vendors` set: NULL when a vendor was not landed."""
    return set(catalog().set_members("vendors"))


def feature_columns(
    available: Iterable[str], feature_sets: tuple[str, ...] | None = None
) -> list[str]:
    """The model inputs of `feature_sets` (default: every set) that `available` has, in the
    order features_5m declares them."""
    present = set(available)
    try:
        inputs = catalog().model_inputs(feature_sets)
    except CatalogError as exc:
        raise DatasetError(str(exc)) from None
    chosen = [name for name in inputs if name in present]
    if not chosen:
        raise DatasetError(
            f"none of the columns declared as model inputs of {FEATURES_MODEL} is in the "
            "training table"
        )
    return chosen


# ------------------------------------------------------------------------------ reading


def warehouse_path() -> Path:
    """dbt's DuckDB file: $BTCFS_DATA_DIR/warehouse/build.duckdb."""
    return DataPaths.from_env().build_db


def _read(reader: MartReader, relation: str, symbol: str) -> pa.Table:
    """One symbol's rows through a warehouse reader; its failures as DatasetError."""
    try:
        return reader.rows(relation, symbol)
    except MissingRelation as exc:
        raise DatasetError(f"{exc}: run `dbt build` (the training mart is missing)") from None
    except ReadError as exc:
        raise DatasetError(str(exc)) from None


def read_duckdb(path: Path, table: str, symbol: str) -> pa.Table:
    """Rows of one symbol from dbt's DuckDB file, oldest first (opened read-only)."""
    return _read(DuckDBMarts(path), table, symbol)


def read_bigquery(
    project: str, dataset: str, table: str, symbol: str, *, api_endpoint: str | None = None
) -> pa.Table:
    """Rows of one symbol from the mart on BigQuery, oldest first (api endpoint: the
    argument, else $BTCFS_BQ_API_ENDPOINT: an emulator, read anonymously)."""
    return _read(_bigquery(project, dataset, api_endpoint), table, symbol)


def _bigquery(project: str, dataset: str, api_endpoint: str | None = None) -> BigQueryMarts:
    endpoint = api_endpoint or os.environ.get("BTCFS_BQ_API_ENDPOINT") or None
    return BigQueryMarts(project, dataset, endpoint)


def _reader(config: TrainConfig, warehouse: Path | None) -> MartReader:
    """The configured target's marts: dev, dbt's DuckDB file; prod, the BigQuery dataset."""
    if config.warehouse.target == "prod":
        return _bigquery(*_bigquery_target(config))
    return DuckDBMarts(warehouse or warehouse_path())


def read_training_table(config: TrainConfig, warehouse: Path | None = None) -> pa.Table:
    """The configured mart from the configured target (dev: DuckDB file, prod: BigQuery)."""
    return _read(_reader(config, warehouse), config.warehouse.table, config.symbol)


def read_funding(config: TrainConfig, warehouse: Path | None = None) -> pd.Series | None:
    """Funding known at each 5m bar from the configured target (for the perp backtest), or
    None when the warehouse has no funding relation."""
    reader = _reader(config, warehouse)
    if isinstance(reader, DuckDBMarts) and not reader.path.exists():
        return None
    try:
        table = reader.rows(FUNDING_RELATION, config.symbol)
    except MissingRelation:
        return None
    except ReadError as exc:
        raise DatasetError(str(exc)) from None
    return _funding_series(table)


def read_duckdb_funding(path: Path, symbol: str) -> pd.Series | None:
    """Funding rate known at each 5m bar (per 8 h) in dbt's DuckDB file, or None when the
    file or the relation is absent."""
    if not path.exists():
        return None
    try:
        table = DuckDBMarts(path).rows(FUNDING_RELATION, symbol)
    except MissingRelation:
        return None
    except ReadError as exc:
        raise DatasetError(str(exc)) from None
    return _funding_series(table)


def _funding_series(table: pa.Table) -> pd.Series:
    frame = table.select(["open_time", "funding_rate"]).to_pandas()
    frame["open_time"] = _utc(frame["open_time"])
    return frame.set_index("open_time")["funding_rate"].astype(float)


def _bigquery_target(config: TrainConfig) -> tuple[str, str]:
    wh = config.warehouse
    project = wh.bigquery_project or os.environ.get("BTCFS_BQ_PROJECT")
    dataset = wh.bigquery_dataset or os.environ.get("BTCFS_BQ_DATASET")
    if not project or not dataset:
        raise DatasetError(
            "warehouse.target prod needs bigquery_project and bigquery_dataset "
            "(or BTCFS_BQ_PROJECT / BTCFS_BQ_DATASET)"
        )
    return project, dataset


# ----------------------------------------------------------------------------- preparing


@dataclass
class TrainingSet:
    """One symbol's rows, oldest first, with the model inputs and the chosen label."""

    frame: pd.DataFrame
    features: list[str]
    label: str
    target: str
    horizon_bars: int
    #: Each row's information interval for purging: [available_at, label end].
    label_start: np.ndarray
    label_end: np.ndarray
    #: Documented features left out, with the reason (e.g. always NULL).
    dropped: dict[str, str] = field(default_factory=dict)
    #: The feature sets the inputs come from (warehouse.catalog).
    feature_sets: tuple[str, ...] = ()

    @property
    def x(self) -> pd.DataFrame:
        return self.frame[self.features]

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.label].to_numpy()

    @property
    def times(self) -> pd.Series:
        return self.frame["open_time"]

    @property
    def label_span(self) -> timedelta:
        """The longest label: what the embargo must at least cover."""
        if not len(self.frame):
            return BAR * self.horizon_bars
        longest = (self.label_end - self.label_start).max()
        return timedelta(microseconds=int(longest / np.timedelta64(1, "us")))

    def window(self) -> dict[str, str | None]:
        if not len(self.frame):
            return {"first_open_time": None, "last_open_time": None}
        return {
            "first_open_time": self.frame["open_time"].iloc[0].isoformat(),
            "last_open_time": self.frame["open_time"].iloc[-1].isoformat(),
        }


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.tz_convert("UTC")


def chosen_sets(frame: pd.DataFrame, choice: str | None) -> tuple[str, ...]:
    """The feature sets of `choice`; None: spot, derivatives when every row holds it, and the
    vendors' features (optional one by one)."""
    if choice is not None:
        return FEATURE_SET_CHOICES[choice]
    sets = ["spot"]
    complete = frame.get("is_derivatives_complete")
    if complete is not None and len(frame) and bool(complete.fillna(False).astype(bool).all()):
        sets.append("derivatives")
    sets.append("vendors")
    return tuple(sets)


def prepare(
    table: pa.Table | pd.DataFrame,
    config: TrainConfig,
    *,
    features: list[str] | None = None,
) -> TrainingSet:
    """Checked rows with a label, inputs as floats, label intervals and a persistence baseline.

    Raises DatasetError when the rows break the contract the trainer relies on: unique keys,
    ascending time, labels strictly after the features, no NULL in a used core input (optional
    inputs may be NaN), no inf anywhere.
    """
    frame = table.to_pandas() if isinstance(table, pa.Table) else table.copy()
    required = {*KEY_COLUMNS, config.label_column, "close"}
    if config.target == "tb_label":
        required.add("t1")
    missing = sorted(required - set(frame.columns))
    if missing:
        raise DatasetError(f"training table lacks column(s): {', '.join(missing)}")
    sets = chosen_sets(frame, config.feature_set)
    if "derivatives" in sets and "is_derivatives_complete" in frame.columns:
        # rows that do not hold a chosen set cannot train on it
        frame = frame.loc[frame["is_derivatives_complete"].fillna(False).astype(bool)]
    chosen = features if features is not None else feature_columns(frame.columns, sets)
    absent = [name for name in chosen if name not in frame.columns]
    if absent:
        raise DatasetError(f"training table lacks the model's feature(s): {', '.join(absent)}")
    symbols = frame["symbol"].unique()
    if len(symbols) > 1:
        raise DatasetError(f"one symbol at a time, got {sorted(map(str, symbols))}")
    for column in ("open_time", "available_at", "t1"):
        if column in frame.columns:
            frame[column] = _utc(frame[column])
    frame = frame.sort_values("open_time", kind="stable").reset_index(drop=True)
    _check_keys(frame)

    frame = _add_persistence(frame, HORIZON_BARS[config.horizon])
    labelled = frame[config.label_column].notna().to_numpy()
    frame = frame.loc[labelled].reset_index(drop=True)

    dropped: dict[str, str] = {}
    used: list[str] = []
    for name in chosen:
        values = frame[name]
        if values.isna().all():
            dropped[name] = "always NULL in the training rows"
            continue
        if values.dtype == bool or str(values.dtype) == "boolean":
            frame[name] = values.astype("float64")
        used.append(name)
    if len(frame):
        optional = optional_feature_columns()
        core = [name for name in used if name not in optional]
        nulls = {name: int(frame[name].isna().sum()) for name in core}
        bad = {k: v for k, v in nulls.items() if v}
        if bad:
            raise DatasetError(
                f"NULL values in model inputs (published rows must be complete): {bad}"
            )
        for name in used:
            if name in optional:
                frame[name] = frame[name].astype("float64")  # NULL -> NaN
        inputs = frame[used].to_numpy(dtype=np.float64)
        if np.isinf(inputs).any() or not np.isfinite(frame[core].to_numpy(dtype=np.float64)).all():
            raise DatasetError("non-finite values (inf) in model inputs")

    start = frame["available_at"].to_numpy(dtype="datetime64[us]")
    if config.target == "tb_label":
        end = frame["t1"].to_numpy(dtype="datetime64[us]")
        frame[config.label_column] = frame[config.label_column].astype("int64")
    else:
        end = start + np.timedelta64(HORIZON_BARS[config.horizon] * 300, "s")
        frame[config.label_column] = frame[config.label_column].astype("float64")
    if len(frame) and not (end > start).all():
        raise DatasetError("labels must end strictly after their features are known")
    return TrainingSet(
        frame=frame,
        features=used,
        label=config.label_column,
        target=config.target,
        horizon_bars=HORIZON_BARS[config.horizon],
        label_start=start,
        label_end=end,
        dropped=dropped,
        feature_sets=sets,
    )


def _check_keys(frame: pd.DataFrame) -> None:
    if frame.duplicated(["symbol", "open_time"]).any():
        raise DatasetError("duplicate (symbol, open_time) keys in the training table")
    if len(frame) and (frame["available_at"] <= frame["open_time"]).any():
        raise DatasetError("available_at must be after open_time on every row")


def _add_persistence(frame: pd.DataFrame, bars: int) -> pd.DataFrame:
    """`persistence`: ln(close_t / close_{t-h}), the last horizon's return; 0 when unknown.

    Looked up by time (not by row) so a hole in the rows never pairs the wrong bars.
    """
    close = frame.set_index("open_time")["close"].astype("float64")
    earlier = close.reindex(frame["open_time"] - pd.Timedelta(minutes=5 * bars)).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        persistence = np.log(close.to_numpy() / earlier)
    frame = frame.copy()
    frame["persistence"] = np.where(np.isfinite(persistence), persistence, 0.0)
    return frame


def _has_bars(config: TrainConfig, warehouse: Path | None) -> bool:
    """Whether the warehouse holds any 5m bar of the configured symbol (True when it cannot
    tell: the warm-up message then stands)."""
    try:
        return _reader(config, warehouse).rows("bars_5m", config.symbol).num_rows > 0
    except (MissingRelation, ReadError):
        return True


def load(config: TrainConfig, warehouse: Path | None = None) -> TrainingSet:
    """Read and prepare the configured mart; an empty one is an error with the likely cause."""
    table = read_training_table(config, warehouse)
    data = prepare(table, config)
    if not len(data.frame):
        if not table.num_rows and not _has_bars(config, warehouse):
            raise DatasetError(
                f"the warehouse has no bars of {config.symbol}: add it to `symbols` in "
                "config/ingest.yml and in dbt_project.yml's vars, then ingest and build"
            )
        if not table.num_rows:
            raise DatasetError(
                f"{config.warehouse.table} has no rows for {config.symbol}: features are "
                "published only after their warm-up (features_window_seconds, 30 days, plus "
                "a day of history)"
            )
        raise DatasetError(
            f"{config.warehouse.table} has no labelled rows for {config.symbol} that hold the "
            f"feature sets {', '.join(chosen_sets(table.to_pandas(), config.feature_set))} "
            "(the derivatives set needs perp, funding and open interest past their warm-up)"
        )
    return data


def feature_row_frame(rows: Iterable[Mapping[str, Any]], features: list[str]) -> pd.DataFrame:
    """Model inputs from feature rows (dicts): floats in the trained order; missing -> error."""
    records = list(rows)
    missing = sorted({name for row in records for name in features if name not in row})
    if missing:
        raise DatasetError(f"feature row lacks: {', '.join(missing)}")
    data = {
        name: np.array(
            [np.nan if row[name] is None else float(row[name]) for row in records], dtype=float
        )
        for name in features
    }
    return pd.DataFrame(data, columns=features)
