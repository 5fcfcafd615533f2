"""Predictions for the API through `ml.predict` (never re-implemented here).

The published file pins one version per registered model (`btcfs publish`). Models are per
symbol: a symbol is served by the models trained on it, regression models (fwd_ret) chosen by
horizon, the barrier model (tb_label) adding triple-barrier probabilities. A loaded version
is kept in memory (a registry version never changes), and each generation memoises its
latest predictions: one CatBoost call per publish and symbol.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from api.db import Generation, PinnedModelRow, Reader
from api.errors import InvalidInput, NotFound, Unavailable
from api.schemas import (
    BarrierProbabilities,
    ForecastOut,
    ForecastPoint,
    PredictionOut,
    Quantiles,
)

if TYPE_CHECKING:
    from ml.predict import LoadedModel, Prediction

HORIZON_SECONDS = {"5m": 300, "1h": 3_600, "4h": 14_400, "1d": 86_400}
_STAGE_RANK = {"production": 0, "candidate": 1, "rejected": 2}
#: Models are trained on training_set_5m: their inputs are the 5m feature rows.
MODEL_BAR_INTERVAL = "5m"
FORECAST_METHOD = (
    "step 1 is the model's forecast for one horizon; later steps add no further drift (the "
    "model says nothing past its horizon) and widen the p10-p90 band by sqrt(step)"
)


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise Unavailable("the model returned a non-finite value for this row")
    return number


class Predictor:
    def __init__(self, registry_root: Path, primary_model: str) -> None:
        self.registry_root = registry_root
        self.primary_model = primary_model
        self._loaded: dict[tuple[str, str], LoadedModel] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._loaded.clear()

    # ------------------------------------------------------------------ choosing

    def _rank(self, model: PinnedModelRow) -> tuple[int, int, str]:
        return (_STAGE_RANK.get(model.stage, 3), model.model != self.primary_model, model.model)

    def symbols_of(self, pinned: PinnedModelRow) -> tuple[str, ...]:
        """What a pinned version was trained on (from the publish, else its metadata)."""
        return pinned.symbols or self.load(pinned).symbols

    def _serving(self, generation: Generation, symbol: str | None) -> list[PinnedModelRow]:
        """Pinned models, best first, restricted to those trained on `symbol` when given."""
        ranked = sorted(generation.info.models, key=self._rank)
        if symbol is None:
            return ranked
        return [m for m in ranked if symbol in self.symbols_of(m)]

    def regression_models(
        self, generation: Generation, symbol: str | None = None
    ) -> dict[str, PinnedModelRow]:
        """The best pinned fwd_ret model per horizon (production first, then the primary),
        among the models trained on `symbol` when given."""
        chosen: dict[str, PinnedModelRow] = {}
        for model in self._serving(generation, symbol):
            if model.target == "fwd_ret" and model.horizon and model.horizon not in chosen:
                chosen[model.horizon] = model
        return chosen

    def horizons(self, generation: Generation, symbol: str | None = None) -> list[str]:
        return sorted(
            self.regression_models(generation, symbol), key=lambda h: HORIZON_SECONDS.get(h, 0)
        )

    def pick(
        self, generation: Generation, horizon: str | None, symbol: str | None = None
    ) -> PinnedModelRow:
        """The fwd_ret model serving `horizon` (default: the primary, else <symbol>_5m, else the
        shortest horizon) for `symbol` (default: any). A symbol no pinned model was trained on
        is a 404 naming the models there are."""
        if not self.regression_models(generation):
            raise Unavailable(
                "the published warehouse pins no forecasting model: "
                "`btcfs train`, then `btcfs publish`"
            )
        models = self.regression_models(generation, symbol)
        if not models:
            raise NotFound(
                f"no pinned model forecasts {symbol}: the pinned models are "
                + self.describe(generation)
                + f" (`btcfs train --symbol {symbol}`, then `btcfs publish`)",
                key="symbol",
                valid=self.model_symbols(generation),
            )
        if horizon is None:
            preferred = (self.primary_model, f"{(symbol or '').lower()}_5m")
            primary = [m for m in models.values() if m.model in preferred]
            return primary[0] if primary else models[self.horizons(generation, symbol)[0]]
        if horizon not in models:
            raise InvalidInput(
                f"no model for horizon {horizon!r}" + (f" of {symbol}" if symbol else ""),
                key="horizon",
                valid=self.horizons(generation, symbol),
            )
        return models[horizon]

    def describe(self, generation: Generation) -> str:
        """`name (symbols, horizon or target)` of every pinned model."""
        return ", ".join(
            f"{m.model} ({', '.join(self.symbols_of(m))}, {m.horizon or m.target})"
            for m in sorted(generation.info.models, key=lambda m: m.model)
        )

    def model_symbols(self, generation: Generation) -> list[str]:
        """The symbols some pinned forecasting model was trained on."""
        return sorted(
            {s for m in generation.info.models if m.target == "fwd_ret" for s in self.symbols_of(m)}
        )

    def barrier_model(
        self, generation: Generation, symbol: str | None = None
    ) -> PinnedModelRow | None:
        models = [m for m in self._serving(generation, symbol) if m.target == "tb_label"]
        return models[0] if models else None

    def load(self, pinned: PinnedModelRow) -> LoadedModel:
        key = (pinned.model, pinned.version)
        with self._lock:
            loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        from ml.errors import MLError
        from ml.predict import load_model

        try:
            loaded = load_model(pinned.model, pinned.version, self.registry_root)
        except MLError as exc:
            raise Unavailable(
                f"model {pinned.model} {pinned.version} cannot be loaded: {exc}"
            ) from exc
        with self._lock:
            self._loaded[key] = loaded
        return loaded

    # ---------------------------------------------------------------- predicting

    def predict_rows(self, pinned: PinnedModelRow, rows: list[dict[str, Any]]) -> list[Prediction]:
        return self.load(pinned).predict_rows(rows)

    def latest_row(self, reader: Reader, symbol: str) -> dict[str, Any]:
        generation = reader.generation
        if symbol not in generation.symbols:
            raise NotFound(
                f"unknown symbol {symbol!r}", key="symbol", valid=list(generation.symbols)
            )
        rows = reader.rows(
            "select * from serve.latest_features where symbol = ? and bar_interval = ?",
            [symbol, MODEL_BAR_INTERVAL],
        )
        if not rows:
            raise NotFound(
                f"no {MODEL_BAR_INTERVAL} feature row for {symbol}",
                key="symbol",
                valid=list(generation.symbols),
            )
        return rows[0]

    def latest(
        self, reader: Reader, symbol: str, horizon: str | None, now: datetime | None = None
    ) -> PredictionOut:
        """The forecast from the newest published feature row (memoised per generation); its
        feature age as of `now` (the exchange's clock when a live loop runs; default the wall's)."""
        generation = reader.generation
        pinned = self.pick(generation, horizon, symbol)
        barrier = self.barrier_model(generation, symbol)
        key = ("latest", symbol, pinned.model, pinned.version)
        cached: PredictionOut | None = generation.memo.get(key)
        if cached is None:
            row = self.latest_row(reader, symbol)
            cached = self._prediction(symbol, pinned, barrier, row)
            generation.memo[key] = cached
        now = now or datetime.now(cached.available_at.tzinfo)
        age = (now - cached.available_at).total_seconds()
        return msgspec.structs.replace(cached, feature_age_seconds=age)

    def _prediction(
        self,
        symbol: str,
        pinned: PinnedModelRow,
        barrier: PinnedModelRow | None,
        row: dict[str, Any],
    ) -> PredictionOut:
        model = self.load(pinned)
        if symbol not in model.symbols:
            raise NotFound(
                f"no pinned model forecasts {symbol}: {pinned.model} {pinned.version} was "
                f"trained on {', '.join(model.symbols)}",
                key="symbol",
                valid=list(model.symbols),
            )
        for feature_set in ("derivatives",):
            # a model trained on a set predicts only from rows that hold it
            if feature_set in model.feature_sets and row.get(f"is_{feature_set}_complete") is False:
                raise Unavailable(
                    f"the newest feature row of {symbol} ({row['open_time']}) lacks the "
                    f"{feature_set} set model {pinned.model} {pinned.version} was trained on "
                    "(perp, funding or open interest is late or warming up); the next ingest "
                    "brings it"
                )
        forecast = model.predict_rows([row])[0]
        close = float(row["close"])
        expected = _finite(forecast.expected_return)
        quantiles = price_quantiles = None
        if forecast.quantiles and {"q10", "q50", "q90"} <= set(forecast.quantiles):
            q = forecast.quantiles
            quantiles = Quantiles(
                p10=_finite(q["q10"]), p50=_finite(q["q50"]), p90=_finite(q["q90"])
            )
            price_quantiles = Quantiles(
                p10=close * math.exp(quantiles.p10),
                p50=close * math.exp(quantiles.p50),
                p90=close * math.exp(quantiles.p90),
            )
        probabilities = None
        if barrier is not None:
            outcome = self.predict_rows(barrier, [row])[0].probabilities or {}
            probabilities = BarrierProbabilities(
                down=_finite(outcome.get("-1", math.nan)),
                flat=_finite(outcome.get("0", math.nan)),
                up=_finite(outcome.get("1", math.nan)),
                model=barrier.model,
                model_version=barrier.version,
                model_stage=barrier.stage,
            )
        horizon = pinned.horizon or ""
        available_at: datetime = row["available_at"]
        return PredictionOut(
            symbol=symbol,
            horizon=horizon,
            model=pinned.model,
            model_version=pinned.version,
            model_stage=pinned.stage,
            as_of=row["open_time"],
            available_at=available_at,
            target_at=available_at + timedelta(seconds=HORIZON_SECONDS.get(horizon, 0)),
            feature_age_seconds=0.0,
            close=close,
            predicted_return=expected,
            predicted_price=close * math.exp(expected),
            signal=_finite(forecast.signal),
            quantiles=quantiles,
            price_quantiles=price_quantiles,
            barrier_probabilities=probabilities,
        )

    def forecast(self, reader: Reader, symbol: str, horizon: str | None, steps: int) -> ForecastOut:
        """A path `steps` horizons ahead with a p10-p90 band (see FORECAST_METHOD)."""
        latest = self.latest(reader, symbol, horizon)
        width = timedelta(seconds=HORIZON_SECONDS.get(latest.horizon, 0))
        path = []
        for step in range(1, steps + 1):
            lower = upper = None
            if latest.quantiles is not None:
                spread = math.sqrt(step)
                center = latest.quantiles.p50
                lower = latest.close * math.exp(center + (latest.quantiles.p10 - center) * spread)
                upper = latest.close * math.exp(center + (latest.quantiles.p90 - center) * spread)
            path.append(
                ForecastPoint(
                    step=step,
                    at=latest.available_at + width * step,
                    expected_return=latest.predicted_return,
                    price=latest.predicted_price,
                    lower_price=lower,
                    upper_price=upper,
                )
            )
        return ForecastOut(
            symbol=symbol,
            horizon=latest.horizon,
            steps=steps,
            model=latest.model,
            model_version=latest.model_version,
            model_stage=latest.model_stage,
            as_of=latest.as_of,
            available_at=latest.available_at,
            close=latest.close,
            method=FORECAST_METHOD,
            path=path,
        )
