"""`btcfs train` configuration (config/train.yml): targets, CatBoost params, CV, gates, costs."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from core.config import load_mapping
from core.symbols import symbol_problem
from ml.errors import ConfigError

DEFAULT_CONFIG = Path("config/train.yml")
TARGETS = ("fwd_ret", "tb_label")
#: Forward-return horizons of labels_5m, as 5-minute bars.
HORIZON_BARS = {"5m": 1, "1h": 12, "4h": 48, "1d": 288}
BAR = timedelta(minutes=5)
_DURATION = re.compile(r"^(\d+)\s*(m|h|d)$")


def parse_duration(text: str) -> timedelta:
    """'30m', '1h', '2d' -> timedelta."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ConfigError(f"invalid duration {text!r}: use a number and m, h or d (e.g. 1h)")
    value, unit = int(match.group(1)), match.group(2)
    unit_name = {"m": "minutes", "h": "hours", "d": "days"}[unit]
    return timedelta(**{unit_name: value})


#: What each `feature_set` choice (TrainConfig, `btcfs train --feature-set`) trains on: the
#: sets of warehouse.catalog.
FEATURE_SET_CHOICES: dict[str, tuple[str, ...]] = {
    "spot": ("spot",),
    "derivatives": ("spot", "derivatives"),
    "all": ("spot", "derivatives", "vendors"),
}


@dataclass(frozen=True)
class WarehouseConfig:
    target: Literal["dev", "prod"] = "dev"
    table: str = "training_set_5m"
    bigquery_project: str | None = None
    bigquery_dataset: str | None = None


@dataclass(frozen=True)
class RegressorConfig:
    loss_function: str = "RMSE"
    iterations: int = 200
    depth: int = 4
    learning_rate: float = 0.02
    l2_leaf_reg: float = 50.0
    min_data_in_leaf: int = 100


@dataclass(frozen=True)
class QuantileConfig:
    alphas: tuple[float, ...] = (0.1, 0.5, 0.9)
    iterations: int = 200
    depth: int = 4
    learning_rate: float = 0.05
    l2_leaf_reg: float = 30.0


@dataclass(frozen=True)
class ClassifierConfig:
    iterations: int = 200
    depth: int = 4
    learning_rate: float = 0.03
    l2_leaf_reg: float = 30.0
    prior_mix: float = 0.001


@dataclass(frozen=True)
class CVConfig:
    n_folds: int = 5
    embargo: str = "1h"
    min_train_rows: int = 500

    @property
    def embargo_delta(self) -> timedelta:
        return parse_duration(self.embargo)


@dataclass(frozen=True)
class RegressionGates:
    rmse_skill_vs_zero_min: float = 0.0
    mae_skill_vs_zero_min: float = 0.0
    rmse_skill_vs_persistence_min: float = 0.0
    rank_ic_min: float = 0.02
    rank_ic_tstat_min: float = 2.0
    directional_accuracy_min: float = 0.5
    coverage_abs_error_max: float = 0.1
    positive_folds_min: float = 0.5


@dataclass(frozen=True)
class ClassificationGates:
    log_loss_skill_vs_prior_min: float = 0.0
    brier_skill_vs_prior_min: float = 0.0
    accuracy_vs_prior_min: float = 0.0
    positive_folds_min: float = 0.5


@dataclass(frozen=True)
class GatesConfig:
    regression: RegressionGates = field(default_factory=RegressionGates)
    classification: ClassificationGates = field(default_factory=ClassificationGates)


@dataclass(frozen=True)
class BacktestConfig:
    instrument: Literal["perp", "spot"] = "perp"
    taker_fee_bps: float = 5.0
    slippage_bps: float = 1.0
    entry_threshold_bps: float | None = None
    entry_edge: float = 0.1
    rebalance: Literal["horizon", "bar"] = "horizon"
    funding_rate_default: float = 0.0001

    @property
    def cost_per_side(self) -> float:
        """Fee plus slippage of one side, as a fraction of notional."""
        return (self.taker_fee_bps + self.slippage_bps) / 10_000.0

    @property
    def entry_threshold(self) -> float:
        """Smallest predicted move worth a trade: by default the round-trip cost."""
        if self.entry_threshold_bps is None:
            return 2.0 * self.cost_per_side
        return self.entry_threshold_bps / 10_000.0


@dataclass(frozen=True)
class ReportConfig:
    enabled: bool = True
    shap_rows: int = 2000


@dataclass(frozen=True)
class TrainConfig:
    # Registry name; None: `model_name`, derived from the symbol and the target. Models are per
    # symbol (docs/trainer.md, "One model per symbol"): the registry refuses to mix symbols.
    model: str | None = None
    symbol: str = "BTCUSDT"
    target: Literal["fwd_ret", "tb_label"] = "fwd_ret"
    horizon: Literal["5m", "1h", "4h", "1d"] = "1h"
    # Which feature sets the model learns from (warehouse.catalog): spot; spot + derivatives;
    # all (spot + derivatives + vendors). None: every set complete on every training row
    # (vendor features, optional one by one, are taken where they exist).
    feature_set: Literal["spot", "derivatives", "all"] | None = None
    seed: int = 42
    thread_count: int = 2
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)
    regressor: RegressorConfig = field(default_factory=RegressorConfig)
    quantiles: QuantileConfig = field(default_factory=QuantileConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    @property
    def model_name(self) -> str:
        """The registry name: `model`, else <symbol>_5m (fwd_ret) or <symbol>_5m_tb."""
        if self.model:
            return self.model
        suffix = "_tb" if self.target == "tb_label" else ""
        return f"{self.symbol.lower()}_5m{suffix}"

    @property
    def label_column(self) -> str:
        return f"fwd_ret_{self.horizon}" if self.target == "fwd_ret" else "barrier_label"

    @property
    def horizon_bars(self) -> int:
        return HORIZON_BARS[self.horizon]

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """A copy with top-level keys replaced (CLI flags); None values are ignored."""
        given = {k: v for k, v in changes.items() if v is not None}
        return _validate(dataclasses.replace(self, **given))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: Path | None = None) -> TrainConfig:
    """The config at `path` (default config/train.yml) over the defaults; unknown keys refused."""
    source = path or DEFAULT_CONFIG
    payload = load_mapping(source, ConfigError)
    return from_mapping(payload, where=str(source))


def from_mapping(payload: dict[str, Any], where: str = "config") -> TrainConfig:
    config = _build(TrainConfig, payload, where)
    assert isinstance(config, TrainConfig)
    return _validate(config)


def _validate(config: TrainConfig) -> TrainConfig:
    checks = [
        (config.target in TARGETS, f"target must be one of {', '.join(TARGETS)}"),
        (config.horizon in HORIZON_BARS, f"horizon must be one of {', '.join(HORIZON_BARS)}"),
        (config.thread_count >= 1, "thread_count must be at least 1"),
        (config.seed >= 0, "seed must be a non-negative integer"),
        (config.cv.n_folds >= 2, "cv.n_folds must be at least 2"),
        (config.warehouse.target in ("dev", "prod"), "warehouse.target must be dev or prod"),
        (config.backtest.instrument in ("perp", "spot"), "backtest.instrument: perp or spot"),
        (config.backtest.rebalance in ("horizon", "bar"), "backtest.rebalance: horizon or bar"),
        (config.backtest.taker_fee_bps >= 0, "backtest.taker_fee_bps: a cost, not negative"),
        (config.backtest.slippage_bps >= 0, "backtest.slippage_bps: a cost, not negative"),
        (
            all(0 < a < 1 for a in config.quantiles.alphas) and len(config.quantiles.alphas) >= 2,
            "quantiles.alphas: at least two levels strictly between 0 and 1",
        ),
        (0 <= config.classifier.prior_mix < 1, "classifier.prior_mix must be in [0, 1)"),
        (symbol_problem(config.symbol) is None, f"symbol: {symbol_problem(config.symbol)}"),
        (
            re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", config.model_name) is not None,
            "model: 1-64 letters, digits, _.-",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    parse_duration(config.cv.embargo)
    return config


def _build(cls: type, payload: Any, where: str) -> Any:
    if not isinstance(payload, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(payload).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(payload) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {sorted(names)}")
    values = {}
    for name, value in payload.items():
        values[name] = _coerce(hints[name], value, f"{where}: {name}")
    return cls(**values)


def _coerce(kind: Any, value: Any, where: str) -> Any:
    origin = get_origin(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _build(kind, value, where)
    if origin in (types.UnionType, typing.Union):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is Literal:
        if value not in get_args(kind):
            choices = ", ".join(map(str, get_args(kind)))
            raise ConfigError(f"{where} must be one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list")
        return tuple(_coerce(get_args(kind)[0], item, where) for item in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value
