"""`btcfs train`, `btcfs evaluate`, `btcfs backtest` and `btcfs models ...`: the trainer's wiring.

The stages (dataset, cv, train, evaluate, backtest, registry, report) are pure functions in
their modules; this module reads the environment, calls them in order and prints results.
A known failure (MLError) reaches the root command, which prints it in one line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ml.config import FEATURE_SET_CHOICES, HORIZON_BARS, TARGETS, TrainConfig, load_config
from ml.training import signal_threshold, train_and_register

if TYPE_CHECKING:  # the heavy stack (CatBoost, pandas, matplotlib) loads only when a command runs
    pass

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------- printing


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    number = float(value)
    if not math.isfinite(number):
        return "–"
    if number != 0 and abs(number) < 1e-3:
        return f"{number:.{digits - 1}e}"
    return f"{number:.{digits}g}"


def format_scores(overall: Mapping[str, Any], target: str) -> list[str]:
    """The out-of-sample table: model beside its baselines."""
    if target == "fwd_ret":
        lines = [f"  {'':22}{'model':>12}{'zero':>12}{'persistence':>13}"]
        for label, key in (("MAE", "mae"), ("RMSE", "rmse"),
                           ("directional accuracy", "directional_accuracy"),
                           ("rank IC", "rank_ic")):  # fmt: skip
            lines.append(
                f"  {label:22}{_num(overall.get(key)):>12}{_num(overall.get(f'zero_{key}')):>12}"
                f"{_num(overall.get(f'persistence_{key}')):>13}"
            )
        lines.append(
            f"  RMSE skill vs zero {_num(overall.get('rmse_skill_vs_zero'))}, rank IC t "
            f"{_num(overall.get('rank_ic_tstat'))}, DM vs zero {_num(overall.get('dm_vs_zero'))}, "
            f"p10-p90 coverage {_num(overall.get('coverage'))} "
            f"(nominal {_num(overall.get('coverage_nominal'))})"
        )
        return lines
    lines = [f"  {'':22}{'model':>12}{'class prior':>13}"]
    for label, key in (("log-loss", "log_loss"), ("Brier", "brier"), ("accuracy", "accuracy")):
        lines.append(
            f"  {label:22}{_num(overall.get(key)):>12}{_num(overall.get(f'prior_{key}')):>13}"
        )
    return lines


def format_backtest(summary: Mapping[str, Any]) -> str:
    strategy, hold = summary.get("strategy", {}), summary.get("buy_and_hold", {})
    return (
        f"backtest (after costs): return {_num(strategy.get('total_return'))}, Sharpe "
        f"{_num(strategy.get('sharpe'), 3)}, max drawdown {_num(strategy.get('max_drawdown'), 3)}, "
        f"turnover/day {_num(strategy.get('turnover_per_day'), 3)} | buy and hold: return "
        f"{_num(hold.get('total_return'))}, Sharpe {_num(hold.get('sharpe'), 3)}, max drawdown "
        f"{_num(hold.get('max_drawdown'), 3)}"
    )


# ------------------------------------------------------------------------------ commands

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Training config [default: config/train.yml].",
)
_warehouse_option = click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    help="DuckDB file to read [default: $BTCFS_DATA_DIR/warehouse/build.duckdb].",
)
_model_option = click.option(
    "--model", help="Registry model name [default: the config's, else <symbol>_5m (_tb)]."
)
_symbol_option = click.option(
    "--symbol", help="Warehouse symbol to train on, e.g. ETHUSDT [default: the config's]."
)


def _load(config_path: Path | None, **overrides: Any) -> TrainConfig:
    return load_config(config_path).with_overrides(**overrides)


@click.command("train")
@_config_option
@click.option("--target", type=click.Choice(TARGETS), help="fwd_ret (regression) or tb_label.")
@click.option("--horizon", type=click.Choice(tuple(HORIZON_BARS)), help="Forward-return horizon.")
@click.option(
    "--feature-set",
    type=click.Choice(tuple(FEATURE_SET_CHOICES)),
    help="spot; spot + derivatives; all (+ vendors). Default (config `feature_set`): every "
    "set complete in the training window.",
)
@_symbol_option
@_model_option
@_warehouse_option
@click.option("--promote", is_flag=True, help="Make the new version production if it passes.")
def train_command(
    config_path: Path | None,
    target: str | None,
    horizon: str | None,
    feature_set: str | None,
    symbol: str | None,
    model: str | None,
    warehouse: Path | None,
    promote: bool,
) -> None:
    """Train on training_set_5m with purged walk-forward CV, register the model, write a report.

    The version is a production candidate only if it beats its baselines out of sample on
    every configured gate; `btcfs models promote` (or --promote) makes it production.

    \b
    One model per symbol: --symbol ETHUSDT registers ethusdt_5m unless --model names it.

    \b
    Example: btcfs train --target fwd_ret --horizon 1h --feature-set spot
    """
    config = _load(
        config_path,
        target=target,
        horizon=horizon,
        feature_set=feature_set,
        symbol=symbol,
        model=model,
    )
    outcome = train_and_register(config, warehouse=warehouse, promote=promote)
    info, result = outcome.info, outcome.cv
    stage = "production" if outcome.promoted else info.metadata["stage"]
    window = info.metadata["training_window"]
    click.echo(
        f"{info.model} {info.version}: {info.metadata['label']} on {window['rows']} rows "
        f"({window['first_open_time']} -> {window['last_open_time']}), stage {stage}"
    )
    click.echo(
        f"feature sets: {', '.join(info.metadata['feature_sets'])} "
        f"({len(info.metadata['features'])} inputs)"
    )
    click.echo(
        f"out of sample ({int(result.overall['n'])} rows, {len(result.folds)} purged walk-forward "
        f"folds, embargo {result.embargo}):"
    )
    for line in format_scores(result.overall, config.target):
        click.echo(line)
    if result.gates.passed:
        click.echo("gates: all passed")
    else:
        click.echo("gates failed: " + "; ".join(result.gates.failures()))
    click.echo(format_backtest(outcome.backtest.as_dict()))
    click.echo(f"registry: {info.path}")
    if outcome.report_path:
        click.echo(f"report: {outcome.report_path}")
    if outcome.mlflow.logged:
        click.echo(
            f"MLflow: run {outcome.mlflow.run_id}, registered model {info.model} "
            f"version {outcome.mlflow.model_version}"
        )


@click.command("evaluate")
@_config_option
@_symbol_option
@_model_option
@click.option("--version", help="Registered version [default: production, else newest].")
@_warehouse_option
@click.option(
    "--walk-forward",
    is_flag=True,
    help="Re-run the config's purged walk-forward CV on the warehouse (registers nothing).",
)
def evaluate_command(
    config_path: Path | None,
    symbol: str | None,
    model: str | None,
    version: str | None,
    warehouse: Path | None,
    walk_forward: bool,
) -> None:
    """Score a registered version on the rows that arrived after its training window.

    With --walk-forward, re-run the configured cross-validation instead and print the scores
    against the baselines, without registering anything.

    \b
    Example: btcfs evaluate --model btcusdt_5m --version v0003
    """
    import numpy as np
    import pandas as pd

    from ml import dataset, evaluate, train
    from ml.predict import load_model

    base = _load(config_path, model=model, symbol=symbol)
    if walk_forward:
        data = dataset.load(base, warehouse)
        result = train.cross_validate(data, base)
        click.echo(
            f"{base.model_name} walk-forward ({data.label}, {len(result.folds)} folds, "
            f"{int(result.overall['n'])} rows out of sample):"
        )
        for line in format_scores(result.overall, base.target):
            click.echo(line)
        verdict = "all passed" if result.gates.passed else "; ".join(result.gates.failures())
        click.echo(f"gates: {verdict}")
        return
    loaded = load_model(base.model_name, version)
    config = base.with_overrides(
        target=loaded.target, horizon=loaded.horizon or None, symbol=loaded.symbols[0]
    )
    table = dataset.read_training_table(config, warehouse)
    data = dataset.prepare(table, config, features=loaded.features)
    last = pd.Timestamp(loaded.metadata["training_window"]["last_open_time"])
    # Rows whose features come after every training label ended: nothing the model saw.
    seen_until = last + pd.Timedelta(minutes=5) + pd.Timedelta(data.label_span)
    fresh = data.frame["available_at"] > seen_until
    if not fresh.any():
        raise click.ClickException(
            f"no rows after {loaded.name} {loaded.version}'s training window (ends {last}); "
            "land and build newer data first, or use --walk-forward"
        )
    frame = data.frame.loc[fresh]
    predicted = loaded.predict_frame(frame[loaded.features])
    y = frame[data.label].to_numpy()
    if loaded.target == "fwd_ret":
        alphas = loaded.alphas
        quantiles = (
            predicted[[f"q{round(a * 100):02d}" for a in alphas]].to_numpy() if alphas else None
        )
        scores = evaluate.regression_metrics(
            y,
            predicted["expected_return"].to_numpy(),
            {"zero": np.zeros(len(y)), "persistence": frame["persistence"].to_numpy()},
            horizon_bars=data.horizon_bars,
            quantiles=quantiles,
            alphas=alphas,
        )
    else:
        proba = predicted[[f"p_{c}" for c in train.CLASSES]].to_numpy()
        scores = evaluate.classification_metrics(y, proba, loaded.prior, train.CLASSES)
    click.echo(
        f"{loaded.name} {loaded.version} on {len(frame)} rows after its training window "
        f"({frame['open_time'].iloc[0]} -> {frame['open_time'].iloc[-1]}):"
    )
    for line in format_scores(scores, loaded.target):
        click.echo(line)


@click.command("backtest")
@_config_option
@_model_option
@click.option("--version", help="Registered version [default: production, else newest].")
@click.option(
    "--fee-bps", type=click.FloatRange(min=0), help="Taker fee per side, bps [default: config]."
)
@click.option(
    "--slippage-bps", type=click.FloatRange(min=0), help="Slippage per side, bps [default: config]."
)
@click.option("--threshold", type=float, help="Entry threshold in the signal's unit.")
@click.option("--instrument", type=click.Choice(["perp", "spot"]), help="perp pays funding.")
@click.option("--rebalance", type=click.Choice(["horizon", "bar"]), help="Decision cadence.")
@_warehouse_option
def backtest_command(
    config_path: Path | None,
    model: str | None,
    version: str | None,
    fee_bps: float | None,
    slippage_bps: float | None,
    threshold: float | None,
    instrument: str | None,
    rebalance: str | None,
    warehouse: Path | None,
) -> None:
    """Backtest a version's out-of-sample signal after costs, against buy-and-hold.

    Uses the walk-forward predictions stored with the version (each made by a model that
    never saw its row), so other costs can be tried without retraining.

    \b
    Example: btcfs backtest --fee-bps 4 --slippage-bps 2 --instrument perp
    """
    import pandas as pd

    from ml import backtest as bt
    from ml import dataset, registry

    config = _load(config_path, model=model)
    info = registry.Registry().get(config.model_name, version)
    path = info.path / registry.PREDICTIONS_FILE
    if not path.is_file():
        raise click.ClickException(f"{info.model} {info.version} has no stored predictions")
    predictions = pd.read_parquet(path)
    if "fwd_ret_5m" not in predictions.columns:
        raise click.ClickException("stored predictions lack fwd_ret_5m: retrain this version")
    given: dict[str, Any] = {
        "taker_fee_bps": fee_bps,
        "slippage_bps": slippage_bps,
        "instrument": instrument,
        "rebalance": rebalance,
    }
    costs = dataclasses.replace(
        config.backtest, **{k: v for k, v in given.items() if v is not None}
    )
    stored = info.metadata
    horizon_bars = HORIZON_BARS.get(stored.get("horizon") or "", 1)
    trained = dataclasses.replace(config, target=stored["target"], backtest=costs)
    limit = threshold if threshold is not None else signal_threshold(trained)
    funding = dataset.read_funding(config, warehouse)
    frame = predictions.rename(columns={"pred": "signal"})
    result = bt.run(frame, "signal", limit, costs, horizon_bars, funding)
    click.echo(
        f"{info.model} {info.version}: {len(frame)} out-of-sample bars, {costs.instrument}, "
        f"fee {costs.taker_fee_bps:g} + slippage {costs.slippage_bps:g} bps per side, "
        f"threshold {limit:g}"
    )
    click.echo(format_backtest(result.as_dict()))


# ------------------------------------------------------------------------------- models


@click.group("models")
def models_group() -> None:
    """List, inspect, promote and roll back registered models.

    \b
    Example: btcfs models list
    """


@models_group.command("list")
@click.option("--model", help="Only this model.")
def models_list(model: str | None) -> None:
    """List every registered version with its stage and headline out-of-sample score.

    \b
    Example: btcfs models list --model btcusdt_5m
    """
    from ml import registry

    store = registry.Registry()
    names = [model] if model else store.models()
    if not names:
        click.echo(f"no models under {store.root} (run `btcfs train`)")
        return
    for name in names:
        versions = store.versions(name)
        if not versions:
            raise click.ClickException(f"no registered versions of {name} under {store.root}")
        click.echo(name)
        for info in versions:
            overall = info.metadata.get("metrics", {}).get("overall", {})
            headline = (
                f"rank IC {_num(overall.get('rank_ic'), 3)}, "
                f"RMSE skill {_num(overall.get('rmse_skill_vs_zero'), 3)}"
                if info.metadata.get("target") == "fwd_ret"
                else f"log-loss skill {_num(overall.get('log_loss_skill_vs_prior'), 3)}"
            )
            click.echo(
                f"  {info.version}  {info.stage:<10}  {info.metadata.get('label', ''):<14}"
                f"  {info.created_at}  {headline}"
            )


@models_group.command("show")
@click.argument("model")
@click.argument("version", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the whole metadata.json.")
def models_show(model: str, version: str | None, as_json: bool) -> None:
    """Show one version: stage, window, data fingerprint, gates and scores.

    \b
    Example: btcfs models show btcusdt_5m v0002
    """
    from ml import registry

    store = registry.Registry()
    info = store.get(model, version)
    if as_json:
        click.echo(json.dumps({**info.metadata, "stage_now": info.stage}, indent=2))
        return
    meta = info.metadata
    window = meta.get("training_window", {})
    fingerprint = meta.get("data_fingerprint", {})
    click.echo(f"{info.model} {info.version} ({info.stage})  {info.path}")
    click.echo(f"  target: {meta.get('label')}  features: {len(meta.get('features', []))}")
    click.echo(
        f"  window: {window.get('first_open_time')} -> {window.get('last_open_time')} "
        f"({window.get('rows')} rows)"
    )
    click.echo(
        f"  data: lake {str(fingerprint.get('lake', {}).get('sha256'))[:16]}, dbt invocation "
        f"{fingerprint.get('dbt', {}).get('invocation_id')}, git "
        f"{str(meta.get('git', {}).get('revision'))[:12]}"
    )
    for line in format_scores(meta.get("metrics", {}).get("overall", {}), meta.get("target", "")):
        click.echo(line)
    failures = meta.get("gates", {}).get("failures", [])
    click.echo("  gates: " + ("all passed" if not failures else "; ".join(failures)))
    click.echo("  " + format_backtest(meta.get("backtest", {})))
    history = [h for h in store.history(model) if h.get("version") == info.version]
    for entry in history:
        click.echo(f"  {entry['at']}: {entry['action']} (previous {entry.get('previous')})")


@models_group.command("promote")
@click.argument("model")
@click.argument("version")
@click.option("--force", is_flag=True, help="Promote even though the gates failed.")
def models_promote(model: str, version: str, force: bool) -> None:
    """Make a candidate version production (a rejected one needs --force).

    \b
    Example: btcfs models promote btcusdt_5m v0003
    """
    from ml import registry

    info = registry.Registry().promote(model, version, force=force)
    click.echo(f"{info.model} {info.version} is now production")


@models_group.command("rollback")
@click.argument("model")
def models_rollback(model: str) -> None:
    """Return production to the version that was production before the current one.

    \b
    Example: btcfs models rollback btcusdt_5m
    """
    from ml import registry

    info = registry.Registry().rollback(model)
    click.echo(f"{info.model} production rolled back to {info.version}")


COMMANDS = (train_command, evaluate_command, backtest_command, models_group)
